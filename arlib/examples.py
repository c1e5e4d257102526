"""A run's data in memory: which clips train, validate and test, and their cached features.

Validation is always carved from the training clips by whole groups (seeded); the split's test list
(or, for a folder dataset without split files, its seeded held-out groups) is kept apart and is only
ever reported. The split is recorded in the run so `evaluate` can rebuild it from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import datasets
from .datasets import Clip, DatasetSplit
from .errors import ArlibError
from .features import ClipFeatures, FeatureCache, load_precomputed
from .motion import MOTION_VIEW, fuse_streams
from .sampling import real_steps
from .transforms import TEST_VIEW, training_views


def run_views(cfg) -> list[str]:
    """The cached views training draws from; precomputed features have only the one they came with."""
    return [TEST_VIEW] if cfg.features else training_views(cfg.crops, cfg.flip)


@dataclass
class Example:
    clip: Clip
    views: dict[str, ClipFeatures]

    @property
    def length(self) -> int:
        return len(next(iter(self.views.values())).features)

    @property
    def feature_dim(self) -> int:
        return int(next(iter(self.views.values())).features.shape[1])


@dataclass
class RunSplit:
    """The clips of one run: train (fitted on), val (chooses `best`, fits the temperature), test (reported)."""

    dataset: DatasetSplit
    train: list[Clip]
    val: list[Clip]
    test: list[Clip]
    val_fraction: float
    seed: int

    def record(self) -> dict:
        """What `evaluate` needs to rebuild this split, and what the run reports about it."""
        def groups(clips):
            return sorted({c.group for c in clips})

        return {
            "val_fraction": self.val_fraction, "seed": self.seed,
            "train_clips": len(self.train), "val_clips": len(self.val), "test_clips": len(self.test),
            "train_groups": groups(self.train), "val_groups": groups(self.val), "test_groups": groups(self.test),
            "test_source": ("the split's test list" if self.dataset.description.startswith("UCF-101")
                            else "held-out groups"),
        }


def load_split(cfg) -> RunSplit:
    """Lists clips only (opens none): the dataset's train/test, then validation carved from train by groups."""
    ds = datasets.load_dataset(data=cfg.data, splits=cfg.splits, split=cfg.split, classes=cfg.classes,
                               features=cfg.features, val_fraction=cfg.val_fraction, seed=cfg.seed)
    train, val = datasets.group_split(ds.train, cfg.val_fraction, cfg.seed) if cfg.val_fraction > 0 else (ds.train, [])
    return RunSplit(ds, train, val, list(ds.test), cfg.val_fraction, cfg.seed)


def load_examples(cfg, clips: list[Clip], views: list[str], progress: bool,
                  on_progress: Callable[[int, int, str], None] | None = None,
                  feature_dim: int | None = None) -> tuple[list[Example], dict[str, str]]:
    """Cached (or precomputed) features for every clip; unreadable clips are returned with a reason.

    Precomputed files whose width is not feature_dim (default: the most common width) are skipped too."""
    examples, failed = [], {}
    if cfg.features or any(c.kind == "features" for c in clips):
        for i, clip in enumerate(clips):
            try:
                examples.append(Example(clip, {TEST_VIEW: load_precomputed(clip.path)}))
            except ArlibError as exc:
                failed[clip.path] = str(exc)
            if on_progress:
                on_progress(i + 1, len(clips), clip.path)
        dims = [ex.feature_dim for ex in examples]
        if dims and (feature_dim or min(dims) != max(dims)):  # one odd file would crash every batch holding it
            common = feature_dim or max(set(dims), key=dims.count)
            for ex, d in zip(examples, dims):
                if d != common:
                    failed[ex.clip.path] = f"Feature file {Path(ex.clip.path).name} has {d}-d features, not {common}-d."
            examples = [ex for ex, d in zip(examples, dims) if d == common]
        return examples, failed
    if not clips:
        return [], {}
    cache = FeatureCache(cfg.backbone, cfg.cache_dir, cfg.cache_frames)
    motion = bool(getattr(cfg, "motion", False))
    done, failed = cache.ensure([c.path for c in clips], [*views, MOTION_VIEW] if motion else views,
                                progress=progress, on_progress=on_progress)
    if motion:  # every view a model reads is [appearance | motion] per frame (model.TwoStreamClassifier)
        done = {clip: {v: two_stream_features(item[v], item[MOTION_VIEW]) for v in views} for clip, item in done.items()}
    examples = [Example(c, done[c.path]) for c in clips if c.path in done]
    return examples, failed


def cached_views(cfg) -> list[str]:
    """Every view the cache must hold for this configuration: the training views, and the motion stream."""
    return [*run_views(cfg), MOTION_VIEW] if getattr(cfg, "motion", False) and not cfg.features else run_views(cfg)


def two_stream_features(appearance: ClipFeatures, motion: ClipFeatures) -> ClipFeatures:
    return ClipFeatures(fuse_streams(appearance.features, motion.features), appearance.frame_indices,
                        appearance.num_frames, appearance.fps, appearance.times_s)


def batch_tensors(items: list[np.ndarray], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [B, T, D] float32, lengths [B]): stacked sequences and how many leading steps of each are real."""
    return torch.from_numpy(np.stack(items).astype(np.float32)), torch.tensor(lengths, dtype=torch.long)


def sequence_lengths(examples: list[Example], seq_len: int) -> list[int]:
    return [real_steps(ex.length, seq_len) for ex in examples]


@dataclass
class RunData:
    """Everything the training loop needs, in memory (cross-validation builds it without any run folder)."""

    classes: list[str]
    train: list[Example]
    val: list[Example]
    test: list[Example] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    description: str = ""
    background: object | None = None  # arlib.background.BackgroundData when training with background footage
