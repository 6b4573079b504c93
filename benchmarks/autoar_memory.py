"""Auto-AR memory and time at Traffic's shape: 862 channels x 17,544 hourly rows, AR(512).

The authors' code materializes the lag matrix (about 12 M rows x 513 columns, ~50 GB in float64 at
this shape); ours streams it into a Gram matrix. The series is synthetic (each channel an AR(2) plus
noise with its own coefficients), z-scored with training statistics and split 70/10/20 as Traffic is.
The model is fixed to d = 0 and p = 512 (the largest Auto-AR model for a 512-row context; `--search`
runs the full search instead); fitting includes the BIC scoring over every train+val window, then the
test split is evaluated.

    python benchmarks/autoar_memory.py                    # horizon 96
    python benchmarks/autoar_memory.py --horizon 720
    python benchmarks/autoar_memory.py --via-csv          # write a traffic.csv and load it the normal way
    python benchmarks/autoar_memory.py --search --horizon 720
    python benchmarks/autoar_memory.py --quick            # 64 channels x 4,000 rows: same code, seconds

Target: peak RSS < 2048 MB (at Traffic's shape; --quick and --channels/--rows measure a smaller shape,
so its verdict only shows that the script runs).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, verdict

from models.autoar import AutoAR
from tasks.timeseries import evaluate_forecaster, load_forecast_task, split_sizes

N_ROWS, N_CHANNELS, CONTEXT = 17_544, 862, 512   # Traffic's shape (the defaults)
TARGET_MB = 2048


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def synthetic_traffic(n_rows: int, n_channels: int, seed: int = 0) -> np.ndarray:
    """(n_rows, n_channels) AR(2) + noise, one coefficient pair and level per channel; built in place."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.3, 0.7, n_channels)
    second = rng.uniform(-0.3, 0.2, n_channels)
    level = rng.uniform(0.0, 5.0, n_channels)
    series = rng.standard_normal((n_rows, n_channels))  # the noise, overwritten row by row
    for t in range(2, n_rows):
        series[t] += first * series[t - 1] + second * series[t - 2]
    series += level
    return series


def task_arrays(horizon: int, via_csv: bool, n_rows: int = N_ROWS,
                n_channels: int = N_CHANNELS) -> tuple[np.ndarray, np.ndarray]:
    """(train_val, test with its context prefix), z-scored with training statistics."""
    raw = synthetic_traffic(n_rows, n_channels)
    if via_csv:
        with tempfile.TemporaryDirectory() as folder:
            import pandas as pd

            path = Path(folder) / "traffic.csv"
            frame = pd.DataFrame(raw, columns=[str(c) for c in range(n_channels)])
            frame.insert(0, "date", pd.date_range("2016-07-01", periods=n_rows, freq="h").astype(str))
            frame.to_csv(path, index=False)
            del frame, raw
            task = load_forecast_task("traffic", horizon, path=path)
            return task.train_val(), task.test
    n_train, n_val, _ = split_sizes("ratio", n_rows)
    raw -= raw[:n_train].mean(axis=0)
    raw /= raw[:n_train].std(axis=0)
    return raw[: n_train + n_val], raw[n_train + n_val - CONTEXT:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--via-csv", action="store_true", help="go through a CSV file and load_forecast_task")
    parser.add_argument("--search", action="store_true",
                        help="full Auto-AR search (KPSS for d, 5 lag candidates) instead of d = 0, p = 512")
    parser.add_argument("--channels", type=int, default=None, help=f"default {N_CHANNELS} (--quick: 64)")
    parser.add_argument("--rows", type=int, default=None, help=f"default {N_ROWS} (--quick: 4000)")
    parser.add_argument("--quick", action="store_true", help="64 channels x 4,000 rows (CI: checks that it runs)")
    args = parser.parse_args()
    channels = args.channels or (64 if args.quick else N_CHANNELS)
    rows = args.rows or (4000 if args.quick else N_ROWS)
    print(f"shape: {rows} rows x {channels} channels" + (" (Traffic's)" if (rows, channels) == (N_ROWS, N_CHANNELS)
                                                        else " (smaller than Traffic's)"))

    started = time.perf_counter()
    train_val, test = task_arrays(args.horizon, args.via_csv, rows, channels)
    data_seconds = time.perf_counter() - started
    print(f"data: train_val {train_val.shape}, test {test.shape}, {data_seconds:.1f} s, "
          f"RSS now {current_rss_mb():.0f} MB, peak so far {peak_rss_mb():.0f} MB")

    model = AutoAR(context=CONTEXT) if args.search else AutoAR(context=CONTEXT, lags=[512], d=0)
    model.fit(train_val, args.horizon)
    print(f"fit (d = {model.d_}, candidates {sorted(model.scores_)}, chosen p = {model.p_}; BIC scoring over "
          f"{train_val.shape[0] - CONTEXT - args.horizon + 1} windows x {channels} channels): "
          f"{model.fit_seconds:.1f} s, peak RSS {peak_rss_mb():.0f} MB")

    evaluated = time.perf_counter()
    scores = evaluate_forecaster(model.forecast, test, CONTEXT, args.horizon)
    eval_seconds = time.perf_counter() - evaluated
    print(f"test ({scores['n_windows']} windows x {channels} channels, horizon {args.horizon}): "
          f"MSE {scores['mse']:.4f} MAE {scores['mae']:.4f}, {eval_seconds:.1f} s")
    peak = peak_rss_mb()
    print(f"total {time.perf_counter() - started:.1f} s, peak RSS {peak:.0f} MB (target < {TARGET_MB} MB)")
    print_verdicts([verdict(f"peak_rss@{channels}x{rows}_h{args.horizon}", peak, "<", TARGET_MB, unit="MB", fmt=".0f")])


if __name__ == "__main__":
    main()
