"""The tuners benchmarks/hpo_peers.py compares, each behind the same two calls the benchmark's clock makes:
`next() -> Job | None` (a free worker starts a job) and `finish(job) -> Job | None` (the job's epochs are
done; a job the same worker goes on with, e.g. an Optuna trial's next epoch). See hpo_peers.py's docstring
for what each arm is and why it is set up so. `Landscape` (hpo_peers.py) answers a configuration with its
per-epoch values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.engine.asha import CONTINUE, Asha, AshaConfig
from launcher.spec.space import make_optimizer

if TYPE_CHECKING:
    from hpo_peers import Landscape

ETA, GRACE = 2, 1


@dataclass
class Job:
    trial: str
    losses: list[float]              # the per-epoch values this segment reports, in order
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------- tuners
def asha_epochs_per_trial(epochs: int) -> float:
    """Ideal ASHA epochs per trial (a 1/eta share goes on at each rung)."""
    rungs, total, previous = AshaConfig(eta=ETA, grace=GRACE, max_epochs=epochs).rungs(), 0.0, 0
    for i, rung in enumerate(rungs):
        total += (rung - previous) / ETA ** i
        previous = rung
    return total


class NevergradAsha:
    """make_optimizer(name) + launcher.engine.asha.Asha, promotion-based (as the controller runs them)."""

    def __init__(self, land: Landscape, optimizer: str, seed: int, workers: int, budget: int):
        # Every trial costs >= 1 epoch, so B epochs bound the asks (a sequence-based optimizer, LHS or
        # Hammersley, refuses to ask past its budget; TwoPointsDE does not depend on it, and the LHS first
        # population of TwoPointsDE_LHS is a sampler of its own, sized to the DE population).
        self.opt = make_optimizer(optimizer, land.space, budget=budget, num_workers=workers, seed=seed)
        self.asha = Asha(AshaConfig(eta=ETA, grace=GRACE, max_epochs=land.epochs, mode="min"))
        self.land, self.state, self.promoted, self.asked = land, {}, [], 0

    def next(self) -> Job:
        if self.promoted:
            tid = self.promoted.pop(0)
        else:
            cand = self.opt.ask()
            tid = f"t{self.asked:04d}"
            self.asked += 1
            self.state[tid] = {"cand": cand, "done": 0, "losses": self.land.losses(self.land.space.sample_to_params(cand.value))}
        s = self.state[tid]
        target = self.asha.next_epoch(tid)
        return Job(tid, s["losses"][s["done"]:target], {"target": target})

    def finish(self, job: Job) -> None:
        s, target = self.state[job.trial], job.info["target"]
        s["done"] = target
        if self.asha.report(job.trial, target, s["losses"][target - 1]) == CONTINUE:
            self.promoted.append(job.trial)
        else:
            self.opt.tell(s["cand"], self.asha.fidelity_loss(job.trial))
        return None


class OptunaPruned:
    """Optuna ask/tell with a pruner: one epoch per step, report then should_prune, as a training loop does."""

    def __init__(self, land: Landscape, pruner: str, seed: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        pruners = {"hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=land.epochs,
                                                                        reduction_factor=3),
                   "sha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=GRACE, reduction_factor=ETA)}
        # A fixed study name: HyperbandPruner assigns brackets from a hash of the study name and the trial
        # number, and the default name is a random uuid (the runs would not repeat).
        self.study = optuna.create_study(study_name=f"hpo_peers-{land.name}-{pruner}-{seed}", direction="minimize",
                                         sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruners[pruner]())
        self.land, self.asked = land, 0

    def suggest(self, trial) -> dict:
        params = {}
        for d in self.land.space.domains:
            if d.kind == "log":
                params[d.name] = trial.suggest_float(d.name, d.low, d.high, log=True)
            elif d.kind == "float":
                params[d.name] = trial.suggest_float(d.name, d.low, d.high)
            elif d.kind == "int":
                params[d.name] = trial.suggest_int(d.name, d.low, d.high)
            else:
                params[d.name] = trial.suggest_categorical(d.name, list(d.values))
        return params

    def next(self) -> Job:
        trial = self.study.ask()
        self.asked += 1
        losses = self.land.losses(self.suggest(trial))
        return Job(str(trial.number), losses[:1], {"trial": trial, "losses": losses, "epoch": 1})

    def finish(self, job: Job) -> Job | None:
        trial, losses, epoch = job.info["trial"], job.info["losses"], job.info["epoch"]
        value = losses[epoch - 1]
        trial.report(value, epoch)
        if epoch == len(losses):
            self.study.tell(trial, value)
            return None
        if trial.should_prune():
            self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
            return None
        return Job(job.trial, losses[epoch:epoch + 1], {"trial": trial, "losses": losses, "epoch": epoch + 1})


def optuna_missing() -> str | None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return "optuna not installed: pip install -e .[bench]"
    return None


class Dehb:
    """DEHB 0.1.2 ask/tell: each job trains int(fidelity) epochs from scratch; tell(fitness = last value, cost)."""

    def __init__(self, land: Landscape, seed: int, workdir: Path):
        import ConfigSpace as CS
        from dehb import DEHB

        cs = CS.ConfigurationSpace()
        for d in land.space.domains:
            if d.kind in ("log", "float"):
                cs.add(CS.UniformFloatHyperparameter(d.name, d.low, d.high, log=d.kind == "log"))
            elif d.kind == "int":
                cs.add(CS.UniformIntegerHyperparameter(d.name, d.low, d.high))
            else:
                cs.add(CS.CategoricalHyperparameter(d.name, list(d.values)))
        # save_freq="end": DEHB writes its history/state only at the end of run(), which ask/tell never calls
        # (the default, "incumbent", rewrites a parquet file at every new incumbent); its log goes to workdir.
        self.dehb = DEHB(cs=cs, dimensions=len(land.space.domains), min_fidelity=GRACE, max_fidelity=land.epochs,
                         eta=ETA, seed=seed, n_workers=1, output_path=str(workdir), save_freq="end",
                         log_level="WARNING")
        self.land, self.asked = land, 0

    def next(self) -> Job:
        job = self.dehb.ask()
        self.asked += 1
        epochs = int(job["fidelity"] + 1e-9)          # DEHB's fidelities are floats (20 / 2**4 = 1.25 ...)
        losses = self.land.losses(dict(job["config"]))[:epochs]
        return Job(str(job["config_id"]), losses, {"job": job})

    def finish(self, job: Job) -> None:
        self.dehb.tell(job.info["job"], {"fitness": job.losses[-1], "cost": float(len(job.losses))})
        return None


def dehb_missing() -> str | None:
    """None when DEHB runs here, else why not (the error itself when it fails to import)."""
    import numpy as np
    try:
        import dehb  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name == "dehb":
            return ("dehb not installed: pip install --no-deps dehb==0.1.2 (its release pins numpy<2.0, "
                    f"this env has numpy {np.__version__}; `make setup` installs it so)")
        return f"dehb does not import: {error} (its dependencies come with pip install -e '.[bench]')"
    except Exception as error:  # noqa: BLE001 -- whatever breaks it (numpy 2 included) is the reason shown
        return f"dehb does not import beside numpy {np.__version__}: {type(error).__name__}: {error}"
    return None
