"""Local checkpoint folders in Hugging Face format: what is missing, reading, and the explicit download.

A usable folder holds config.json and the weights (model.safetensors or pytorch_model.bin, or a
sharded index with every shard present, none of them a Git LFS pointer stub), plus whatever files
an adapter needs besides (NT's vocab.txt, remote code). Every problem is collected, so one
`FMCheckpointError` can name them all with the folder, the public model id and the fetch command.
Nothing here downloads unless `download_checkpoint` is called, which only `from_pretrained(...,
allow_download=True)` does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_LFS_POINTER_PREFIX = b"version https://git-lfs"


class FMCheckpointError(FileNotFoundError):
    """A checkpoint folder is missing, incomplete or holds another kind of model."""

    def __init__(self, folder: str | Path, model_id: str, problems: list[str], note: str = ""):
        self.folder = Path(folder)
        self.model_id = model_id
        self.problems = list(problems)
        super().__init__(
            f"checkpoint folder {self.folder} is not usable: {'; '.join(self.problems)}. "
            f"It should hold the public checkpoint {model_id!r}: fetch it with "
            f"`hf download {model_id} --local-dir {self.folder}` (older huggingface_hub: "
            f"`huggingface-cli download {model_id} --local-dir {self.folder}`), "
            f"or pass allow_download=True to from_pretrained" + (f". Note: {note}" if note else "")
        )


def _is_lfs_pointer(path: Path) -> bool:
    # A clone without git-lfs leaves ~130-byte text stubs in place of the weights.
    if path.stat().st_size > 1024:
        return False
    with path.open("rb") as handle:
        return handle.read(len(_LFS_POINTER_PREFIX)) == _LFS_POINTER_PREFIX


def hf_weight_problems(folder: Path) -> list[str]:
    """What is wrong with the weight files of an HF folder (empty list: complete)."""
    for index_name in HF_INDEX_FILES:
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError):
                return [f"{index_name} is not a valid index (no weight_map)"]
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                return [f"weight shards listed in {index_name} are missing: {', '.join(missing)}"]
            return [f"{s} is a Git LFS pointer, not the weights" for s in shards if _is_lfs_pointer(folder / s)]
    for name in HF_WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            return [f"{name} is a Git LFS pointer, not the weights"] if _is_lfs_pointer(path) else []
    return [f"no weights ({' or '.join(HF_WEIGHT_FILES)}, or a sharded index)"]


def summarize_loading_info(info: dict[str, Any]) -> dict[str, list[str]]:
    """transformers' output_loading_info -> {missing, unexpected, mismatched: [parameter names]}.

    `missing` and `mismatched` parameters were freshly initialised (e.g. a new head).
    """
    def names(items: Any) -> list[str]:
        return sorted(str(item[0] if isinstance(item, tuple) else item) for item in items or ())

    return {"missing": names(info.get("missing_keys")), "unexpected": names(info.get("unexpected_keys")),
            "mismatched": names(info.get("mismatched_keys"))}


def read_config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "config.json").read_text())


def hf_checkpoint_problems(folder: Path, extra_files: tuple[str, ...] = (), weights: bool = True) -> list[str]:
    """Everything missing from an HF checkpoint folder, so one error can list it all."""
    if not folder.is_dir():
        return ["the folder does not exist"]
    problems = []
    config = folder / "config.json"
    if not config.is_file():
        problems.append("config.json is missing")
    else:
        try:
            read_config(folder)
        except ValueError:
            problems.append("config.json is not valid JSON")
    if weights:
        problems.extend(hf_weight_problems(folder))
    problems.extend(f"{name} is missing" for name in extra_files if not (folder / name).is_file())
    return problems


def download_checkpoint(model_id: str, folder: Path) -> None:
    """Fetch `model_id` into `folder` (only ever called when the caller allowed it)."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=model_id, local_dir=str(folder))


def read_checkpoint_tensor(folder: Path, names: tuple[str, ...]) -> torch.Tensor | None:
    """The first tensor among `names` stored in the folder's weights (any HF layout), else None."""
    files = []
    for index_name in HF_INDEX_FILES:
        if (folder / index_name).is_file():
            weight_map = json.loads((folder / index_name).read_text())["weight_map"]
            files = [folder / weight_map[n] for n in names if n in weight_map]
            break
    else:
        files = [folder / n for n in HF_WEIGHT_FILES if (folder / n).is_file()]
    for path in files:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                for name in names:
                    if name in handle.keys():
                        return handle.get_tensor(name)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            for name in names:
                if name in state:
                    return state[name]
    return None
