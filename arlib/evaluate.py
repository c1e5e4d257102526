"""Evaluate a checkpoint on a dataset split: clip-level metrics and the misclassified clips."""

from __future__ import annotations

from .backbones import get_spec
from .checkpoints import load_checkpoint
from .datasets import load_dataset
from .errors import ArlibError, CheckpointError
from .predict import model_from_checkpoint
from .train import TrainConfig, evaluation_report, load_examples
from .transforms import TEST_VIEW


def evaluate_checkpoint(checkpoint, data=None, splits=None, split=1, classes=None, features=None, subset="test",
                        cache_dir=None, val_fraction=None, progress=True) -> dict:
    ckpt = load_checkpoint(checkpoint)
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
        if spec.feature_dim != meta["model"]["feature_dim"]:
            raise CheckpointError(f"{ckpt.path} expects {meta['model']['feature_dim']}-d features but backbone "
                                  f"{meta['backbone']} gives {spec.feature_dim}-d; the checkpoint's metadata is inconsistent.")
    # The checkpoint decides the classes and their order; the dataset must provide them.
    if not classes:  # say so in terms of the checkpoint, not as an unknown class name in the dataset
        every = load_dataset(data=data, splits=splits, split=split, features=features, val_fraction=0.2)
        absent = [c for c in ckpt.classes if c not in every.classes]
        if absent:
            raise CheckpointError(
                f"{ckpt.path} was trained on classes that {every.root} does not have ({', '.join(absent[:5])}"
                f"{'...' if len(absent) > 5 else ''}); evaluate it on the dataset it was trained for."
            )
    ds = load_dataset(data=data, splits=splits, split=split, classes=classes or ",".join(ckpt.classes),
                      features=features, val_fraction=0.2 if val_fraction is None else val_fraction,
                      seed=int(meta.get("train_config", {}).get("seed", 0)))
    if ds.classes != ckpt.classes:
        raise CheckpointError(
            f"{ckpt.path} was trained on classes {', '.join(ckpt.classes[:5])}{'...' if len(ckpt.classes) > 5 else ''}, "
            f"but the selection gives {', '.join(ds.classes[:5])}{'...' if len(ds.classes) > 5 else ''}; "
            "evaluate on the dataset it was trained for."
        )
    clips = ds.test if subset == "test" else ds.train
    if not clips:
        raise ArlibError(f"The {subset} subset of {ds.root} has no clips on disk ({ds.description}); evaluate "
                         f"--subset {'train' if subset == 'test' else 'test'}, or give split files that list clips on disk.")
    cfg = TrainConfig(features=features, backbone=meta.get("backbone") or "efficientnet_lite0", cache_dir=cache_dir,
                      cache_frames=int(meta.get("cache_frames", 48)))
    examples, failed = load_examples(cfg, clips, [TEST_VIEW], progress, feature_dim=meta["model"]["feature_dim"]
                                     if features else None)
    if not examples:
        raise ArlibError(f"None of the {len(clips)} {subset} clips could be read; first problem: {next(iter(failed.values()))}")
    feature_dim = examples[0].views[TEST_VIEW].features.shape[1]
    if feature_dim != meta["model"]["feature_dim"]:
        raise CheckpointError(f"{ckpt.path} expects {meta['model']['feature_dim']}-d features; these are {feature_dim}-d.")
    report = evaluation_report(model_from_checkpoint(ckpt), examples, ckpt.classes, int(meta["seq_len"]))
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
    return report
