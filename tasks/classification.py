"""Classification tasks shared by the genomics and satellite domains: the task record, its metrics
(plain numpy, sklearn-compatible definitions), seeded stratified splits and the dataset errors.

Metric conventions (all on a 0-1 scale, higher is better):

- `mcc`: Matthews correlation on argmax predictions; binary and multiclass (Gorodkin's R_K, the same
  formula as sklearn's `matthews_corrcoef`); 0 when a marginal is constant.
- `f1`: binary tasks use the F1 of the positive class (label 1), multiclass tasks the unweighted mean of
  the per-class F1 over the classes seen in labels or predictions (sklearn's `average="macro"`), which
  is what the genomics FM literature reports.
- `accuracy`: argmax accuracy; for multi-label tasks the exact-match (subset) accuracy at logit > 0.
- `average_precision`: multi-label, the mean over classes of each class's AP (GEO-Bench m-bigearthnet);
  `average_precision_micro` pools every (sample, class) pair (the BigEarthNet-10% protocol). AP is the
  step-wise area sum_k (R_k - R_{k-1}) P_k over distinct score thresholds, as sklearn computes it;
  classes with no positive label are left out of the macro mean (their AP is undefined).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset cannot be used: the message names the file (or the paths searched) and what is wrong."""


class DatasetMissingError(DatasetError):
    """No dataset files in any searched place: the message lists every path tried and the public source."""


# ------------------------------------------------------------------------------------------- metrics
def _predicted_classes(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim == 1 or logits.shape[1] == 1:  # one logit per sample: binary, positive when > 0
        return (logits.reshape(-1) > 0).astype(np.int64)
    return logits.argmax(axis=1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    n = int(max(labels.max(initial=0), predicted.max(initial=0)) + 1) if n_classes is None else n_classes
    return np.bincount(labels * n + predicted, minlength=n * n).reshape(n, n)


def mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    matrix = confusion_matrix(labels, predicted).astype(np.float64)
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    n, correct = matrix.sum(), np.trace(matrix)
    covariance = correct * n - true_counts @ predicted_counts
    spread = (n * n - true_counts @ true_counts) * (n * n - predicted_counts @ predicted_counts)
    return float(covariance / np.sqrt(spread)) if spread > 0 else 0.0


def f1(labels: np.ndarray, predicted: np.ndarray, n_classes: int = 2) -> float:
    matrix = confusion_matrix(labels, predicted, max(n_classes, _max_class(labels, predicted)))
    true_positive = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # 2 TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(denominator > 0, 2 * true_positive / np.maximum(denominator, 1), 0.0)
    if n_classes == 2:
        return float(per_class[1])
    return float(per_class[denominator > 0].mean()) if (denominator > 0).any() else 0.0


def _max_class(labels: np.ndarray, predicted: np.ndarray) -> int:
    return int(max(np.max(labels, initial=0), np.max(predicted, initial=0)) + 1)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.ndim == 2:  # multi-label: a sample counts only when every class is right
        return float(np.mean(np.all(labels == predicted, axis=1)))
    return float(np.mean(labels == predicted))


def binary_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class; nan when there is no positive label."""
    labels, scores = np.asarray(labels, dtype=np.float64).reshape(-1), np.asarray(scores, dtype=np.float64).reshape(-1)
    n_positive = labels.sum()
    if n_positive == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # Only the last position of each run of tied scores is a threshold: ties move together.
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / n_positive
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precision(labels: np.ndarray, scores: np.ndarray, average: str = "macro") -> float:
    labels, scores = np.asarray(labels), np.asarray(scores)
    if average == "micro":
        return binary_average_precision(labels.reshape(-1), scores.reshape(-1))
    if average != "macro":
        raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
    per_class = np.array([binary_average_precision(labels[:, c], scores[:, c]) for c in range(labels.shape[1])])
    return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else 0.0


METRICS = ("mcc", "f1", "accuracy", "average_precision", "average_precision_micro")


def cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1 or logits.shape[1] == 1:  # a single logit is the positive-class logit
        logits = np.stack([np.zeros(len(logits)), logits.reshape(-1)], axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)].mean())


def binary_cross_entropy_with_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean over samples x classes; equals torch's MultiLabelSoftMarginLoss (the paper's multi-label loss)."""
    x, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def score_predictions(metric: str, labels: np.ndarray, logits: np.ndarray, n_classes: int,
                      multi_label: bool = False) -> dict[str, float]:
    """{metric: value, "accuracy": ..., "loss": ...} for logits (N, n_classes) (or (N,) for binary); single-label
    tasks also get "mcc" and "f1" (macro over classes beyond two) whatever their own metric."""
    labels, logits = np.asarray(labels), np.asarray(logits)
    if len(labels) != len(logits):
        raise ValueError(f"{len(labels)} labels but {len(logits)} rows of logits")
    if multi_label:
        predicted = (logits > 0).astype(labels.dtype)
        result = {"accuracy": accuracy(labels, predicted), "loss": binary_cross_entropy_with_logits(labels, logits)}
        if metric.startswith("average_precision"):
            result[metric] = average_precision(labels, logits, "micro" if metric.endswith("micro") else "macro")
        return result
    if metric not in ("mcc", "f1", "accuracy"):
        raise ValueError(f"metric {metric!r} needs multi-label targets; known: {', '.join(METRICS)}")
    predicted = _predicted_classes(logits)
    # every single-label task gets MCC, F1 and accuracy, whatever its literature metric: the literature
    # differs by paper (the DASHA reference scores every genomics task with MCC), so all three are recorded
    return {"accuracy": accuracy(labels, predicted), "loss": cross_entropy(labels, logits),
            "mcc": mcc(labels, predicted), "f1": f1(labels, predicted, n_classes)}


# -------------------------------------------------------------------------------------------- splits
def _proportional_counts(class_sizes: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to their sizes (largest remainder), so the sum is exact."""
    exact = class_sizes * total / max(class_sizes.sum(), 1)
    counts = np.floor(exact).astype(np.int64)
    for c in np.argsort(-(exact - counts), kind="mergesort")[: total - counts.sum()]:
        counts[c] += 1
    return counts


def stratified_pick(labels: np.ndarray, n_pick: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, picked) sorted index arrays: `n_pick` indices drawn per class in proportion, seeded.

    Multi-label targets (2-D) are picked uniformly at random (no simple strata exist).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    n_pick = int(min(max(n_pick, 0), n))
    if labels.ndim != 1:
        picked = rng.permutation(n)[:n_pick]
    else:
        classes, inverse = np.unique(labels, return_inverse=True)
        members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
        counts = _proportional_counts(np.array([len(m) for m in members]), n_pick)
        picked = np.concatenate([rng.permutation(m)[:k] for m, k in zip(members, counts)] or [np.array([], int)])
    mask = np.zeros(n, dtype=bool)
    mask[picked] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: round(fraction * N) samples held out, stratified by class, seeded."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"a held-out fraction must be in [0, 1), got {fraction}")
    return stratified_pick(labels, int(round(fraction * len(labels))), seed)


# ---------------------------------------------------------------------------------------------- task
@dataclass
class ClassificationTask:
    """A classification task ready for training: arrays per split, the metric and what was done to the data.

    Genomics inputs are one-hot float32 (N, 5, L); images float32 (N, C, H, W) normalized with train
    statistics. Labels are int64 (N,) or, for multi-label tasks, float32 multi-hot (N, n_classes).
    """
    name: str
    domain: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    metric: str
    direction: str = "max"
    multi_label: bool = False
    class_names: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    source: Path | None = None
    channel_mean: np.ndarray | None = None   # images: the per-channel train statistics that were applied
    channel_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if self.direction not in ("max", "min"):
            raise ValueError(f"direction must be 'max' or 'min', got {self.direction!r}")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y):
                raise ValueError(f"{self.name}: {split} has {len(x)} inputs but {len(y)} labels")
            if len(x) and x.shape[1:] != self.x_train.shape[1:]:
                raise ValueError(f"{self.name}: {split} inputs are {x.shape[1:]}, train inputs {self.x_train.shape[1:]}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def score(self, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """The task metric, accuracy and the loss (CE, or BCE for multi-label) of `logits` against `labels`."""
        return score_predictions(self.metric, labels, logits, self.n_classes, self.multi_label)
