"""Forward + backward time of the DASH aggregated FFT mixture conv vs a naive loop over the candidates.

Both compute the same thing: sum_i w_i conv_{k_i, d_i}(x) over K x D, with gradients to the input, every
candidate's weights and the mixture weights w.
  aggregated  models.dash.MixtureConv.convolve: one zero-dilated kernel, one FFT convolution
  naive       |K||D| calls of F.conv1d / F.conv2d ('same' padding, dilation d), weighted and summed
Printed: the fastest of --repeats interleaved runs of each (after two warm-ups; medians in brackets) and
naive / aggregated (> 1 means the aggregated op is faster), plus the largest difference of their outputs.
Two channel layouts: full convs (groups = 1, the retrain-size layer) and depthwise (groups = channels,
what DASH searches with when in == out).

Shapes: 1-D genomics batch 32 x 64 channels x L = 300 (promoter tasks). 2-D default 16 x 16 x 64 x 64: a
WRN-22-1 search layer on EuroSAT (batch 16, 16 channels, 64 x 64). The issue's 32 x 64 x 64 x 64 runs with
--shape-2d 32 64 64 64 (~8 minutes on 2 CPU cores at --repeats 1: the naive loop needs ~45 s per call).

    .venv/bin/python benchmarks/dash_mixture.py                  # defaults, ~1-2 minutes on 2 cores
    .venv/bin/python benchmarks/dash_mixture.py --repeats 1 --sizes 4 16 25 --shape-2d 32 64 64 64
    .venv/bin/python benchmarks/dash_mixture.py --device cuda --shape-2d 32 64 64 64
    .venv/bin/python benchmarks/dash_mixture.py --quick   # |K||D| 4 and 20, small shapes, 1 repeat: seconds

Targets (last line):
  max_abs_diff <= 1e-5        the two agree (float32) in every setting measured: same computation
  speedup_min_kd16plus >= 1   the aggregated op is at least as fast as the naive loop in every setting
                              with |K||D| >= 16 (the search spaces used: 16 satellite, 20 genomics); the
                              small spaces are printed, not targets. Minimum over layouts and dims.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, verdict

from models.dash import MixtureConv, side_padding

# |K||D| -> (K, D); 16 with D = {1,3,7,15} is the satellite setting, 20 the genomics one.
SEARCH_SPACES = {
    4: ([3, 5], [1, 3]),
    9: ([3, 5, 7], [1, 3, 5]),
    16: ([3, 5, 7, 9], [1, 3, 7, 15]),
    20: ([3, 5, 7, 9, 11], [1, 3, 5, 7]),
    25: ([3, 5, 7, 9, 11], [1, 2, 3, 5, 7]),
}
TARGET_DIFF, TARGET_SPEEDUP, TARGET_MIN_SIZE = 1e-5, 1.0, 16


def naive_mixture(x: torch.Tensor, mixture: MixtureConv, weights: torch.Tensor) -> torch.Tensor:
    conv = F.conv1d if mixture.dims == 1 else F.conv2d
    out = 0
    for w, kernel, (k, d) in zip(weights, mixture.weights, mixture.candidates):
        left, right = side_padding(d * (k - 1) + 1, False)
        padded = F.pad(x, [left, right] * mixture.dims)
        out = out + w * conv(padded, kernel, None, stride=1, dilation=d, groups=mixture.groups)
    return out + mixture.bias.view(1, -1, *([1] * mixture.dims))


def backward_seconds(run, x: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    run(x).square().mean().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def measure(shape: tuple[int, ...], depthwise: bool, size: int, repeats: int, device: torch.device) -> dict:
    kernels, dilations = SEARCH_SPACES[size]
    channels, dims = shape[1], len(shape) - 2
    torch.manual_seed(0)
    mixture = MixtureConv(dims, channels, channels, kernels, dilations,
                          groups=channels if depthwise else 1).to(device)
    x = torch.randn(*shape, device=device, requires_grad=True)
    # Differentiable mixture weights without Gumbel noise, recomputed per call so alpha gets gradients too.
    runs = {"aggregated": lambda inp: mixture.convolve(inp, torch.softmax(mixture.alpha, 0)),
            "naive": lambda inp: naive_mixture(inp, mixture, torch.softmax(mixture.alpha, 0))}
    times = {name: [] for name in runs}
    for attempt in range(2 + repeats):  # 2 warm-ups (allocator, FFT plans, cuDNN algorithm choice)
        for name, run in runs.items():   # interleaved, so that load from other processes hits both alike
            seconds = backward_seconds(run, x, device)
            if attempt >= 2:
                times[name].append(seconds)
    with torch.no_grad():  # the two must agree, or the timing compares different computations
        weights = torch.softmax(mixture.alpha, 0)
        error = (mixture.convolve(x, weights) - naive_mixture(x, mixture, weights)).abs().max().item()
    # The minimum: on a shared machine, the run least disturbed by others is the closest to the op's cost.
    return {"aggregated": min(times["aggregated"]), "naive": min(times["naive"]),
            "aggregated_median": statistics.median(times["aggregated"]),
            "naive_median": statistics.median(times["naive"]), "max_abs_diff": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default all (--quick: 4 20)")
    parser.add_argument("--shape-1d", type=int, nargs=3, default=None, metavar=("B", "C", "L"),
                        help="default 32 64 300 (--quick: 8 16 128)")
    parser.add_argument("--shape-2d", type=int, nargs=4, default=None, metavar=("B", "C", "H", "W"),
                        help="default 16 16 64 64 (--quick: 4 8 32 32)")
    parser.add_argument("--skip-2d", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="small shapes, |K||D| 4 and 20, 1 repeat (CI: checks "
                        "that it runs)")
    args = parser.parse_args()
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 5)
    args.sizes = args.sizes or ([4, 20] if quick else sorted(SEARCH_SPACES))
    args.shape_1d = args.shape_1d or ((8, 16, 128) if quick else (32, 64, 300))
    args.shape_2d = args.shape_2d or ((4, 8, 32, 32) if quick else (16, 16, 64, 64))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shapes = [("1d", tuple(args.shape_1d))]
    if not args.skip_2d:
        shapes.append(("2d", tuple(args.shape_2d)))
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"min (median) of {args.repeats} interleaved runs, forward + backward, seconds")
    print(f"{'dims':4} {'shape':>16} {'layout':9} {'|K||D|':>6} {'span':>5} {'aggregated':>17} "
          f"{'naive':>17} {'naive/agg':>9} {'max|diff|':>9}")
    diffs, speedups = [], []
    for name, shape in shapes:
        for depthwise in (False, True):
            for size in args.sizes:
                kernels, dilations = SEARCH_SPACES[size]
                span = max(dilations) * (max(kernels) - 1) + 1
                result = measure(shape, depthwise, size, args.repeats, device)
                diffs.append(result["max_abs_diff"])
                if size >= TARGET_MIN_SIZE:
                    speedups.append(result["naive"] / result["aggregated"])
                print(f"{name:4} {'x'.join(map(str, shape)):>16} {'depthwise' if depthwise else 'full':9} "
                      f"{size:>6} {span:>5} {result['aggregated']:>8.4f} ({result['aggregated_median']:>6.4f}) "
                      f"{result['naive']:>8.4f} ({result['naive_median']:>6.4f}) "
                      f"{result['naive'] / result['aggregated']:>9.2f} {result['max_abs_diff']:>9.1e}",
                      flush=True)
    verdicts = [verdict("max_abs_diff", max(diffs), "<=", TARGET_DIFF, fmt=".1e")]
    if speedups:
        verdicts.append(verdict(f"speedup_min_kd{TARGET_MIN_SIZE}plus", min(speedups), ">=", TARGET_SPEEDUP, fmt=".2f"))
    else:
        print(f"(no |K||D| >= {TARGET_MIN_SIZE} among --sizes: no speed verdict)")
    print_verdicts(verdicts)


if __name__ == "__main__":
    main()
