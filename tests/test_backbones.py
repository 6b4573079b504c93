"""Backbones (WRN-1D, UNet-1D, WRN-2D, UNet-2D): shapes, patterns, causality, sizes, supernet conversion."""
import random

import pytest
import torch
import torch.nn.functional as F

from models.dash import conv_pattern, extract_pattern, mixture_convs, search_pattern, searchable_convs, to_supernet
from models.unet1d import UNet1D
from models.unet2d import UNET2D_FULL, UNet2D
from models.wrn1d import WRN1D
from models.wrn2d import WRN2D, n_searchable

torch.set_num_threads(1)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def random_pattern(n: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.choice([1, 3, 4, 5, 7, 8]), rng.choice([1, 2, 3])) for _ in range(n)]


# name -> (constructor taking pattern=..., input shape, output shape, number of searchable convs)
BACKBONES = {
    "wrn1d": (lambda **kw: WRN1D(5, 3, width=4, **kw), (2, 5, 37), (2, 3), 9),
    "wrn1d_forecast": (lambda **kw: WRN1D(1, 1, width=4, head="forecast", context_length=40, horizon=12, **kw),
                       (2, 1, 40), (2, 1, 12), 9),
    "unet1d": (lambda **kw: UNet1D(5, 2, base_width=4, **kw), (2, 5, 45), (2, 2), 18),
    "wrn2d": (lambda **kw: WRN2D(3, 7, depth=10, widen_factor=1, **kw), (2, 3, 15, 15), (2, 7), 7),
    "unet2d": (lambda **kw: UNet2D(4, 6, encoder_widths=(4, 4, 4, 4, 8), decoder_widths=(8, 8, 8, 4), **kw),
               (2, 4, 17, 19), (2, 6), 18),
}


@pytest.mark.parametrize("name", BACKBONES)
def test_output_shapes_default_and_with_a_pattern(name):
    build, input_shape, output_shape, n = BACKBONES[name]
    x = torch.randn(*input_shape)
    assert build()(x).shape == output_shape
    assert build(pattern=random_pattern(n, seed=1))(x).shape == output_shape


@pytest.mark.parametrize("name", BACKBONES)
def test_pattern_sets_each_searchable_conv_in_order(name):
    build, _, _, n = BACKBONES[name]
    pattern = random_pattern(n, seed=2)
    model = build(pattern=pattern)
    assert conv_pattern(model) == pattern
    for conv, (k, d) in zip(searchable_convs(model), pattern):
        assert conv.weight.shape[2:] == (k,) * (conv.weight.dim() - 2) and conv.dilation[0] == d


@pytest.mark.parametrize("name", BACKBONES)
def test_pattern_of_the_wrong_length_is_rejected(name):
    build, _, _, n = BACKBONES[name]
    with pytest.raises(ValueError, match=f"{n} searchable convs"):
        build(pattern=[(3, 1)] * (n + 1))


@pytest.mark.parametrize("name", BACKBONES)
def test_supernet_of_each_backbone_has_same_output_shape_and_trains(name):
    build, input_shape, output_shape, n = BACKBONES[name]
    torch.manual_seed(0)
    supernet = to_supernet(build(), [3, 5], [1, 2])
    assert len(mixture_convs(supernet)) == n and not searchable_convs(supernet)
    out = supernet(torch.randn(*input_shape))
    assert out.shape == output_shape
    out.square().mean().backward()
    assert all(m.alpha.grad is not None and torch.isfinite(m.alpha.grad).all() for m in mixture_convs(supernet))
    pattern = extract_pattern(supernet)
    assert len(pattern) == n and set(pattern) <= {(3, 1), (3, 2), (5, 1), (5, 2)}
    assert build(pattern=pattern)(torch.randn(*input_shape)).shape == output_shape


# ------------------------------------------------------------------------------------------- WRN-1D
def test_wrn1d_per_step_outputs_are_causal():
    torch.manual_seed(0)
    model = WRN1D(2, 3, width=4, head="forecast", context_length=30, horizon=5,
                  pattern=random_pattern(9, seed=3)).eval()  # eval: BatchNorm must not mix steps via batch stats
    x = torch.randn(1, 2, 30)
    changed = x.clone()
    changed[..., 17] += 5.0
    before, after = model.per_step(x), model.per_step(changed)
    assert before.shape == (1, 3, 30)
    torch.testing.assert_close(after[..., :17], before[..., :17])
    assert (after[..., 17] - before[..., 17]).abs().max() > 1e-4      # the changed step itself does move


@pytest.mark.parametrize("keep_causal", [True, False])
def test_wrn1d_supernet_is_causal_only_with_keep_causal(keep_causal):
    torch.manual_seed(0)
    supernet = to_supernet(WRN1D(2, 1, width=4, head="forecast", context_length=30, horizon=5), [3, 5], [1, 2],
                           keep_causal=keep_causal).eval().double()   # float64: FFT round-off ~1e-16
    with torch.no_grad():  # weights of order one, so that a change carries through all nine layers
        for weight in (w for m in mixture_convs(supernet) for w in m.weights):
            weight.normal_(0.0, 0.5)
    x = torch.randn(1, 2, 30, dtype=torch.float64)
    changed = x.clone()
    changed[..., 17] += 5.0
    moved = (supernet.per_step(changed) - supernet.per_step(x)).abs()[0, 0]
    assert moved[17:].max() > 1e-3
    # Default = the reference: its chomp layers are removed during search, so the mixtures are centred.
    assert (moved[:17].max() < 1e-8 * moved[17:].max()) == keep_causal


def test_wrn1d_forecast_head_needs_lengths():
    with pytest.raises(ValueError, match="context_length and horizon"):
        WRN1D(1, 1, head="forecast")


def test_wrn1d_third_block_has_no_skip_and_dropout_is_used():
    model = WRN1D(5, 2, width=4, dropout=0.1)
    assert model.blocks[0].shortcut is not None and model.blocks[1].shortcut is not None
    assert model.blocks[2].shortcut is None
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.1] * 9


def test_wrn1d_sizes_match_the_reference():
    # Parameter counts of the reference network (m = 128, genomics: 5 input channels, 2 classes),
    # as read off the reference code in the paper notes: 2.0M at kernels 8/5/3, 4.4M at all kernels 11.
    assert abs(n_parameters(WRN1D(5, 2, width=128)) - 2.0e6) < 0.05e6
    assert abs(n_parameters(WRN1D(5, 2, width=128, pattern=[(11, 1)] * 9)) - 4.4e6) < 0.05e6


# ------------------------------------------------------------------------------------------- UNet-1D
def test_unet1d_size_matches_the_reference():
    assert abs(n_parameters(UNet1D(5, 2, base_width=64)) - 4.5e6) < 0.05e6      # notes: ~4.5M at k = 3


# ------------------------------------------------------------------------------------------- WRN-2D
def test_wrn2d_searchable_counts_match_the_paper():
    assert n_searchable(22) == 19 and n_searchable(16) == 13
    assert len(searchable_convs(WRN2D(3, 2, depth=22))) == 19


def test_wrn2d_22_8_size_matches_the_reference():
    assert abs(n_parameters(WRN2D(3, 10, depth=22, widen_factor=8)) - 17.2e6) < 0.05e6  # notes: 17.2M at 3x3


def test_wrn2d_strides_halve_twice_even_with_dilated_kernels():
    model = WRN2D(3, 4, depth=10, pattern=[(5, 3)] * 7)
    sizes = []
    for block in model.blocks:
        block.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[-2:])))
    model(torch.randn(1, 3, 21, 21))
    assert sizes == [(21, 21), (11, 11), (6, 6)]


def test_wrn2d_rejects_bad_depth():
    with pytest.raises(ValueError, match="6n"):
        WRN2D(3, 2, depth=20)


# ------------------------------------------------------------------------------------------- UNet-2D
def test_unet2d_full_preset_is_the_reference_unet():
    model = UNet2D(3, 10, **UNET2D_FULL)
    widths = [conv.out_channels for conv in searchable_convs(model)]
    assert widths == [64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024, 512, 512, 256, 256, 128, 128, 64, 64]


# ------------------------------------------------------------------------------------------- search on a backbone
def test_search_on_wrn1d_returns_a_pattern_the_backbone_accepts():
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 5, 32, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(3)]
    pattern = search_pattern(lambda: WRN1D(5, 2, width=4), batches, F.cross_entropy, kernel_sizes=[3, 5],
                             dilations=[1, 2], epochs=2, data_fraction=1.0, seed=0)
    assert len(pattern) == 9 and set(pattern) <= {(3, 1), (3, 2), (5, 1), (5, 2)}
    assert WRN1D(5, 2, width=4, pattern=pattern)(batches[0][0]).shape == (8, 2)
