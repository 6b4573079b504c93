"""The `inline` (in-process, for debugging) and `local` (one process per trial) backends, over submitit."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import submitit

from launcher.backends.base import Handle, Outcome, failure_outcome, ranks_of
from launcher.job.trial import TrialJob, TrialSpec


class InlineExecutor:
    """Runs each trial inside the controller process (submitit's DebugExecutor), at submit time."""

    name = "inline"
    poll_seconds = 0.0          # nothing runs in the background

    def __init__(self, folder: Path, timeout_min: int = 60):
        self._executor = submitit.DebugExecutor(folder=str(folder))
        self._dirs: dict[str, Path] = {}

    def submit(self, spec: TrialSpec) -> Handle:
        if ranks_of(spec) > 1:
            raise ValueError(f"{spec.study}: the inline backend runs one process; {ranks_of(spec)} ranks need "
                             "--backend local or slurm")
        job = self._executor.submit(TrialJob(), spec)
        self._dirs[spec.trial_id] = Path(spec.trial_dir)
        job.exception()   # runs it now; DebugJob.result() would drop into pdb on failure
        return Handle(spec.trial_id, job, "inline")

    def poll(self, handles: list[Handle]) -> list[Handle]:
        return list(handles)  # everything already ran at submit time

    def outcome(self, handle: Handle) -> Outcome:
        exc = handle.job.exception()
        if exc is not None:
            return failure_outcome(exc, self._dirs.get(handle.trial_id))
        return Outcome(True, result=handle.job.submission().result())


@contextlib.contextmanager
def _stderr_into(log: Path):
    """Point file descriptor 2 at `log` while child processes are started, so they inherit it: a
    Ctrl-C reaches every process of the terminal's group, and submitit's per-job controller prints
    its KeyboardInterrupt traceback there instead of burying the controller's one-line message."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def _local_job_alive(pid: int, jobs_folder: Path) -> bool:
    """Is `pid` a live submitit local job of this sweep (and not a zombie, nor a reused pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and b"submitit.local._local" in cmdline and any(
        arg.decode(errors="replace").startswith(str(jobs_folder)) for arg in cmdline)


class OrphanJob:
    """A local job started by a controller that was killed: this controller cannot wait() for it (it
    is not our child), so it watches the pid and reads the result the job leaves in its trial folder."""

    def __init__(self, pid: int, jobs_folder: Path, spec: TrialSpec):
        self.pid, self.jobs_folder, self.spec = pid, jobs_folder, spec

    def done(self) -> bool:
        return not _local_job_alive(self.pid, self.jobs_folder)

    def cancel(self, check: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)     # submitit's job controller then stops its tasks

    def outcome(self) -> Outcome:
        trial_dir = Path(self.spec.trial_dir)
        result_file = trial_dir / self.spec.result_name
        if result_file.exists():
            return Outcome(True, result=json.loads(result_file.read_text()))
        if (trial_dir / "error.txt").exists():
            return Outcome(False, error=(trial_dir / "error.txt").read_text(), user_error=True)
        return Outcome(False, error=f"adopted job {self.pid} ended without a result", user_error=False)


class LocalExecutor:
    """One OS process per trial (submitit's LocalExecutor); the controller caps how many run at once."""

    name = "local"
    # Checking our own child processes costs microseconds, so poll often: a finished job's slot
    # is refilled within ~20 ms instead of waiting out a long sleep (the slot-idle benchmark).
    poll_seconds = 0.02

    def __init__(self, folder: Path, timeout_min: int = 60):
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._executor = submitit.LocalExecutor(folder=str(self.folder / "%j"))
        self._executor.update_parameters(timeout_min=timeout_min)
        self._dirs: dict[str, Path] = {}

    def submit(self, spec: TrialSpec) -> Handle:
        # Several ranks: submitit starts them as tasks of one job, with the rank variables that
        # launcher.training.runtime reads (TorchDistributedEnvironment), as SLURM would.
        self._executor.update_parameters(tasks_per_node=ranks_of(spec))
        with _stderr_into(self.folder / "controllers.log"):
            job = self._executor.submit(TrialJob(), spec)
        self._dirs[spec.trial_id] = Path(spec.trial_dir)
        return Handle(spec.trial_id, job, str(job.job_id))

    def adopt(self, job_id: str, spec: TrialSpec, job_folder: str | None = None) -> Handle | None:
        """The job a killed controller started for this segment, when it still runs: watched until it
        ends, so the segment never runs twice at once. None when it is gone (run the segment again)."""
        try:
            pid = int(job_id)
        except ValueError:
            return None
        if not _local_job_alive(pid, self.folder):
            return None
        self._dirs[spec.trial_id] = Path(spec.trial_dir)
        return Handle(spec.trial_id, OrphanJob(pid, self.folder, spec), job_id)

    def poll(self, handles: list[Handle]) -> list[Handle]:
        # LocalJob.done() checks its own Popen: no scheduler is queried, so per-handle checks are cheap.
        return [h for h in handles if h.job.done()]

    def reap_unknown(self, adopted: set[str]) -> int:
        """Kill job processes of this sweep that no journal event names (a controller killed between
        starting a job and journalling it): their segment runs again, so they must not run on beside
        it. `adopted`: the job ids (pids) being watched, whose processes and tasks are kept."""
        reaped = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if str(self.folder).encode() not in cmdline or b"submitit" not in cmdline:
                continue
            if proc.name in adopted or parent in adopted or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
                reaped += 1
        return reaped

    def outcome(self, handle: Handle) -> Outcome:
        if isinstance(handle.job, OrphanJob):
            return handle.job.outcome()
        try:
            return Outcome(True, result=handle.job.results()[0])   # rank 0's result
        except Exception as exc:  # FailedJobError, UncompletedJobError: the trial failed, not the sweep
            return failure_outcome(exc, self._dirs.get(handle.trial_id))
