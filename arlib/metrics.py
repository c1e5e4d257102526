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
