"""Clip-level classification metrics, computed over all clips at once (never averaged over batches)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, int), np.asarray(predictions, int)), 1)
    return cm


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    k = min(k, probabilities.shape[1])
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean([label in row for row, label in zip(top, labels)]))


def classification_report(probabilities: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """top1/top5, mean-class accuracy (mean recall over classes present), per-class recall, confusion."""
    labels = np.asarray(labels, int)
    num_classes = len(classes)
    predictions = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, int)
    cm = confusion_matrix(labels, predictions, num_classes)
    support = cm.sum(axis=1)
    recall = {c: (float(cm[i, i] / support[i]) if support[i] else None) for i, c in enumerate(classes)}
    present = [r for r in recall.values() if r is not None]
    return {
        "top1": top_k_accuracy(probabilities, labels, 1),
        "top5": top_k_accuracy(probabilities, labels, 5),
        "mean_class_accuracy": float(np.mean(present)) if present else float("nan"),
        "per_class_recall": recall,
        "confusion": cm.tolist(),
        "num_clips": int(len(labels)),
    }


def top_confusions(confusion, classes: list[str], k: int = 15) -> list[dict]:
    """The k most frequent (true, predicted) mistakes, for class counts too large to read as a matrix."""
    cm = np.asarray(confusion, dtype=np.int64)
    support = cm.sum(axis=1)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    rows = []
    for flat in order:
        i, j = divmod(int(flat), cm.shape[1])
        if off[i, j] == 0:
            break
        rows.append({"true": classes[i], "predicted": classes[j], "clips": int(off[i, j]),
                     "share of true class": float(off[i, j] / support[i])})
    return rows


def per_class_table(confusion, classes: list[str]) -> list[dict]:
    """One row per class: validation clips, recall and precision (None where a class has no clips / no
    predictions), and the class it is most often taken for."""
    cm = np.asarray(confusion, dtype=np.int64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    rows = []
    for i, name in enumerate(classes):
        worst = int(off[i].argmax()) if off[i].any() else None
        rows.append({"class": name, "clips": int(support[i]),
                     "recall": float(cm[i, i] / support[i]) if support[i] else None,
                     "precision": float(cm[i, i] / predicted[i]) if predicted[i] else None,
                     "most often taken for": classes[worst] if worst is not None else ""})
    return rows


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion correct / n (sound for small n and for 0 % or 100 %)."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def accuracy_summary(accuracy: float | None, n: int) -> dict:
    """{'value', 'n', 'low', 'high'}: an accuracy with the clips it was measured on and its 95 % interval."""
    if accuracy is None or n <= 0 or np.isnan(accuracy):
        return {"value": None, "n": int(max(n, 0)), "low": None, "high": None}
    low, high = wilson_interval(round(accuracy * n), n)
    return {"value": float(accuracy), "n": int(n), "low": low, "high": high}


def format_accuracy(accuracy: float | None, n: int, with_clips: bool = True) -> str:
    """'71 % ± 18 (24 clips)': the value, half the width of its 95 % Wilson interval, and the clip count (left out
    with with_clips=False, for a label that names the clips itself)."""
    clips = f" ({max(n, 0)} clip{'s' if n != 1 else ''})" if with_clips else ""
    if accuracy is None or n <= 0 or np.isnan(accuracy):
        return "n/a" + clips
    low, high = wilson_interval(round(accuracy * n), n)
    return f"{accuracy * 100:.0f} % ± {(high - low) * 50:.0f}" + clips


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin i of `bins` equal-width bins holds confidences in (i/bins, (i+1)/bins]; top-1 confidence is never 0."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> list[dict]:
    """Equal-width confidence bins of the top-1 probability: what a reliability diagram draws.

    One row per bin: lower/upper edge, count, mean confidence and accuracy (None for an empty bin)."""
    probabilities = np.asarray(probabilities, float)
    labels = np.asarray(labels, int)
    confidence = probabilities.max(axis=1) if len(labels) else np.zeros(0)
    correct = (probabilities.argmax(axis=1) == labels) if len(labels) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = _bin_of(confidence, bins)
    rows = []
    for i in range(bins):
        sel = which == i
        n = int(sel.sum())
        rows.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "count": n,
                     "confidence": float(confidence[sel].mean()) if n else None,
                     "accuracy": float(correct[sel].mean()) if n else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sum over equal-width bins of |accuracy - confidence| weighted by the bin's share."""
    n = len(labels)
    if n == 0:
        return float("nan")
    return float(sum(r["count"] / n * abs(r["accuracy"] - r["confidence"])
                     for r in reliability_bins(probabilities, labels, bins) if r["count"]))


def ece_if_calibrated(probabilities: np.ndarray, groups: np.ndarray | None = None, bins: int = 15,
                      draws: int = 2000, seed: int = 0) -> dict:
    """The ECE a perfectly calibrated model with these confidences would show on this many predictions: each
    prediction right with probability its confidence, simulated `draws` times; median and 95th percentile.

    groups: predictions of the same clip (cross-validation repeats) share one draw, as a clip is hard or easy
    in every repeat alike; without groups every prediction draws on its own. ECE is biased upwards on few
    predictions, so a measured ECE is judged against this, not against 0."""
    return _simulated_ece(np.asarray(probabilities, float).max(axis=1) if len(probabilities) else np.zeros(0),
                          groups, bins, draws, seed)


def ece_if_calibrated_from_bins(rows: list[dict], draws: int = 2000, seed: int = 0) -> dict:
    """ece_if_calibrated for what a checkpoint stores: reliability bins (each clip at its bin's mean confidence,
    which slightly widens the spread: a conservative floor)."""
    used = [r for r in rows if r.get("count")]
    confidence = np.repeat([float(r["confidence"]) for r in used], [int(r["count"]) for r in used])
    return _simulated_ece(confidence, None, len(rows) or 15, draws, seed)


def _simulated_ece(confidence: np.ndarray, groups: np.ndarray | None, bins: int, draws: int, seed: int) -> dict:
    n = len(confidence)
    if n == 0:
        return {"median": None, "p95": None, "draws": 0}
    _, shared = np.unique(np.arange(n) if groups is None else np.asarray(groups), return_inverse=True)
    rng = np.random.default_rng(seed)
    onehot = np.eye(bins)[_bin_of(confidence, bins)]  # [n, bins]
    ece = np.empty(draws)
    for start in range(0, draws, 250):  # in chunks: [chunk, n] draws at a time
        u = rng.random((min(250, draws - start), shared.max() + 1))[:, shared]
        ece[start:start + len(u)] = np.abs(((u < confidence) - confidence) @ onehot).sum(axis=1) / n
    return {"median": float(np.median(ece)), "p95": float(np.percentile(ece, 95)), "draws": int(draws)}
