"""Small synthetic datasets the tests make for themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def feature_dataset(root: Path, classes=("Alpha", "Beta", "Gamma"), groups: int = 4, per_group: int = 2,
                    length: int = 20, dim: int = 16, seed: int = 0, test_groups: int = 1) -> tuple[Path, Path]:
    """<root>/features/<Class>/<stem>.npy (T x D) + UCF-style split files; class = a direction in feature space
    that appears over time. Returns (features dir, splits dir)."""
    rng = np.random.default_rng(seed)
    feats, splits = root / "features", root / "ucfTrainTestlist"
    splits.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    directions = rng.normal(size=(len(classes), dim))
    for label, name in enumerate(classes):
        (feats / name).mkdir(parents=True, exist_ok=True)
        for g in range(1, groups + 1):
            for c in range(1, per_group + 1):
                stem = f"v_{name}_g{g:02d}_c{c:02d}"
                t = np.linspace(0, 1, length)[:, None]
                arr = rng.normal(scale=0.5, size=(length, dim)) + t * directions[label]
                np.save(feats / name / f"{stem}.npy", arr.astype(np.float32))
                (test if g > groups - test_groups else train).append((f"{name}/{stem}.avi", label + 1))
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {n}\r\n" for i, n in enumerate(classes)))
    (splits / "trainlist01.txt").write_text("".join(f"{p} {lab}\r\n" for p, lab in train))
    (splits / "testlist01.txt").write_text("".join(f"{p}\r\n" for p, _ in test))
    return feats, splits


def index_clip(path: Path, frames: int = 12, size: int = 64, fps: float = 10.0, codec: str | None = None) -> Path:
    """A clip whose frame i is a flat grey level 10 + 20 * i, so order survives lossy codecs."""
    from arlib.video import write_clip

    levels = (10 + 20 * np.arange(frames)) % 250
    data = np.repeat(levels[:, None, None, None], size, 1).repeat(size, 2).repeat(3, 3).astype(np.uint8)
    return write_clip(path, data, fps=fps, codec=codec)


def moving_square_clip(path: Path, frames: int = 10, size: int = 96, step: int = 6, seed: int = 0) -> Path:
    """A bright square moving `step` px right per frame (0: standing still) over a flat background, 10 fps."""
    from arlib.video import write_clip

    rng = np.random.default_rng(seed)
    data = np.full((frames, size, size, 3), 90, np.uint8) + rng.integers(0, 20, size=(1, 1, 1, 3), dtype=np.uint8)
    for i in range(frames):
        data[i, 30:54, 4 + step * i: 28 + step * i] = 230
    return write_clip(path, data, fps=10.0)
