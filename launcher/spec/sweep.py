"""Sweep spec: one YAML file -> a typed, validated, frozen `SweepSpec`.

Nothing is submitted before the whole file validates. Every problem raises `SpecError` whose text
names the file, the 1-based line, the key path and what was expected, e.g.

    sweeps/timeseries.yaml:12: methods.autoar.max_dif: unknown key. Did you mean 'max_diff'? ...

The file is read with `yaml.compose` (so every value keeps its line) and walked node by node;
duplicate keys are an error (plain YAML silently keeps the last one).

Schema (defaults in brackets)
-----------------------------

    name: timeseries            # required; [A-Za-z0-9][A-Za-z0-9_.-]*, at most 100 characters;
                                #   the MLflow experiment name and the default output folder
    description: "..."          # optional str [""]
    out: runs/timeseries        # optional [runs/<name>]; relative -> current working directory;
                                #   a folder (or none yet), never an existing file
    data_root: null             # optional folder; relative -> the YAML file's folder; must exist. Every
                                #   domain looks for its files in data_root/ and data_root/<domain>/
                                #   (forecasting, genomics, satellite), then in $LAUNCHER_DATA_ROOT likewise
    seeds: [0]                  # optional non-empty list of distinct non-negative ints [[0]]
    tasks:                      # required, non-empty list
      - dataset: ETTh1          # required; a key of tasks.timeseries.DATASETS, a genomics or satellite
                                #   task (tasks.registry), or any name with `path` (your own CSV)
        horizons: [96, 192]     # optional [the dataset's .horizons]; distinct ints in [1, 10**6];
                                #   required for your own CSV
        context: 512            # optional [the dataset's .context; your own CSV: 336, or its training
                                #   rows if fewer]; int in [8, 10**6]; must hold seasonal_naive's period
                                #   and autoar's lags (p <= context - max_diff)
        path: null              # optional data file (or folder); relative -> the YAML file's folder, then
                                #   data_root/ and data_root/<domain>/; must exist. A genomics task's
                                #   path may be one table (csv/tsv/parquet) of many tasks: its rows whose
                                #   `task` column is the dataset name are read
        # Forecasting only; with any of these, or with a name that is not built in, the file is read
        # while the sweep is validated, and every problem names this row:
        date_column: date       # optional [built-in: 'date'; your own CSV: the first column if its
                                #   cells parse as dates, else none]; a header name
        target_channels: [OT]   # optional [every numeric column]; distinct header names
        split: {ratios: [0.7, 0.1, 0.2]}   # optional [the dataset's protocol; your own CSV: 70/10/20];
                                #   or {dates: [val_start, test_start]} (ISO dates, in order): rows
                                #   before val_start train, before test_start val, the rest test
        freq: 24                # optional [the dataset's season; your own CSV: none]; the season in
                                #   steps that seasonal_naive and auto_arima repeat (seasonal_naive
                                #   needs it, or its `period`, on your own CSV)
    methods:                    # required, non-empty mapping: row name -> params (or null / {})
      autoar: {max_diff: 2}     # params are declared on the method's class (`launcher methods` lists
      naive: {}                 #   them) and checked: kind, range, choices; defaults are filled in
      dlinear:                  # a method trained in epochs (an EpochMethod) is tuned:
        batch_size: 64          #   the params given are fixed for every trial, and
        space:                  #   `space` (a reserved key) maps param -> domain to search
          lr: {log: [1e-5, 1e-1]}           # log-uniform, 0 < low < high
          weight_decay: {float: [0, 0.01]}  # uniform, low < high
          moving_avg: {int: [5, 49]}        # integers, low < high, both included
          seed: {choice: [0, 1, 2]}         # one of a non-empty list of values
      wrn: {method: backbone, arch: wrn}    # named rows: `method` (reserved) says what runs, the row's
      unet: {method: backbone, arch: unet}  #   name labels its report column; several rows per method
      mine: {method: my_pkg.fm:MyMethod}    # a class by import path (a Method/EpochMethod subclass)
        # reserved keys beside the params: method, space, distributed {strategy, zero_stage, ranks}
        # (only strategies the method declares), resources (SLURM overrides), epoch_minutes (a number
        # > 0, at most 10**6: minutes one epoch of this row takes, for `--dry-run`'s expected GPU-hours;
        # one-shot methods: minutes per run; a planning figure only, not recorded in sweep.json)
    executor:                   # optional mapping
      backend: local            # [local]; one of BACKENDS: inline, local, slurm, simulated (a FAKE
                                #   cluster for benchmarks: nothing trains, see executor.simulated)
      workers: 2                # [2]; int >= 1
      timeout_min: 60           # [60]; int >= 1
    tracking:                   # optional mapping
      uri: null                 # [sqlite:///<out>/mlflow.db]; sqlite:///path, http(s)://host[:port][/path],
                                #   file:///absolute/folder
                                #   or a plain path (made absolute against the working directory,
                                #   as is a relative sqlite:///file.db)
    report:                     # optional mapping
      baseline: naive           # optional; one of this sweep's methods
    search:                     # optional mapping: how tuned methods are searched
      preset: null              # optional; "dasha" (the DASHA parity preset) changes the defaults
                                #   below to trials 120, scheduler asha eta 2 grace 1 max_epochs 20;
                                #   keys given explicitly still override it
      optimizer: TwoPointsDE_LHS  # [launcher.spec.space.DEFAULT_OPTIMIZER]; a Nevergrad optimizer name
                                #   (any of launcher.spec.space.optimizer_names())
      trials: 20                # [20]; configurations per study, int >= 1
      epoch_budget: null        # optional int >= 1: cap on the total epochs one study trains
      random_control: false     # [false]; also run a RandomSearch arm with the same budget
      max_failure_rate: 0.5     # [0.5]; number in [0, 1]: the sweep pauses (resumable) when
                                #   failed / ended trials exceeds it
      seed: 0                   # [0]; optimizer seed, int >= 0
      scheduler:                # optional mapping
        type: asha              # [asha]; one of SCHEDULER_TYPES: asha, none (none: every trial
                                #   trains straight to max_epochs)
        eta: 2                  # [2]; int >= 2: ASHA keeps 1/eta of the trials at each rung
        grace: 1                # [1]; int >= 1: epochs of the first rung, < max_epochs (asha)
        max_epochs: 20          # [20]; int >= 1

A tuned method's `space` defaults to its class's `default_space` less the params the file
fixes; `space: {}` searches nothing (the fixed params, one trial per seed). A param may not be both
fixed and in a written `space`. Each domain is checked by `launcher.spec.space.parse_domain`, and its
bounds or choices as values of the param: an int param takes `int` or `choice` domains, a float
param any, other kinds only `choice`. Methods that are not tuned take no `space`.

Bounds (launcher.spec.types): an integer without a stated maximum is at most 10**9; horizons,
context, workers, timeout_min, ranks, trials, epoch_budget, final_epochs, the scheduler's ints and
every `epochs` param at most 10**6; seeds (`seeds`, search.seed, seed params) at most 2**31 - 1.
A string is at most 6000 characters (MLflow's limit on a param value) and holds no NUL; a path at
most 4096, with no name in it over 255 bytes. The YAML may nest at most 64 levels and expand
(through aliases) to at most 10,000 values.

An optional key (or section) set to null is the same as leaving it out. Method params of kind
`path` resolve against the YAML file's folder (they need not exist); `float` params accept ints
and plain scalars such as `1e-3` (which YAML 1.1 reads as a string). String-valued keys accept an
unquoted number or date by its source text (`name: 2024` is the name "2024"); booleans and null
are never taken for strings (YAML reads yes/no/on/off as booleans).

Command-line overrides (`load_sweep(path, overrides={"executor.backend": "inline"})`) are dotted
key paths (list items by index: `tasks.0.context`) set in the raw mapping before validation, so
they are checked exactly like the file; their errors say "command line" instead of file:line.
A string override value is read as a YAML value ("4" -> 4, "[0, 1]" -> a list, "null" -> null);
relative paths given on the command line resolve against the working directory.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Mapping

BACKENDS: tuple[str, ...] = ("inline", "local", "slurm", "simulated")

TOP_KEYS = ("name", "description", "out", "data_root", "seeds", "tasks", "methods", "executor",
            "tracking", "report", "search")
TASK_KEYS = ("dataset", "task", "horizons", "context", "path", "max_train", "val_fraction", "date_column",
             "target_channels", "split", "freq")
# Keys of a forecasting task read from its file ("your own data"): with any of them the file is read at validation.
USER_DATA_TASK_KEYS = ("date_column", "target_channels", "split", "freq")
FORECAST_ONLY_TASK_KEYS = ("horizons", "context") + USER_DATA_TASK_KEYS
SPLIT_KEYS = ("ratios", "dates")
CLASSIFICATION_ONLY_TASK_KEYS = ("max_train", "val_fraction")
EXECUTOR_KEYS = ("backend", "workers", "timeout_min", "slurm", "simulated")
# executor.simulated (the fake cluster of benchmarks and engine tests: launcher.backends.simulated)
SIMULATED_KEYS = ("epoch_seconds", "jitter", "curves", "preemption", "node_failure", "out_of_memory", "seed")
# SLURM resources (executor.slurm, and a method's `resources` overriding them for its trials)
SLURM_INT_KEYS = ("nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "time_min", "signal_delay_s",
                  "max_requeues")
SLURM_STR_KEYS = ("partition", "mem", "account", "qos", "constraint")
SLURM_LIST_KEYS = ("sbatch_extra", "setup")
SLURM_KEYS = SLURM_STR_KEYS + SLURM_INT_KEYS + SLURM_LIST_KEYS
METHOD_RESERVED_KEYS = ("method", "space", "distributed", "resources", "epoch_minutes")
MAX_EPOCH_MINUTES = 10**6   # a method row's `epoch_minutes` (about two years per epoch)
DISTRIBUTED_KEYS = ("strategy", "zero_stage", "ranks")
STRATEGIES = ("none", "ddp", "deepspeed")
TRACKING_KEYS = ("uri",)
REPORT_KEYS = ("baseline",)
URI_SCHEMES = ("sqlite", "http", "https", "file")
MIN_CONTEXT = 8
SPACE_KEY = "space"  # reserved key beside a tuned method's params: its search space
SEARCH_KEYS = ("preset", "optimizer", "trials", "epoch_budget", "random_control",
               "max_failure_rate", "seed", "scheduler", "final_epochs")
SCHEDULER_KEYS = ("type", "eta", "grace", "max_epochs")
SCHEDULER_TYPES = ("asha", "none")
# preset name -> the defaults it sets: `search` keys, and `scheduler` keys under "scheduler"
SEARCH_PRESETS: dict[str, dict[str, Any]] = {
    # DASHA's reference samples at random (Ray Tune + ASHA). Kept: at a fixed 120 trials a learning
    # optimizer's better late proposals pass ASHA's cutoffs, and the same preset trained 732 epochs with
    # TwoPointsDE_LHS against 342 with RandomSearch (simulated backend, synthetic curves, 8 workers, one seed).
    "dasha": {"trials": 120, "optimizer": "RandomSearch",
              "scheduler": {"type": "asha", "eta": 2, "grace": 1, "max_epochs": 20}},
}
FALLBACK_OPTIMIZER = "TwoPointsDE_LHS"  # the default when launcher.spec.space is not importable


# --------------------------------------------------------------------------------------------
# Typed result
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    horizons: tuple[int, ...]     # forecasting; () for classification domains
    context: int                  # forecasting; 0 for classification domains
    path: Path | None = None
    domain: str = "forecasting"   # forecasting | genomics | satellite (tasks.registry)
    max_train: int | None = None  # classification: subsample the training split (CPU budgets; labelled)
    val_fraction: float | None = None   # classification: share of train held out for validation
    # forecasting, a user's own file (tasks.timeseries.load_forecast_task); None: the dataset's default
    date_column: str | None = None
    target_channels: tuple[str, ...] | None = None
    split_ratios: tuple[float, float, float] | None = None   # `split: {ratios: [...]}`
    split_dates: tuple[str, str] | None = None               # `split: {dates: [val_start, test_start]}`
    freq: int | None = None                                  # season in steps
    # a task of one's own from code (tasks.plugins): the loader's import path or a plugin's registered name
    loader: str | None = None

    def split(self) -> dict | None:
        """The `split` mapping as written ({"ratios": [...]} or {"dates": [...]}); None: the default."""
        if self.split_ratios is not None:
            return {"ratios": list(self.split_ratios)}
        if self.split_dates is not None:
            return {"dates": list(self.split_dates)}
        return None

    def forecast_options(self) -> dict:
        """The loader's keyword arguments for these keys (tasks.registry.load_task `options`)."""
        return {"date_column": self.date_column,
                "target_channels": None if self.target_channels is None else list(self.target_channels),
                "split": self.split(), "freq": self.freq}

    def names(self) -> list[str]:
        """Study/report task names: one per horizon for forecasting, the dataset otherwise."""
        return task_names(self.dataset, self.domain, self.horizons)


@dataclass(frozen=True)
class MethodSpec:
    name: str     # the row's name: its report column, study and MLflow label ("wrn", "unet", "dlinear")
    params: dict  # every declared param not in `space`, defaults filled; JSON-able (paths as str)
    # tuned methods: param -> raw domain, e.g. {"lr": {"log": [1e-5, 0.1]}} ({} = nothing
    # searched); None for methods that are not tuned (EpochMethod classes are the tuned ones)
    space: dict | None = None
    # how each trial's training spreads over ranks: {strategy: none|ddp|deepspeed, zero_stage, ranks}
    distributed: dict | None = None
    # SLURM resources for this method's trials, overriding executor.slurm (e.g. more GPUs for an FM)
    resources: dict | None = None
    # what runs: a registered method name ("backbone") or a class's import path ("my_pkg.fm:MyMethod");
    # empty: the row's name (the plain form `backbone: {...}`)
    method: str = ""
    # minutes one epoch of this row takes (one-shot methods: one run), for `--dry-run`'s expected GPU-hours;
    # None: the command line's --epoch-minutes. A planning figure, not part of what the results mean: an
    # InitVar kept as a plain attribute, so that `asdict` (sweep.json) leaves it out and changing it never
    # makes "a different sweep" of a folder (launcher.engine.preflight.prepare_out)
    epoch_minutes: InitVar[float | None] = None

    def __post_init__(self, epoch_minutes: float | None):
        if not self.method:
            object.__setattr__(self, "method", self.name)
        object.__setattr__(self, "epoch_minutes", epoch_minutes)


@dataclass(frozen=True)
class ExecutorSpec:
    backend: str = "local"
    workers: int = 2
    timeout_min: int = 60
    slurm: dict | None = None     # default SLURM resources (SLURM_KEYS) for every trial
    simulated: dict | None = None  # backend simulated: SIMULATED_KEYS (a fake cluster; nothing trains)


@dataclass(frozen=True)
class TrackingSpec:
    uri: str | None = None


@dataclass(frozen=True)
class ReportSpec:
    baseline: str | None = None


def default_optimizer() -> str:
    try:
        from launcher.spec.space import DEFAULT_OPTIMIZER
    except ImportError:
        return FALLBACK_OPTIMIZER
    return DEFAULT_OPTIMIZER


@dataclass(frozen=True)
class SchedulerSpec:
    type: str = "asha"   # "asha" or "none" (every trial trains straight to max_epochs)
    eta: int = 2
    grace: int = 1
    max_epochs: int = 20


@dataclass(frozen=True)
class SearchSpec:
    preset: str | None = None
    optimizer: str = field(default_factory=default_optimizer)
    trials: int = 20
    epoch_budget: int | None = None
    random_control: bool = False
    max_failure_rate: float = 0.5
    seed: int = 0
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    # After a tuned multi-fidelity study's search: retrain its best configuration once per sweep seed for
    # this many epochs (DASHA's retraining); these final trials are the study's reported result. None: no retrain.
    final_epochs: int | None = None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    description: str
    source: Path                     # the YAML file, resolved
    out: Path                        # resolved
    data_root: Path | None
    seeds: tuple[int, ...]
    tasks: tuple[TaskSpec, ...]
    methods: tuple[MethodSpec, ...]  # in file order
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    search: SearchSpec = field(default_factory=SearchSpec)



def known_classification_tasks() -> Mapping[str, str]:
    """Genomics and satellite task name -> domain (lazily imported; tests may monkeypatch it)."""
    from tasks.registry import known_tasks

    return {name: domain for name, domain in known_tasks().items() if domain != "forecasting"}


def record_task_names(task: Mapping[str, Any]) -> list[str]:
    """`TaskSpec.names()` for a task as recorded in sweep.json (older records have no domain)."""
    return task_names(task["dataset"], task.get("domain", "forecasting"), task.get("horizons") or ())


def task_names(dataset: str, domain: str, horizons) -> list[str]:
    from tasks.registry import task_name

    return [task_name(dataset, domain, h) for h in horizons] if domain == "forecasting" else [dataset]


def known_datasets() -> Mapping[str, Any]:
    """Dataset name -> info with `.horizons` (tuple of ints) and `.context` (int).

    Imported lazily so that importing this module stays cheap; tests may monkeypatch this function.
    """
    from tasks.timeseries import DATASETS

    return DATASETS
