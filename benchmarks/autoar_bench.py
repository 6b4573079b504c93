"""Auto-AR on the embedded ETTh1/ETTh2 x 4 horizons: chosen d and p, test MSE/MAE, time, peak memory.

Each setting runs in a fresh subprocess, so the peak RSS is that setting's own. For ETTh1 the table
compares with the authors' Auto-AR (commit 7a177b6, `autoar.py --dataset ETTh1_<H> --new_metric --kpss`)
measured on the same kind of 2-core CPU machine.

Protocols:
  clean      fit on the contiguous train+val rows (our default, `ForecastTask.train_val()`)
  reference  fit on the authors' concatenation train + (val with its 512-row context prefix), which
             repeats the last 512 training rows (`models.autoar.reference_train_val`)

    python benchmarks/autoar_bench.py                     # both protocols, 8 settings
    python benchmarks/autoar_bench.py --quick             # ETTh1-96, both protocols
    python benchmarks/autoar_bench.py --protocol clean --datasets ETTh1 --horizons 96 720

The data is the embedded ETTh1/ETTh2 (tasks/data) unless --data-root says otherwise; a dataset that
cannot be found is reported and left out, and with no ETTh1 setting run the verdicts are SKIPPED.

Targets (last line), over the ETTh1 settings run (the reference numbers exist for ETTh1 only):
  mse_abs_dev_vs_ref_max <= 1 %   reference protocol: our test MSE reproduces the authors' (|ours/ref - 1|)
  speedup_vs_ref_min     >= 1     both protocols: our whole process is faster than the authors' run
  peak_rss_vs_ref_max    <= 1     both protocols: our peak RSS is no larger than the authors'
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, skipped, verdict

# Authors' Auto-AR on real ETTh1: horizon -> (chosen p, test MSE, test MAE, wall seconds, peak RSS GB).
REFERENCE_ETTH1 = {
    96: (507, 0.35736, 0.38834, 204.0, 1.15),
    192: (495, 0.39401, 0.40994, 330.0, 1.26),
    336: (507, 0.40841, 0.42260, 374.0, 1.60),
    720: (507, 0.42247, 0.44816, 680.0, 2.45),
}
TARGET_MSE_DEV, TARGET_SPEEDUP, TARGET_RSS_RATIO = 1.0, 1.0, 1.0   # %, x, x


def run_setting(dataset: str, horizon: int, protocol: str, data_root: str | None) -> dict:
    """Fit and test one setting in this process; timed from before the data is read."""
    started = time.perf_counter()
    from models.autoar import AutoAR, reference_train_val
    from tasks.timeseries import evaluate_forecaster, load_forecast_task

    task = load_forecast_task(dataset, horizon, data_root=data_root)
    fit_series = task.train_val() if protocol == "clean" else reference_train_val(task.train, task.val)
    model = AutoAR(context=task.context).fit(fit_series, horizon)
    scores = evaluate_forecaster(model.forecast, task.test, task.context, horizon)
    return {
        "dataset": dataset, "horizon": horizon, "protocol": protocol, "d": model.d_, "p": model.p_,
        "mse": scores["mse"], "mae": scores["mae"], "n_windows": scores["n_windows"],
        "fit_seconds": model.fit_seconds, "seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_in_subprocess(dataset: str, horizon: int, protocol: str, data_root: str | None) -> dict:
    command = [sys.executable, __file__, "--one", dataset, str(horizon), "--protocol", protocol]
    if data_root:
        command += ["--data-root", data_root]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started  # including interpreter start and imports
    return result


def format_row(r: dict) -> str:
    row = (f"| {r['dataset']}-{r['horizon']} | {r['protocol']} | {r['d']} | {r['p']} | {r['mse']:.5f} | "
           f"{r['mae']:.5f} | {r['seconds']:.1f} | {r['process_seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    reference = REFERENCE_ETTH1.get(r["horizon"]) if r["dataset"] == "ETTh1" else None
    if reference is None:
        return row + " | | | |"
    ref_p, ref_mse, _, ref_seconds, _ = reference
    return row + (f" {ref_p} | {ref_mse:.5f} | {100 * (r['mse'] / ref_mse - 1):+.2f}% | "
                  f"{ref_seconds / r['process_seconds']:.0f}x |")


def missing_dataset(dataset: str, data_root: str | None) -> str | None:
    """Why the dataset cannot be read (its file is in no searched place), or None."""
    from tasks.timeseries_data import DatasetNotFoundError, find_dataset_file

    try:
        find_dataset_file(dataset, data_root)
    except DatasetNotFoundError as exc:
        text = " ".join(str(exc).split())
        return text if len(text) <= 200 else text[:199] + "…"
    return None


def verdicts(results: list[dict]) -> list[str]:
    ref_rows = [r for r in results if r["dataset"] == "ETTh1" and r["horizon"] in REFERENCE_ETTH1]
    names = (("mse_abs_dev_vs_ref_max", "<=", TARGET_MSE_DEV, "%"), ("speedup_vs_ref_min", ">=", TARGET_SPEEDUP, "x"),
             ("peak_rss_vs_ref_max", "<=", TARGET_RSS_RATIO, "x"))
    if not ref_rows:
        return [skipped(name, op, target, "no ETTh1 setting run: the reference numbers are for ETTh1", unit=unit)
                for name, op, target, unit in names]
    items = []
    mse_rows = [r for r in ref_rows if r["protocol"] == "reference"]
    if mse_rows:
        dev = max(abs(100 * (r["mse"] / REFERENCE_ETTH1[r["horizon"]][1] - 1)) for r in mse_rows)
        items.append(verdict("mse_abs_dev_vs_ref_max", dev, "<=", TARGET_MSE_DEV, unit="%", fmt=".2f"))
    else:
        items.append(skipped("mse_abs_dev_vs_ref_max", "<=", TARGET_MSE_DEV, "the reference protocol was not run",
                             unit="%"))
    speedup = min(REFERENCE_ETTH1[r["horizon"]][3] / r["process_seconds"] for r in ref_rows)
    rss = max(r["peak_rss_mb"] / 1024 / REFERENCE_ETTH1[r["horizon"]][4] for r in ref_rows)
    items.append(verdict("speedup_vs_ref_min", speedup, ">=", TARGET_SPEEDUP, unit="x", fmt=".1f"))
    items.append(verdict("peak_rss_vs_ref_max", rss, "<=", TARGET_RSS_RATIO, unit="x", fmt=".2f"))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ETTh1", "ETTh2"])
    parser.add_argument("--horizons", nargs="+", type=int, default=[96, 192, 336, 720])
    parser.add_argument("--protocol", choices=["clean", "reference", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="only ETTh1-96 (CI: checks that it runs)")
    parser.add_argument("--data-root", default=None, help="folder with the dataset files (default: embedded)")
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "HORIZON"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(run_setting(args.one[0], int(args.one[1]), args.protocol, args.data_root)))
        return
    settings = [("ETTh1", 96)] if args.quick else [(d, h) for d in args.datasets for h in args.horizons]
    protocols = ["clean", "reference"] if args.protocol == "both" else [args.protocol]
    print("| setting | protocol | d | p | test MSE | test MAE | fit+eval s | process s | peak RSS MB "
          "| ref p | ref MSE | MSE vs ref | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    results, missing = [], {}
    for dataset, horizon in settings:
        if dataset not in missing:
            missing[dataset] = missing_dataset(dataset, args.data_root)
        if missing[dataset]:
            print(f"| {dataset}-{horizon} | not run: {missing[dataset]} |", flush=True)
            continue
        for protocol in protocols:
            results.append(run_in_subprocess(dataset, horizon, protocol, args.data_root))
            print(format_row(results[-1]), flush=True)
    print("\nspeed-up = reference wall time / our whole-process wall time (interpreter start, imports, "
          "data loading, KPSS, all candidate fits and scores, test evaluation).")
    print_verdicts(verdicts(results))


if __name__ == "__main__":
    main()
