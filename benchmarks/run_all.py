"""Run every benchmark and write the table of their verdicts (`make bench` runs this).

Each script in benchmarks/ (except this one and the _-prefixed helpers) runs in its own process, one
after the other; its output streams to this terminal, and its last line is parsed as a verdict line
(benchmarks/_verdict.py). The table (benchmark, metric, value, target, verdict, seconds) goes to
benchmarks/results.md with the date and a machine summary. Timings depend on the machine and on what
else runs on it: the load average at the start is recorded next to the table.

    .venv/bin/python benchmarks/run_all.py                          # full mode -> benchmarks/results.md
    .venv/bin/python benchmarks/run_all.py --quick --out /tmp/q.md  # quick modes (what CI runs)
    .venv/bin/python benchmarks/run_all.py --only status_speed sweep_slots

Exit status: 1 when a benchmark crashed, timed out, or did not end with a verdict line; a MISSED target
is a result, not an error.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _verdict import parse_verdicts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.md"


def benchmark_scripts() -> list[Path]:
    """Every benchmark script: benchmarks/*.py but this runner, the _-prefixed helpers and the make_*
    scripts that build the cached learning-curve tables in data/ (they train; they measure nothing)."""
    return sorted(p for p in HERE.glob("*.py")
                  if not p.name.startswith(("_", "make_")) and p.name != Path(__file__).name)


def machine_summary() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    ram = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    gpu = "none (no nvidia-smi)"
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True)
        gpu = "; ".join(done.stdout.split("\n")[:4]).strip("; ") or "none (nvidia-smi lists none)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"CPU": cpu, "cores": str(os.cpu_count()), "RAM": ram, "GPU": gpu,
            "Python": platform.python_version(), "torch": torch, "OS": platform.platform(),
            "load average at start (1, 5, 15 min)": load}


def run_one(script: Path, quick: bool, timeout: float) -> dict:
    """Run one benchmark, echoing its output; returns its verdicts or the reason it has none."""
    command = [sys.executable, str(script)] + (["--quick"] if quick else [])
    started = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        try:
            for line in process.stdout:
                print(f"  {line}", end="", flush=True)
                lines.append(line.rstrip("\n"))
                if time.perf_counter() - started > timeout:
                    raise subprocess.TimeoutExpired(command, timeout)
            process.wait(timeout=max(1.0, timeout - (time.perf_counter() - started)))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return {"seconds": time.perf_counter() - started, "error": f"timed out after {timeout:.0f} s"}
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        tail = next((line for line in reversed(lines) if line.strip()), "")
        return {"seconds": seconds, "error": f"exit {process.returncode}: {tail[:200]}"}
    last = next((line for line in reversed(lines) if line.strip()), "")
    try:
        return {"seconds": seconds, "verdicts": parse_verdicts(last)}
    except ValueError:
        return {"seconds": seconds, "error": f"no verdict line (last line: {last[:200]!r})"}


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def write_table(path: Path, results: dict[str, dict], quick: bool, machine: dict[str, str], started: str) -> None:
    counts: dict[str, int] = {}
    rows = []
    for name, r in results.items():
        if "error" in r:
            counts["ERROR"] = counts.get("ERROR", 0) + 1
            rows.append(f"| {name} | | | | ERROR: {cell(r['error'])} | {r['seconds']:.0f} |")
            continue
        for i, v in enumerate(r["verdicts"]):
            counts[v["status"]] = counts.get(v["status"], 0) + 1
            status = v["status"] + (f" ({cell(v['reason'])})" if v.get("reason") else "")
            seconds = f"{r['seconds']:.0f}" if i == 0 else ""
            rows.append(f"| {name if i == 0 else ''} | {cell(v['metric'])} | {cell(v['value'])} | "
                        f"{v['op']} {cell(v['target'])} | {status} | {seconds} |")
    summary = ", ".join(f"{counts[k]} {k}" for k in ("MET", "MISSED", "SKIPPED", "ERROR") if k in counts)
    mode = "quick (`--quick`)" if quick else "full"
    text = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py` (`make bench`) on {started}; mode: {mode}; {summary}.",
        "What each metric measures, and why the targets are what they are: benchmarks/README.md and each",
        "script's docstring. Timings are from one run on the machine below, often shared with other work:",
        "read them as noisy.",
        "",
        "| benchmark | metric | value | target | verdict | seconds |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in machine.items()],
        "",
    ]
    path.write_text("\n".join(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's --quick mode")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benchmarks (file stems) only")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"table file (default {RESULTS.relative_to(ROOT)} in full mode, none with --quick)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark (default 3600)")
    args = parser.parse_args()
    scripts = benchmark_scripts()
    if args.only:
        unknown = set(args.only) - {p.stem for p in scripts}
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: "
                         + ", ".join(p.stem for p in scripts))
        scripts = [p for p in scripts if p.stem in args.only]
    out = args.out or (None if args.quick else RESULTS)
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    machine = machine_summary()
    results: dict[str, dict] = {}
    for script in scripts:
        print(f"== {script.stem}{' --quick' if args.quick else ''}", flush=True)
        results[script.stem] = run_one(script, args.quick, args.timeout)
        r = results[script.stem]
        print(f"== {script.stem}: {r['seconds']:.1f} s, "
              + (r["error"] if "error" in r else ", ".join(f"{v['metric']} {v['status']}" for v in r["verdicts"])),
              flush=True)
    print("\nsummary:")
    for name, r in results.items():
        print(f"  {name:<22} {r['seconds']:7.1f} s  "
              + ("ERROR " + r["error"] if "error" in r else
                 "; ".join(f"{v['metric']} = {v['value']}: {v['status']}" for v in r["verdicts"])))
    if out is not None:
        write_table(out, results, args.quick, machine, started)
        print(f"table written to {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
