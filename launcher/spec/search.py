"""The sweep file's `search` section and the `space` of each tuned method (schema: launcher.spec.sweep).

`SearchReader.search` reads `search:` into a `SearchSpec` (a preset fills the defaults, keys given
explicitly override them); `SearchReader.method_space` reads one method's `space:` into the raw,
JSON-able domains that `launcher.spec.space.parse_domain` accepted. `launcher.spec.space` (which wraps
Nevergrad) is imported only when a `space` or an optimizer name has to be checked.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from launcher.errors import SpecError, did_you_mean
from launcher.spec.sweep import (
    SCHEDULER_KEYS,
    SCHEDULER_TYPES,
    SEARCH_KEYS,
    SEARCH_PRESETS,
    SPACE_KEY,
    SchedulerSpec,
    SearchSpec,
)
from launcher.spec.types import MAX_COUNT, MAX_SEED, SpecReader, join_hints
from launcher.spec.yaml_nodes import Node, describe

# A plain scalar YAML 1.1 leaves as a string although it is a number (1e-5: no dot).
_NUMBER_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPACE_EXAMPLE = "e.g. `space: {lr: {log: [1e-5, 1e-1]}, batch_size: {choice: [16, 32]}}`"


def _space_module():
    from launcher.spec import space

    return space


def tuned_methods() -> list[str]:
    """Methods trained in epochs: they take a `space` and are searched."""
    from launcher.methods.registry import all_methods

    return sorted(name for name, cls in all_methods().items() if cls.multi_fidelity)


def plain_value(node: Node) -> Any:
    """The node tree as plain, JSON-able Python values (numbers written like 1e-5 as floats)."""
    v = node.value
    if isinstance(v, dict):
        return {k: plain_value(item) for k, (_, item) in v.items()}
    if isinstance(v, list):
        return [plain_value(item) for item in v]
    if isinstance(v, str) and node.plain and _NUMBER_RE.fullmatch(v.strip()):
        return float(v)
    if v is not None and not isinstance(v, (str, int, float, bool)):
        return node.text if node.text is not None else str(v)  # e.g. a date, by its source text
    return v


def _where(key: Node, value: Node) -> Node:
    """The node an entry's error points at: its key's line, or the command line that set it."""
    return value if value.from_command_line else key


def _probe(value: Any, where: Node) -> Node:
    """A domain value as a Node (at `where`'s line), to check it as a value of its param."""
    if isinstance(value, (list, tuple)):
        return Node([_probe(v, where) for v in value], where.file, where.line)
    return Node(value, where.file, where.line, text=None if value is None else str(value))


class SearchReader(SpecReader):
    # -- search: ---------------------------------------------------------------------------

    def search(self, top: dict) -> SearchSpec:
        entry = top.get("search")
        if entry is None:
            return SearchSpec()
        entries = self.mapping(entry[1], "search", SEARCH_KEYS, "how tuned methods are searched")
        kwargs: dict[str, Any] = {}
        scheduler: dict[str, Any] = {}
        if (n := self.present(entries, "preset")) is not None:
            preset = self.string(n, "search.preset", "a preset name")
            if preset not in SEARCH_PRESETS:
                raise n.error("search.preset", f"unknown preset {preset!r}; expected one of: "
                                               f"{', '.join(SEARCH_PRESETS)}",
                              join_hints(did_you_mean(preset, SEARCH_PRESETS),
                                         "Or leave `preset` out for the plain defaults."))
            defaults = SEARCH_PRESETS[preset]
            kwargs.update({k: v for k, v in defaults.items() if k != "scheduler"})
            scheduler.update(defaults.get("scheduler", {}))
            kwargs["preset"] = preset
        if (n := self.present(entries, "optimizer")) is not None:
            kwargs["optimizer"] = self.optimizer(n)
        if (n := self.present(entries, "trials")) is not None:
            kwargs["trials"] = self.integer(n, "search.trials", minimum=1, ceiling=MAX_COUNT,
                                            hint="Configurations tried per study.")
        if (n := self.present(entries, "epoch_budget")) is not None:
            kwargs["epoch_budget"] = self.integer(n, "search.epoch_budget", minimum=1, ceiling=MAX_COUNT,
                                                  hint="The most epochs one study trains in total; "
                                                       "null for no cap.")
        if (n := self.present(entries, "random_control")) is not None:
            kwargs["random_control"] = self.boolean(n, "search.random_control")
        if (n := self.present(entries, "max_failure_rate")) is not None:
            kwargs["max_failure_rate"] = self.number(
                n, "search.max_failure_rate", minimum=0.0, maximum=1.0,
                hint="The fraction of ended trials that may fail before the sweep pauses.")
        if (n := self.present(entries, "seed")) is not None:
            kwargs["seed"] = self.integer(n, "search.seed", minimum=0, ceiling=MAX_SEED)
        if (n := self.present(entries, "final_epochs")) is not None and n.value is not None:
            kwargs["final_epochs"] = self.integer(
                n, "search.final_epochs", minimum=1, ceiling=MAX_COUNT,
                hint="Epochs of the final retraining of each tuned study's best configuration, once per seed.")
        kwargs["scheduler"] = self.scheduler(entries, scheduler)
        return SearchSpec(**kwargs)

    def optimizer(self, node: Node) -> str:
        name = self.string(node, "search.optimizer", "a Nevergrad optimizer name")
        names = _space_module().optimizer_names()  # imports nevergrad: only when one is named
        if name not in names:
            raise node.error("search.optimizer", f"unknown optimizer {name!r}",
                             join_hints(did_you_mean(name, names),
                                        "Any name in Nevergrad's optimizer registry "
                                        "(launcher.spec.space.optimizer_names()) works, e.g. "
                                        "TwoPointsDE, RandomSearch, OnePlusOne."))
        return name

    def scheduler(self, search: dict, preset: dict[str, Any]) -> SchedulerSpec:
        entry = search.get("scheduler")
        given = {} if entry is None else self.mapping(entry[1], "search.scheduler", SCHEDULER_KEYS,
                                                      "type, eta, grace, max_epochs")
        kwargs = dict(preset)
        nodes: dict[str, Node] = {}
        if (n := self.present(given, "type")) is not None:
            kind = self.string(n, "search.scheduler.type", "a scheduler type")
            if kind not in SCHEDULER_TYPES:
                raise n.error("search.scheduler.type", f"unknown scheduler type {kind!r}; expected "
                                                       f"one of: {', '.join(SCHEDULER_TYPES)}",
                              join_hints(did_you_mean(kind, SCHEDULER_TYPES),
                                         "`none` trains every trial straight to max_epochs."))
            kwargs["type"] = kind
        for name, minimum, about in (
                ("eta", 2, "ASHA keeps the best 1/eta of the trials at each rung."),
                ("grace", 1, "Epochs every trial trains before the first ASHA rung."),
                ("max_epochs", 1, "Epochs of a trial that is never stopped early.")):
            if (n := self.present(given, name)) is not None:
                kwargs[name] = self.integer(n, f"search.scheduler.{name}", minimum=minimum,
                                            hint=about, ceiling=MAX_COUNT)
                nodes[name] = n
        spec = SchedulerSpec(**kwargs)
        if spec.type == "asha" and spec.grace >= spec.max_epochs:
            about = "ASHA needs at least one rung after the grace period."
            if "grace" in nodes:
                raise nodes["grace"].error("search.scheduler.grace", f"must be < max_epochs "
                                           f"({spec.max_epochs}), got {spec.grace}", about)
            if "max_epochs" not in nodes:  # a preset that contradicts itself: not the user's
                raise ValueError(f"SEARCH_PRESETS: grace {spec.grace} >= max_epochs "
                                 f"{spec.max_epochs}")
            raise nodes["max_epochs"].error(
                "search.scheduler.max_epochs",
                f"must be > grace ({spec.grace}), got {spec.max_epochs}", about)
        return spec

    # -- methods.<m>.space ------------------------------------------------------------------

    def method_space(self, cls: Any, key: str, given: dict, declared: Mapping[str, Any]
                     ) -> dict | None:
        """The validated search space of one method row (None: the method is not tuned)."""
        name = cls.name
        entry = given.get(SPACE_KEY)
        node = None if entry is None or entry[1].value is None else entry[1]
        skey = f"{key}.{SPACE_KEY}"
        if not cls.multi_fidelity:
            if node is not None:
                raise entry[0].error(skey, f"{name} is not tuned: it has no epochs/search; remove "
                                           f"`{SPACE_KEY}`",
                                     f"Only methods trained in epochs are searched: "
                                     f"{', '.join(tuned_methods())}.")
            return None
        if node is None:  # the default space, less the params this file fixes
            default = cls.default_space
            return {p: copy.deepcopy(d) for p, d in default.items() if p not in given}
        if not isinstance(node.value, dict):
            raise node.error(skey, f"expected a mapping of param -> domain, got {describe(node)}",
                             f"Write {_SPACE_EXAMPLE}, or `space: {{}}` to search nothing.")
        space: dict[str, Any] = {}
        for pname, (pkey, pnode) in node.value.items():
            if pname not in declared:
                raise pkey.error(f"{skey}.{pname}", f"{pname!r} is not a param of {name}",
                                 join_hints(did_you_mean(pname, declared),
                                            f"Valid params of {name}: {', '.join(declared)}."))
            space[pname] = self.domain(_where(pkey, pnode), pnode, f"{skey}.{pname}", pname,
                                       declared[pname])
        for pname in space:
            if pname in given:
                raise _where(*given[pname]).error(
                    f"{key}.{pname}", "both fixed and searched",
                    f"Remove `{pname}` here to search it, or remove it from {skey} to fix it.")
        return space

    def domain(self, where: Node, node: Node, key: str, pname: str, param: Any) -> Any:
        """One space entry, checked by launcher.spec.space.parse_domain and then against the declared
        param (kind, range, choices); returned in its JSON-able raw form."""
        space = _space_module()
        raw = plain_value(node)
        try:
            dom = space.parse_domain(pname, raw)
        except space.SpaceError as e:
            # the key path names the parameter already
            message = re.sub(rf"^(parameter )?({re.escape(repr(pname))}|{re.escape(pname)}): ", "",
                             str(e))
            raise where.error(key, message) from None
        about = f"About {pname}: {param.help}." if getattr(param, "help", None) else None
        if dom.kind != "choice" and (param.kind not in ("int", "float") or
                                     (param.kind == "int" and dom.kind != "int")):
            allowed = "{int: [low, high]} or {choice: [...]}" if param.kind == "int" \
                else "{choice: [...]}"
            raise where.error(key, f"a {dom.kind} domain cannot search {pname}, a param of kind "
                                   f"{param.kind}", join_hints(f"Use {allowed}.", about))
        values = dom.values if dom.kind == "choice" else (dom.low, dom.high)
        for v in values:
            probe = _probe(v, where)
            try:
                self.param(probe, key, pname, param)
            except SpecError as e:
                raise where.error(key, f"in the searched domain: {e.message}", e.hint) from None
        return dom.to_raw() if hasattr(dom, "to_raw") else raw  # canonical: parse_domain reads it

    def param(self, node: Node, key: str, pname: str, p: Any) -> Any:  # pragma: no cover
        raise NotImplementedError  # the Validator's param reader
