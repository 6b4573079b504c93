"""From a validated sweep spec to its studies (pure: no I/O).

A study is one (task, method, arm). A method with a search space gets a tuned arm (the sweep's
optimizer) and, with `search.random_control`, a RandomSearch arm under the same budget. A method
without one runs with its fixed parameters, once per seed (once in all for deterministic methods).
"""
from __future__ import annotations

from launcher.engine.asha import AshaConfig
from launcher.engine.study import StudyPlan
from launcher.methods.registry import method_class
from launcher.spec.space import SearchSpace, parse_domain
from launcher.spec.sweep import SweepSpec


def _search_space(raw: dict | None) -> SearchSpace | None:
    """The space in a canonical (sorted) order: nevergrad's proposals depend on the order of the
    dimensions, and the results of a sweep must not depend on the order its file lists them in
    (nor on a record that stores them in another order, as a resumed sweep reads them)."""
    if not raw:
        return None
    return SearchSpace(tuple(parse_domain(name, raw[name]) for name in sorted(raw)))


def plan_studies(spec: SweepSpec) -> list[StudyPlan]:
    search = spec.search
    studies: list[StudyPlan] = []
    for task in spec.tasks:
        horizons = task.horizons if task.domain == "forecasting" else (0,)
        for horizon, task_name in zip(horizons, task.names()):
            for method in spec.methods:
                cls = method_class(method.method)
                if task.domain not in cls.domains:
                    continue
                space = _search_space(getattr(method, "space", None))
                epochs = search.scheduler.max_epochs if cls.multi_fidelity else None
                objective, mode = cls.objective_for(task.domain)
                asha = None
                if space is not None and epochs is not None and search.scheduler.type == "asha":
                    asha = AshaConfig(eta=search.scheduler.eta, grace=search.scheduler.grace,
                                      max_epochs=search.scheduler.max_epochs, mode=mode)
                if space is None:
                    seeds = spec.seeds[:1] if cls.deterministic else spec.seeds
                    arms = [("fixed", None, len(seeds))]
                else:
                    seeds = spec.seeds[:1]
                    arms = [("tuned", search.optimizer, search.trials)]
                    if search.random_control:
                        arms.append(("random", "RandomSearch", search.trials))
                for arm, optimizer, trials in arms:
                    suffix = "" if arm != "random" else "[random]"
                    studies.append(StudyPlan(
                        name=f"{task_name}/{method.name}{suffix}",
                        slug=f"{task_name}__{method.name}" + ("-random" if arm == "random" else ""),
                        task=task_name, dataset=task.dataset, horizon=horizon, context=task.context,
                        method=method.name, arm=arm, fixed_params=dict(method.params), space=space,
                        optimizer=optimizer, trials=trials, seeds=tuple(seeds), asha=asha,
                        epochs=epochs, epoch_budget=search.epoch_budget, objective=objective, mode=mode,
                        optimizer_seed=search.seed + (1 if arm == "random" else 0),
                        distributed=method.distributed, resources=method.resources, domain=task.domain,
                        final_epochs=search.final_epochs if space is not None and epochs is not None else None,
                        implementation=method.method, kind=cls.kind, deterministic=cls.deterministic,
                    ))
    return studies
