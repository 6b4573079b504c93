"""A 1,000-trial sweep on the real local SLURM cluster (bash slurm/up.sh), no mocks (issue 14, part 4).

`launcher.sweep` (the command line's code path, run in this process so it can be watched) with
`executor: slurm` runs four studies of 250 synthetic trials; each trial is one segment that sleeps 1 s.
With `workers: 1000` the controller asks all 1,000 configurations in its first round and submits them
in one wave, which the SLURM backend turns into job arrays. Real parts throughout: slurmctld/slurmd,
submitit, the journal, the tracking-writer process and an SQLite MLflow store in the sweep folder.

Checked, against the sweep:
  - the test cluster's MaxArraySize=101 chunks the wave into arrays of at most 101 tasks (the sbatch
    scripts submitit wrote, and the tasks the scheduler itself ran, all COMPLETED);
  - every poll of the controller is ONE squeue call for all live jobs (one id per array, never per task)
    plus at most one sacct;
  - every outcome is classified: the journal holds 1,000 `segment_done` and no failure, and once the sweep
    has returned MLflow holds 1,000 FINISHED trial runs (the tracking writer caught up).
Printed: submission time (first sbatch to last), time per poll (mean / max), total wall, jobs/s, and
the CPU seconds one job costs (sacct TotalCPU).

The only instrumentation: `launcher.backends.slurm.run_command` and two `SlurmExecutor` methods are
wrapped to record calls and times; every call still runs the real thing.

Budget on a 2-core machine (measured): a job costs ~0.29 CPU-s (sacct TotalCPU; 0.46 before jobs started
through launcher.job.entry, which skips submitit's numpy preload, and before a built-in method was found
without importing every method module and scanning the plugins' entry points); the controller ~16 CPU-s
and its tracking writer ~55 CPU-s (~55 ms of MLflow writes per trial) for the whole sweep. The two CPUs
are saturated while the jobs run, and the writer finishes its MLflow backlog ~45 s after the last job:
~260 s in all. The cluster must let many jobs share a core (slurm/up.sh: JOBS_PER_CORE, the partition's
OverSubscribe=FORCE:N): 1,000 one-second jobs on 2 cores one at a time would take ~15 minutes.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import launcher
import launcher.backends.slurm as slurm
from launcher.backends.slurm import ClusterLimits, SlurmExecutor
from launcher.backends.slurm_resources import run_command
from launcher.jsonl import read_objects

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

N_TRIALS = 1000
STUDY_ROWS = ("a", "b", "c", "d")        # four synthetic rows of 250 trials each
SLEEP_S = 1.0
MAX_ARRAY = 101                 # the test cluster's MaxArraySize (slurm/up.sh MAX_ARRAY_SIZE)
MIN_SLOTS = 16                  # jobs the cluster must run at once for this to fit in ~5 minutes
DEADLINE_S = 480                # stop the sweep (SIGTERM: its jobs are cancelled) and fail, rather than hang


@pytest.fixture(scope="module")
def cluster(slurm_cluster):
    """conftest's slurm_cluster (fails under CI when no cluster answers), plus the two settings this test
    needs from slurm/up.sh; a cluster without them fails with the command that fixes it."""
    limits = ClusterLimits.read()
    fix = "restart the test cluster with its defaults: bash slurm/up.sh"
    assert limits.max_array_size <= MAX_ARRAY, (
        f"MaxArraySize is {limits.max_array_size}; this test needs <= {MAX_ARRAY} to see arrays chunked: {fix}")
    slots = job_slots()
    assert slots >= MIN_SLOTS, (f"the cluster runs only {slots} jobs at once; 1,000 one-second jobs need >= "
                                f"{MIN_SLOTS} (partition OverSubscribe=FORCE:N, slurm/up.sh JOBS_PER_CORE): {fix}")
    return limits


def job_slots() -> int:
    """CPUs of the default partition x the jobs its OverSubscribe lets share one CPU."""
    done = run_command(["scontrol", "show", "partition", "-o"])
    line = next((x for x in done.stdout.splitlines() if "Default=YES" in x), done.stdout)
    cpus = re.search(r"\bTotalCPUs=(\d+)", line)
    share = re.search(r"\bOverSubscribe=(?:FORCE|YES):(\d+)", line)
    return (int(cpus.group(1)) if cpus else 1) * (int(share.group(1)) if share else 1)


def sweep_dict(out: Path) -> dict:
    per_study = N_TRIALS // len(STUDY_ROWS)
    return {
        "name": "slurm_scale",
        "out": str(out),
        "tasks": [{"dataset": "ETTh1", "horizons": [96]}],
        # the default space (x, y in [0, 1]) searched by the default optimizer; one segment of one epoch each
        "methods": {row: {"method": "synthetic", "seconds_per_epoch": SLEEP_S} for row in STUDY_ROWS},
        "search": {"trials": per_study, "scheduler": {"type": "none", "max_epochs": 1}},
        # 200M: a trial job peaks near 80 MB; the default (DefMemPerCPU=1024) would cap the cluster at ~20 jobs at once
        "executor": {"backend": "slurm", "workers": N_TRIALS, "timeout_min": 10, "slurm": {"mem": "200M"}},
    }


def scheduler_view(array_ids: list[str]) -> dict[str, str]:
    """{job id: state} of every task of these arrays, as the scheduler itself reports them (ended jobs stay
    in squeue for MinJobAge=600 s on the test cluster)."""
    done = run_command(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(array_ids), "-o", "%i|%T"], timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(line.split("|", 1) for line in done.stdout.split())


def job_cpu_seconds(array_ids: list[str]) -> float | None:
    """Mean CPU seconds of one job (its batch script, srun and the Python step) from accounting, if kept."""
    done = run_command(["sacct", "-n", "-P", "-j", ",".join(array_ids), "-o", "JobID,TotalCPU"], timeout=60)
    if done.returncode != 0:
        return None
    total, jobs = 0.0, set()
    for line in done.stdout.split():
        job_id, _, cpu = line.partition("|")
        if "." in job_id:                # the steps; the allocation's own line is their sum
            jobs.add(job_id.split(".")[0])
            total += cpu_seconds(cpu)
    return total / len(jobs) if jobs else None


def cpu_seconds(text: str) -> float:
    """sacct's TotalCPU: [D-][HH:]MM:SS[.mmm]."""
    days, _, clock = text.rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = 60 * seconds + float(part or 0)
    return seconds + 86400 * int(days or 0)


def cpu_now() -> tuple[float, float]:
    """CPU seconds so far of this process (the controller) and of its ended children (the tracking writer,
    sbatch, squeue)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


class MachineLoad(threading.Thread):
    """Samples /proc/stat once a second: how busy all the machine's CPUs were in a window of time."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []     # (time.time(), busy jiffies, all jiffies)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with open("/proc/stat") as fh:
                values = [float(v) for v in fh.readline().split()[1:]]
            self.samples.append((time.time(), sum(values) - values[3] - values[4], sum(values)))   # less idle, iowait
            self.done.wait(1.0)

    def busy(self, start: float, end: float) -> float:
        """Fraction of all CPUs busy between start and end (nearest samples)."""
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        first, last = inside[0], inside[-1]
        return (last[1] - first[1]) / max(last[2] - first[2], 1.0)


def test_a_thousand_trial_sweep_runs_as_chunked_arrays_polled_with_one_squeue_each(cluster, tmp_path, monkeypatch,
                                                                                  capsys):
    calls: list[list[str]] = []              # every squeue/sacct/... the backend ran, in order
    polls: list[tuple[float, int, list[str]]] = []   # (seconds, live handles, commands) per controller poll
    arrays: list[tuple[float, float, list[str]]] = []  # (start, end, job ids) per array submitted (time.time())
    executors: list[SlurmExecutor] = []
    real_run_command, real_poll, real_submit_array = slurm.run_command, SlurmExecutor.poll, SlurmExecutor._submit_array

    def counting_run_command(args, timeout=slurm.COMMAND_TIMEOUT_S):
        calls.append(list(args))
        return real_run_command(args, timeout)

    def timed_poll(self, handles):
        before, t0 = len(calls), time.monotonic()
        ended = real_poll(self, handles)
        polls.append((time.monotonic() - t0, len(handles), [c[0] for c in calls[before:]]))
        return ended

    def timed_submit_array(self, resources, specs):
        if self not in executors:
            executors.append(self)
        t0 = time.time()
        handles = real_submit_array(self, resources, specs)
        arrays.append((t0, time.time(), [h.job_id for h in handles]))
        return handles

    monkeypatch.setattr(slurm, "run_command", counting_run_command)
    monkeypatch.setattr(SlurmExecutor, "poll", timed_poll)
    monkeypatch.setattr(SlurmExecutor, "_submit_array", timed_submit_array)

    out = tmp_path / "scale"
    watchdog = threading.Timer(DEADLINE_S, os.kill, (os.getpid(), signal.SIGTERM))   # the sweep stops like Ctrl-C
    load = MachineLoad()
    load.start()
    (own0, children0), started, started_at = cpu_now(), time.monotonic(), time.time()
    watchdog.start()
    try:
        folder = launcher.sweep(sweep_dict(out))
    except KeyboardInterrupt as stopped:     # launcher.stop.Terminated from the watchdog
        pytest.fail(f"the sweep had not ended after {DEADLINE_S} s ({stopped!r}); is the machine busy with other work?")
    finally:
        watchdog.cancel()
        load.done.set()
    wall_s, ended_at = time.monotonic() - started, time.time()
    own, children = cpu_now()
    controller_cpu_s, children_cpu_s = own - own0, children - children0
    assert folder == out

    # --- submitted in one wave, as arrays of at most MaxArraySize tasks, each indexed from 0
    assert len(executors) == 1
    job_ids = [j for *_, ids in arrays for j in ids]
    assert len(job_ids) == N_TRIALS == len(set(job_ids))
    array_ids = [ids[0].split("_")[0] for *_, ids in arrays]
    assert [len(ids) for *_, ids in arrays] == [MAX_ARRAY] * (N_TRIALS // MAX_ARRAY) + [N_TRIALS % MAX_ARRAY]
    for *_, ids in arrays:
        assert {j.split("_")[0] for j in ids} == {ids[0].split("_")[0]}
        assert [j.split("_")[1] for j in ids] == [str(i) for i in range(len(ids))]
    scripts = sorted(executors[0].folder.glob("*_submission.sh"))   # what submitit handed to sbatch, one per array
    assert len(scripts) == len(arrays)
    for script in scripts:
        last, concurrent = map(int, re.search(r"#SBATCH --array=0-(\d+)%(\d+)", script.read_text()).groups())
        assert last < MAX_ARRAY and concurrent == last + 1, script.name
    submit_s = arrays[-1][1] - arrays[0][0]

    # --- every poll of the controller: ONE squeue for all live jobs (one id per array), at most one sacct
    assert polls, "the controller never polled"
    for seconds, live, made in polls:
        assert made.count("squeue") == 1 and made.count("sacct") <= 1 and len(made) <= 2, made
    squeues = [c for c in calls if c[0] == "squeue"]
    assert all(len(c[c.index("-j") + 1].split(",")) <= len(arrays) for c in squeues)
    assert max(live for _, live, _ in polls) == N_TRIALS       # the first poll watched all 1,000 at once

    # --- every outcome classified: the journal has 1,000 completed segments and no failure
    events = list(read_objects(out / "journal.jsonl"))
    kinds = Counter(e["event"] for e in events)
    assert kinds["submitted"] == N_TRIALS and kinds["segment_done"] == N_TRIALS, kinds
    assert kinds["trial_failed"] == 0 and kinds["paused"] == 0, kinds
    submitted = {e["trial_id"]: e["job_id"] for e in events if e["event"] == "submitted"}
    assert sorted(submitted.values()) == sorted(job_ids)
    done = [e for e in events if e["event"] == "segment_done"]
    assert sorted(e["trial_id"] for e in done) == sorted(submitted)
    assert all(e["job_id"] == submitted[e["trial_id"]] and e["until_epoch"] == 1 and e["metrics"]["epoch"] == 1.0
               for e in done)
    assert Counter(e["study"] for e in done) == {f"ETTh1-96/{row}": N_TRIALS // len(STUDY_ROWS) for row in STUDY_ROWS}
    # the scheduler ran exactly these 1,000 tasks, in arrays of at most MaxArraySize, all COMPLETED
    t0 = time.monotonic()
    states = scheduler_view(array_ids)         # the controller's poll command, once every job has ended
    quiet_squeue_s = time.monotonic() - t0
    assert sorted(states) == sorted(job_ids)
    assert set(states.values()) == {"COMPLETED"}, Counter(states.values())
    assert max(Counter(j.split("_")[0] for j in states).values()) <= MAX_ARRAY

    # --- MLflow (the sweep's SQLite store) has caught up: 1,000 FINISHED trial runs, each with its job id
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("slurm_scale")
    runs = client.search_runs([experiment.experiment_id], "tags.`launcher.kind` = 'trial'", max_results=5000)
    assert len(runs) == N_TRIALS
    assert Counter(r.info.status for r in runs) == {"FINISHED": N_TRIALS}
    assert sorted(r.data.tags["launcher.job_id"] for r in runs) == sorted(job_ids)
    assert all("best_val_loss" in r.data.metrics for r in runs)

    cpu = job_cpu_seconds(array_ids)
    poll_s = [s for s, *_ in polls]
    # phases, from the records' own clocks: jobs (first submission to the last segment journalled), MLflow
    # catching up after that (the tracking writer's last record), the rest (report, closing)
    first = arrays[0][0]
    last_segment = max(e["time"] for e in done)
    writer_done = max(e["time"] for e in read_objects(out / "tracking.jsonl"))
    phases = (f"{first - started_at:.0f} s to the first submission, jobs {last_segment - first:.0f} s (CPUs "
              f"{load.busy(first, last_segment):.0%} busy), MLflow caught up {max(0.0, writer_done - last_segment):.0f} s "
              f"later (CPUs {load.busy(last_segment, writer_done):.0%} busy), {ended_at - max(writer_done, last_segment):.0f} "
              f"s to return")
    summary = (f"SLURM scale sweep: {N_TRIALS} trials of {SLEEP_S:.0f} s in {len(arrays)} arrays (MaxArraySize "
               f"{cluster.max_array_size}, {job_slots()} job slots on {os.cpu_count()} CPUs): submitted in "
               f"{submit_s:.2f} s (first sbatch to last); {len(polls)} polls, {sum(poll_s) / len(poll_s):.3f} s mean / "
               f"{max(poll_s):.3f} s max ({sum(m.count('sacct') for *_, m in polls)} sacct in all; {quiet_squeue_s:.3f} s for the "
               f"{N_TRIALS}-task squeue once all had ended); sweep wall "
               f"{wall_s:.0f} s ({phases}; {N_TRIALS / wall_s:.1f} jobs/s); controller {controller_cpu_s:.0f} CPU-s, its "
               f"children (tracking writer, sbatch, squeue) {children_cpu_s:.0f} CPU-s"
               + (f"; {cpu:.2f} CPU-s per job (sacct TotalCPU)" if cpu is not None else ""))
    with capsys.disabled():
        print("\n" + summary)
