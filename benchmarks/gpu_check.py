"""GPU check of the trial runtime, for a machine with one CUDA GPU (run it there: `python benchmarks/gpu_check.py`).

1. A 1-GPU trial (Linear forecaster on ETTh1, CUDA tensors): trained 4 epochs straight, and 2 + 2 epochs
   with a stop in between; the resumed weights must equal the straight run's (deterministic algorithms).
2. A 1-GPU DeepSpeed ZeRO-2 trial (nccl process group of one rank): the same stop/resume check, with
   DeepSpeed's own checkpoint files.
Prints one line per check, then the verdict line: per check `<check> = pass|fail (target == pass)`.
About a minute on an H100, most of it imports. --quick: 2 epochs straight vs 1 + 1 (same checks).
Without a CUDA device both verdicts are SKIPPED (the imports are still checked) and the exit status is 0,
as for every benchmark: the status says that the script ran, the verdicts say whether the targets hold.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _verdict import print_verdicts, skipped, verdict

from launcher.methods.linear import LinearMethod
from launcher.methods.registry import method_class
from launcher.training.epoch_loop import final_weights
from launcher.training.ranks import DistributedSpec
from tasks.timeseries import load_forecast_task


def train(task, folder: Path, until: int, distributed: DistributedSpec | None) -> dict:
    method = LinearMethod()
    method.distributed = distributed
    params = {**{k: p.default for k, p in method_class("linear").params.items()}, "max_windows_per_epoch": 4096,
              "dropout": 0.1}
    return method.run_segment(task, params, folder, until, lambda *a: None).metrics


CHECKS = {"resume_1gpu": "1-GPU trial", "resume_1gpu_deepspeed_zero2": "1-GPU DeepSpeed ZeRO-2 (nccl)"}


def check(name: str, task, root: Path, distributed: DistributedSpec | None, epochs: int) -> bool:
    started = time.time()
    train(task, root / name / "straight", epochs, distributed)
    train(task, root / name / "resumed", epochs // 2, distributed)
    metrics = train(task, root / name / "resumed", epochs, distributed)
    a = final_weights(root / name / "straight" / "checkpoints")
    b = final_weights(root / name / "resumed" / "checkpoints")
    same = a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
    print(f"{name}: resume {'bit-identical' if same else 'DIFFERS'}; test MSE {metrics['test_mse']:.4f}; "
          f"{time.time() - started:.1f} s", flush=True)
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs straight vs 1 + 1 (default 4 vs 2 + 2)")
    args = parser.parse_args()
    epochs = 2 if args.quick else 4
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU")
        print_verdicts([skipped(metric, "==", "pass", "no CUDA device") for metric in CHECKS])
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    task = load_forecast_task("ETTh1", 96, context=336)
    root = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    distributed = {"resume_1gpu": None,
                   "resume_1gpu_deepspeed_zero2": DistributedSpec(strategy="deepspeed", zero_stage=2)}
    results = {}
    try:
        for metric, name in CHECKS.items():
            results[metric] = check(name, task, root, distributed[metric], epochs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_verdicts([verdict(metric, "pass" if ok else "fail", "==", "pass") for metric, ok in results.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
