"""`zeroshot`: forecast the test windows with a pretrained forecasting FM as it is (no training).

Any forecasting adapter of `models.fm` (fracast with the weights bundled in its wheel by default;
patchtst, patchtsmixer or chronos from a local checkpoint folder) is scored exactly like every other
forecasting method: `tasks.timeseries.evaluate_forecaster` over the test windows, each channel a
sample. A checkpoint whose forecast head does not fit the task's context/horizon would get a freshly
initialised head, which is not zero-shot: that is refused. A `stand_in: tiny` run is allowed (to test
the path offline) and labelled as a random-init stand-in.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from launcher.methods.base import Method, MethodResult, Report
from launcher.methods.fm_common import (
    ZEROSHOT_ADAPTERS,
    AdapterChecks,
    adapter_notes,
    load_fm,
    resolve_checkpoint,
)
from launcher.methods.params import Param

if TYPE_CHECKING:
    import numpy as np


class ZeroShotMethod(AdapterChecks, Method):
    name = "zeroshot"
    builtin_adapters = ZEROSHOT_ADAPTERS
    kind = "zero-shot FM"
    params = {
        "adapter": Param("str", "fracast", "forecasting FM adapter: a built-in name, a plugin's, or "
                         "my_pkg.fm:MyAdapter"),
        "checkpoint": Param("path", None, "local checkpoint folder; null: fracast's weights bundled in its wheel",
                            nullable=True),
        "stand_in": Param("str", "none", "tiny: a random-init stand-in (tests the path offline; labelled)",
                          choices=("none", "tiny")),
        "eval_stride": Param("int", 1, "evaluate every k-th test window (1 = all, the paper protocol; larger values "
                             "are labelled in the report)", minimum=1),
        "batch_size": Param("int", 16, "series per forward pass", minimum=1),
        "allow_download": Param("bool", False, "fetch a missing checkpoint from the Hugging Face Hub into `checkpoint`"),
    }
    deterministic = True

    def run(self, task, params: dict[str, Any], report: Report) -> MethodResult:
        import torch

        from tasks.timeseries import evaluate_forecaster

        folder, notes = resolve_checkpoint(params, task, self.cache_dir or _scratch())
        batch_size = int(params["batch_size"])
        # fracast batches internally (small batches are faster on CPU); the others take our chunks as they come.
        options = {"batch_size": batch_size} if params["adapter"] == "fracast" else {}
        adapter = load_fm(params, task, folder, **options)
        reinitialised = adapter.loading_info.get("missing", []) + adapter.loading_info.get("mismatched", [])
        if reinitialised and not adapter.is_stand_in:
            raise ValueError(f"{params['adapter']} checkpoint {folder} does not fit context {task.context} / "
                             f"horizon {task.horizon}: loading re-initialised {', '.join(sorted(reinitialised)[:4])}; "
                             f"a freshly initialised head is not zero-shot. Use the checkpoint's own context and "
                             f"horizon, or the finetune method")
        adapter.eval()

        @torch.no_grad()
        def forecast(contexts: np.ndarray) -> np.ndarray:
            rows = torch.as_tensor(contexts, dtype=torch.float32)
            return torch.cat([adapter(chunk) for chunk in rows.split(batch_size)]).double().numpy()

        stride = int(params["eval_stride"])
        scores = evaluate_forecaster(forecast, task.test, task.context, task.horizon, window_stride=stride)
        metrics = {"test_mse": scores["mse"], "test_mae": scores["mae"], "test_windows": float(scores["n_windows"])}
        counts = adapter.n_parameters()
        metrics["n_trainable"] = 0.0                 # nothing is trained; the count below is the whole model
        notes += adapter_notes(adapter)
        if stride > 1:
            notes.append(f"scored on every {stride}th test window only (its window count per task is the MLflow "
                         f"metric test_windows); the other methods use all windows")
        info = {"adapter": params["adapter"], "checkpoint": str(folder) if folder else "bundled",
                "stand_in": bool(adapter.is_stand_in), "eval_stride": stride}
        return MethodResult(metrics=metrics, n_parameters=int(counts.total), info=info, notes=notes)


def _scratch():
    """Where a stand-in goes when no sweep cache is set (a method called outside a trial job)."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "launcher-fm-cache"
