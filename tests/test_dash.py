"""DASH mixture convolution, FFT convolution, supernet bookkeeping and the search loop (models/dash.py)."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.dash import (
    MixtureConv,
    SearchableConv1d,
    SearchableConv2d,
    architecture_parameters,
    extract_pattern,
    fft_conv,
    normalize_architecture_gradients,
    receptive_field_penalty,
    search_pattern,
    to_supernet,
    weight_parameters,
)

torch.set_num_threads(1)
F64 = torch.float64


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_hot(index: int, size: int) -> torch.Tensor:
    weights = torch.zeros(size, dtype=F64)
    weights[index] = 1.0
    return weights


def direct_conv(x, weight, bias, k, d, stride, causal):
    """The plain torch conv a candidate stands for: 'same' (torch's left = total // 2) or causal padding."""
    total = d * (k - 1)
    left = total if causal else total // 2
    dims = weight.dim() - 2
    x = F.pad(x, [left, total - left] * dims)
    conv = F.conv1d if dims == 1 else F.conv2d
    return conv(x, weight, bias, stride=stride, dilation=d, groups=x.shape[1] // weight.shape[1])


# ------------------------------------------------------------------------------------------- FFT convolution
@pytest.mark.parametrize("length, kernel, stride, padding, groups", [
    (17, 5, 1, (2, 2), 1), (16, 4, 1, (0, 0), 1), (31, 7, 2, (3, 3), 1), (30, 3, 3, (2, 0), 2),
    (9, 9, 1, (4, 4), 4), (12, 1, 2, (0, 0), 1), (25, 11, 1, (10, 0), 4), (12, 1, 1, (3, 2), 1),
    (6, 15, 1, (7, 7), 1), (8, 3, 2, (0, 5), 2),
])
def test_fft_conv_equals_direct_conv_1d(length, kernel, stride, padding, groups):
    g = generator(length)
    x = torch.randn(3, 4, length, dtype=F64, generator=g)
    weight = torch.randn(8, 4 // groups, kernel, dtype=F64, generator=g)
    bias = torch.randn(8, dtype=F64, generator=g)
    expected = F.conv1d(F.pad(x, list(padding)), weight, bias, stride=stride, groups=groups)
    torch.testing.assert_close(fft_conv(x, weight, bias, stride, [padding], groups), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size, kernel, stride, padding, groups", [
    ((9, 12), 3, 1, 1, 1), ((16, 15), 5, 2, 2, 1), ((10, 10), 4, 1, 0, 2), ((13, 8), 7, 3, 3, 4),
    ((5, 7), 11, 1, 5, 1), ((8, 8), 1, 1, 2, 4),
])
def test_fft_conv_equals_direct_conv_2d(size, kernel, stride, padding, groups):
    g = generator(size[0])
    x = torch.randn(2, 4, *size, dtype=F64, generator=g)
    weight = torch.randn(4, 4 // groups, kernel, kernel, dtype=F64, generator=g)
    expected = F.conv2d(x, weight, None, stride=stride, padding=padding, groups=groups)
    torch.testing.assert_close(fft_conv(x, weight, None, stride, padding, groups), expected, rtol=1e-10, atol=1e-10)


def test_fft_conv_float32_is_close_to_direct_conv():
    g = generator(1)
    x, weight = torch.randn(4, 16, 300, generator=g), torch.randn(16, 16, 71, generator=g) / 30
    torch.testing.assert_close(fft_conv(x, weight, padding=35), F.conv1d(x, weight, padding=35),
                               rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------- mixture = plain conv
@pytest.mark.parametrize("causal, stride, groups", [(False, 1, 1), (True, 1, 1), (False, 2, 1), (True, 3, 3),
                                                    (False, 1, 3)])
def test_one_hot_mixture_is_the_plain_conv_1d(causal, stride, groups):
    torch.manual_seed(0)
    mixture = MixtureConv(1, 3, 6, [1, 3, 4, 5, 7], [1, 2, 3], stride=stride, causal=causal, groups=groups).double()
    x = torch.randn(2, 3, 29, dtype=F64, generator=generator(2))
    for index, (k, d) in enumerate(mixture.candidates):
        expected = direct_conv(x, mixture.weights[index], mixture.bias, k, d, stride, causal)
        got = mixture.convolve(x, one_hot(index, len(mixture.candidates)))
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12, msg=f"(k, d) = {(k, d)}")


@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 4)])
def test_one_hot_mixture_is_the_plain_conv_2d(stride, groups):
    torch.manual_seed(0)
    mixture = MixtureConv(2, 4, 4, [3, 5], [1, 2, 3], stride=stride, groups=groups).double()
    x = torch.randn(2, 4, 13, 16, dtype=F64, generator=generator(3))
    for index, (k, d) in enumerate(mixture.candidates):
        expected = direct_conv(x, mixture.weights[index], mixture.bias, k, d, stride, False)
        got = mixture.convolve(x, one_hot(index, len(mixture.candidates)))
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12, msg=f"(k, d) = {(k, d)}")


@pytest.mark.parametrize("dims, causal", [(1, False), (1, True), (2, False)])
def test_aggregated_kernel_equals_weighted_sum_of_candidate_convs(dims, causal):
    torch.manual_seed(1)
    mixture = MixtureConv(dims, 3, 5, [3, 5, 7], [1, 2], stride=2, causal=causal).double()
    x = torch.randn(2, 3, *([15] * dims), dtype=F64, generator=generator(4))
    weights = torch.softmax(torch.randn(len(mixture.candidates), dtype=F64, generator=generator(5)), 0)
    expected = sum(w * direct_conv(x, mixture.weights[i], None, k, d, 2, causal)
                   for i, (w, (k, d)) in enumerate(zip(weights, mixture.candidates)))
    expected = expected + mixture.bias.view(1, -1, *([1] * dims))
    torch.testing.assert_close(mixture.convolve(x, weights), expected, rtol=1e-10, atol=1e-12)


def test_candidates_are_kernel_major_with_own_weights():
    mixture = MixtureConv(1, 2, 2, [3, 5], [1, 4])
    assert mixture.candidates == [(3, 1), (3, 4), (5, 1), (5, 4)]
    assert [tuple(w.shape) for w in mixture.weights] == [(2, 2, 3), (2, 2, 3), (2, 2, 5), (2, 2, 5)]
    assert mixture.span == 4 * (5 - 1) + 1


def test_gumbel_weights_are_random_in_training_and_fixed_in_eval():
    torch.manual_seed(0)
    mixture = MixtureConv(1, 2, 2, [3, 5], [1, 2])
    first, second = mixture.mixture_weights(), mixture.mixture_weights()
    assert not torch.allclose(first, second)
    torch.testing.assert_close(first.sum(), torch.tensor(1.0))
    mixture.eval()
    torch.testing.assert_close(mixture.mixture_weights(), torch.softmax(mixture.alpha, 0))


# ------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("dims", [1, 2])
def test_gradients_reach_architecture_and_weights(dims):
    torch.manual_seed(0)
    mixture = MixtureConv(dims, 3, 4, [3, 5], [1, 2], stride=2)
    x = torch.randn(2, 3, *([12] * dims))
    mixture(x).square().mean().backward()
    assert torch.isfinite(mixture.alpha.grad).all() and mixture.alpha.grad.abs().min() > 0
    for weight in mixture.weights:
        assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
    assert mixture.bias.grad.abs().sum() > 0


def test_normalisation_and_receptive_field_penalty():
    torch.manual_seed(0)
    model = nn.Sequential(SearchableConv1d(2, 3, 3), nn.ReLU(), SearchableConv1d(3, 3, 3))
    to_supernet(model, [3, 5], [1, 2, 3])
    # Scaled up so that |g| >> the 1e-8 guard: then every layer's gradient is its direction / grad_scale.
    (1e6 * model(torch.randn(4, 2, 20)).square().mean()).backward()
    raw = [alpha.grad.clone() for alpha in architecture_parameters(model)]
    normalize_architecture_gradients(model, grad_scale=50.0)
    for alpha, grad in zip(architecture_parameters(model), raw):
        torch.testing.assert_close(alpha.grad.norm(), torch.tensor(1 / 50.0), rtol=1e-5, atol=0)
        torch.testing.assert_close(alpha.grad, grad / grad.norm() / 50.0, rtol=1e-5, atol=1e-9)
    before = [alpha.grad.clone() for alpha in architecture_parameters(model)]
    receptive_field_penalty(model, strength=1e-3)
    fields = torch.tensor([d * (k - 1) + 1 for k in (3, 5) for d in (1, 2, 3)], dtype=torch.float32)
    for alpha, grad in zip(architecture_parameters(model), before):
        torch.testing.assert_close(alpha.grad - grad, 1e-3 * fields)


# ------------------------------------------------------------------------------------------- supernet
class TwoConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = SearchableConv2d(3, 4, 3)
        self.shortcut = nn.Conv2d(3, 4, 1)             # plain conv: must stay as it is
        self.second = SearchableConv2d(4, 4, 3, stride=2, bias=False)

    def forward(self, x):
        return self.second(self.first(x) + self.shortcut(x))


def test_to_supernet_replaces_only_searchable_convs():
    model = TwoConvNet()
    first_bias = model.first.bias.detach().clone()
    to_supernet(model, [3, 5], [1, 2])
    assert isinstance(model.first, MixtureConv) and isinstance(model.second, MixtureConv)
    assert type(model.shortcut) is nn.Conv2d
    assert model.first.groups == 1 and model.second.groups == 4      # depthwise only where in == out
    assert model.second.stride == 2 and model.second.bias is None
    torch.testing.assert_close(model.first.bias.detach(), first_bias)
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 4, 5, 5)
    arch, weights = architecture_parameters(model), weight_parameters(model)
    assert len(arch) == 2 and len(arch) + len(weights) == len(list(model.parameters()))
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)


def test_to_supernet_without_depthwise_keeps_full_convs():
    model = to_supernet(TwoConvNet(), [3], [1], depthwise=False)
    assert model.second.groups == 1 and model.second.weights[0].shape == (4, 4, 3, 3)


def test_to_supernet_needs_a_searchable_conv():
    with pytest.raises(ValueError, match="no SearchableConv"):
        to_supernet(nn.Sequential(nn.Conv1d(1, 1, 3)), [3], [1])


def test_extract_pattern_is_argmax_per_layer():
    model = to_supernet(TwoConvNet(), [3, 5, 7], [1, 2])
    chosen = [4, 1]                                    # (7, 1) and (3, 2)
    with torch.no_grad():
        for alpha, index in zip(architecture_parameters(model), chosen):
            alpha.copy_(torch.randn(6) * 0.1)
            alpha[index] = 5.0
    assert extract_pattern(model) == [(7, 1), (3, 2)]


# ------------------------------------------------------------------------------------------- search loop
class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = SearchableConv1d(1, 1, 3)

    def forward(self, x):
        return self.conv(x)


def shifted_sum_batches(shift: int, seed: int, n_batches: int = 8):
    """y[t] = x[t - shift] + x[t + shift]: only a conv with taps at +-shift can fit it."""
    g, batches = generator(seed), []
    for _ in range(n_batches):
        x = torch.randn(16, 1, 64, generator=g)
        y = torch.zeros_like(x)
        y[..., shift:-shift] = x[..., :-2 * shift] + x[..., 2 * shift:]
        batches.append((x, y))
    return batches


def covers(k: int, d: int, shift: int) -> bool:
    return shift % d == 0 and shift // d <= (k - 1) // 2


@pytest.mark.parametrize("shift, seed", [(3, 0), (3, 1), (2, 2)])
def test_search_finds_a_kernel_that_covers_the_signal(shift, seed):
    kernels, dilations = [3, 5, 7], [1, 2, 3, 4]
    assert sum(covers(k, d, shift) for k, d in itertools.product(kernels, dilations)) <= 5  # not a given
    losses = []
    pattern = search_pattern(OneConv, shifted_sum_batches(shift, seed), lambda out, y: F.mse_loss(
        out[..., 8:-8], y[..., 8:-8]), kernel_sizes=kernels, dilations=dilations, epochs=20, lr=0.05,
        data_fraction=1.0, seed=seed, on_epoch=lambda epoch, loss: losses.append(loss))
    assert len(pattern) == 1 and covers(*pattern[0], shift), pattern
    assert len(losses) == 20 and losses[-1] < 0.5 * losses[0]


def test_search_is_seeded_and_leaves_the_callers_rng_alone():
    batches = shifted_sum_batches(2, 0, n_batches=4)
    kwargs = dict(kernel_sizes=[3, 5], dilations=[1, 2], epochs=2, data_fraction=1.0, seed=7)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = search_pattern(OneConv, batches, F.mse_loss, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    assert search_pattern(OneConv, batches, F.mse_loss, **kwargs) == first


def test_search_uses_a_fraction_of_the_batches_per_epoch():
    seen = []

    def loss(out, y):
        seen.append(1)
        return F.mse_loss(out, y)

    search_pattern(OneConv, shifted_sum_batches(2, 0, n_batches=10), loss, kernel_sizes=[3], dilations=[1],
                   epochs=2, data_fraction=0.2, seed=0)
    assert len(seen) == 2 * (int(0.2 * 10) + 1)        # the reference's quick_search rule
