"""Command line: `sweep FILE`, `resume DIR`, `status DIR`, `report DIR` (python -m launcher ...).

Bad input (a malformed sweep file, a missing dataset) prints one message and exits with code 2,
before anything is written or submitted.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from launcher import stop
from launcher.errors import SpecError

EXIT_BAD_INPUT = 2
EXIT_TRIALS_FAILED = 1
EXIT_PAUSED = 3

DESCRIPTION = """\
launcher: does this specialized foundation model beat a well-tuned supervised baseline on my
tasks, and at what cost? One YAML file names tasks and methods; the launcher runs every
(task, method) pair as trials, records every run in MLflow, and prints the comparison table."""


def _overrides(args: argparse.Namespace) -> dict | None:
    """Command-line flags as dotted spec keys; they are validated like the file itself."""
    flags = {"out": getattr(args, "out", None), "executor.backend": args.backend, "executor.workers": args.workers}
    return {key: value for key, value in flags.items() if value is not None} or None


def _cmd_sweep(args: argparse.Namespace) -> int:
    from launcher.spec.load import load_sweep

    return _run(load_sweep(args.file, overrides=_overrides(args)), dry_run=args.dry_run,
                epoch_minutes=args.epoch_minutes, calibrate=args.calibrate)


def _cmd_resume(args: argparse.Namespace) -> int:
    from launcher.api import resume_folder

    return _exit_code(resume_folder(args.dir, overrides=_overrides(args), retry_failed=args.retry_failed))


def _cmd_repair(args: argparse.Namespace) -> int:
    from launcher.engine.controller import Controller
    from launcher.engine.lock import sweep_lock
    from launcher.report import write_report
    from launcher.spec.load import load_recorded_sweep, read_record

    folder = Path(args.dir)
    read_record(folder)
    with sweep_lock(folder):
        summary = Controller(load_recorded_sweep(folder)).repair()
    print(f"MLflow store rebuilt from {folder / 'journal.jsonl'}: {summary['runs_created']} runs created, "
          f"{summary['runs_kept']} kept", file=sys.stderr)
    if summary["finished"]:
        print(write_report(folder))
    return 0


def _run(spec, *, dry_run: bool, epoch_minutes: float = 5.0, calibrate: bool = False) -> int:
    from launcher.api import run_spec

    return _exit_code(run_spec(spec, dry_run=dry_run, epoch_minutes=epoch_minutes, calibrate=calibrate))


def _exit_code(outcome) -> int:
    """0: every trial finished (or a dry run); 1: some failed; 3: the sweep paused."""
    if outcome.summary is None:
        return 0
    if outcome.summary["paused"]:
        return EXIT_PAUSED
    return 0 if outcome.summary["failed"] == 0 else EXIT_TRIALS_FAILED


def _cmd_doctor(args: argparse.Namespace) -> int:
    from launcher.backends.doctor import run_doctor

    return run_doctor()


def _cmd_status(args: argparse.Namespace) -> int:
    from launcher.api import sweep_status
    from launcher.engine.progress import render_status

    print(render_status(sweep_status(args.dir)))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from launcher.api import report

    print(report(args.dirs, references=args.reference or (), baseline=args.baseline, metric=args.metric))
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from launcher.ui import serve_until_signal, start_ui, stop_signals_interrupt

    try:
        # SIGTERM / SIGHUP act as Ctrl-C: the server (its own process group) never outlives this process.
        with stop_signals_interrupt():
            server, url = start_ui(Path(args.dir), host=args.host, port=args.port)
            serve_until_signal(server, announce=f"MLflow UI for {args.dir}: {url}\n(Ctrl-C to stop)")
    except RuntimeError as err:      # the server would not start: say why, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:        # stopped while it was starting (start_ui stopped the server)
        return 130
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from launcher.catalog import describe_methods
    from launcher.methods.registry import PluginError, method_names

    try:
        unknown = [n for n in args.names if n not in method_names() and ":" not in n]
        if unknown:
            raise SpecError(f"unknown method {unknown[0]!r}", hint=f"known: {', '.join(method_names())}")
        print(describe_methods(args.names or None, verbose=args.verbose))
    except PluginError as err:          # a plugin package that does not load: say which, no traceback
        raise SpecError(str(err), hint="fix or uninstall that package") from None
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from launcher.catalog import describe_tasks
    from tasks.plugins import TaskPluginError

    try:
        print(describe_tasks(args.domain))
    except TaskPluginError as err:
        raise SpecError(str(err), hint="fix or uninstall that package") from None
    return 0


def _epoch_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not 0 < value <= 10**6:     # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be > 0 and at most 1000000, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sweep = sub.add_parser(
        "sweep", help="run a sweep file (tasks x methods), then print the comparison table",
        description="Validate FILE, run every trial it names (skipping those already finished in the output "
                    "folder), log them to MLflow and print the comparison table. Exit 2 on bad input.")
    sweep.add_argument("file", help="sweep YAML, e.g. sweeps/timeseries.yaml")
    sweep.add_argument("--out", help="output folder (default: the file's `out`, else runs/<name>)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the planned studies, resources per trial, job-array chunking, the sbatch "
                            "script(s), the job time limit, and GPU-hours: an upper bound and the expected "
                            "figure (ASHA's expected epochs per study x its time per epoch); write and submit nothing")
    sweep.add_argument("--epoch-minutes", type=_epoch_minutes, default=5.0,
                       help="assumed minutes per training epoch for the --dry-run GPU-hours, for the method rows "
                            "without `epoch_minutes:` (default 5)")
    sweep.add_argument("--calibrate", action="store_true",
                       help="with --dry-run: run one short segment of each (task, method) on THIS machine (1 epoch; "
                            "a one-shot method's one fit) in a temporary folder, and use its wall time as that "
                            "study's epoch time (a GPU cluster's differs)")
    sweep.add_argument("--backend", choices=("inline", "local", "slurm"),
                       help="override executor.backend: inline (in this process), local (one process per trial) "
                            "or slurm (one job per trial; resources from executor.slurm)")
    sweep.add_argument("--workers", type=int, help="override executor.workers (trials running at once)")
    sweep.set_defaults(func=_cmd_sweep)

    resume = sub.add_parser("resume", help="continue a sweep from its folder (after a crash, kill or pause)",
                            description="Replay DIR/journal.jsonl (optimizers, ASHA rungs, finished and running "
                                        "trials) and continue the sweep recorded in DIR/sweep.json. Segments that "
                                        "completed are never run again.")
    resume.add_argument("dir", help="a sweep output folder")
    resume.add_argument("--backend", choices=("inline", "local", "slurm"), help="override executor.backend")
    resume.add_argument("--workers", type=int, help="override executor.workers")
    resume.add_argument("--retry-failed", action="store_true",
                        help="run the trials that failed again (after fixing their cause: data, code); "
                             "their MLflow runs are reused")
    resume.set_defaults(func=_cmd_resume)

    repair = sub.add_parser("repair", help="rebuild a sweep's MLflow runs from its journal (e.g. a deleted mlflow.db)",
                            description="The journal and the trial folders hold every result: recreate the "
                                        "runs MLflow lost (sweep, studies, trials with their curves, final "
                                        "metrics and artifacts), then rewrite the report if the sweep had "
                                        "finished. Runs nothing. `resume` does the same before it continues.")
    repair.add_argument("dir", help="a sweep output folder")
    repair.set_defaults(func=_cmd_repair)

    doctor = sub.add_parser("doctor", help="check that this machine can submit to a SLURM cluster",
                            description="sbatch/squeue/sacct/scontrol reachable; accounting (sacct) present; "
                                        "whether preempted jobs get USR2 first (preempt_send_user_signal), without "
                                        "which preemption cannot checkpoint; MaxArraySize and MaxSubmitJobs; "
                                        "partitions with their time limits and GPUs. Exit 0: usable, 2: not.")
    doctor.set_defaults(func=_cmd_doctor)

    status = sub.add_parser("status", help="progress of a sweep, from its journal alone (fast, no scheduler query)",
                            description="Counts by state, best validation value per study, ASHA rung occupancy, "
                                        "elapsed time and ETA, read from DIR/journal.jsonl.")
    status.add_argument("dir", help="a sweep output folder")
    status.set_defaults(func=_cmd_status)

    ui = sub.add_parser("ui", help="start the MLflow UI on a sweep's store and print its address",
                        description="Serve DIR's MLflow store (one worker) and print the URL of the sweep's "
                                    "experiment: study runs with their trial runs as children, params, tags, "
                                    "metric curves. Ctrl-C stops it.")
    ui.add_argument("dir", nargs="?", default=".", help="a sweep output folder (default: the current folder)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    ui.set_defaults(func=_cmd_ui)

    report = sub.add_parser("report", help="print and write the comparison table of one or more sweep folders",
                            description="Read each DIR's MLflow store and print the comparison table (rows = tasks, "
                                        "columns = methods; mean and 95% interval over seeds; average score, rank, "
                                        "% improvement over a baseline, parameters, CPU/GPU-hours). Writes "
                                        "report.md, report.csv, report.html and the figures (PNG) into the first "
                                        "DIR. Missing, failed and pending cells are marked, never dropped.")
    report.add_argument("dirs", nargs="+", metavar="DIR", help="sweep output folder(s); several: their union")
    report.add_argument("--reference", nargs="+", action="extend", metavar="FILE",
                        help="published numbers to show beside the runs (after the DIRs), e.g. "
                             "sweeps/reference/patchtst_nie2023.yaml; `all`: every file in sweeps/reference/ "
                             "with at least one task of this report")
    report.add_argument("--baseline", metavar="METHOD",
                        help="column for %% improvement (default: the sweep's report.baseline, else auto_arima, "
                             "else naive)")
    report.add_argument("--metric", choices=("literature", "mcc", "f1", "accuracy"), default="literature",
                        help="genomics and satellite cells: each task's literature metric (default), or MCC, F1 or "
                             "accuracy for every task (the trials record all three at the validation-selected epoch)")
    report.set_defaults(func=_cmd_report)

    methods = sub.add_parser("methods", help="list the methods a sweep can name (built-in and plugins), with "
                                             "their domains and parameters",
                             description="Every method this installation can run: built-in ones, those installed "
                                         "packages register (entry points `launcher.methods`), each with its kind, "
                                         "task domains, whether it is tuned, and its parameters with defaults.")
    methods.add_argument("names", nargs="*", metavar="NAME", help="only these methods (default: all)")
    methods.add_argument("-v", "--verbose", action="store_true", help="full parameter help texts")
    methods.set_defaults(func=_cmd_methods)

    tasks = sub.add_parser("tasks", help="list the task names a sweep can name, by domain (built-in and plugins)",
                           description="Every task name this installation knows, by domain: the built-in "
                                       "benchmarks and those installed packages register (entry points "
                                       "`launcher.tasks`).")
    tasks.add_argument("--domain", choices=("forecasting", "genomics", "satellite"), help="only this domain")
    tasks.set_defaults(func=_cmd_tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    previous = stop.install()
    try:
        return args.func(args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except stop.Terminated as by:
        print(f"\nstopped by {by}: finished trials are kept; run the same command again (or `python -m launcher "
              "resume DIR`) to continue", file=sys.stderr)
        return 128 + int(getattr(signal, str(by), signal.SIGTERM))
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are kept; run the same command again to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:            # `launcher methods | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:
        if not stop.requested():
            raise
        # a stop that landed inside library code and came out as another error: still the stop
        by = stop.requested_signal()
        print(f"\nstopped by {by}: finished trials are kept; run the same command again to continue", file=sys.stderr)
        return 128 + int(getattr(signal, by, signal.SIGTERM))
    finally:
        stop.uninstall(previous)


if __name__ == "__main__":
    sys.exit(main())
