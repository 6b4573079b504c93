"""The SLURM backend at 1,000 jobs on the real local cluster (bash slurm/up.sh), no mocks (issue 14, part 4).

1,000 synthetic trials that each sleep 1 s are submitted at once, as the controller submits a wave
(`SlurmExecutor.submit_many` with every spec, the `TrialJob` a sweep submits), then polled until all
ended, as the controller polls (one `poll` over every live handle, `outcome` for each ended one).
Checked: the test cluster's MaxArraySize=101 chunks them into arrays of at most 101 tasks (what
submitit submitted, and what the scheduler ran), every poll is ONE squeue call (and at most one sacct),
and every outcome is classified -- here all completed. Submission time and time per poll are printed.

Why the executor and not `launcher sweep` here: on a 2-core machine each job is a Python process that
costs ~0.45 CPU-s (submitit's entry point imports numpy and submitit before it unpickles the trial),
so 1,000 jobs alone need ~4 minutes of both cores; the controller's own bookkeeping (MLflow runs,
journal) added ~0.12 CPU-s per trial when this was written, which would push the test past 5 minutes.
tests/test_slurm_trials.py runs real sweeps through the controller on this cluster.

The cluster must let many jobs share a core (slurm/up.sh: JOBS_PER_CORE, the partition's
OverSubscribe=FORCE:N): 1,000 one-second jobs on 2 cores one at a time would take ~15 minutes.
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

import launcher.backends.slurm as slurm
from launcher.backends.slurm import KINDS, ClusterLimits, SlurmExecutor, SlurmResources
from launcher.backends.slurm_resources import run_command
from launcher.job.trial import TrialJob, TrialSpec

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

N_TRIALS = 1000
STUDIES = ("ETTh1-96/a", "ETTh1-96/b", "ETTh1-96/c", "ETTh1-96/d")   # 250 trials each
SLEEP_S = 1.0
MAX_ARRAY = 101                 # the test cluster's MaxArraySize (slurm/up.sh MAX_ARRAY_SIZE)
MIN_SLOTS = 16                  # jobs the cluster must run at once for this to fit in ~5 minutes
DEADLINE_S = 420                # fail (not hang) when the 1,000 have not all ended by then


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


def spec(root: Path, index: int) -> TrialSpec:
    trial_id = f"t{index:04d}"
    return TrialSpec(trial_id=trial_id, study=STUDIES[index % len(STUDIES)], dataset="ETTh1", horizon=96,
                     context=96, method="synthetic", seed=0, trial_dir=str(root / "trials" / trial_id), until_epoch=1,
                     params={"x": (index * 0.618) % 1.0, "y": (index * 0.382) % 1.0, "seed": 0,
                             "seconds_per_epoch": SLEEP_S, "fail_above": None})


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


def test_a_thousand_trials_run_as_chunked_arrays_polled_with_one_squeue_each(cluster, tmp_path, monkeypatch, capsys):
    calls: list[list[str]] = []
    squeue_s: list[float] = []
    real_run_command = slurm.run_command

    def counting_run_command(args, timeout=slurm.COMMAND_TIMEOUT_S):   # instrumentation: every call still runs
        calls.append(list(args))
        t0 = time.monotonic()
        done = real_run_command(args, timeout)
        if args[0] == "squeue":
            squeue_s.append(time.monotonic() - t0)
        return done

    monkeypatch.setattr(slurm, "run_command", counting_run_command)
    # 200M: a trial job peaks near 80 MB; the default (DefMemPerCPU=1024) would cap the cluster at ~20 jobs at once
    executor = SlurmExecutor(tmp_path / "jobs", SlurmResources(time_min=10, mem="200M"), job_fn=TrialJob(),
                             limits=cluster, poll_seconds=2.0)
    specs = [spec(tmp_path, i) for i in range(N_TRIALS)]
    started = time.monotonic()
    handles = executor.submit_many(specs)
    submit_s = time.monotonic() - started

    # --- chunked: arrays of at most MaxArraySize tasks, in order, each indexed from 0
    assert [h.trial_id for h in handles] == [s.trial_id for s in specs]
    arrays = list(dict.fromkeys(h.job_id.split("_")[0] for h in handles))
    sizes = Counter(h.job_id.split("_")[0] for h in handles)
    assert [sizes[a] for a in arrays] == [MAX_ARRAY] * (N_TRIALS // MAX_ARRAY) + [N_TRIALS % MAX_ARRAY], sizes
    assert [h.job_id.split("_")[1] for h in handles[:MAX_ARRAY]] == [str(i) for i in range(MAX_ARRAY)]
    scripts = sorted(executor.folder.glob("*_submission.sh"))   # what submitit handed to sbatch, one per array
    assert len(scripts) == len(arrays)
    for script in scripts:
        last, concurrent = map(int, re.search(r"#SBATCH --array=0-(\d+)%(\d+)", script.read_text()).groups())
        assert last < MAX_ARRAY and concurrent == last + 1, script.name
    assert [c[0] for c in calls].count("squeue") == 0, "submission itself must not poll"

    # --- polled as the controller polls: one poll over every live handle, outcome for those that ended
    outcomes, live, poll_s, polls_made = {}, list(handles), [], []
    while live:
        assert time.monotonic() - started < DEADLINE_S, (
            f"{len(live)} of {N_TRIALS} jobs still live after {DEADLINE_S} s (is the machine busy with other work?)")
        before, t0 = len(calls), time.monotonic()
        ended = executor.poll(live)
        poll_s.append(time.monotonic() - t0)
        made = [c[0] for c in calls[before:]]
        polls_made.append(made)
        assert made.count("squeue") == 1 and made.count("sacct") <= 1 and len(made) <= 2, made
        squeue = calls[before]
        assert len(squeue[squeue.index("-j") + 1].split(",")) <= len(arrays)     # one id per array, never per task
        ended_ids = {h.job_id for h in ended}
        for handle in ended:
            outcomes[handle.trial_id] = executor.outcome(handle)
        live = [h for h in live if h.job_id not in ended_ids]
        if live:
            time.sleep(executor.poll_seconds)
    wall_s = time.monotonic() - started

    # --- every outcome classified; here every one completed with its result
    assert len(outcomes) == N_TRIALS
    kinds = Counter(o.state for o in outcomes.values())
    assert set(kinds) <= set(KINDS), kinds
    assert kinds == {"completed": N_TRIALS}, {k: v for k, v in kinds.items()}
    bad = [(t, o.error) for t, o in outcomes.items() if not o.ok]
    assert not bad, bad[:3]
    for trial in specs[:: N_TRIALS // 10]:
        result = outcomes[trial.trial_id].result
        assert result["trial_id"] == trial.trial_id and result["metrics"]["epoch"] == 1.0
        assert (Path(trial.trial_dir) / "result-e1.json").exists()
    # the scheduler ran exactly these 1,000 tasks, in arrays of at most MaxArraySize, all COMPLETED
    states = scheduler_view(arrays)
    assert sorted(states) == sorted(h.job_id for h in handles)
    assert set(states.values()) == {"COMPLETED"}, Counter(states.values())
    assert max(Counter(j.split("_")[0] for j in states).values()) <= MAX_ARRAY

    # the same poll once every job has ended and the machine is quiet: 1,000 lines from one squeue
    t0 = time.monotonic()
    assert len(executor._squeue(handles)) == N_TRIALS
    quiet_poll_s = time.monotonic() - t0
    cpu = job_cpu_seconds(arrays)
    summary = (f"SLURM scale: {N_TRIALS} trials of {SLEEP_S:.0f} s in {len(arrays)} arrays (MaxArraySize "
               f"{cluster.max_array_size}, {job_slots()} job slots on {os.cpu_count()} CPUs): submitted in "
               f"{submit_s:.2f} s; all ended in {wall_s:.0f} s ({N_TRIALS / wall_s:.1f} jobs/s); {len(poll_s)} polls, "
               f"{sum(poll_s) / len(poll_s):.3f} s mean / {max(poll_s):.3f} s max per poll while jobs ran (squeue "
               f"itself {sum(squeue_s[:len(poll_s)]) / len(poll_s):.3f} s mean; "
               f"{sum(m.count('sacct') for m in polls_made)} sacct in all), {quiet_poll_s:.3f} s for the "
               f"{N_TRIALS}-task squeue once all had ended"
               + (f"; {cpu:.2f} CPU-s per job (sacct TotalCPU)" if cpu is not None else ""))
    with capsys.disabled():
        print("\n" + summary)
