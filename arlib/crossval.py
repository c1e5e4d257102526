"""Group-aware k-fold cross-validation on training clips: how defaults are chosen, never on a test list.

Each fold trains in memory (no run folder): validation is carved from the fold's training clips by
whole groups and chooses the epoch and fits the temperature, exactly as a real run does; the held-out
fold plays the run's test list and is only scored. Clips are pooled over folds (each is held out once).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .datasets import group_kfold, group_split, load_dataset
from .errors import ArlibError
from .examples import RunData, load_examples, run_views
from .calibration import probabilities_from_logits
from .evaluate import ECE_BINS
from .metrics import accuracy_summary, ece_if_calibrated, expected_calibration_error, reliability_bins
from .train import TrainConfig, Trainer
from .transforms import TEST_VIEW


def cross_validate_repeated(cfg: TrainConfig, folds: int = 4, repeats: int = 1, progress: bool = True) -> dict:
    """Repeat with seeds seed..seed+repeats-1 (new folds and initialisation each time); report the mean top-1
    and the calibration pooled over every held-out prediction of every repeat (clips x repeats of them)."""
    results = [cross_validate(replace(cfg, seed=cfg.seed + r), folds, progress) for r in range(repeats)]
    held_out = [r.pop("_held_out") for r in results]
    pooled = pooled_calibration(*(np.concatenate([h[i] for h in held_out]) for i in range(4)))
    if repeats == 1:
        return results[0] | pooled
    summary = {k: results[0][k] for k in ("model", "backbone", "folds", "clips", "classes", "config")}
    top1 = np.array([r["top1"] for r in results])
    n = sum(r["top1_interval"]["n"] for r in results)
    return summary | {
        "repeats": repeats, "top1": float(top1.mean()), "top1_std_over_repeats": float(top1.std()),
        "top1_per_repeat": top1.tolist(),
        "top1_interval": accuracy_summary(float(top1.mean()), n // repeats),
        "ece_per_repeat": [r["ece"] for r in results],
        **pooled,
        "top1_by_selection": {k: float(np.mean([r["top1_by_selection"][k] for r in results]))
                              for k in results[0]["top1_by_selection"]},
        "top1_by_epoch": np.mean([r["top1_by_epoch"] for r in results], axis=0).round(4).tolist(),
    }


def pooled_calibration(logits: np.ndarray, temperatures: np.ndarray, labels: np.ndarray, clips: np.ndarray) -> dict:
    """ECE (15 bins) and reliability bins over all held-out predictions, with each fold's own temperature
    (fitted without its held-out clips) and without any (T = 1); beside each, the ECE a perfectly calibrated
    model with the same confidences would show on these predictions (a clip's repeats share one draw)."""
    calibrated = probabilities_from_logits(logits / temperatures[:, None])
    raw = probabilities_from_logits(logits)
    return {"ece": expected_calibration_error(calibrated, labels, ECE_BINS),
            "ece_uncalibrated": expected_calibration_error(raw, labels, ECE_BINS),
            "ece_if_calibrated": ece_if_calibrated(calibrated, clips, ECE_BINS),
            "ece_uncalibrated_if_calibrated": ece_if_calibrated(raw, clips, ECE_BINS),
            "ece_clips": int(len(labels)), "ece_distinct_clips": int(len(np.unique(clips))),
            "reliability": reliability_bins(calibrated, labels, ECE_BINS),
            "reliability_uncalibrated": reliability_bins(raw, labels, ECE_BINS)}


def _pooled(per_fold: list[dict], key: str) -> float:
    return float(sum(f[key] * f["held_out_clips"] for f in per_fold) / sum(f["held_out_clips"] for f in per_fold))


def cross_validate(cfg: TrainConfig, folds: int = 4, progress: bool = True) -> dict:
    """Train on k-1 folds (validation carved from them), score the held-out fold at the chosen epoch."""
    ds = load_dataset(data=cfg.data, splits=cfg.splits, split=cfg.split, classes=cfg.classes,
                      features=cfg.features, val_fraction=cfg.val_fraction, seed=cfg.seed)
    views = list(dict.fromkeys([TEST_VIEW, *run_views(cfg)]))  # held-out folds are read in the test view
    examples, failed = load_examples(cfg, ds.train, views, progress)
    by_path = {ex.clip.path: ex for ex in examples}
    usable = [ex.clip for ex in examples]
    if len(usable) < folds:
        raise ArlibError(f"Cross-validation needs at least {folds} readable training clips; found {len(usable)}.")
    per_fold, curves, logits, temperatures, labels, paths = [], [], [], [], [], []
    for k, (train_clips, held_out) in enumerate(group_kfold(usable, folds, cfg.seed)):
        fit_clips, val_clips = group_split(train_clips, cfg.val_fraction, cfg.seed) if cfg.val_fraction > 0 else (train_clips, [])
        data = RunData(ds.classes, [by_path[c.path] for c in fit_clips], [by_path[c.path] for c in val_clips],
                       [by_path[c.path] for c in held_out])
        trainer = Trainer(cfg, None, progress=False, data=data)
        trainer.fit()
        rows = trainer.history
        curves.append([r["test_top1"] for r in rows])
        chosen = {by: _chosen_epoch(rows, by) for by in ("val_loss", "val_top1")}
        chosen["last_epoch"] = rows[-1]["epoch"]
        calibrated, raw = trainer.test_reports["calibrated"], trainer.test_reports["uncalibrated"]
        # log-softmax of the uncalibrated model = its logits up to a constant per clip
        logits.append(np.log(np.clip(np.array([r["probabilities"] for r in raw["clips"]], dtype=np.float64), 1e-30, None)))
        temperatures.append(np.full(len(held_out), trainer.calibration["temperature"]))
        labels.append(np.array([ex.clip.label for ex in data.test]))
        paths.append(np.array([str(ex.clip.path) for ex in data.test]))
        per_fold.append({"fold": k, "train_clips": len(fit_clips), "val_clips": len(val_clips),
                         "held_out_clips": len(held_out), "best_epoch": trainer.best_epoch,
                         "refit": bool(trainer.refit),
                         "temperature": trainer.calibration["temperature"], "held_out_top1": calibrated["top1"],
                         **{f"top1_{by}": rows[e - 1]["test_top1"] for by, e in chosen.items()}})
        if progress:
            print(f"fold {k + 1}/{folds}: held-out top-1 {calibrated['top1']:.4f} on {len(held_out)} clips "
                  f"(epoch {trainer.best_epoch}, chosen on {cfg.select_by} of {len(val_clips)} val clips)", flush=True)
    z, t, y = np.concatenate(logits), np.concatenate(temperatures), np.concatenate(labels)
    p, p_raw = probabilities_from_logits(z / t[:, None]), probabilities_from_logits(z)
    top1 = float((p.argmax(1) == y).mean())  # pooled over clips (each held out once), not a mean of fold means
    return {
        "model": cfg.model, "backbone": cfg.backbone, "folds": folds, "clips": len(usable),
        "classes": ds.classes, "skipped": failed, "selected_by": cfg.select_by,
        "top1": top1, "top1_interval": accuracy_summary(top1, len(y)),
        "top1_fold_std": float(np.std([f["held_out_top1"] for f in per_fold])),
        # held-out top-1 had each fold's epoch been chosen by val loss / val top-1 / simply the last epoch
        "top1_by_selection": {by: _pooled(per_fold, f"top1_{by}") for by in ("val_loss", "val_top1", "last_epoch")},
        "ece": expected_calibration_error(p, y), "ece_uncalibrated": expected_calibration_error(p_raw, y),
        "per_fold": per_fold,
        "top1_by_epoch": [float(np.mean(c)) for c in zip(*curves)],
        "config": cfg.to_dict(),
        "_held_out": (z, t, y, np.concatenate(paths)),  # pooled over repeats by cross_validate_repeated, then dropped
    }


def _chosen_epoch(rows: list[dict], by: str) -> int:
    if not rows[0]["num_val_clips"]:
        return rows[-1]["epoch"]
    if by == "val_loss":
        return min(rows, key=lambda r: r["val_loss"])["epoch"]
    return max(rows, key=lambda r: (r["val_top1"], -r["val_loss"]))["epoch"]
