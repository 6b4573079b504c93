"""The `slurm` backend: trial jobs as SLURM jobs (arrays when several start at once), over submitit.

submitit is the transport (pickles, sbatch text, USR2 checkpoint/requeue inside the job); the
scheduler state is ours. submitit's watcher runs `sacct` for every unfinished job, which is what
overloads controllers on big sweeps (submitit #1759), so `poll` makes ONE `squeue` call for all
live jobs and ONE `sacct` call only for jobs that have left squeue. Ended jobs are classified
(`KINDS`): a trial whose own code raised is a user error (told to the optimizer); anything else
(killed, timed out, out of memory, node lost, cancelled) is infrastructure, retried by the controller.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from launcher.backends.base import Handle, Outcome
from launcher.backends.slurm_resources import (
    COMMAND_TIMEOUT_S,
    ClusterLimits,
    SlurmResources,
    job_python,
    parse_config,
    plan_arrays,
    render_sbatch,
    run_command,
    trial_resources,
)
from launcher.job.trial import TrialSpec

# The backend's public names, including those of slurm_resources it re-exports for one import site.
__all__ = ["COMMAND_TIMEOUT_S", "KINDS", "ClusterLimits", "SlurmExecutor", "SlurmResources", "classify_state",
           "parse_config", "plan_arrays", "render_sbatch", "run_command", "trial_resources"]

KINDS = ("completed", "failed", "preempted", "timeout", "node_fail", "out_of_memory", "cancelled", "unknown")
_KIND_OF_STATE = {"COMPLETED": "completed", "FAILED": "failed", "PREEMPTED": "preempted", "TIMEOUT": "timeout",
                  "DEADLINE": "timeout", "NODE_FAIL": "node_fail", "BOOT_FAIL": "node_fail",
                  "OUT_OF_MEMORY": "out_of_memory", "CANCELLED": "cancelled"}
# States in which a job may still run (again): everything else is final.
_LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
                "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
SQUEUE_FORMAT = "%i|%T|%r"                       # job id (ARRAY_TASK for arrays), state, reason
SACCT_FORMAT = "JobID,State,ExitCode,Reason"
_MISSING_POLLS_BEFORE_UNKNOWN = 3                # absent from squeue AND sacct this many polls in a row


# ---------------------------------------------------------------------------------------- the executor
@dataclass
class _Tracked:
    trial_dir: Path
    submitted_at: float
    state: str | None = None          # the final SLURM state once ended
    reason: str = ""
    missing_polls: int = 0


class SlurmExecutor:
    """Executor protocol over submitit.SlurmExecutor: submit / submit_many (arrays) / poll / outcome."""

    name = "slurm"

    def __init__(self, folder: Path | str, resources: SlurmResources | None = None, *,
                 job_fn: Callable[[TrialSpec], Any] | None = None, limits: ClusterLimits | None = None,
                 poll_seconds: float = 2.0):
        # A folder of its own per executor: after a cluster reset job ids restart at 1, and a
        # reused folder would hand back an old job's result pickle.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(self) % 10000}"
        self.folder = Path(folder).absolute() / f"slurm-{stamp}"
        self.resources = resources or SlurmResources()
        if job_fn is None:
            from launcher.job.trial import run_trial
            job_fn = run_trial
        self.job_fn = job_fn                       # what each job runs: job_fn(spec)
        self.limits = limits or ClusterLimits.read()
        self.poll_seconds = poll_seconds           # squeue is a controller RPC: not faster than this
        self._executors: dict[SlurmResources, Any] = {}
        self._tracked: dict[str, _Tracked] = {}
        self._live: list[Handle] = []                 # submitted by us and not seen ended

    def resources_for(self, spec: TrialSpec) -> SlurmResources:
        """The executor's resources, with the trial's method overrides and one task per rank."""
        return trial_resources(self.resources, spec.resources, spec.distributed)

    def render_sbatch(self, spec: TrialSpec, n_tasks: int = 1) -> str:
        """The sbatch script this executor would submit for spec (for --dry-run)."""
        return render_sbatch(self.resources_for(spec), self.folder, n_tasks)

    def submit(self, spec: TrialSpec) -> Handle:
        return self.submit_many([spec])[0]

    def submit_many(self, specs: list[TrialSpec], max_array_size: int | None = None) -> list[Handle]:
        """Submit specs as job arrays: one per distinct resource set, chunked by plan_arrays; waits
        while our live jobs plus the next chunk would exceed the cluster's submit limit."""
        handles: dict[int, Handle] = {}
        groups: dict[SlurmResources, list[int]] = {}
        for index, spec in enumerate(specs):
            groups.setdefault(self.resources_for(spec), []).append(index)
        for resources, indices in groups.items():
            start = 0
            for size in plan_arrays(len(indices), self.limits, max_array_size):
                chunk = indices[start:start + size]
                start += size
                self._wait_for_room(len(chunk))
                for index, handle in zip(chunk, self._submit_array(resources, [specs[i] for i in chunk])):
                    handles[index] = handle
        return [handles[i] for i in range(len(specs))]

    def _submit_array(self, resources: SlurmResources, specs: list[TrialSpec]) -> list[Handle]:
        executor = self._executor_for(resources)
        submitted_at = time.time()
        with executor.batch():
            jobs = [executor.submit(self.job_fn, spec) for spec in specs]
        handles = []
        for spec, job in zip(specs, jobs):
            self._tracked[str(job.job_id)] = _Tracked(Path(spec.trial_dir), submitted_at)
            handles.append(Handle(spec.trial_id, job, str(job.job_id)))
        self._live.extend(handles)
        return handles

    def adopt(self, job_id: str, spec: TrialSpec, job_folder: str | None = None) -> Handle | None:
        """The SLURM job a killed controller submitted for this segment, while the cluster still has it
        queued or running: watched to its end (same squeue/sacct polling), never submitted twice.
        None when it already ended (its result, if any, is then found on disk) or cannot be identified."""
        if not job_folder or not job_id.split("_")[0].isdigit():
            return None
        import submitit

        handle = Handle(spec.trial_id, submitit.SlurmJob(folder=job_folder, job_id=job_id), job_id)
        states = self._squeue([handle])
        if states is not None and (job_id not in states or states[job_id][0] not in _LIVE_STATES):
            return None
        self._tracked[job_id] = _Tracked(Path(spec.trial_dir), time.time())
        self._live.append(handle)
        return handle

    def _executor_for(self, resources: SlurmResources):
        if resources not in self._executors:
            import submitit

            executor = submitit.SlurmExecutor(folder=str(self.folder), max_num_timeout=resources.max_requeues,
                                              python=job_python())
            executor.update_parameters(**resources.sbatch_parameters())
            self._executors[resources] = executor
        return self._executors[resources]

    def _wait_for_room(self, n_jobs: int) -> None:
        while len(self._live) + n_jobs > self.limits.max_submit_jobs:
            if not self.poll(list(self._live)):
                time.sleep(self.poll_seconds)

    # ------------------------------------------------------------------ state
    def poll(self, handles: list[Handle]) -> list[Handle]:
        """The handles whose jobs have ended: one squeue call for all of them, one sacct call for
        those squeue no longer knows. A failing squeue (controller busy) ends nothing."""
        waiting = [h for h in handles if self._tracked[h.job_id].state is None]
        if waiting:
            states = self._squeue(waiting)
            if states is not None:
                gone = []
                for handle in waiting:
                    if handle.job_id not in states:
                        gone.append(handle)
                    elif states[handle.job_id][0] not in _LIVE_STATES:
                        self._tracked[handle.job_id].state, self._tracked[handle.job_id].reason = states[handle.job_id]
                if gone:
                    self._settle_gone(gone)
        ended = [h for h in handles if self._tracked[h.job_id].state is not None]
        self._live = [h for h in self._live if self._tracked[h.job_id].state is None]
        return ended

    def _squeue(self, handles: list[Handle]) -> dict[str, tuple[str, str]] | None:
        # -t all: ended jobs stay listed for MinJobAge (default 300 s) with their final state, so
        # sacct is only needed for jobs older than that. -r: one line per array task.
        ids = sorted({h.job_id.split("_")[0] for h in handles}, key=int)
        done = run_command(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", SQUEUE_FORMAT])
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:       # a single id squeue has forgotten
                return {}
            return None
        return _parse_lines(done.stdout)

    def _sacct(self, handles: list[Handle]) -> dict[str, tuple[str, str]] | None:
        # -X: the job allocation only (not its steps); -P: '|'-separated. None: no accounting here.
        ids = sorted({h.job_id.split("_")[0] for h in handles}, key=int)
        done = run_command(["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", SACCT_FORMAT])
        return _parse_lines(done.stdout) if done.returncode == 0 else None

    def _settle_gone(self, gone: list[Handle]) -> None:
        states = self._sacct(gone)
        for handle in gone:
            tracked = self._tracked[handle.job_id]
            found = (states or {}).get(handle.job_id)
            if found is not None and found[0] not in _LIVE_STATES:
                tracked.state, tracked.reason = found[0], f"sacct: exit code|reason {found[1]}"
                continue
            tracked.missing_polls += 1
            # Without accounting nothing more will be learned; with it, give slurmdbd a few polls.
            if states is None or tracked.missing_polls >= _MISSING_POLLS_BEFORE_UNKNOWN:
                if Path(handle.job.paths.result_pickle).exists():
                    tracked.state, tracked.reason = "COMPLETED", "left squeue with a result pickle, no accounting record"
                else:
                    tracked.state, tracked.reason = "UNKNOWN", "left squeue without a result, no accounting record"

    # ------------------------------------------------------------------ outcome
    def outcome(self, handle: Handle) -> Outcome:
        tracked = self._tracked[handle.job_id]
        state = tracked.state or "UNKNOWN"
        kind = classify_state(state)
        pickled = _read_result(handle.job, wait_s=5.0 if kind == "completed" else 0.0)
        if kind == "completed" and pickled is not None and pickled[0] == "success":
            return Outcome(True, result=pickled[1], state="completed")
        if pickled is not None and pickled[0] == "error":
            kind = _kind_from_traceback(str(pickled[1]), kind)
        error_file = tracked.trial_dir / "error.txt"
        user_text = error_file.read_text() if _newer(error_file, tracked.submitted_at) else None
        if user_text is not None:
            kind = _kind_from_traceback(user_text, kind)
        if kind in ("failed", "completed") and _oom_logged(Path(handle.job.paths.stderr)):
            # The srun step was OOM-killed (the batch job only says FAILED). Checked before error.txt: when one
            # rank of a multi-rank trial is killed, the others raise "connection closed by peer" -- not the config's fault.
            kind = "out_of_memory"
        if kind in ("failed", "completed") and user_text is not None:
            return Outcome(False, error=user_text, user_error=True, state="failed")
        if kind == "completed":
            kind = "unknown"                          # COMPLETED without a usable result
        return Outcome(False, error=self._describe(handle, state, kind, pickled), user_error=False, state=kind)

    def _describe(self, handle: Handle, state: str, kind: str, pickled: tuple | None) -> str:
        tracked = self._tracked[handle.job_id]
        stderr = Path(handle.job.paths.stderr)
        lines = [f"SLURM job {handle.job_id} of trial {handle.trial_id} ended {state} ({kind}): {tracked.reason}".rstrip(": "),
                 f"stderr log: {stderr}"]
        if pickled is not None and pickled[0] == "error":
            lines.append(f"job result: {str(pickled[1]).strip().splitlines()[-1]}")
        lines += ["--- last lines of the stderr log ---", _tail(stderr)]
        return "\n".join(lines)


def _parse_lines(text: str) -> dict[str, tuple[str, str]]:
    rows = (line.strip().split("|", 2) for line in text.splitlines() if line.count("|") >= 2)
    return {job_id: (state.split()[0] if state else "UNKNOWN", reason) for job_id, state, reason in rows}


def _kind_from_traceback(text: str, kind: str) -> str:
    # submitit raises UncompletedJobError from its USR2 handler when it will not requeue; inside the
    # trial that looks like the trial's own exception, but the job ran out of time (or was preempted).
    if "UncompletedJobError" in text and "timed-out" in text:
        return "timeout"
    if "UncompletedJobError" in text:
        return "preempted"
    return kind


def _read_result(job: Any, wait_s: float) -> tuple[str, Any] | None:
    """submitit's result pickle: ("success", value) or ("error", traceback text); None when absent."""
    from submitit.core.utils import pickle_load

    path = Path(job.paths.result_pickle)
    deadline = time.time() + wait_s          # a shared filesystem may show the file a moment late
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)
    try:
        return pickle_load(path) if path.exists() else None
    except Exception:                        # half-written or unreadable: no usable result
        return None


def _oom_logged(stderr: Path) -> bool:
    # slurmstepd's own words when the cgroup OOM killer hit a step ("Detected 1 oom-kill event(s)"), in the
    # log of any task of the job (<job>_<task>_log.err): in a multi-rank trial the killed rank may not be 0.
    prefix = stderr.name.rsplit("_", 2)[0] if stderr.name.endswith("_log.err") else None
    logs = sorted(stderr.parent.glob(f"{prefix}_*_log.err")) if prefix else [stderr]
    for log in logs or [stderr]:
        try:
            text = log.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            continue
        if "oom-kill event" in text or "Out Of Memory" in text:
            return True
    return False


def _newer(path: Path, since: float) -> bool:
    # error.txt left by an earlier attempt of the same trial is not this job's error
    try:
        return path.stat().st_mtime >= since - 1.0
    except FileNotFoundError:
        return False


def _tail(path: Path, n_lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n_lines:]) or "(empty)"
    except FileNotFoundError:
        return "(no stderr log: the job never started, or its folder is not on a shared filesystem)"


def classify_state(state: str) -> str:
    """A SLURM job state (squeue %T or sacct State, e.g. 'CANCELLED by 0') -> one of KINDS."""
    return _KIND_OF_STATE.get((state.split() or ["UNKNOWN"])[0], "unknown")
