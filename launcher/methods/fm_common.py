"""What the FM methods (`finetune`, `zeroshot`) share: the task head a task needs, and the checkpoint folder.

A method names an adapter (`models.fm.base.ADAPTERS`) and either a local checkpoint folder or
`stand_in: tiny`. A stand-in is a tiny RANDOMLY INITIALISED checkpoint of the adapter's architecture
(`models.fm.tiny`), written on demand into the sweep's cache so a CPU sweep runs from a fresh clone,
offline, with no manual step. Its scores say nothing about the pretrained FM: every result that used
one carries `STAND_IN_LABEL` in its notes, which the report prints under the column.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

STAND_IN_LABEL = "random-init stand-in, not the pretrained FM"
STAND_IN_MODES = ("none", "tiny")
# The adapter `finetune` uses when a sweep names none: the paper's FM family of each domain.
DEFAULT_ADAPTERS = {"forecasting": "patchtst", "genomics": "nucleotide_transformer", "satellite": "vit"}


# Adapter names the FM methods accept (written out, not imported from models.fm: validation stays light).
FINETUNE_ADAPTERS = ("nucleotide_transformer", "dnabert2", "hyenadna", "caduceus", "patchtst", "patchtsmixer",
                     "vit", "satmae", "scalemae", "croma")
ZEROSHOT_ADAPTERS = ("fracast", "patchtst", "patchtsmixer", "chronos")


def adapter_problem(ref: str | None, builtin: tuple[str, ...]) -> str | None:
    """Why `ref` cannot serve as this method's FM adapter (None: it can). A built-in name, the name an
    installed plugin registers (entry points `launcher.adapters`), or an import path `pkg.module:Class`
    of a models.fm.base.FMAdapter subclass with `from_pretrained`."""
    if ref is None or ref in builtin:
        return None
    if ":" not in ref:
        from importlib.metadata import entry_points

        plugins = sorted(ep.name for ep in entry_points(group="launcher.adapters"))
        if ref in plugins:
            return None
        return (f"unknown FM adapter {ref!r}; known: {', '.join([*builtin, *plugins])}, or an import path "
                f"such as my_pkg.fm:MyAdapter")
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        return f"adapter {ref!r}: expected an import path 'package.module:Class'"
    import importlib

    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        return f"adapter {ref!r}: module {e.name!r} is not importable (install the package, or put it on PYTHONPATH)"
    except Exception as e:
        return f"adapter {ref!r}: importing {module_name} raised {type(e).__name__}: {e}"
    for part in attr.split("."):
        if not hasattr(found, part):
            return f"adapter {ref!r}: {module_name} has no attribute {attr!r}"
        found = getattr(found, part)
    if not isinstance(found, type):
        return f"adapter {ref!r} is a {type(found).__name__}, not an adapter class"
    if not callable(getattr(found, "from_pretrained", None)):
        return f"adapter {ref!r} ({found.__name__}) has no from_pretrained(folder, task_head_spec, ...) classmethod"
    from models.fm.base import FMAdapter

    if not issubclass(found, FMAdapter):
        return f"adapter {ref!r} ({found.__name__}) is not a subclass of models.fm.base.FMAdapter"
    return None


class AdapterChecks:
    """The checks the FM methods share, mixed in before their base class: the adapter reference (a built-in
    of `builtin_adapters`, a plugin's, or an import path) and, before any trial runs, its checkpoint folder."""

    builtin_adapters: tuple[str, ...] = ()

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, str]:
        problem = adapter_problem(params.get("adapter"), cls.builtin_adapters)
        return {"adapter": problem} if problem else {}

    @classmethod
    def preflight_problems(cls, params: dict[str, Any], domain: str) -> list[str]:
        problem = checkpoint_problem(params, domain)
        return [problem] if problem else []


def checkpoint_problem(params: dict[str, Any], domain: str) -> str | None:
    """Why the row's FM checkpoint cannot load (with the exact fetch command), found before any trial runs;
    None when it can, when a stand-in is written on demand, or when the trial may download it."""
    if params.get("stand_in", "none") != "none" or params.get("allow_download"):
        return None
    adapter = params.get("adapter") or DEFAULT_ADAPTERS[domain]
    if not params.get("checkpoint"):
        if adapter == "fracast":
            return None                           # the weights bundled in the fracast wheel
        return (f"adapter {adapter!r} needs `checkpoint`: the local folder holding the public checkpoint "
                f"(README, 'Foundation models'), or `stand_in: tiny` for a labelled random-init stand-in")
    from models.fm.base import ADAPTERS
    from models.fm.checkpoint import FMCheckpointError

    cls = ADAPTERS[adapter]
    folder = Path(params["checkpoint"]).expanduser()
    problems = cls.checkpoint_problems(folder, {})
    if not problems:
        return None
    return str(FMCheckpointError(folder, cls.public_model_id, problems, cls.fetch_note))


def task_domain(task: Any) -> str:
    """forecasting | genomics | satellite (classification tasks carry their domain; forecast tasks do not)."""
    return getattr(task, "domain", "forecasting")


def with_adapter(params: dict[str, Any], task: Any) -> dict[str, Any]:
    """`params` with `adapter` filled in: null means the domain's default FM."""
    return {**params, "adapter": params.get("adapter") or DEFAULT_ADAPTERS[task_domain(task)]}


def head_spec_for(task: Any):
    """The adapter task head (`models.fm.base`) that `task` needs."""
    from models.fm.base import Forecasting, ImageClassification, SequenceClassification

    domain = task_domain(task)
    if domain == "forecasting":
        return Forecasting(int(task.context), int(task.horizon))
    if domain == "genomics":
        return SequenceClassification(int(task.n_classes))
    if domain == "satellite":
        return ImageClassification(int(task.n_classes), int(task.x_train.shape[1]))
    raise ValueError(f"FM methods do not know the task domain {domain!r}")


def stand_in_shape(adapter: str, task: Any) -> dict[str, Any]:
    """Config overrides that fit the tiny stand-in to the task, so nothing is re-initialised for shape."""
    domain = task_domain(task)
    if domain == "forecasting":
        # Long, non-overlapping patches (about 8 per context): a CPU trains it in seconds. The public
        # PatchTST's 16/8 patches would make a 512-step context 63 tokens, ~8x slower, for no insight.
        patch = max(8, int(task.context) // 8)
        return {"context_length": int(task.context), "prediction_length": int(task.horizon),
                "patch_length": patch, "patch_stride": patch}
    if adapter == "nucleotide_transformer":
        # Worst case one token per base (N and leftovers are single tokens), plus <cls>.
        return {"max_tokens": int(task.x_train.shape[-1]) + 2}
    if domain == "satellite":
        return {"image_size": int(task.x_train.shape[-1])}   # 3 RGB bands, as the public ViT; the adapter repeats them
    return {}


def stand_in_folder(adapter: str, task: Any, root: Path) -> Path:
    """Write (once) and return the tiny stand-in of `adapter` for `task` under `root`.

    Trials of one sweep share it: it is written to a private temporary folder and renamed into place,
    so concurrent trials never see half a checkpoint; whoever renames second drops its own copy (the
    writer is seeded, so both copies are identical).
    """
    import torch

    from models.fm import tiny

    if adapter not in tiny.TINY_KINDS:
        raise ValueError(f"stand_in: tiny is not available for adapter {adapter!r}; tiny stand-ins exist for "
                         f"{', '.join(tiny.TINY_KINDS)}")
    shape = stand_in_shape(adapter, task)
    key = hashlib.sha1(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root) / "fm_stand_ins" / f"{adapter}-{key}"
    if (folder / "README.txt").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    with torch.random.fork_rng(devices=[]):      # the writer seeds torch; keep the caller's RNG as it was
        tiny.write_tiny_checkpoint(adapter, staging, **shape)
    try:
        staging.rename(folder)
    except OSError:                               # another trial was first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_checkpoint(params: dict[str, Any], task: Any, cache_root: Path) -> tuple[Path | None, list[str]]:
    """(folder to load, notes) from the method params `adapter`, `checkpoint`, `stand_in`."""
    if params["stand_in"] not in STAND_IN_MODES:
        raise ValueError(f"stand_in must be one of {', '.join(STAND_IN_MODES)}, got {params['stand_in']!r}")
    if params["stand_in"] == "tiny":
        if params.get("checkpoint"):
            raise ValueError("give either checkpoint (a pretrained FM folder) or stand_in: tiny, not both")
        folder = stand_in_folder(params["adapter"], task, cache_root)
        return folder, [f"{params['adapter']}: {STAND_IN_LABEL} (tiny random-init checkpoint written by "
                        f"models.fm.tiny; its scores say nothing about the FM)"]
    if not params.get("checkpoint"):
        if params["adapter"] == "fracast":
            return None, []                       # the weights bundled in the fracast wheel
        raise ValueError(f"adapter {params['adapter']!r} needs `checkpoint`: the local folder holding the "
                         f"public checkpoint (see README, 'Foundation models'), or `stand_in: tiny` for a "
                         f"random-init stand-in")
    return Path(params["checkpoint"]).expanduser(), []


def load_fm(params: dict[str, Any], task: Any, folder: Path | None, **adapter_options: Any):
    """Load the adapter named by params on `folder` with the head `task` needs.

    `trust_remote_code` reaches an adapter only when the sweep says `trust_remote_code: true` (for a
    checkpoint folder the user has read). A stand-in lives in the sweep's cache, which others may be
    able to write, so nothing in it may run: the remote-code DNA stand-in is built from the installed
    classes of `models.fm.tiny_remote_code`, reading only config.json and safetensors weights.
    """
    from models.fm.base import ADAPTERS

    if params["stand_in"] == "tiny" and params["adapter"] == "hyenadna":
        from models.fm.tiny_remote_code import TinyDNAStandInAdapter

        return TinyDNAStandInAdapter.from_pretrained(folder, head_spec_for(task), **adapter_options)
    options: dict[str, Any] = {"allow_download": bool(params.get("allow_download", False)), **adapter_options}
    if params.get("trust_remote_code"):
        options["trust_remote_code"] = True
    return ADAPTERS[params["adapter"]].from_pretrained(folder, head_spec_for(task), **options)


def adapter_notes(adapter: Any) -> list[str]:
    """Caveats the adapter carries (e.g. pretraining leakage) and what loading re-initialised."""
    notes = [str(n) for n in getattr(adapter, "notes", ())]
    reinitialised = sorted(set(adapter.loading_info.get("missing", [])) | set(adapter.loading_info.get("mismatched", [])))
    if reinitialised and not adapter.is_stand_in:
        shown = ", ".join(reinitialised[:4]) + (f" and {len(reinitialised) - 4} more" if len(reinitialised) > 4 else "")
        notes.append(f"{adapter.name}: {len(reinitialised)} tensors not in the checkpoint were freshly initialised "
                     f"({shown})")
    return notes
