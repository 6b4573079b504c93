"""benchmarks/hpo_peers.py's DEHB arm (issue 14, part 5): DEHB 0.1.2 through its ask/tell interface on the
real DLinear curves, a tiny epoch budget, 4 asynchronous workers on the benchmark's clock. Skipped, with the
reason, where dehb is not installed (`make setup` installs it with pip --no-deps: its release pins numpy<2,
its code runs on numpy 2)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import hpo_peers  # noqa: E402

WORKERS = 4
# DEHB 0.1.2 calls ConfigSpace methods that ConfigSpace 1.x deprecates (get_hyperparameters, get_dictionary):
# noise, not a failure
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:dehb.*")


def _needs_dehb() -> None:
    why = hpo_peers.dehb_missing()
    if why is not None:
        pytest.skip(why)


class _Recorded(hpo_peers.Dehb):
    """The arm, keeping each job's epochs and fidelity."""

    def __init__(self, *args):
        super().__init__(*args)
        self.jobs: list[tuple[int, float]] = []

    def next(self):
        job = super().next()
        self.jobs.append((len(job.losses), job.info["job"]["fidelity"]))
        return job


@pytest.mark.parametrize("budget_factor", [1, 3])
def test_dehb_arm_spends_its_budget_and_no_more(tmp_path, budget_factor):
    _needs_dehb()
    land = hpo_peers.Landscape("dlinear")
    budget = budget_factor * land.epochs
    tuner = _Recorded(land, 0, tmp_path)
    reports = hpo_peers.run_async(tuner, WORKERS, budget)
    assert len(reports) == budget                    # every epoch of the budget is spent, none past it
    assert [t for t, _ in reports] == sorted(t for t, _ in reports)
    assert reports[-1][0] <= budget                   # 4 workers: the clock ends well before B time units
    # DEHB's rungs: min_fidelity 1 (our grace) to max_fidelity 8 (the curves' epochs), eta 2
    assert {e for e, _ in tuner.jobs} <= {1, 2, 4, 8}
    assert all(e == int(f + 1e-9) for e, f in tuner.jobs)
    # the jobs started cover the budget (the last ones may be cut by it); DEHB was told every finished one
    assert sum(e for e, _ in tuner.jobs) >= budget
    assert 1 <= len(tuner.dehb.history) <= tuner.asked == len(tuner.jobs)
    best = hpo_peers.best_within(reports, budget)
    assert land.best <= best < float("inf")
    assert tuner.dehb.inc_score == min(f for _, _, f, *_ in tuner.dehb.history)


def test_dehb_arm_is_seeded(tmp_path):
    _needs_dehb()
    land = hpo_peers.Landscape("wrn1d")
    budget = 3 * land.epochs
    runs = [hpo_peers.run_async(hpo_peers.Dehb(land, seed, tmp_path / str(i)), WORKERS, budget)
            for i, seed in enumerate((0, 0, 1))]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert all(len(r) == budget for r in runs)


def test_without_dehb_the_reason_is_given(monkeypatch):
    monkeypatch.setitem(sys.modules, "dehb", None)      # `import dehb` fails as if it were not installed
    why = hpo_peers.dehb_missing()
    assert why is not None and "dehb not installed" in why and "--no-deps" in why
