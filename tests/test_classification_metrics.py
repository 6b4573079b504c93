"""Classification metrics (hand-computed cases, sklearn as a cross-check), seeded splits, the task record."""
import math

import numpy as np
import pytest

from tasks.classification import (
    ClassificationTask,
    accuracy,
    average_precision,
    binary_average_precision,
    binary_cross_entropy_with_logits,
    cross_entropy,
    f1,
    holdout_split,
    mcc,
    stratified_pick,
)


# ----------------------------------------------------------------------------------- hand-computed
def test_binary_mcc_f1_accuracy_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0])
    predicted = np.array([1, 1, 0, 0, 0, 1])  # TP 2, FN 1, TN 2, FP 1
    assert mcc(labels, predicted) == pytest.approx((2 * 2 - 1 * 1) / math.sqrt(3 * 3 * 3 * 3))
    assert f1(labels, predicted) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert accuracy(labels, predicted) == pytest.approx(4 / 6)


def test_multiclass_mcc_and_macro_f1_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 2, 2, 0])  # every class: TP 1, FP 1, FN 1
    # cov = correct * n - t.p = 3 * 6 - 12; each variance term = 36 - 12
    assert mcc(labels, predicted) == pytest.approx((18 - 12) / 24)
    assert f1(labels, predicted, n_classes=3) == pytest.approx(0.5)


def test_degenerate_predictions_give_zero_not_nan():
    labels = np.array([0, 1, 0, 1])
    assert mcc(labels, np.zeros(4, dtype=int)) == 0.0
    assert f1(labels, np.zeros(4, dtype=int)) == 0.0
    assert mcc(labels, labels) == pytest.approx(1.0)
    assert mcc(labels, 1 - labels) == pytest.approx(-1.0)


def test_average_precision_by_hand():
    # ranks: pos (P 1, R 1/2), neg, pos (P 2/3, R 1), neg
    assert binary_average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)
    # tied scores form one threshold: P 1/2 at R 1
    assert binary_average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    labels = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.3]])
    # class 0: perfect (1.0); class 1: ranks 0.8 pos, 0.3 pos -> 1.0
    assert average_precision(labels, scores) == pytest.approx(1.0)
    assert math.isnan(binary_average_precision(np.zeros(3), np.arange(3.0)))


def test_losses_by_hand():
    assert cross_entropy(np.array([0, 1]), np.zeros((2, 2))) == pytest.approx(math.log(2))
    assert cross_entropy(np.array([1]), np.array([[0.0, 100.0]])) == pytest.approx(0.0, abs=1e-12)
    assert binary_cross_entropy_with_logits(np.ones((2, 3)), np.zeros((2, 3))) == pytest.approx(math.log(2))


def test_task_score_reports_metric_accuracy_and_loss():
    task = ClassificationTask("t", "genomics", *(np.zeros((2, 5, 3), np.float32), np.array([0, 1])) * 3,
                              n_classes=2, metric="mcc")
    result = task.score(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
    # the task's own metric, and MCC, F1 and accuracy for every single-label task (issue 13: the literature
    # scores the same task with different metrics; the DASHA reference uses MCC for all)
    assert set(result) == {"mcc", "f1", "accuracy", "loss"}
    assert result["mcc"] == pytest.approx(1.0) and result["f1"] == 1.0 and result["accuracy"] == 1.0
    assert task.input_shape == (5, 3) and task.sizes == {"train": 2, "val": 2, "test": 2}
    with pytest.raises(ValueError, match="unknown metric"):
        ClassificationTask("t", "genomics", *(np.zeros((2, 5, 3)), np.array([0, 1])) * 3, n_classes=2, metric="auc")


# -------------------------------------------------------------------------------- sklearn cross-check
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_sklearn(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    for n_classes in (2, 3, 5):
        labels = rng.integers(0, n_classes, 200)
        predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, n_classes, 200))
        assert mcc(labels, predicted) == pytest.approx(sklearn_metrics.matthews_corrcoef(labels, predicted))
        expected_f1 = sklearn_metrics.f1_score(labels, predicted, average="binary" if n_classes == 2 else "macro")
        assert f1(labels, predicted, n_classes) == pytest.approx(expected_f1)
    multi = (rng.random((100, 6)) < 0.3).astype(int)
    multi[0] = 1  # every class has a positive
    scores = multi + rng.normal(0, 0.8, multi.shape)
    scores[:10] = np.round(scores[:10])  # some ties
    assert average_precision(multi, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(multi, scores, average="macro"))
    assert average_precision(multi, scores, "micro") == pytest.approx(
        sklearn_metrics.average_precision_score(multi, scores, average="micro"))


# ---------------------------------------------------------------------------------------- splits
def test_holdout_split_is_stratified_exact_disjoint_and_seeded():
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    train, held = holdout_split(labels, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert not set(train) & set(held) and sorted(np.r_[train, held]) == list(range(100))
    assert np.bincount(labels[held]).tolist() == [7, 2, 1]
    assert np.array_equal(held, holdout_split(labels, 0.1, seed=3)[1])
    assert not np.array_equal(held, holdout_split(labels, 0.1, seed=4)[1])
    assert len(holdout_split(labels, 0.0, 0)[1]) == 0
    with pytest.raises(ValueError):
        holdout_split(labels, 1.0, 0)


def test_stratified_pick_hits_the_exact_count():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    for n in range(16):
        kept, picked = stratified_pick(labels, n, seed=0)
        assert len(picked) == n and len(kept) == 15 - n
