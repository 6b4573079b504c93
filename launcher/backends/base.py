"""The seam every backend implements (as submitit's Executor): `submit(spec)` starts a trial job and
returns a handle; `poll(handles)` answers, in one call, which of the live handles have ended;
`outcome(handle)` gives the job's result or its error text.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from launcher.job.trial import TrialSpec

BACKENDS = ("inline", "local", "slurm", "simulated")


def ranks_of(spec: TrialSpec) -> int:
    """Processes one trial job starts (the local backend runs them as submitit tasks on this machine)."""
    return int((spec.distributed or {}).get("ranks", 1))


@dataclass
class Handle:
    trial_id: str
    job: Any            # a submitit Job
    job_id: str


@dataclass
class Outcome:
    ok: bool
    result: dict | None = None
    error: str | None = None    # traceback text when not ok
    # True when the trial's own code raised (it left error.txt); False when the job died without
    # a Python error (killed, timed out, node lost): that is infrastructure, retried, not told.
    user_error: bool = False
    # How the job ended, when the backend knows: completed, failed, preempted, timeout, node_fail,
    # out_of_memory, cancelled or unknown (launcher/slurm.py KINDS).
    state: str | None = None


class Executor(Protocol):
    name: str
    poll_seconds: float         # how long the controller sleeps when no job ended

    def submit(self, spec: TrialSpec) -> Handle: ...

    def poll(self, handles: list[Handle]) -> list[Handle]: ...

    def outcome(self, handle: Handle) -> Outcome: ...

    # Optional (looked up with getattr by the controller's recovery after a kill -9):
    #   adopt(job_id, spec, job_folder) -> Handle | None: watch a job a killed controller left running;
    #   reap_unknown(adopted_job_ids) -> int: stop this sweep's job processes that no journal event names.


def failure_outcome(exc: BaseException, trial_dir: Path | None) -> Outcome:
    # The job's own traceback (written by run_trial) beats submitit's wrapper text.
    if trial_dir is not None and (trial_dir / "error.txt").exists():
        return Outcome(False, error=(trial_dir / "error.txt").read_text(), user_error=True)
    return Outcome(False, error="".join(traceback.format_exception(exc)), user_error=False)
