"""DASH (Shen et al., NeurIPS 2022) as used by DASHA: search each conv's kernel size and dilation.

Algorithm (reference: sjunhongshen/DASH `src/dash.py`, ritvikgupta199/DASHA `src/main_dasha.py`):

- Every *searchable* conv of a backbone (a `SearchableConv1d/2d`; plain `nn.Conv*d` such as 1x1
  shortcuts and heads are left alone, as the reference skips `shortcut`/`downsample`/`pool` names) is
  replaced by a `MixtureConv` over all pairs (k, d) in K x D, k-major: candidate i = (K[i // |D|],
  D[i % |D|]), the order the reference decodes its argmax with.
- Each candidate has its OWN weight tensor, N(0, 0.01^2): the reference builds one parameter per (k, d)
  pair, so dilated variants of one kernel size do not share weights. The original conv's bias is kept.
  When in_channels == out_channels and `depthwise=True` (the reference's `--separable 1`) the search
  conv is depthwise (groups = channels); the retrained net uses full convs with the chosen (k, d).
- Mixture weights = Gumbel-softmax(log_softmax(alpha), tau) with fresh noise on every training forward;
  alpha starts at 1e-3 N(0, 1).
- ONE aggregated kernel: every candidate is dilated by zero insertion and placed inside the largest
  receptive field s = max d(k-1)+1 at the offset that reproduces its own padding, then all are summed
  with the mixture weights. Convolving once with that kernel equals the weighted sum of the |K||D|
  candidate convs (linearity), and is computed by FFT: rfftn of the input times the conjugate rfftn
  of the kernel (one real batched matmul per frequency mixes the channels), irfftn, take every
  stride-th sample of the output.
- Search (single level): weights and alpha both minimise the TRAINING loss, two Nesterov SGDs stepped
  together; after backward each alpha gradient is rescaled to g / (grad_scale (|g| + 1e-8)) and a
  constant 1e-5 r (r = receptive field of each candidate) is added, pushing against large fields; then
  the global grad norm is clipped to 1. Pattern = argmax alpha per layer.

Deviations from the reference, on purpose:
- Candidates are placed as torch's padding='same' places them (left pad (r-1)//2); the reference centres
  with (s-r)//2, which differs only for even receptive fields.
- In eval mode the mixture weights are softmax(log_softmax(alpha) / tau) without noise (the reference
  draws noise in eval too); the search itself only runs in training mode, so the pattern is unaffected.
- Causal 1-D convs become centred ('same') mixtures during search, as the reference disables its chomp
  layers; `keep_causal=True` keeps them causal instead.
- FFT sizes: the input is not padded explicitly; it sits in a zero-filled circular buffer of length
  L + (s-1)/2 (rounded up to a 5-smooth size) that the padding wraps into, rather than the reference's
  L + s - 1. Same linear convolution, up to ~2.4x fewer 2-D frequencies when s is large (see fft_conv).
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Pattern = list[tuple[int, int]]


# ------------------------------------------------------------------------------------------- searchable convs
def side_padding(receptive_field: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length: all on the left if causal, else torch 'same'."""
    total = receptive_field - 1
    left = total if causal else total // 2
    return left, total - left


class _SearchableConv:
    """Marker and shared forward for convs whose (kernel_size, dilation) DASH may choose."""

    def _setup_padding(self, receptive_field: int, causal: bool, dims: int) -> int:
        left, right = side_padding(receptive_field, causal)
        self.causal = causal
        # A symmetric pad goes to the conv itself (no copy); otherwise F.pad first, e.g. causal or even fields.
        self.explicit_padding = None if left == right else (left, right) * dims
        return left if left == right else 0

    @property
    def kernel(self) -> int:
        return self.kernel_size[0]

    @property
    def dilation_rate(self) -> int:
        return self.dilation[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.explicit_padding is not None:
            x = F.pad(x, self.explicit_padding)
        return self._conv_forward(x, self.weight, self.bias)


class SearchableConv1d(_SearchableConv, nn.Conv1d):
    """Conv1d keeping length L/stride ('same' or causal); `to_supernet` turns it into a MixtureConv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 stride: int = 1, *, causal: bool = False, bias: bool = True, groups: int = 1):
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, dilation=dilation,
                           groups=groups, bias=bias)
        self.padding = (self._setup_padding(dilation * (kernel_size - 1) + 1, causal, 1),)


class SearchableConv2d(_SearchableConv, nn.Conv2d):
    """Square-kernel Conv2d keeping size H/stride x W/stride ('same' padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 stride: int = 1, *, bias: bool = True, groups: int = 1):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, dilation=dilation,
                           groups=groups, bias=bias)
        pad = self._setup_padding(dilation * (kernel_size - 1) + 1, False, 2)
        self.padding = (pad, pad)


def searchable_convs(model: nn.Module) -> list[_SearchableConv]:
    """The searchable convs of `model` in registration order: the order of a pattern's entries."""
    return [m for m in model.modules() if isinstance(m, _SearchableConv)]


def conv_pattern(model: nn.Module) -> Pattern:
    """(kernel_size, dilation) of each searchable conv of a plain (not converted) backbone."""
    return [(m.kernel, m.dilation_rate) for m in searchable_convs(model)]


def pattern_entry(pattern: Sequence[tuple[int, int]] | None, index: int, default: tuple[int, int]):
    """Backbone helper: the (k, d) of searchable conv `index`, or `default` without a pattern."""
    return default if pattern is None else tuple(pattern[index])


def check_pattern(pattern: Sequence[tuple[int, int]] | None, expected: int, backbone: str) -> None:
    if pattern is not None and len(pattern) != expected:
        raise ValueError(f"{backbone} has {expected} searchable convs, got a pattern of {len(pattern)}")


# ------------------------------------------------------------------------------------------- FFT convolution
def _fast_fft_length(n: int) -> int:
    """Smallest 5-smooth integer >= n: pocketfft/cuFFT are fastest on 2^a 3^b 5^c lengths."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class _ContiguousMatmul(torch.autograd.Function):
    """a @ b whose backward makes the incoming gradient contiguous first: it arrives as a permuted view,
    and CPU batched matmuls over strided operands fall back to a per-matrix loop (~10x slower)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return torch.matmul(a, b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b = ctx.saved_tensors
        grad = grad.contiguous()
        return torch.matmul(grad, b.transpose(-1, -2)), torch.matmul(a.transpose(-1, -2), grad)


def _correlate_channels(xg: torch.Tensor, wg: torch.Tensor) -> torch.Tensor:
    """sum_c X[b,g,c,f] conj(W[g,o,c,f]) -> (B, G, O_g, F) as ONE real batched matmul per (group, freq).

    CPU complex bmm falls back to a slow per-matrix loop, so the product is spelled out in reals:
    [Xr; Xi] (2B x C) @ [Wr | Wi] (C x 2O) = [[P_rr, Q_ri], [P_ir, Q_ii]], and
    Re = P_rr + Q_ii, Im = P_ir - Q_ri (the conjugate flips the sign of Wi).
    """
    batch, out_g = xg.shape[0], wg.shape[1]
    # Contiguous operands in (G, F, rows, cols) layout: a matmul over strided views is ~40x slower on CPU.
    stacked_x = torch.view_as_real(xg).permute(1, 3, 4, 0, 2).reshape(xg.shape[1], xg.shape[3], 2 * batch, -1)
    stacked_w = torch.view_as_real(wg).permute(0, 3, 2, 4, 1).reshape(wg.shape[0], wg.shape[3], wg.shape[2], -1)
    out = _ContiguousMatmul.apply(stacked_x, stacked_w)                       # (G, F, 2B, 2 O_g)
    real = out[:, :, :batch, :out_g] + out[:, :, batch:, out_g:]
    imag = out[:, :, batch:, :out_g] - out[:, :, :batch, out_g:]
    return torch.complex(real, imag).permute(2, 0, 3, 1)                        # (B, G, O_g, F)


def fft_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
             padding: Sequence[tuple[int, int]] | int = 0, groups: int = 1) -> torch.Tensor:
    """F.conv1d/conv2d (cross-correlation, dilation already in `weight`) computed with FFTs.

    padding: one int for all sides, or (left, right) per spatial dim. The padding is never materialised:
    x sits at the start of a zero-filled circular buffer of length n, so positions -left..-1 wrap to the
    zeros at its end. c[t] = sum_j w[j] x[(t + j) mod n] is then the padded conv at output t + left, as
    long as n >= L + max(left, right) (no tap reaches data through the wrap) and n >= kernel and output
    sizes. For a 'same' conv that is L + (s - 1) / 2, not the L + s - 1 of padding explicitly, which
    makes the 2-D transforms up to ~2.4x smaller when the span s is large compared with L.
    """
    dims = weight.dim() - 2
    pads = [(padding, padding)] * dims if isinstance(padding, int) else [tuple(p) for p in padding]
    axes = tuple(range(-dims, 0))
    sizes = [n + left + right - k + 1 for n, k, (left, right) in zip(x.shape[2:], weight.shape[2:], pads)]
    lengths = [_fast_fft_length(max(n + max(pair), k, size))
               for n, k, pair, size in zip(x.shape[2:], weight.shape[2:], pads, sizes)]
    spectrum_x = torch.fft.rfftn(x, s=lengths, dim=axes)
    # Correlation theorem: sum_j w[j] x[t+j]  <->  X(f) conj(W(f)) for real w.
    spectrum_w = torch.fft.rfftn(weight, s=lengths, dim=axes)
    batch, channels, out_channels = x.shape[0], x.shape[1], weight.shape[0]
    freq_shape = spectrum_x.shape[2:]
    xg = spectrum_x.reshape(batch, groups, channels // groups, -1)
    wg = spectrum_w.reshape(groups, out_channels // groups, channels // groups, -1)
    if xg.shape[2] == 1 and wg.shape[1] == 1:          # depthwise: an element-wise product per channel
        product = xg[:, :, 0] * wg[:, 0, 0].conj()
    else:
        product = _correlate_channels(xg, wg)
    circular = torch.fft.irfftn(product.reshape(batch, out_channels, *freq_shape), s=lengths, dim=axes)
    # Output i of the padded conv is c[(i - left) mod n]: roll by `left`, keep every stride-th of `sizes`.
    out = torch.roll(circular, shifts=tuple(left for left, _ in pads), dims=axes)
    out = out[(Ellipsis, *(slice(0, size, stride) for size in sizes))]
    return out if bias is None else out + bias.view(1, -1, *([1] * dims))


# ------------------------------------------------------------------------------------------- mixture op
class MixtureConv(nn.Module):
    """Mixture over (k, d) in K x D of convs with the same in/out channels, stride and padding rule."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, kernel_sizes: Sequence[int],
                 dilations: Sequence[int], *, stride: int = 1, causal: bool = False, groups: int = 1,
                 bias: bool = True, temperature: float = 1.0):
        super().__init__()
        if dims not in (1, 2) or (causal and dims != 1):
            raise ValueError(f"MixtureConv supports 1-D (optionally causal) and 2-D, got dims={dims}, causal={causal}")
        self.dims, self.stride, self.causal, self.groups = dims, stride, causal, groups
        self.temperature = temperature
        self.candidates = [(int(k), int(d)) for k in kernel_sizes for d in dilations]  # k-major
        self.receptive_fields = [d * (k - 1) + 1 for k, d in self.candidates]
        self.span = max(self.receptive_fields)
        self.input_padding = side_padding(self.span, causal)
        # Offset of each candidate inside the span so that its output equals its own padded conv.
        self.offsets = [self.input_padding[0] - side_padding(r, causal)[0] for r in self.receptive_fields]
        self.weights = nn.ParameterList(
            nn.Parameter(0.01 * torch.randn(out_channels, in_channels // groups, *([k] * dims)))
            for k, _ in self.candidates)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(self.candidates)))
        # Flat position in the span (row-major) of every tap of every candidate, in w.flatten order:
        # taps d apart starting at the candidate's offset = zero insertion and placement in one index.
        index = []
        for (k, d), offset in zip(self.candidates, self.offsets):
            line = offset + d * torch.arange(k)
            index.append(line if dims == 1 else (line[:, None] * self.span + line[None, :]).flatten())
        self.register_buffer("tap_index", torch.cat(index), persistent=False)

    def mixture_weights(self) -> torch.Tensor:
        log_p = F.log_softmax(self.alpha, dim=-1)
        if not self.training:
            return F.softmax(log_p / self.temperature, dim=-1)
        gumbel = -torch.empty_like(log_p).exponential_().clamp_min(1e-20).log()  # clamp: exp sample of 0
        return F.softmax((log_p + gumbel) / self.temperature, dim=-1)

    def aggregated_kernel(self, mixture_weights: torch.Tensor) -> torch.Tensor:
        """sum_i w_i * (candidate i, zero-dilated, placed in the span): one (out, in/groups, s[, s]) kernel.

        One index_add of all candidates' scaled taps into the flat span: its backward is a gather of
        sum_i k_i^dims entries, where per-candidate slice writes would zero-fill a whole span-sized
        gradient per candidate (the dominant cost at large spans).
        """
        taps = torch.cat([c * w.flatten(2) for c, w in zip(mixture_weights, self.weights)], dim=2)
        kernel = taps.new_zeros(*taps.shape[:2], self.span ** self.dims).index_add(2, self.tap_index, taps)
        return kernel.view(*taps.shape[:2], *([self.span] * self.dims))

    def convolve(self, x: torch.Tensor, mixture_weights: torch.Tensor) -> torch.Tensor:
        return fft_conv(x, self.aggregated_kernel(mixture_weights), self.bias, self.stride,
                        [self.input_padding] * self.dims, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolve(x, self.mixture_weights())

    def extra_repr(self) -> str:
        return (f"dims={self.dims}, candidates={self.candidates}, stride={self.stride}, "
                f"causal={self.causal}, groups={self.groups}")


# ------------------------------------------------------------------------------------------- supernet
def to_supernet(model: nn.Module, kernel_sizes: Sequence[int], dilations: Sequence[int], *,
                depthwise: bool = True, temperature: float = 1.0, keep_causal: bool = False) -> nn.Module:
    """Replace every searchable conv of `model` IN PLACE by a MixtureConv over K x D; returns `model`.

    Order is preserved, so `extract_pattern` lists layers in the backbone's documented pattern order.
    """
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, _SearchableConv)]
    if not targets:
        raise ValueError(f"{type(model).__name__} has no SearchableConv1d/2d to search")
    for name, conv in targets:
        separable = depthwise and conv.in_channels == conv.out_channels
        mixture = MixtureConv(conv.weight.dim() - 2, conv.in_channels, conv.out_channels, kernel_sizes,
                              dilations, stride=conv.stride[0], causal=conv.causal and keep_causal,
                              groups=conv.out_channels if separable else conv.groups,
                              bias=conv.bias is not None, temperature=temperature)
        if conv.bias is not None:
            mixture.bias.data.copy_(conv.bias.data)
        mixture.to(device=conv.weight.device, dtype=conv.weight.dtype)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, mixture)
    return model


def mixture_convs(model: nn.Module) -> list[MixtureConv]:
    return [m for m in model.modules() if isinstance(m, MixtureConv)]


def architecture_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The alpha vector of every mixture layer, in pattern order."""
    return [m.alpha for m in mixture_convs(model)]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that is not an architecture parameter."""
    arch = {id(p) for p in architecture_parameters(model)}
    return [p for p in model.parameters() if id(p) not in arch]


def extract_pattern(supernet: nn.Module) -> Pattern:
    """argmax alpha per mixture layer -> its (kernel_size, dilation), in pattern order."""
    return [m.candidates[int(m.alpha.detach().argmax())] for m in mixture_convs(supernet)]


def normalize_architecture_gradients(model: nn.Module, grad_scale: float | None = 100.0) -> None:
    """Per layer, alpha.grad <- g / (grad_scale (|g| + 1e-8)): a unit-direction, damped step.

    grad_scale None or 0 leaves the gradients as they are (the reference's `if self.grad_scale`).
    """
    if not grad_scale:
        return
    for alpha in architecture_parameters(model):
        if alpha.grad is not None:
            alpha.grad.div_(grad_scale * (alpha.grad.norm() + 1e-8))


def receptive_field_penalty(model: nn.Module, strength: float = 1e-5, forecasting: bool = False) -> None:
    """alpha.grad += strength * r per candidate (r = d(k-1)+1; 10 k when `forecasting`, as the reference
    does for shape-keeping tasks): the gradient of strength * <r, alpha>, added AFTER the normalisation
    so that its size does not depend on the loss gradient's."""
    for mixture in mixture_convs(model):
        if mixture.alpha.grad is None:
            continue
        fields = [10 * k for k, _ in mixture.candidates] if forecasting else mixture.receptive_fields
        mixture.alpha.grad.add_(strength * torch.tensor(fields, dtype=mixture.alpha.dtype,
                                                        device=mixture.alpha.device))


# ------------------------------------------------------------------------------------------- search loop
def _schedule(optimizer_name: str, epochs: int, milestones: Sequence[int], gamma: float,
              warmup_epochs: int) -> Callable[[int], float]:
    """The reference's `weight_sched_search`, called (by LambdaLR) with the 0-based index of the epoch
    about to run: SGD x gamma for every milestone m with epoch > m (the first decay is felt in epoch
    index m + 1); AdamW (UNet-2D) epoch / warmup during the warm-up, so the first epoch runs at lr 0,
    then linear decay reaching 0 at epochs + warmup."""
    if optimizer_name == "sgd":
        return lambda epoch: gamma ** sum(epoch > m for m in milestones)
    return lambda epoch: (epoch / warmup_epochs if epoch < warmup_epochs
                          else max(0.0, (epochs + warmup_epochs - epoch) / epochs))


def search_pattern(build_backbone: Callable[[], nn.Module],
                   batches: Iterable | Callable[[int], Iterable],
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                   kernel_sizes: Sequence[int], dilations: Sequence[int], epochs: int = 100,
                   lr: float = 0.1, arch_lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 5e-4,
                   optimizer: str = "sgd", milestones: Sequence[int] = (30, 60, 80), gamma: float = 0.2,
                   warmup_epochs: int = 5, grad_scale: float | None = 100.0, field_penalty: float = 1e-5,
                   forecasting: bool = False, clip_norm: float | None = 1.0, data_fraction: float = 0.2,
                   depthwise: bool = True, keep_causal: bool = False, temperature: float = 1.0,
                   seed: int = 0, device: str | torch.device = "cpu",
                   on_epoch: Callable[[int, float], None] | None = None) -> Pattern:
    """Train a supernet of `build_backbone()` on the training loss and return its argmax pattern.

    batches: a re-iterable of (x, y) (e.g. a shuffling DataLoader) or a function epoch -> iterable.
    Each epoch uses only the first int(data_fraction * len) + 1 batches when data_fraction < 1 (the
    reference's quick_search = 0.2); the defaults are the reference's 1-D settings (section 5.4 of the
    notes); optimizer="adamw" gives its UNet-2D recipe (use lr 2e-4, arch_lr 1e-4, weight_decay 0.05).
    on_epoch(epoch, mean training loss) runs after every epoch. The caller's RNG state is untouched.
    """
    if optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
    device = torch.device(device)
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)  # the init, the Gumbel noise and nothing else of the caller's
        model = to_supernet(build_backbone(), kernel_sizes, dilations, depthwise=depthwise,
                            temperature=temperature, keep_causal=keep_causal).to(device)
        groups = [(weight_parameters(model), lr), (architecture_parameters(model), arch_lr)]
        if optimizer == "sgd":
            optimizers = [torch.optim.SGD(params, lr=rate, momentum=momentum, nesterov=momentum > 0,
                                          weight_decay=weight_decay) for params, rate in groups]
        else:
            optimizers = [torch.optim.AdamW(params, lr=rate, weight_decay=weight_decay) for params, rate in groups]
        factor = _schedule(optimizer, epochs, milestones, gamma, warmup_epochs)
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]

        for epoch in range(epochs):
            source = batches(epoch) if callable(batches) else batches
            limit = int(data_fraction * len(source)) + 1 if data_fraction < 1 else None
            model.train()
            total, count = 0.0, 0
            for index, (x, y) in enumerate(source):
                if limit is not None and index >= limit:
                    break
                loss = loss_fn(model(x.to(device)), y.to(device))
                for o in optimizers:
                    o.zero_grad(set_to_none=True)
                loss.backward()
                normalize_architecture_gradients(model, grad_scale)
                receptive_field_penalty(model, field_penalty, forecasting)
                if clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                for o in optimizers:
                    o.step()
                total, count = total + loss.item(), count + 1
            for s in schedulers:
                s.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, total / max(count, 1))
    return extract_pattern(model)
