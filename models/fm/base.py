"""The foundation-model (FM) adapter interface: load, size, train and call every FM the same way.

An adapter wraps one pretrained checkpoint that lives in a LOCAL folder in Hugging Face format
(config.json + model.safetensors / pytorch_model.bin, possibly sharded with an index file) and puts
one task head on it. Nothing is downloaded unless the caller passes `allow_download=True`; a missing
or incomplete folder raises `FMCheckpointError`, whose one message names the folder, the public model
id and the command that fetches it.

Task heads (`task_head_spec`) and the `forward` contract of each:

- `SequenceClassification(n_classes)`: genomics. `forward(x)` takes the task library's one-hot
  float tensor x of shape (B, 5, L) over the symbols A, C, G, T, N (channel order fixed, see
  `models.fm.dna`); all-zero columns are padding and are dropped. Adapters whose FM reads tokens
  convert one-hot -> string -> tokens inside `forward`. Returns logits (B, n_classes), float32.
- `ImageClassification(n_classes, in_channels)`: satellite. `forward(x)` takes x (B, in_channels,
  H, W) float, already normalized by the task; H and W may differ from the checkpoint's image size
  (position embeddings are interpolated). Returns logits (B, n_classes).
- `Forecasting(context, horizon)`: time series. `forward(x)` takes x (B, context) univariate rows
  (the task library's samples: every channel of every window is one row) or (B, context, C); the
  models are channel-independent, so channels are folded into the batch. Returns (B, horizon) or
  (B, horizon, C) point forecasts in the input's units.

Training modes (`trainable_groups(mode)`): "head" trains only the task head, "full" trains
everything, "lora" injects LoRA matrices (needs `peft`) into the backbone layers each adapter names
(the attention query/value projections; PatchTSMixer's MLPs) and trains them plus the head.
Parameters the architecture keeps fixed (e.g. PatchTST's sinusoidal position table) are never
switched on. Checkpoint folders are checked by `models.fm.checkpoint`.

The registry `ADAPTERS` maps a name to its adapter class and imports the module only when asked,
so `import models.fm.base` does not import transformers.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Union

from torch import nn

from .checkpoint import FMCheckpointError, download_checkpoint, hf_checkpoint_problems, read_config

TRAINING_MODES = ("head", "full", "lora")


class FMUnavailableError(ImportError):
    """An optional package that this adapter or mode needs is not installed."""


class UnknownAdapterError(KeyError):
    """No adapter is registered under that name."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class SequenceClassification:
    """Genomics head: one label per DNA sequence."""
    n_classes: int

    def __post_init__(self):
        _require_positive(n_classes=self.n_classes)


@dataclass(frozen=True)
class ImageClassification:
    """Satellite head: one label per multispectral patch with `in_channels` bands."""
    n_classes: int
    in_channels: int

    def __post_init__(self):
        _require_positive(n_classes=self.n_classes, in_channels=self.in_channels)


@dataclass(frozen=True)
class Forecasting:
    """Time-series head: `context` past steps -> `horizon` future steps."""
    context: int
    horizon: int

    def __post_init__(self):
        _require_positive(context=self.context, horizon=self.horizon)


TaskHeadSpec = Union[SequenceClassification, ImageClassification, Forecasting]


def _require_positive(**values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


class ParameterCount(NamedTuple):
    total: int
    trainable: int


# ----------------------------------------------------------------------------- the adapter

class FMAdapter(nn.Module):
    """One pretrained FM with one task head. Subclasses implement `_load`, `backbone`, `head`, `forward`."""

    name: ClassVar[str] = ""
    public_model_id: ClassVar[str] = ""
    head_specs: ClassVar[tuple[type, ...]] = ()
    expected_model_types: ClassVar[tuple[str, ...]] = ()   # config.json model_type values accepted
    required_files: ClassVar[tuple[str, ...]] = ()          # besides config.json and the weights
    lora_target_modules: ClassVar[tuple[str, ...]] = ()     # module-name suffixes LoRA wraps
    fetch_note: ClassVar[str] = ""                          # added to FMCheckpointError (e.g. "convert first")

    def __init__(self, spec: TaskHeadSpec, folder: Path | None):
        super().__init__()
        self.spec = spec
        self.folder = folder
        self.loading_info: dict[str, list[str]] = {}
        self._fixed_parameter_ids: set[int] = set()
        self._lora_settings: dict[str, Any] | None = None

    # -- loading

    @classmethod
    def from_pretrained(cls, folder: str | Path, task_head_spec: TaskHeadSpec, *, model_id: str | None = None,
                        allow_download: bool = False, **options: Any) -> "FMAdapter":
        """Load the checkpoint in `folder` and build the head that `task_head_spec` describes."""
        if not isinstance(task_head_spec, cls.head_specs):
            accepted = ", ".join(t.__name__ for t in cls.head_specs)
            raise TypeError(f"adapter {cls.name!r} builds {accepted} heads, got {type(task_head_spec).__name__}")
        cls.check_dependencies()
        folder = Path(folder).expanduser()
        model_id = model_id or cls.public_model_id
        problems = cls.checkpoint_problems(folder, options)
        if problems and allow_download:
            download_checkpoint(model_id, folder)
            problems = cls.checkpoint_problems(folder, options)
        if problems:
            raise FMCheckpointError(folder, model_id, problems, cls.fetch_note)
        adapter = cls._load(folder, task_head_spec, **options)
        # What the architecture keeps fixed (e.g. sinusoidal tables) stays frozen in every mode.
        fixed = [p for p in adapter.parameters() if not p.requires_grad] + list(adapter._fixed_parameters())
        for param in fixed:
            param.requires_grad_(False)
        adapter._fixed_parameter_ids = {id(p) for p in fixed}
        return adapter

    def _fixed_parameters(self) -> list[nn.Parameter]:
        """Parameters the architecture never trains; HF loading turns requires_grad back on, so name them."""
        return []

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise FMUnavailableError when an optional package the adapter needs is missing."""

    @classmethod
    def checkpoint_problems(cls, folder: Path, options: dict[str, Any]) -> list[str]:
        """What keeps `folder` from loading; adapters with other file layouts override this."""
        problems = hf_checkpoint_problems(folder, cls.required_files)
        config_readable = folder.is_dir() and not any(p.startswith("config.json") for p in problems)
        if config_readable and cls.expected_model_types:
            model_type = read_config(folder).get("model_type")
            if model_type not in cls.expected_model_types:
                # First: a folder of another model explains every other missing file.
                problems.insert(0, f"config.json has model_type {model_type!r}, adapter {cls.name!r} "
                                   f"expects {' or '.join(map(repr, cls.expected_model_types))}")
        return problems

    @classmethod
    def _load(cls, folder: Path, spec: TaskHeadSpec, **options: Any) -> "FMAdapter":
        raise NotImplementedError

    # -- structure

    @property
    def backbone(self) -> nn.Module:
        raise NotImplementedError

    @property
    def head(self) -> nn.Module:
        raise NotImplementedError

    @property
    def is_stand_in(self) -> bool:
        """True for the random-init checkpoints of `models.fm.tiny` (never report them as the FM)."""
        return self.folder is not None and (self.folder / "README.txt").is_file() and \
            bool(read_config(self.folder).get("launcher_stand_in"))

    # -- parameters and training modes

    def n_parameters(self) -> ParameterCount:
        """Total parameters and those with requires_grad under the current mode."""
        params = list(self.parameters())
        return ParameterCount(sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))

    def trainable_groups(self, mode: str, *, lora_rank: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
                         lora_targets: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Set requires_grad for `mode` and return optimizer parameter groups named head/backbone/lora.

        Each group is {"name": ..., "params": [...]}, ready for torch.optim (callers may add "lr").
        LoRA, once injected, stays in the module: "full" then trains it too, "head" freezes it.
        """
        if mode not in TRAINING_MODES:
            close = difflib.get_close_matches(str(mode), TRAINING_MODES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown training mode {mode!r}: expected one of {', '.join(TRAINING_MODES)}{hint}")
        if mode == "lora":
            self._inject_lora(lora_rank, lora_alpha, lora_dropout, lora_targets)
        head_ids = {id(p) for p in self.head.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"head": [], "backbone": [], "lora": []}
        for name, param in self.named_parameters():
            if id(param) in self._fixed_parameter_ids:
                param.requires_grad_(False)
                continue
            if id(param) in head_ids:
                group, train = "head", True
            elif "lora_" in name:
                group, train = "lora", mode in ("lora", "full")
            else:
                group, train = "backbone", mode == "full"
            param.requires_grad_(train)
            if train:
                groups[group].append(param)
        return [{"name": name, "params": params} for name, params in groups.items() if params]

    def _inject_lora(self, rank: int, alpha: int, dropout: float, targets: tuple[str, ...] | None) -> None:
        targets = tuple(targets or self.lora_target_modules)
        settings = {"r": rank, "lora_alpha": alpha, "lora_dropout": dropout, "target_modules": targets}
        if self._lora_settings is not None:
            if settings != self._lora_settings:
                raise ValueError(f"LoRA is already injected with {self._lora_settings}; load the adapter "
                                 f"again to use {settings}")
            return
        try:
            import peft
        except ImportError as exc:
            raise FMUnavailableError("training mode 'lora' needs the 'peft' package: pip install peft") from exc
        if not targets:
            raise ValueError(f"adapter {self.name!r} declares no LoRA target modules: pass lora_targets=(...)")
        config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets))
        peft.inject_adapter_in_model(config, self.backbone)
        self._lora_settings = settings


# ----------------------------------------------------------------------------- registry

_ADAPTER_PATHS = {
    "nucleotide_transformer": "models.fm.nucleotide_transformer:NucleotideTransformerAdapter",
    "dnabert2": "models.fm.nucleotide_transformer:DNABERT2Adapter",
    "hyenadna": "models.fm.nucleotide_transformer:HyenaDNAAdapter",
    "caduceus": "models.fm.nucleotide_transformer:CaduceusAdapter",
    "patchtst": "models.fm.patchtst:PatchTSTAdapter",
    "patchtsmixer": "models.fm.patchtst:PatchTSMixerAdapter",
    "chronos": "models.fm.patchtst:ChronosAdapter",
    "vit": "models.fm.vit:ViTAdapter",
    "satmae": "models.fm.vit:SatMAEAdapter",
    "scalemae": "models.fm.vit:ScaleMAEAdapter",
    "croma": "models.fm.vit:CROMAAdapter",
    "fracast": "models.fm.fracast_adapter:FracastAdapter",
}


ENTRY_POINT_GROUP = "launcher.adapters"   # installed packages register their adapters here


def plugin_adapter_paths() -> dict[str, str]:
    """name -> "module:Class" of the adapters installed packages register as entry points."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_adapter_class(path: str) -> type[FMAdapter]:
    """The adapter class an import path `package.module:Class` names; TypeError when it is not one."""
    module_name, _, class_name = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in class_name.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, FMAdapter)):
        raise TypeError(f"{path} is not a subclass of models.fm.base.FMAdapter")
    return found


class AdapterRegistry(Mapping):
    """name -> adapter class; the adapter's module is imported on first access. Built-in adapters,
    those of installed plugins (entry points `launcher.adapters`), and any `package.module:Class` path."""

    def __init__(self, paths: dict[str, str]):
        self._builtin = dict(paths)
        self._loaded: dict[str, str] | None = None

    @property
    def _paths(self) -> dict[str, str]:
        if self._loaded is None:
            self._loaded = {**plugin_adapter_paths(), **self._builtin}
        return self._loaded

    def __getitem__(self, name: str) -> type[FMAdapter]:
        if ":" in str(name):
            return load_adapter_class(name)
        if name not in self._paths:
            close = difflib.get_close_matches(str(name), self._paths, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownAdapterError(f"unknown FM adapter {name!r}: known adapters are "
                                      f"{', '.join(sorted(self._paths))}{hint}")
        return load_adapter_class(self._paths[name])

    def __contains__(self, name: object) -> bool:   # without importing the adapter's module
        return name in self._paths or ":" in str(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


ADAPTERS = AdapterRegistry(_ADAPTER_PATHS)


def load_adapter(name: str, folder: str | Path, task_head_spec: TaskHeadSpec, **options: Any) -> FMAdapter:
    """`ADAPTERS[name].from_pretrained(folder, task_head_spec, **options)`."""
    return ADAPTERS[name].from_pretrained(folder, task_head_spec, **options)
