"""The `slurm` backend against a real SLURM cluster (bash slurm/up.sh), no mocks.

Cluster tests are marked slow + slurm. Without a cluster they skip, unless CI is set: then a missing
cluster is a failure (CI brings one up). The failure taxonomy is exercised with real jobs: a trial
that raises, a cancelled job, a job over its memory limit, and two ways of running out of time
(submitit's USR2 before the limit, and a job that ignores it until SLURM kills it at the limit).
They are submitted together by one fixture so that their waits overlap.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

import launcher.backends.slurm as slurm
from launcher.backends.slurm import (
    ClusterLimits,
    SlurmExecutor,
    SlurmResources,
    classify_state,
    parse_config,
    plan_arrays,
    render_sbatch,
)
from launcher.job.trial import TrialSpec, run_trial

# The job functions below run inside SLURM jobs, which cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLUSTER_MARKS = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def cluster(slurm_cluster):
    """Alias of conftest's slurm_cluster for this module's tests."""


def synthetic_spec(root: Path, trial_id: str, x: float = 0.3, seconds_per_epoch: float = 0.0,
                   fail_above: float | None = None) -> TrialSpec:
    return TrialSpec(trial_id=trial_id, study="ETTh1-96/synthetic", dataset="ETTh1", horizon=96, context=96,
                     method="synthetic", seed=0, trial_dir=str(root / "trials" / trial_id), until_epoch=2,
                     params={"x": x, "y": 0.7, "seed": 0, "seconds_per_epoch": seconds_per_epoch,
                             "fail_above": fail_above})


def wait_all(executor: SlurmExecutor, handles: list, timeout_s: float = 200.0) -> dict:
    """Poll until every handle ended; returns {job_id: Outcome}."""
    outcomes, live, deadline = {}, list(handles), time.time() + timeout_s
    while live:
        assert time.time() < deadline, f"jobs still running after {timeout_s} s: {[h.job_id for h in live]}"
        for handle in executor.poll(live):
            outcomes[handle.job_id] = executor.outcome(handle)
            live.remove(handle)
        time.sleep(executor.poll_seconds)
    return outcomes


def allocate_too_much(spec: TrialSpec) -> dict:
    blocks = [bytearray(50 * 2**20) for _ in range(40)]   # 2 GB against --mem=300M
    return {"blocks": len(blocks)}


def ignore_usr2_and_sleep(spec: TrialSpec) -> dict:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)          # never checkpoints: SLURM kills it at the limit
    time.sleep(600)
    return {}


# ------------------------------------------------------------------------------ pure (no cluster)
def test_plan_arrays_respects_max_array_size_and_submit_limit():
    assert plan_arrays(2500, ClusterLimits(max_array_size=1001)) == [1001, 1001, 498]
    assert plan_arrays(5, ClusterLimits(max_array_size=1001), max_array_size=2) == [2, 2, 1]
    assert plan_arrays(7, ClusterLimits(max_array_size=1001, max_submit_jobs=3)) == [3, 3, 1]
    assert plan_arrays(0, ClusterLimits()) == []


def test_resources_from_dict_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown slurm resource key.*'gpus_per_nod'.*did you mean 'gpus_per_node'"):
        SlurmResources.from_dict({"gpus_per_nod": 1})
    for bad, words in [({"mem": "2GB"}, "'mem' must look like"), ({"nodes": 0}, "'nodes' must be an integer >= 1"),
                       ({"time_min": "5"}, "'time_min' must be an integer"), ({"setup": "module load x"}, "list of strings"),
                       ({"sbatch_extra": ["exclusive"]}, "long sbatch option"),
                       ({"time_min": 1, "signal_delay_s": 90}, "shorter than the time limit")]:
        with pytest.raises(ValueError, match=words):
            SlurmResources.from_dict(bad)
    resources = SlurmResources.from_dict({"time_min": 1, "sbatch_extra": ["#SBATCH --exclusive"], "mem": "2G"})
    assert resources.signal_delay_s == 30 and resources.sbatch_extra == ("--exclusive",)


def test_render_sbatch_is_what_submitit_submits():
    resources = SlurmResources(partition="gpu", gpus_per_node=2, mem="4G", time_min=30, signal_delay_s=120,
                               sbatch_extra=("--exclusive", "--reservation=sweep"), setup=("module load cuda",))
    text = render_sbatch(resources, "/jobs", n_tasks=3)
    for line in ["#SBATCH --array=0-2%3", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --mem=4G",
                 "#SBATCH --time=30", "#SBATCH --signal=USR2@120", "#SBATCH --exclusive", "#SBATCH --reservation=sweep",
                 "module load cuda", f"export PATH={Path(sys.executable).parent}:$PATH", "-m submitit.core._submit /jobs"]:
        assert line in text, line


def test_states_map_to_the_taxonomy():
    assert [classify_state(s) for s in ("COMPLETED", "FAILED", "CANCELLED by 0", "TIMEOUT", "OUT_OF_MEMORY",
                                        "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "")] == [
        "completed", "failed", "cancelled", "timeout", "out_of_memory", "node_fail", "preempted", "node_fail",
        "timeout", "unknown", "unknown"]
    config = parse_config("MaxArraySize            = 64\nSlurmctldParameters     = preempt_send_user_signal\n")
    assert config == {"MaxArraySize": "64", "SlurmctldParameters": "preempt_send_user_signal"}


# ------------------------------------------------------------------------------ real cluster
@pytest.fixture(scope="module")
def taxonomy(cluster, tmp_path_factory):
    """Submit one job per way of ending, wait for all; {case: (handle, Outcome, executor)}."""
    root = tmp_path_factory.mktemp("taxonomy")
    jobs = root / "jobs"
    cases = {  # the slowest first: it holds one CPU for 60-90 s while the others run beside it
        "past_limit": (SlurmExecutor(jobs, SlurmResources(time_min=1, signal_delay_s=1), job_fn=ignore_usr2_and_sleep),
                       synthetic_spec(root, "past_limit")),
        "raises": (SlurmExecutor(jobs, SlurmResources(time_min=5), job_fn=run_trial),
                   synthetic_spec(root, "raises", x=0.9, fail_above=0.5)),
        "cancelled": (SlurmExecutor(jobs, SlurmResources(time_min=5), job_fn=run_trial),
                      synthetic_spec(root, "cancelled", seconds_per_epoch=300)),
        "oom": (SlurmExecutor(jobs, SlurmResources(time_min=5, mem="300M"), job_fn=allocate_too_much),
                synthetic_spec(root, "oom")),
        # USR2 comes 10-25 s in; run_trial is not checkpointable, so submitit gives up: "timed-out"
        "usr2_timeout": (SlurmExecutor(jobs, SlurmResources(time_min=1, signal_delay_s=50), job_fn=run_trial),
                         synthetic_spec(root, "usr2_timeout", seconds_per_epoch=300)),
    }
    handles = {case: executor.submit(spec) for case, (executor, spec) in cases.items()}
    subprocess.run(["scancel", handles["cancelled"].job_id], check=True, timeout=30)
    results = {}
    for case, handle in handles.items():
        executor = cases[case][0]
        results[case] = (handle, wait_all(executor, [handle])[handle.job_id], executor)
    return results


@pytest.mark.slow
@pytest.mark.slurm
def test_trials_run_as_chunked_arrays_and_each_poll_is_one_squeue_call(cluster, tmp_path, monkeypatch):
    calls: list[list[str]] = []
    real_run_command = slurm.run_command

    def counting_run_command(args, timeout=slurm.COMMAND_TIMEOUT_S):   # instrumentation: every call still runs
        calls.append(list(args))
        return real_run_command(args, timeout)

    monkeypatch.setattr(slurm, "run_command", counting_run_command)
    executor = SlurmExecutor(tmp_path / "jobs", SlurmResources(time_min=5, mem="500M"), job_fn=run_trial,
                             poll_seconds=0.5)
    specs = [synthetic_spec(tmp_path, f"t{i}", x=0.1 * (i + 1)) for i in range(5)]
    handles = executor.submit_many(specs, max_array_size=2)
    arrays = [h.job_id.split("_")[0] for h in handles]
    assert [h.trial_id for h in handles] == [s.trial_id for s in specs]
    assert len(set(arrays)) == 3 and [arrays.count(a) for a in dict.fromkeys(arrays)] == [2, 2, 1]
    # a chunk of one is a plain job (submitit submits no array of one)
    assert [h.job_id.partition("_")[2] for h in handles] == ["0", "1", "0", "1", ""]

    outcomes, live, polls = {}, list(handles), 0
    deadline = time.time() + 120
    while live and time.time() < deadline:
        before = len(calls)
        ended = executor.poll(live)
        polls += 1
        made = [c[0] for c in calls[before:]]
        assert made.count("squeue") == 1 and made.count("sacct") <= 1, made
        for handle in ended:
            outcomes[handle.trial_id] = executor.outcome(handle)
            live.remove(handle)
        time.sleep(executor.poll_seconds)
    assert not live, "trials did not finish within 120 s"
    squeue = next(c for c in calls if c[0] == "squeue")
    assert len(squeue[squeue.index("-j") + 1].split(",")) == 3     # one id per array, not per task
    for spec in specs:
        outcome = outcomes[spec.trial_id]
        assert outcome.ok and outcome.state == "completed", outcome.error
        assert outcome.result["metrics"]["epoch"] == 2.0 and outcome.result["trial_id"] == spec.trial_id
        assert (Path(spec.trial_dir) / "result-e2.json").exists()


@pytest.mark.slow
@pytest.mark.slurm
def test_a_trial_that_raises_is_a_user_error(taxonomy):
    handle, outcome, _ = taxonomy["raises"]
    assert not outcome.ok and outcome.user_error and outcome.state == "failed"
    assert "synthetic failure: x=0.900 > fail_above=0.5" in outcome.error


@pytest.mark.slow
@pytest.mark.slurm
def test_scancel_is_cancelled_infrastructure(taxonomy):
    handle, outcome, _ = taxonomy["cancelled"]
    assert not outcome.ok and not outcome.user_error and outcome.state == "cancelled"
    assert f"SLURM job {handle.job_id}" in outcome.error and "CANCELLED" in outcome.error
    assert "stderr log: " in outcome.error


@pytest.mark.slow
@pytest.mark.slurm
def test_a_job_over_its_memory_limit_is_out_of_memory(taxonomy):
    handle, outcome, _ = taxonomy["oom"]
    assert not outcome.ok and not outcome.user_error and outcome.state == "out_of_memory", outcome.error
    assert "oom-kill" in outcome.error or "Out Of Memory" in outcome.error


@pytest.mark.slow
@pytest.mark.slurm
def test_running_out_of_time_is_a_timeout(taxonomy):
    for case in ("usr2_timeout", "past_limit"):
        handle, outcome, _ = taxonomy[case]
        assert not outcome.ok and not outcome.user_error and outcome.state == "timeout", (case, outcome.error)
    assert "TIMEOUT" in taxonomy["past_limit"][1].error and "TIME LIMIT" in taxonomy["past_limit"][1].error
    # the USR2 path leaves error.txt (submitit raised inside the trial), yet it is not the trial's fault
    assert "timed-out" in (Path(taxonomy["usr2_timeout"][0].job.paths.stderr)).read_text()


@pytest.mark.slow
@pytest.mark.slurm
def test_sacct_knows_the_final_states_of_jobs_that_left_squeue(taxonomy):
    handles = [taxonomy[case][0] for case in ("raises", "cancelled", "past_limit")]
    states = taxonomy["raises"][2]._sacct(handles)      # one call for all of them
    assert states is not None, "sacct failed: is slurmdbd up?"
    assert [states[h.job_id][0] for h in handles] == ["FAILED", "CANCELLED", "TIMEOUT"]


@pytest.mark.slow
@pytest.mark.slurm
def test_submission_waits_while_the_submit_limit_is_reached(cluster, tmp_path):
    limits = ClusterLimits(max_array_size=1001, max_submit_jobs=2, source="test")
    executor = SlurmExecutor(tmp_path / "jobs", SlurmResources(time_min=5), job_fn=run_trial, limits=limits,
                             poll_seconds=0.5)
    specs = [synthetic_spec(tmp_path, f"t{i}", x=0.2 * (i + 1)) for i in range(3)]
    handles = executor.submit_many(specs)
    # the third trial could only be queued once the first array (2 = the limit) had left the queue
    assert [len(h.job_id.split("_")) for h in handles] == [2, 2, 1]
    assert all(executor._tracked[h.job_id].state == "COMPLETED" for h in handles[:2])
    outcomes = wait_all(executor, handles[2:], timeout_s=120)
    assert all(o.ok for o in outcomes.values())
