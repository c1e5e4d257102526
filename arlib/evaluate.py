"""Inference over examples, clip-level metrics with intervals, calibration; evaluating a checkpoint.

Every probability here is softmax(logits / T) with the checkpoint's temperature (arlib.calibration).
`evaluate_checkpoint` rebuilds the run's own split from the checkpoint (dataset, val fraction, seed), so
`--subset train|val|test` mean what they meant in training, and it refuses to call a training clip "test".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .backbones import DEFAULT_BACKBONE, get_spec
from .calibration import checkpoint_temperature, probabilities_from_logits
from .checkpoints import load_checkpoint
from .config import TrainConfig
from .datasets import group_split, load_dataset
from .errors import ArlibError, CheckpointError
from .examples import Example, batch_tensors, load_examples, sequence_lengths
from .metrics import (
    accuracy_summary,
    format_accuracy,
    classification_report,
    expected_calibration_error,
    reliability_bins,
)
from .predict import model_from_checkpoint
from .sampling import test_positions
from .transforms import TEST_VIEW

SUBSETS = ("test", "val", "train")
ECE_BINS = 15


@torch.inference_mode()
def infer(model: nn.Module, examples: list[Example], seq_len: int, batch_size: int = 64):
    """Centre view, uniform positions: (logits [N, C], attention [N, T], positions [N, T])."""
    model.eval()
    device = next(model.parameters()).device
    logits, attn, positions = [], [], []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        pos = [test_positions(ex.length, seq_len) for ex in chunk]
        x, lengths = batch_tensors([ex.views[TEST_VIEW].features[p] for ex, p in zip(chunk, pos)],
                                   sequence_lengths(chunk, seq_len))
        out, weights = model(x.to(device), lengths.to(device))
        logits.append(out.float().cpu().numpy())
        attn.append(weights.float().cpu().numpy())
        positions.extend(pos)
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros((0, seq_len), np.float32), []
    return np.concatenate(logits), np.concatenate(attn), positions


def report_from_probabilities(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Metrics of one set of clips: top-1/5, mean-class, confusion, loss, ECE, reliability bins, interval."""
    report = classification_report(probs, labels, classes)
    n = len(labels)
    report["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(n), labels], 1e-12, None)))) if n else None
    report["ece"] = expected_calibration_error(probs, labels, ECE_BINS) if n else None
    report["reliability"] = reliability_bins(probs, labels, ECE_BINS)
    report["top1_interval"] = accuracy_summary(report["top1"] if n else None, n)
    return report


def evaluation_report(model, examples: list[Example], classes: list[str], seq_len: int, temperature: float = 1.0,
                      logits=None) -> dict:
    """Clip-level metrics, one row per clip, and the misclassified clips with their attention."""
    if not examples:
        return {"num_clips": 0}
    out, attn, positions = infer(model, examples, seq_len) if logits is None else logits
    probs = probabilities_from_logits(out, temperature)
    labels = np.array([ex.clip.label for ex in examples])
    report = report_from_probabilities(probs, labels, classes)
    report["temperature"] = float(temperature)
    rows, wrong = [], []
    for i, ex in enumerate(examples):
        pred = int(probs[i].argmax())
        rows.append({"clip": ex.clip.path, "label": ex.clip.class_name, "predicted": classes[pred],
                     "probability": float(probs[i, pred]), "probabilities": probs[i].tolist()})
        if pred != ex.clip.label:
            frames = ex.views[TEST_VIEW]
            wrong.append({k: v for k, v in rows[-1].items() if k != "probabilities"} | {
                "attention": attn[i].round(5).tolist(), "fps": frames.fps,
                "frame_indices": frames.frame_indices[positions[i]].tolist(),
                "timestamps_s": [round(float(t), 3) for t in frames.frame_times()[positions[i]]]})  # presentation times
    report["clips"] = rows
    report["misclassified"] = wrong
    return report


def _check_backbone(ckpt, features) -> None:
    meta = ckpt.meta
    if features and meta.get("backbone"):
        raise CheckpointError(f"{ckpt.path} was trained on {meta['backbone']} features; evaluate it on videos, not --features.")
    if not features and not meta.get("backbone"):
        raise CheckpointError(f"{ckpt.path} was trained on precomputed features; evaluate it with --features.")
    if not features:  # before any clip is decoded: can this backbone run here, and does it fit the model?
        try:
            spec = get_spec(meta["backbone"])
            reason = spec.unavailable_reason() and f"it {spec.unavailable_reason()}"
        except ArlibError as exc:
            reason = str(exc).rstrip(".")
        if reason:
            raise CheckpointError(f"{ckpt.path} needs backbone '{meta['backbone']}', which cannot be used here: {reason}.")
        if spec.feature_dim * int(meta["model"].get("streams", 1)) != meta["model"]["feature_dim"]:
            raise CheckpointError(f"{ckpt.path} expects {meta['model']['feature_dim']}-d features but backbone "
                                  f"{meta['backbone']} gives {spec.feature_dim}-d; the checkpoint's metadata is inconsistent.")


def subset_clips(ckpt, ds, subset: str, val_fraction: float | None) -> list:
    """The clips of `subset` in the checkpoint's own split: validation re-carved from the training clips
    with the run's val fraction and seed; test clips from a group the run trained on are refused."""
    if subset not in SUBSETS:
        raise ArlibError(f"Unknown subset '{subset}'; choose one of: {', '.join(SUBSETS)}.")
    train_cfg = ckpt.meta.get("train_config", {})
    record = ckpt.meta.get("split") or {}
    fraction = val_fraction if val_fraction is not None else float(record.get("val_fraction", train_cfg.get("val_fraction", 0.2)))
    seed = int(record.get("seed", train_cfg.get("seed", 0)))
    train, val = group_split(ds.train, fraction, seed) if fraction > 0 else (ds.train, [])
    if subset == "test":
        trained_on = set(record.get("train_groups", [])) | set(record.get("val_groups", []))
        clash = sorted({c.group for c in ds.test} & trained_on)
        if clash:
            raise ArlibError(
                f"The test clips of {ds.root} include groups this checkpoint was trained or validated on "
                f"({', '.join(clash[:5])}{'...' if len(clash) > 5 else ''}); they are not test clips for it. "
                "Evaluate --subset val, or give split files whose test list it never saw.")
        return list(ds.test)
    return val if subset == "val" else train


def evaluate_checkpoint(checkpoint, data=None, splits=None, split=None, classes=None, features=None, subset="test",
                        cache_dir=None, val_fraction=None, progress=True) -> dict:
    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    train_cfg = meta.get("train_config", {})
    _check_backbone(ckpt, features)
    split = int(split or train_cfg.get("split") or 1)
    seed = int((meta.get("split") or {}).get("seed", train_cfg.get("seed", 0)))
    fraction = float((meta.get("split") or {}).get("val_fraction", train_cfg.get("val_fraction", 0.2)))
    # The checkpoint decides the classes and their order; the dataset must provide them.
    if not classes:  # say so in terms of the checkpoint, not as an unknown class name in the dataset
        every = load_dataset(data=data, splits=splits, split=split, features=features, val_fraction=fraction, seed=seed)
        absent = [c for c in ckpt.classes if c not in every.classes]
        if absent:
            raise CheckpointError(
                f"{ckpt.path} was trained on classes that {every.root} does not have ({', '.join(absent[:5])}"
                f"{'...' if len(absent) > 5 else ''}); evaluate it on the dataset it was trained for."
            )
    ds = load_dataset(data=data, splits=splits, split=split, classes=classes or ",".join(ckpt.classes),
                      features=features, val_fraction=fraction, seed=seed)
    if ds.classes != ckpt.classes:
        raise CheckpointError(
            f"{ckpt.path} was trained on classes {', '.join(ckpt.classes[:5])}{'...' if len(ckpt.classes) > 5 else ''}, "
            f"but the selection gives {', '.join(ds.classes[:5])}{'...' if len(ds.classes) > 5 else ''}; "
            "evaluate on the dataset it was trained for."
        )
    clips = subset_clips(ckpt, ds, subset, val_fraction)
    if not clips:
        other = "val" if subset == "test" else "test"
        raise ArlibError(f"The {subset} subset of {ds.root} has no clips on disk ({ds.description}); evaluate "
                         f"--subset {other}, or give split files that list clips on disk.")
    cfg = TrainConfig(features=features, backbone=meta.get("backbone") or DEFAULT_BACKBONE, cache_dir=cache_dir,
                      cache_frames=int(meta.get("cache_frames", 48)), motion=int(meta["model"].get("streams", 1)) == 2)
    examples, failed = load_examples(cfg, clips, [TEST_VIEW], progress, feature_dim=meta["model"]["feature_dim"]
                                     if features else None)
    if not examples:
        raise ArlibError(f"None of the {len(clips)} {subset} clips could be read; first problem: {next(iter(failed.values()))}")
    if examples[0].feature_dim != meta["model"]["feature_dim"]:
        raise CheckpointError(f"{ckpt.path} expects {meta['model']['feature_dim']}-d features; these are {examples[0].feature_dim}-d.")
    report = evaluation_report(model_from_checkpoint(ckpt), examples, ckpt.classes, int(meta["seq_len"]),
                               checkpoint_temperature(meta))
    report.pop("loss", None)
    report.update(
        classes=ckpt.classes,
        skipped=len(failed),
        clips_skipped=len(failed),  # the name metrics.jsonl uses
        skipped_clips=[{"clip": c, "reason": r} for c, r in failed.items()],
        misclassified=[{k: row[k] for k in ("clip", "label", "predicted", "probability")} for row in report["misclassified"]],
        checkpoint=str(ckpt.path),
        subset=subset,
    )
    if meta.get("refit") and subset == "val":  # a refit trains on validation too: not held out for it
        report["note"] = ("This checkpoint was refit on train + validation after validation chose its epoch: "
                          "the validation clips are training clips for it.")
    return report


def checkpoint_accuracy(meta: dict) -> str:
    """What a checkpoint's own accuracy was measured on, for display: the test list's top-1 at its epoch when
    the run had test clips (they chose nothing), else validation's, flagged as the clips that chose the epoch.
    '94 % ± 9 (32 clips) on the test list'."""
    metrics = meta.get("metrics") or {}
    used = meta.get("dataset") or {}
    if metrics.get("test_top1") is not None and used.get("test_used"):
        return f"top-1 {format_accuracy(metrics['test_top1'], int(used['test_used']))} on the test list"
    n = int(used.get("val_used") or metrics.get("num_val_clips") or 0)
    if metrics.get("val_top1") is not None and n:
        refit = " (then refit on them too)" if meta.get("refit") else ""
        return f"top-1 {format_accuracy(metrics['val_top1'], n)} on the validation clips that chose this epoch{refit}"
    return "no held-out accuracy recorded"
