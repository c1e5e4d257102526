"""Group-aware k-fold cross-validation on training clips: how defaults are chosen, never on a test list."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .datasets import group_kfold, load_dataset
from .errors import ArlibError
from .runs import RunDir
from .train import Trainer, TrainConfig, load_examples, run_views
from .transforms import TEST_VIEW


def cross_validate_repeated(cfg: TrainConfig, folds: int = 4, repeats: int = 1, progress: bool = True) -> dict:
    """Repeat with seeds seed..seed+repeats-1 (new folds and initialisation each time); report the mean."""
    from dataclasses import replace

    results = [cross_validate(replace(cfg, seed=cfg.seed + r), folds, progress) for r in range(repeats)]
    if repeats == 1:
        return results[0]
    summary = {k: results[0][k] for k in ("model", "backbone", "folds", "clips", "classes", "config")}
    top1 = np.array([r["top1"] for r in results])
    return summary | {
        "repeats": repeats, "top1": float(top1.mean()), "top1_std_over_repeats": float(top1.std()),
        "top1_per_repeat": top1.tolist(),
        "top1_by_epoch": np.mean([r["top1_by_epoch"] for r in results], axis=0).round(4).tolist(),
    }


def cross_validate(cfg: TrainConfig, folds: int = 4, progress: bool = True) -> dict:
    """Train on k-1 folds, score the last epoch on the held-out fold (no peeking at a best epoch)."""
    ds = load_dataset(data=cfg.data, splits=cfg.splits, split=cfg.split, classes=cfg.classes,
                      features=cfg.features, val_fraction=cfg.val_fraction, seed=cfg.seed)
    views = list(dict.fromkeys([TEST_VIEW, *run_views(cfg)]))  # held-out folds are read in the test view
    examples, failed = load_examples(cfg, ds.train, views, progress)
    by_path = {ex.clip.path: ex for ex in examples}
    usable = [ex.clip for ex in examples]
    if len(usable) < folds:
        raise ArlibError(f"Cross-validation needs at least {folds} readable training clips; found {len(usable)}.")
    per_fold, curves = [], []
    for k, (train_clips, val_clips) in enumerate(group_kfold(usable, folds, cfg.seed)):
        with tempfile.TemporaryDirectory(prefix="arlib-cv-") as tmp:
            run = RunDir(Path(tmp) / f"fold{k}")
            run.write_config(cfg.to_dict())
            prepared = (ds, [by_path[c.path] for c in train_clips], [by_path[c.path] for c in val_clips], failed)
            result = Trainer(cfg, run, progress=False, prepared=prepared, save_checkpoints=False).fit()
            rows = run.read_metrics()
        if result["state"] != "finished":
            raise ArlibError(f"Cross-validation was stopped during fold {k + 1} of {folds}; no result was produced.")
        curves.append([r["val_top1"] for r in rows])
        per_fold.append({"fold": k, "train_clips": len(train_clips), "val_clips": len(val_clips),
                         "val_top1": rows[-1]["val_top1"], "val_mean_class_accuracy": rows[-1]["val_mean_class_accuracy"]})
        if progress:
            print(f"fold {k + 1}/{folds}: val top-1 {rows[-1]['val_top1']:.4f} on {len(val_clips)} clips", flush=True)
    top1 = np.array([f["val_top1"] for f in per_fold])
    # Pooled over clips (each clip is held out exactly once), not a mean of fold means.
    pooled = float(sum(f["val_top1"] * f["val_clips"] for f in per_fold) / sum(f["val_clips"] for f in per_fold))
    return {
        "model": cfg.model, "backbone": cfg.backbone, "folds": folds, "clips": len(usable),
        "classes": ds.classes, "skipped": failed,
        "top1": pooled, "top1_fold_mean": float(top1.mean()), "top1_fold_std": float(top1.std()),
        "per_fold": per_fold,
        "top1_by_epoch": [float(np.mean(c)) for c in zip(*curves)],
        "config": cfg.to_dict(),
    }
