"""HPO efficiency: the default optimizer (launcher.spec.space.DEFAULT_OPTIMIZER) + ASHA vs RandomSearch + ASHA.

Surrogate: REAL DLinear learning curves on ETTh1-96 (context 512), one per point of a grid over the
dlinear search space (launcher.methods.params.method_class("dlinear").default_space), trained once (seed 0, torch 1 thread,
2 processes) and cached in benchmarks/data/dlinear_curves_etth1_96.json. The committed table predates DLinear's
move onto the shared epoch loop (same model, Adam and windows per epoch; another data order); --rebuild trains
with launcher.methods.dlinear.DLinearMethod, as a sweep does. lr and weight_decay use cell-centred log grids (each
grid point owns an equal slice of the log range); batch_size and moving_avg are covered exactly.
A configuration is answered by its nearest grid point in normalized log coordinates.

Simulation (no controller): SearchSpace/parse_domain + make_optimizer + launcher.engine.asha.Asha, asynchronous
with W workers, 1 time unit per epoch; a freed worker resumes a promoted trial first, else asks a new
configuration; segments ending at the same time are ingested before slots refill (as the controller
does); the optimizer is told Asha.fidelity_loss once per stopped/completed trial. Same trial budget for
both arms. Every epoch reports best_val_mse (as the outbox does). Optimizer seeds follow launcher.engine.plan:
sweep seed s -> the tuned arm gets s, the random arm s + 1 (--same-seed gives both s; then nevergrad's
DE draws its initial population exactly as RandomSearch draws its first asks, and the arms differ
only after DE's population of max(30, workers) is filled).
Metric, per seed: epochs consumed (all workers, up to that moment) until the arm first reports a
best_val_mse <= RandomSearch's final best; saving = 1 - E(default) / E(random); median over seeds.

Target (goal G11b): median saving >= 30 %. The surrogate table is committed; --rebuild retrains it
(minutes on 2 cores), so neither mode trains anything by default.

    .venv/bin/python benchmarks/hpo_efficiency.py [--seeds 10] [--trials 40] [--workers 4] [--rebuild]
    .venv/bin/python benchmarks/hpo_efficiency.py --quick    # 3 seeds
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import statistics
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _verdict import print_verdicts, verdict

from launcher.engine.asha import CONTINUE, Asha, AshaConfig
from launcher.methods.registry import method_class
from launcher.spec.space import DEFAULT_OPTIMIZER, SearchSpace, make_optimizer, parse_domain

TABLE = ROOT / "benchmarks" / "data" / "dlinear_curves_etth1_96.json"
TARGET_SAVING = 0.30
EPOCHS, WINDOWS, CONTEXT, HORIZON = 8, 2048, 512, 96
SPACE = SearchSpace(tuple(parse_domain(k, v) for k, v in method_class("dlinear").default_space.items()))


def centred_log_grid(low: float, high: float, n: int) -> list[float]:
    a, b = math.log10(low), math.log10(high)
    return [float(f"{10 ** (a + (b - a) * (i + 0.5) / n):.4g}") for i in range(n)]


def grid() -> dict[str, list]:
    d = {dom.name: dom for dom in SPACE.domains}
    return {"lr": centred_log_grid(d["lr"].low, d["lr"].high, 5),
            "weight_decay": centred_log_grid(d["weight_decay"].low, d["weight_decay"].high, 2),
            "batch_size": list(d["batch_size"].values), "moving_avg": list(d["moving_avg"].values)}


# ----------------------------------------------------------------------------------- building the table
_TASK = None


def _init_worker() -> None:
    global _TASK
    import torch

    from tasks.timeseries import load_forecast_task
    torch.set_num_threads(1)
    _TASK = load_forecast_task("ETTh1", HORIZON, context=CONTEXT)


def _curve(config: tuple) -> dict:
    from launcher.methods.dlinear import DLinearMethod

    lr, wd, bs, kernel = config
    rows: list[dict] = []
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        params = {"lr": lr, "weight_decay": wd, "batch_size": bs, "moving_avg": kernel, "seed": 0,
                  "max_windows_per_epoch": WINDOWS}
        DLinearMethod().run_segment(_TASK, params, Path(tmp), EPOCHS, lambda epoch, m: rows.append(m))
    keys = ("val_mse", "best_val_mse", "test_mse_at_best_val", "test_mae_at_best_val")
    return {"lr": lr, "weight_decay": wd, "batch_size": bs, "moving_avg": kernel,
            **{k: [r[k] for r in rows] for k in keys}, "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu}


def build_table(processes: int) -> dict:
    import multiprocessing as mp
    g = grid()
    configs = list(product(g["lr"], g["weight_decay"], g["batch_size"], g["moving_avg"]))
    print(f"building {TABLE.relative_to(ROOT)}: {len(configs)} configs x {EPOCHS} epochs, "
          f"{processes} processes ...", file=sys.stderr)
    started, curves = time.perf_counter(), []
    with mp.get_context("spawn").Pool(processes, initializer=_init_worker) as pool:
        for i, curve in enumerate(pool.imap_unordered(_curve, configs), 1):
            curves.append(curve)
            if i % 10 == 0 or i == len(configs):
                print(f"  {i}/{len(configs)} configs, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    curves.sort(key=lambda c: (c["lr"], c["weight_decay"], c["batch_size"], c["moving_avg"]))
    table = {"meta": {"task": f"ETTh1-{HORIZON}", "context": CONTEXT, "epochs": EPOCHS, "seed": 0,
                      "max_windows_per_epoch": WINDOWS, "torch_threads": 1, "processes": processes,
                      "build_seconds": round(time.perf_counter() - started, 1),
                      "cpu_seconds": round(sum(c["cpu_seconds"] for c in curves), 1),
                      "built_by": "benchmarks/hpo_efficiency.py",
                      "trainer": "launcher.methods.dlinear.DLinearMethod (shared epoch loop)"},
             "grid": g, "curves": curves}
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(json.dumps(table, indent=1))
    return table


# ----------------------------------------------------------------------------------- the surrogate
class Surrogate:
    def __init__(self, table: dict):
        self.grid = table["grid"]
        self.curves = {(c["lr"], c["weight_decay"], c["batch_size"], c["moving_avg"]): c for c in table["curves"]}
        self.epochs = table["meta"]["epochs"]

    def nearest(self, params: dict) -> tuple:
        def log_nearest(name):   # the grid points are equally spaced in log: per-axis nearest is global nearest
            return min(self.grid[name], key=lambda v: abs(math.log10(v) - math.log10(params[name])))

        return (log_nearest("lr"), log_nearest("weight_decay"), params["batch_size"], params["moving_avg"])

    def curve(self, params: dict) -> dict:
        return self.curves[self.nearest(params)]


def simulate(surrogate: Surrogate, optimizer: str, seed: int, trials: int, workers: int) -> list[tuple]:
    """One sweep; returns the epoch reports (time, best_val_mse, test_mse_at_best_val) in time order."""
    opt = make_optimizer(optimizer, SPACE, budget=trials, num_workers=workers, seed=seed)
    simulate.population = getattr(opt, "llambda", None)   # DE: asks before the first evolved one
    asha = Asha(AshaConfig(eta=2, grace=1, max_epochs=surrogate.epochs, mode="min"))
    state: dict[str, dict] = {}
    events: list[tuple] = []        # (end time, sequence, trial id, until_epoch)
    promoted: list[str] = []
    reports: list[tuple] = []
    asked = seq = 0
    now = 0

    def start(tid: str) -> None:
        nonlocal seq
        s = state[tid]
        target = asha.next_epoch(tid)
        for epoch in range(s["done"] + 1, target + 1):
            c = s["curve"]
            reports.append((now + epoch - s["done"], c["best_val_mse"][epoch - 1], c["test_mse_at_best_val"][epoch - 1]))
        heapq.heappush(events, (now + target - s["done"], seq, tid, target))
        seq += 1

    busy = 0
    while True:
        while busy < workers and (promoted or asked < trials):
            if promoted:
                tid = promoted.pop(0)
            else:
                cand = opt.ask()
                tid = f"t{asked:03d}"
                state[tid] = {"cand": cand, "done": 0, "curve": surrogate.curve(SPACE.sample_to_params(cand.value))}
                asked += 1
            start(tid)
            busy += 1
        if not events:
            break
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, tid, target = heapq.heappop(events)
            busy -= 1
            state[tid]["done"] = target
            decision = asha.report(tid, target, state[tid]["curve"]["best_val_mse"][target - 1])
            if decision == CONTINUE:
                promoted.append(tid)
            else:
                opt.tell(state[tid]["cand"], asha.fidelity_loss(tid))
    reports.sort(key=lambda r: r[0])
    return reports


def epochs_to_reach(reports: list[tuple], target: float) -> int | None:
    hit = next((r[0] for r in reports if r[1] <= target), None)
    return None if hit is None else sum(1 for r in reports if r[0] <= hit)


def best(reports: list[tuple]) -> tuple[float, float]:
    r = min(reports, key=lambda r: r[1])
    return r[1], r[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="default 10 (--quick: 3)")
    parser.add_argument("--quick", action="store_true", help="3 seeds (CI: checks that it runs)")
    parser.add_argument("--optimizer", default=DEFAULT_OPTIMIZER, help="the tuned arm (default: the launcher's default)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2, help="table build only")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--same-seed", action="store_true", help="both arms get the sweep seed (default: +1 for random)")
    args = parser.parse_args()
    args.seeds = args.seeds or (3 if args.quick else 10)
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    table = build_table(args.processes) if args.rebuild or not TABLE.exists() else json.loads(TABLE.read_text())
    sur, meta = Surrogate(table), table["meta"]
    finals = sorted(c["best_val_mse"][-1] for c in table["curves"])
    print(f"surrogate {TABLE.relative_to(ROOT)}: {len(table['curves'])} real DLinear curves on {meta['task']} "
          f"(context {meta['context']}, {meta['epochs']} epochs, max_windows_per_epoch "
          f"{meta['max_windows_per_epoch']}, built in {meta['build_seconds']} s wall"
          + (f", {meta['cpu_seconds']} s CPU over {meta['processes']} processes)" if "cpu_seconds" in meta else ")"))
    print("  grid: " + "; ".join(f"{k} {v}" for k, v in table["grid"].items()))
    print(f"  best_val_mse at epoch {meta['epochs']}: grid best {finals[0]:.4f}, "
          f"median {statistics.median(finals):.4f}, worst {finals[-1]:.4f}")
    print(f"sweeps: {args.trials} trials, ASHA eta 2 grace 1 max_epochs {sur.epochs}, {args.workers} async workers, "
          f"{args.seeds} seeds; arms {args.optimizer} (seed s) vs RandomSearch "
          f"(seed {'s' if args.same_seed else 's + 1, as launcher.engine.plan'})\n")

    header = (f"{'seed':>4} | {'RS best val':>11} {'test@best':>9} {'E_rs':>5} {'epochs':>6} | "
              f"{'OPT best val':>12} {'test@best':>9} {'E_opt':>5} {'epochs':>6} | {'saving':>7}")
    print(header + "\n" + "-" * len(header))
    rows = []
    for seed in range(args.seeds):
        rs = simulate(sur, "RandomSearch", seed + (0 if args.same_seed else 1), args.trials, args.workers)
        opt = simulate(sur, args.optimizer, seed, args.trials, args.workers)
        e_rs, e_opt = epochs_to_reach(rs, best(rs)[0]), epochs_to_reach(opt, best(rs)[0])
        saving = -math.inf if e_opt is None else 1 - e_opt / e_rs
        rows.append({"rs": best(rs), "opt": best(opt), "saving": saving, "epochs_rs": len(rs), "epochs_opt": len(opt)})
        print(f"{seed:>4} | {best(rs)[0]:>11.4f} {best(rs)[1]:>9.4f} {e_rs:>5} {len(rs):>6} | "
              f"{best(opt)[0]:>12.4f} {best(opt)[1]:>9.4f} {e_opt or 'never':>5} "
              f"{len(opt):>6} | {('never' if e_opt is None else f'{saving:+.0%}'):>7}")
    print(f"\nRS = RandomSearch + ASHA, OPT = {args.optimizer} + ASHA; E_rs / E_opt: epochs consumed until RS's "
          "final best val is first matched; epochs: the sweep's total\n")
    print(f"{'arm':<26} {'median best val':>15} {'mean best val':>13} {'median test@best':>16} {'median epochs':>13}")
    for arm, name in (("rs", "RandomSearch + ASHA"), ("opt", f"{args.optimizer} + ASHA")):
        print(f"{name:<26} {statistics.median(r[arm][0] for r in rows):>15.4f} "
              f"{statistics.mean(r[arm][0] for r in rows):>13.4f} {statistics.median(r[arm][1] for r in rows):>16.4f} "
              f"{statistics.median(r['epochs_' + arm] for r in rows):>13.0f}")
    if getattr(simulate, "population", None):
        start = "a Latin hypercube" if args.optimizer.endswith("_LHS") else \
            "random draws (the same draws as RandomSearch with the same seed)"
        print(f"\nnote: {args.optimizer}'s population is {simulate.population}: its first {simulate.population} "
              f"of the {args.trials} asks are {start}; only {max(0, args.trials - simulate.population)} asks are evolved")
    savings = [r["saving"] for r in rows]
    median = statistics.median(savings)
    print(f"\nper seed: OPT faster {sum(x > 0 for x in savings)}, same {sum(x == 0 for x in savings)}, slower "
          f"{sum(-math.inf < x < 0 for x in savings)}, never reached RS's best {sum(x == -math.inf for x in savings)}"
          " (never counts as -inf saving)")
    shown = "-inf (never reached in at least half the seeds)" if median == -math.inf else f"{median:+.1%}"
    print(f"median relative saving of {args.optimizer} over RandomSearch (fewer epochs is positive): {shown}; "
          f"target >= {TARGET_SAVING:.0%}")
    print_verdicts([verdict(f"median_epoch_saving@{args.seeds}_seeds", 100 * median, ">=", 100 * TARGET_SAVING,
                            unit="%", fmt=".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
