"""Tiny RANDOMLY INITIALISED stand-ins of each FM adapter's checkpoint, for offline tests and CPU sweeps.

`write_tiny_checkpoint(kind, folder, **shape)` saves a small config of the adapter's architecture
with `save_pretrained`, in the same layout as the public checkpoint it stands in for, so the very
same `from_pretrained` path loads it. These are NOT the pretrained FMs: every folder gets a
README.txt saying "random init, not the pretrained FM", and config.json carries
`launcher_stand_in`, which `FMAdapter.is_stand_in` reads so reports can label such runs.

Writing runs no code from the folder. The `hyenadna` stand-in also holds Python files (the layout of
a remote-code checkpoint, for tests of the `trust_remote_code` path); the launcher's `stand_in: tiny`
never runs them: `models.fm.tiny_remote_code.TinyDNAStandInAdapter` builds that model from the
installed classes and reads only config.json and model.safetensors.

CLI: `python -m models.fm.tiny <kind> <folder> [key=value ...]`, e.g.
`python -m models.fm.tiny patchtst /tmp/patchtst context_length=96 prediction_length=24`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from . import tiny_remote_code
from .base import ADAPTERS
from .dna import nt_vocabulary

STAND_IN_NOTE = "random init, not the pretrained FM"


def _write_nucleotide_transformer(folder: Path, shape: dict[str, Any]) -> Any:
    """ESM encoder + MLM head (NT v1 checkpoints are EsmForMaskedLM) and NT's vocab.txt layout."""
    from transformers import EsmConfig, EsmForMaskedLM

    k = int(shape.pop("k", 6))
    vocabulary = nt_vocabulary(k)
    max_tokens = int(shape.pop("max_tokens", 256))
    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    position_embedding_type="absolute", token_dropout=False, emb_layer_norm_before=False)
    settings.update(shape)
    config = EsmConfig(vocab_size=len(vocabulary), pad_token_id=vocabulary.index("<pad>"),
                       mask_token_id=vocabulary.index("<mask>"), max_position_embeddings=max_tokens + 2,
                       launcher_stand_in=STAND_IN_NOTE, **settings)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    return EsmForMaskedLM(config)


def _write_patchtst(folder: Path, shape: dict[str, Any]) -> Any:
    from transformers import PatchTSTConfig, PatchTSTForPrediction

    settings = dict(num_input_channels=1, context_length=512, prediction_length=96, patch_length=16,
                    patch_stride=8, d_model=32, num_attention_heads=4, num_hidden_layers=2, ffn_dim=64)
    settings.update(shape)
    return PatchTSTForPrediction(PatchTSTConfig(launcher_stand_in=STAND_IN_NOTE, **settings))


def _write_patchtsmixer(folder: Path, shape: dict[str, Any]) -> Any:
    from transformers import PatchTSMixerConfig, PatchTSMixerForPrediction

    settings = dict(num_input_channels=1, context_length=512, prediction_length=96, patch_length=16,
                    patch_stride=8, d_model=16, num_layers=2)
    settings.update(shape)
    return PatchTSMixerForPrediction(PatchTSMixerConfig(launcher_stand_in=STAND_IN_NOTE, **settings))


def _write_vit(folder: Path, shape: dict[str, Any]) -> Any:
    """An encoder-only RGB ViT, the layout of google/vit-base-patch16-224-in21k (no classifier)."""
    from transformers import ViTConfig, ViTModel

    settings = dict(image_size=64, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64)
    settings.update(shape)
    return ViTModel(ViTConfig(launcher_stand_in=STAND_IN_NOTE, **settings))


_WRITERS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {
    "nucleotide_transformer": _write_nucleotide_transformer,
    "patchtst": _write_patchtst,
    "patchtsmixer": _write_patchtsmixer,
    "vit": _write_vit,
    "satmae": _write_vit,
    "scalemae": _write_vit,
    "croma": _write_vit,
    "hyenadna": tiny_remote_code.write_model,
}
TINY_KINDS = tuple(_WRITERS)


def write_tiny_checkpoint(kind: str, folder: str | Path, **shape: Any) -> Path:
    """Save a random-init stand-in of adapter `kind` in `folder`; `shape` overrides config fields."""
    if kind not in _WRITERS:
        raise ValueError(f"no tiny checkpoint for {kind!r}: known kinds are {', '.join(TINY_KINDS)}")
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(shape.pop("seed", 0)))
    model = _WRITERS[kind](folder, dict(shape))
    model.save_pretrained(folder)
    n_parameters = sum(p.numel() for p in model.parameters())
    stands_for = _public_model_id(kind)
    (folder / "README.txt").write_text(
        f"STAND-IN CHECKPOINT: {STAND_IN_NOTE}.\n\n"
        f"A tiny randomly initialised '{kind}' checkpoint ({n_parameters:,} parameters) written by "
        f"models.fm.tiny for offline tests and CPU sweeps.\nIt has the layout of {stands_for} but none of "
        f"its weights: scores obtained with it say nothing about that FM.\nShape: {json.dumps(shape)}\n")
    return folder


def _public_model_id(kind: str) -> str:
    return ADAPTERS[kind].public_model_id if kind in ADAPTERS else kind


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.fm.tiny", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=TINY_KINDS)
    parser.add_argument("folder", type=Path)
    parser.add_argument("shape", nargs="*", help="config overrides as key=value (JSON values)")
    args = parser.parse_args(argv)
    shape = {}
    for item in args.shape:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"shape overrides are key=value, got {item!r}")
        shape[key] = _parse_value(value)
    folder = write_tiny_checkpoint(args.kind, args.folder, **shape)
    print(f"wrote a {args.kind} stand-in ({STAND_IN_NOTE}) to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
