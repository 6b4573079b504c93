"""Command line: `python -m launcher sweep FILE`, `python -m launcher report DIR`.

Bad input (a malformed sweep file, a missing dataset) prints one message and exits with code 2,
before anything is written or submitted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SpecError

EXIT_BAD_INPUT = 2

DESCRIPTION = """\
launcher: does this specialized foundation model beat a well-tuned supervised baseline on my
tasks, and at what cost? One YAML file names tasks and methods; the launcher runs every
(task, method) pair as trials, records every run in MLflow, and prints the comparison table."""


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .config import load_sweep

    overrides = {}
    if args.out:
        overrides["out"] = args.out
    if args.backend:
        overrides["executor.backend"] = args.backend
    if args.workers:
        overrides["executor.workers"] = args.workers
    spec = load_sweep(args.file, overrides=overrides or None)
    from .controller import Controller, check_data, describe_plan

    check_data(spec)
    if args.dry_run:
        print(describe_plan(spec))
        print("\n(dry run: nothing written, nothing submitted)")
        return 0
    print(f"sweep {spec.name}: results in {spec.out}", file=sys.stderr)
    summary = Controller(spec).run()
    from .report import write_report

    print(write_report(Path(spec.out)))
    print(f"{summary['done']} of {summary['trials']} trials finished, {summary['failed']} failed. "
          f"Report: {Path(spec.out) / 'report.md'}; MLflow: "
          f"mlflow ui --backend-store-uri {spec.tracking.uri or 'sqlite:///' + str(Path(spec.out).resolve() / 'mlflow.db')}",
          file=sys.stderr)
    return 0 if summary["failed"] == 0 else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(Path(args.dir)))
    return 0


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
    sweep.add_argument("--dry-run", action="store_true", help="print the planned trials; write and submit nothing")
    sweep.add_argument("--backend", choices=("inline", "local"),
                       help="override executor.backend: inline (in this process) or local (one process per trial)")
    sweep.add_argument("--workers", type=int, help="override executor.workers (trials running at once)")
    sweep.set_defaults(func=_cmd_sweep)

    report = sub.add_parser("report", help="print and write the comparison table of a sweep folder",
                            description="Read DIR's MLflow store and print the comparison table; also writes "
                                        "DIR/report.md and DIR/report.csv. Missing or failed cells are marked.")
    report.add_argument("dir", help="a sweep output folder")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are kept; run the same command again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
