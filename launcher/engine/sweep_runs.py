"""The sweep's MLflow runs, written by the controller's tracking writer alone: sweep -> study -> trial runs.

Every write here can be repeated without changing what MLflow holds, because a writer killed between
an MLflow write and the watermark that records it does the write again at its next start:
outbox points carry their own timestamps, a segment's final metrics are stamped with the time its
result file was written, params and tags are set to the same values. A (run, key, step) is never
logged twice with different timestamps.

The journal is the source of truth. The writer recreates runs the store lost (a deleted
`mlflow.db`, a run removed by hand) from the journal's history and the trial folders.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from launcher.job.outbox import read_outbox
from launcher.tracking import KIND_TAG, Tracker, outbox_points


def _is_finite(value: Any) -> bool:
    return not isinstance(value, (int, float)) or math.isfinite(float(value))


def result_time(result_file: Path, fallback: float) -> float:
    """When a segment's result was written: the timestamp of its final metrics (stable across re-ingests)."""
    try:
        return result_file.stat().st_mtime
    except OSError:
        return fallback


def outbox_lines(trial_dir: Path, upto: int) -> list[dict]:
    """The first `upto` complete lines of a trial's outbox."""
    return read_outbox(trial_dir, 0, upto) if upto > 0 else []


class SweepRuns:
    """Run ids by key ("sweep", a study name, "trial:<id>") and the writes the controller makes."""

    def __init__(self, tracker: Tracker, run_ids: dict[str, str]):
        self.tracker = tracker
        self.run_ids = run_ids

    def missing(self) -> list[str]:
        """Journalled run keys whose runs the store no longer has, in creation order."""
        existing = {run.info.run_id for run in self.tracker.runs()}
        return [key for key, run_id in self.run_ids.items() if run_id not in existing]

    def close_orphans(self) -> None:
        """A controller killed between creating a run and journalling it leaves a run the journal does
        not know, which the resumed controller makes again: close it as KILLED and move it to MLflow's
        trash (restorable there), so the UI and the report see each trial once, as in a run never killed."""
        known = set(self.run_ids.values())
        for run in self.tracker.runs():
            if run.info.run_id not in known and run.data.tags.get(KIND_TAG) in ("sweep", "study", "trial"):
                if run.info.status == "RUNNING":
                    self.tracker.finish(run.info.run_id, "KILLED")
                self.tracker.client.delete_run(run.info.run_id)

    def log_segment(self, run_id: str, *, step: int, metrics: dict, result: dict, result_file: Path,
                    outbox: list[dict], new_lines: int, decision: str, asha: bool, fallback_time: float,
                    job_id: str | None = None) -> None:
        """What one ended segment adds to its trial's run (live ingest and rebuild alike), in one batch:
        its outbox lines not copied yet (the last `new_lines` of `outbox`, every line of the trial's
        outbox up to this segment's end), its final metrics, params and tags; then, when the trial
        ended, its result file and its status."""
        # What the outbox logged at this step (the last epoch's curves) is not logged again: a metric's
        # history holds each step once. All lines count, not only this ingest's new ones: the step's
        # line may have been copied by an earlier ingest (a segment retried after its job died past its
        # last report, or a torn journal line that made a resumed controller re-ingest an older segment
        # after the job had already run on).
        logged = {key for line in outbox if line["step"] == step for key in line["metrics"]}
        finals = {f"final_{k}" if k == "epoch" else k: v for k, v in metrics.items() if k not in logged}
        stamp = result_time(result_file, fallback_time)
        points = outbox_points(outbox[len(outbox) - new_lines:] if new_lines else [])
        points += [(k, v, stamp, step) for k, v in sorted(finals.items())]
        tags = {"launcher.host": result.get("host", ""), "launcher.epochs": step}
        if job_id is not None:
            tags["launcher.job_id"] = job_id
        if result.get("notes"):
            tags["launcher.notes"] = " | ".join(result["notes"])
        if decision != "continue" and asha:
            tags["launcher.asha"] = decision
        self.tracker.log_batch(run_id, points=points, tags=tags,
                               params={"chosen": result["info"]} if result.get("info") else None)
        if decision != "continue":
            self.tracker.log_text(run_id, json.dumps(result, indent=2, sort_keys=True), "result.json")
            self.tracker.finish(run_id, "FINISHED")

    def log_failure(self, run_id: str, error: str) -> None:
        self.tracker.log_text(run_id, error or "unknown error", "error.txt")
        self.tracker.finish(run_id, "FAILED")
