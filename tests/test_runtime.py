"""The trial runtime: exact stop/resume, checkpoint selection, ranks, and multi-rank trials (DDP, DeepSpeed on gloo).

The multi-rank tests start real processes through submitit's LocalExecutor (2 tasks = 2 ranks), the same
path the local backend uses; the SLURM versions live in test_slurm_trials.py.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import submitit
import torch

from launcher.job.outbox import Outbox
from launcher.job.trial import TrialJob, TrialSpec
from launcher.methods.linear import LinearMethod
from launcher.methods.registry import method_class
from launcher.training.checkpoints import CheckpointMismatch, checkpoint_folders
from launcher.training.epoch_loop import final_weights
from launcher.training.ranks import DistributedSpec, export_rank_environment
from tasks.timeseries import load_forecast_task

PARAMS = {**{k: p.default for k, p in method_class("linear").params.items()}, "max_windows_per_epoch": 256, "dropout": 0.1}


@pytest.fixture(scope="module")
def task():
    return load_forecast_task("ETTh1", 96, context=336)


def train(task, folder: Path, until: int, params=PARAMS, reported=None):
    method = LinearMethod()
    method.distributed = None
    report = (lambda step, metrics: reported.append((step, metrics))) if reported is not None else (lambda *a: None)
    return method.run_segment(task, dict(params), folder, until, report)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stop_and_resume_gives_bit_identical_weights(task, tmp_path):
    reported = []
    straight = train(task, tmp_path / "straight", 4, reported=reported)
    train(task, tmp_path / "resumed", 1)
    train(task, tmp_path / "resumed", 3)
    resumed = train(task, tmp_path / "resumed", 4)
    assert same_weights(final_weights(tmp_path / "straight/checkpoints"), final_weights(tmp_path / "resumed/checkpoints"))
    assert resumed.metrics["test_mse"] == straight.metrics["test_mse"]
    assert [step for step, _ in reported] == [1, 2, 3, 4]
    # only the newest two checkpoints are kept, each complete
    assert [e for e, _ in checkpoint_folders(tmp_path / "straight/checkpoints")] == [4, 3]
    # the headline test score is the one at the best validation epoch, not the last
    by_epoch = {step: m for step, m in reported}
    best_epoch = min(by_epoch, key=lambda e: by_epoch[e]["val_mse"])
    assert straight.metrics["test_mse"] == by_epoch[best_epoch]["test_mse_last"]


def test_a_truncated_checkpoint_is_skipped_for_the_previous_one(task, tmp_path):
    train(task, tmp_path / "straight", 4)
    train(task, tmp_path / "cut", 3)
    newest = tmp_path / "cut/checkpoints/epoch_000003/state.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(task, tmp_path / "cut", 4)
    assert any("skipping unloadable checkpoint" in str(w.message) and "epoch_000003" in str(w.message) for w in caught)
    # resumed from epoch 2 and re-ran 3 and 4: the same weights as never interrupted
    assert same_weights(final_weights(tmp_path / "straight/checkpoints"), final_weights(tmp_path / "cut/checkpoints"))


def test_a_half_written_checkpoint_folder_is_ignored(task, tmp_path):
    train(task, tmp_path / "run", 2)
    staging = tmp_path / "run/checkpoints/.epoch_000003.tmp"
    staging.mkdir()
    (staging / "state.pt").write_bytes(b"garbage")
    assert [e for e, _ in checkpoint_folders(tmp_path / "run/checkpoints")] == [2, 1]


def test_a_checkpoint_of_another_run_is_refused(task, tmp_path):
    train(task, tmp_path / "run", 1)
    with pytest.raises(CheckpointMismatch, match="different run"):
        train(task, tmp_path / "run", 2, params={**PARAMS, "lr": 0.5})


def test_outbox_never_repeats_a_step(tmp_path):
    path = tmp_path / "outbox.jsonl"
    first = Outbox(path)
    first(1, {"a": 1.0})
    first(2, {"a": 2.0})
    path.write_text(path.read_text() + '{"step": 3, "metr')     # a line cut by a kill
    again = Outbox(path)                                         # the requeued job
    again(2, {"a": 2.0})
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    assert [x["step"] for x in lines] == [1, 2]
    again(3, {"a": 3.0})
    assert again.last_step == 3


def test_ranks_from_a_bare_srun(monkeypatch):
    # a private copy of the environment: what export_rank_environment sets must not leak into later tests
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR",
                "SUBMITIT_LOCAL_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    export_rank_environment()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("1", "2", "1")
    assert os.environ["MASTER_PORT"] == str(20000 + 1234)


def test_distributed_spec_rejects_nonsense():
    with pytest.raises(ValueError, match="strategy"):
        DistributedSpec(strategy="horovod")
    with pytest.raises(ValueError, match="zero_stage"):
        DistributedSpec(strategy="deepspeed", zero_stage=4)


# ------------------------------------------------------------------------------------------ two ranks
def test_a_submitit_job_overrides_inherited_rank_variables(monkeypatch, tmp_path):
    """A controller started with RANK/WORLD_SIZE in its environment must not hand them to its trial jobs."""
    for var, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "21234")):
        monkeypatch.setenv(var, value)      # the real environment: the job process inherits it
    executor = submitit.LocalExecutor(folder=str(tmp_path / "%j"))
    executor.update_parameters(timeout_min=2, tasks_per_node=1)

    def ranks() -> tuple[str, str]:
        from launcher.training.ranks import export_rank_environment

        export_rank_environment()
        return os.environ["RANK"], os.environ["WORLD_SIZE"]

    assert executor.submit(ranks).result() == ("0", "1")


def two_rank_trial(root: Path, folder: str, until: int, strategy: str, stage: int = 0) -> list[dict]:
    executor = submitit.LocalExecutor(folder=str(root / "jobs/%j"))
    executor.update_parameters(timeout_min=15, tasks_per_node=2)
    spec = TrialSpec(trial_id=folder, study="ETTh1-96/linear", dataset="ETTh1", horizon=96, context=336,
                     method="linear", params=PARAMS, seed=0, trial_dir=str(root / folder), until_epoch=until,
                     distributed={"strategy": strategy, "zero_stage": stage, "ranks": 2})
    return executor.submit(TrialJob(), spec).results()


def check_two_rank_run(root: Path, strategy: str, stage: int = 0) -> None:
    straight = two_rank_trial(root, "straight", 3, strategy, stage)
    assert [r["rank"] for r in straight] == [0, 1]
    assert straight[0]["metrics"]["world_size"] == 2
    two_rank_trial(root, "resumed", 1, strategy, stage)
    two_rank_trial(root, "resumed", 3, strategy, stage)
    assert same_weights(final_weights(root / "straight/checkpoints"), final_weights(root / "resumed/checkpoints"))
    # rank 0 alone writes the trial's outbox and result: one line per epoch, one result per segment
    for folder, epochs in (("straight", [1, 2, 3]), ("resumed", [1, 2, 3])):
        lines = (root / folder / "outbox.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in lines] == epochs
    assert len((root / "resumed/segments.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_ddp_two_ranks_resume_exactly_and_report_once(tmp_path):
    check_two_rank_run(tmp_path, "ddp")


@pytest.mark.slow
def test_deepspeed_zero2_two_ranks_resume_exactly_and_report_once(tmp_path):
    check_two_rank_run(tmp_path, "deepspeed", stage=2)
    shards = list((tmp_path / "straight/checkpoints/epoch_000003/deepspeed").glob("*optim_states.pt"))
    assert len(shards) == 2, "each rank saves its own ZeRO optimizer shard"
