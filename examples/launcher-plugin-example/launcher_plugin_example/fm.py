"""`tiny_mlp`: a tiny forecasting "foundation model" adapter on the launcher's `FMAdapter` interface.

The model is a small MLP over the context window, used channel-independently (every channel of every
window is one univariate sample, as the built-in PatchTST adapter does) with per-window scaling:

    x (B, context) -> (x - mean) / std -> backbone: Linear(context, hidden), GELU, Linear(hidden, hidden),
    GELU -> head: Linear(hidden, horizon) -> * std + mean -> (B, horizon)

It loads from a LOCAL folder in Hugging Face layout: config.json (model_type "tiny_mlp", context_length,
prediction_length, hidden_size) and model.safetensors. `write_checkpoint(folder)` writes such a folder
with RANDOM weights: a STAND-IN for a pretrained checkpoint, so the example runs offline. It is labelled
as one (README.txt and `launcher_stand_in` in config.json, which `FMAdapter.is_stand_in` reads), and
scores obtained with it say nothing about any pretrained model. A real plugin would point `checkpoint:`
at the folder of its published weights instead.

The built-in `finetune` method trains it (`adapter: tiny_mlp`, or the import path
`launcher_plugin_example.fm:TinyMLPAdapter`) with train_layers `head`, `full` or `lora` (peft wraps
the two Linear layers of the backbone).

What `finetune` needs from an adapter, all shown here: `from_pretrained` (inherited: it checks the
folder with `checkpoint_problems` and calls `_load`), `backbone` and `head` (what train_layers
switches on), `forward` with the (B, context) -> (B, horizon) contract, and `loading_info` saying
which tensors were freshly initialised (e.g. the head, when the task's horizon differs from the
checkpoint's).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.fm.base import FMAdapter, Forecasting
from models.fm.checkpoint import read_config

MODEL_TYPE = "tiny_mlp"
STAND_IN_NOTE = "random init, not a pretrained model"


class TinyMLP(nn.Module):
    def __init__(self, context: int, horizon: int, hidden: int):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(context, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, context) -> (N, horizon), each row scaled by its own mean and std."""
        mean = x.mean(dim=1, keepdim=True)
        std = x.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-5)
        return self.head(self.backbone((x - mean) / std)) * std + mean


class TinyMLPAdapter(FMAdapter):
    """A channel-independent MLP forecaster loaded from config.json + model.safetensors."""

    name = "tiny_mlp"
    public_model_id = "launcher-plugin-example/tiny-mlp"      # not on the Hub: see fetch_note
    head_specs = (Forecasting,)
    expected_model_types = (MODEL_TYPE,)
    lora_target_modules = ("0", "2")          # the two Linear layers of `backbone` (peft names)
    fetch_note = ("this example model is not published; write a random-init stand-in with "
                  "`python -m launcher_plugin_example.fm FOLDER` (launcher_plugin_example.fm.write_checkpoint)")

    def __init__(self, spec: Forecasting, folder: Path | None, model: TinyMLP):
        super().__init__(spec, folder)
        self.model = model
        self.notes: list[str] = []

    @classmethod
    def _load(cls, folder: Path, spec: Forecasting, **options: Any) -> TinyMLPAdapter:
        if options:
            raise TypeError(f"unexpected options for adapter {cls.name!r}: {sorted(options)}")
        from safetensors.torch import load_file

        config = read_config(folder)
        model = TinyMLP(spec.context, spec.horizon, int(config["hidden_size"]))
        saved = load_file(str(folder / "model.safetensors"))
        own = model.state_dict()
        # Tensors whose shape depends on another context (first layer) or horizon (head) are left freshly
        # initialised, and said so: finetune reports them unless the checkpoint is a stand-in.
        usable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(usable, strict=False)
        adapter = cls(spec, folder, model)
        if config.get("launcher_stand_in"):
            # Caveats an adapter carries (`notes`) reach the report under the method's column.
            adapter.notes = [f"{cls.name}: the checkpoint in {folder} is a stand-in ({config['launcher_stand_in']}): "
                             f"its scores say nothing about any pretrained foundation model"]
        adapter.loading_info = {"missing": sorted(k for k in own if k not in saved),
                                "unexpected": sorted(k for k in saved if k not in own),
                                "mismatched": sorted(k for k in saved if k in own and own[k].shape != saved[k].shape)}
        return adapter

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    @property
    def head(self) -> nn.Module:
        return self.model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, context) -> (B, horizon), or (B, context, C) -> (B, horizon, C), channels independent."""
        context = self.spec.context
        if x.ndim not in (2, 3) or x.shape[1] != context:
            raise ValueError(f"adapter {self.name!r} takes (B, {context}) or (B, {context}, C) inputs, "
                             f"got {tuple(x.shape)}")
        x = x.float()
        if x.ndim == 2:
            return self.model(x)
        batch, _, channels = x.shape
        rows = x.permute(0, 2, 1).reshape(batch * channels, context)
        return self.model(rows).reshape(batch, channels, -1).permute(0, 2, 1)


def write_checkpoint(folder: str | Path, context: int = 96, seed: int = 0, *, horizon: int = 24,
                     hidden: int = 64) -> Path:
    """Write a RANDOM-INIT stand-in checkpoint (config.json + model.safetensors + README.txt) to `folder`.

    It has the layout a published checkpoint of this adapter would have, and none of its knowledge.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        model = TinyMLP(int(context), int(horizon), int(hidden))
    finally:
        torch.random.set_rng_state(generator_state)
    config = {"model_type": MODEL_TYPE, "context_length": int(context), "prediction_length": int(horizon),
              "hidden_size": int(hidden), "launcher_stand_in": STAND_IN_NOTE}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    n_parameters = sum(p.numel() for p in model.parameters())
    (folder / "README.txt").write_text(
        f"STAND-IN CHECKPOINT: {STAND_IN_NOTE}.\n\nA randomly initialised tiny_mlp ({n_parameters:,} parameters, "
        f"seed {seed}) written by launcher_plugin_example.fm.write_checkpoint for the plugin example.\n"
        f"Scores obtained with it say nothing about any pretrained foundation model.\n")
    return folder


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m launcher_plugin_example.fm",
                                     description="write a random-init tiny_mlp stand-in checkpoint")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--context", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = write_checkpoint(args.folder, args.context, args.seed, horizon=args.horizon, hidden=args.hidden)
    print(f"wrote a tiny_mlp stand-in checkpoint ({STAND_IN_NOTE}) to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
