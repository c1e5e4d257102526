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
