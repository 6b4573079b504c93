"""GPU check of the trial runtime, for a machine with one CUDA GPU (run it there: `python benchmarks/gpu_check.py`).

1. A 1-GPU trial (Linear forecaster on ETTh1, CUDA tensors): trained 4 epochs straight, and 2 + 2 epochs
   with a stop in between; the resumed weights must equal the straight run's (deterministic algorithms).
2. A 1-GPU DeepSpeed ZeRO-2 trial (nccl process group of one rank): the same stop/resume check, with
   DeepSpeed's own checkpoint files.
Prints one line per check and exits 1 if any fails. About a minute on an H100, most of it imports.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launcher.epoch_loop import final_weights  # noqa: E402
from launcher.methods.linear import LinearMethod  # noqa: E402
from launcher.methods.params import METHOD_PARAMS  # noqa: E402
from launcher.runtime import DistributedSpec  # noqa: E402
from tasks.timeseries import load_forecast_task  # noqa: E402


def train(task, folder: Path, until: int, distributed: DistributedSpec | None) -> dict:
    method = LinearMethod()
    method.distributed = distributed
    params = {**{k: p.default for k, p in METHOD_PARAMS["linear"].items()}, "max_windows_per_epoch": 4096,
              "dropout": 0.1}
    return method.run_segment(task, params, folder, until, lambda *a: None).metrics


def check(name: str, task, root: Path, distributed: DistributedSpec | None) -> bool:
    started = time.time()
    train(task, root / name / "straight", 4, distributed)
    train(task, root / name / "resumed", 2, distributed)
    metrics = train(task, root / name / "resumed", 4, distributed)
    a = final_weights(root / name / "straight" / "checkpoints")
    b = final_weights(root / name / "resumed" / "checkpoints")
    same = a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
    print(f"{name}: resume {'bit-identical' if same else 'DIFFERS'}; test MSE {metrics['test_mse']:.4f}; "
          f"{time.time() - started:.1f} s", flush=True)
    return same


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU")
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    task = load_forecast_task("ETTh1", 96, context=336)
    root = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        ok = check("1-GPU trial", task, root, None)
        ok &= check("1-GPU DeepSpeed ZeRO-2 (nccl)", task, root, DistributedSpec(strategy="deepspeed", zero_stage=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
