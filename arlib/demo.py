"""The embedded default dataset: small synthetic clips in UCF-101 layout, written in seconds.

Classes come in time-reversed twins (Grow/Shrink, FadeIn/FadeOut, FillUp/Drain, Colorize/Decolorize).
Every twin survives a horizontal flip (unlike left/right motion or clockwise rotation, whose mirror
image is the other twin), so flip augmentation never turns one class into the other.
A clip of the second class of a pair is a clip of the first kind, drawn with its own random parameters and
played backwards, so both classes have statistically identical frames: FRAME ORDER IS THE ONLY CUE within
a pair. A per-frame classifier can at best tell the four pairs apart; a sequence model must use time.

Layout (like the real dataset):
    out_dir/UCF-101/<Class>/v_<Class>_gNN_cMM.avi          MPEG-4 in AVI, like UCF's XviD clips
    out_dir/ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt   (CRLF, entries name .avi)
    out_dir/demo.json                                      manifest, written last: the dataset is complete
Clips of one group share a scene (background), as UCF groups share actor and place; the test list holds
whole groups (the last ``test_groups``), never a group split across train and test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .video import write_clip

_VERSION = 2  # bump when the rendering changes, so old demo folders are rebuilt
MANIFEST = "demo.json"


# ------------------------------------------------------------------------------------------------ rendering


def _progress(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """0 -> 1 over the clip with a random onset and end (the 'speed phase'), eased: shape [T]."""
    t = np.linspace(0.0, 1.0, num_frames)
    t0, t1 = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
    p = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    return p * p * (3.0 - 2.0 * p)


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background [H, W, 3] in 0..255: a two-colour gradient plus coarse blotches."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    c1, c2 = rng.uniform(20.0, 235.0, (2, 3))
    blotches = np.kron(rng.uniform(-35.0, 35.0, (6, 6, 3)), np.ones((size // 6 + 1, size // 6 + 1, 1)))
    return np.clip(c1 + (c2 - c1) * ramp + blotches[:size, :size], 0.0, 255.0)


def _contrasting_colour(rng: np.random.Generator, scene: np.ndarray) -> np.ndarray:
    """A foreground colour far from the scene's mean colour, so the shape stands out."""
    mean = scene.reshape(-1, 3).mean(0)
    for _ in range(50):
        colour = rng.uniform(0.0, 255.0, 3)
        if np.linalg.norm(colour - mean) > 150.0:
            return colour
    return 255.0 - mean


def _paint(scene: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Composite a colour over the scene with per-frame coverage alpha [T, H, W] -> [T, H, W, 3]."""
    alpha = alpha[..., None]
    return scene[None] * (1.0 - alpha) + colour * alpha


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each [1, H, W], ready to broadcast over time."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return yy[None], xx[None]


def _grow(rng, scene, num_frames):
    """A disc growing from small to filling the frame."""
    size = scene.shape[0]
    p = _progress(rng, num_frames)[:, None, None]
    cy, cx = size * (0.5 + rng.uniform(-0.1, 0.1, 2))
    radius = size * (rng.uniform(0.04, 0.1) + p * (rng.uniform(0.65, 0.9) - 0.07))
    yy, xx = _grid(size)
    alpha = np.clip(radius - np.hypot(yy - cy, xx - cx) + 0.5, 0.0, 1.0)
    return _paint(scene, alpha, _contrasting_colour(rng, scene))


def _with_boxes(rng, scene, count: tuple[int, int], side: tuple[int, int], colour) -> np.ndarray:
    """A copy of the scene with a few axis-aligned boxes of colour() (side as fractions 1/side[0]..1/side[1])."""
    size = scene.shape[0]
    scene = scene.copy()
    for _ in range(rng.integers(*count)):
        y0, x0 = rng.integers(0, size * 3 // 4, 2)
        h, w = rng.integers(size // side[0], size // side[1], 2)
        scene[y0 : y0 + h, x0 : x0 + w] = colour()
    return scene


def _fade_in(rng, scene, num_frames):
    """A textured scene with a few coloured boxes, brightening from near black."""
    scene = _with_boxes(rng, scene, (2, 5), (8, 3), lambda: rng.uniform(0.0, 255.0, 3))
    p = _progress(rng, num_frames)
    low, high = rng.uniform(0.03, 0.15), rng.uniform(0.85, 1.0)
    return scene[None] * (low + (high - low) * p)[:, None, None, None]


def _fill_up(rng, scene, num_frames):
    """A coloured level rising from the bottom edge towards the top, with a gently tilted surface."""
    size = scene.shape[0]
    p = _progress(rng, num_frames)[:, None, None]
    start, stop = rng.uniform(0.0, 0.12), rng.uniform(0.8, 1.0)
    tilt = rng.uniform(-0.08, 0.08) * size
    yy, xx = _grid(size)
    surface = size * (1.0 - (start + p * (stop - start))) + tilt * (xx / size - 0.5)
    alpha = np.clip(yy - surface + 0.5, 0.0, 1.0)
    return _paint(scene, alpha, _contrasting_colour(rng, scene))


def _colorize(rng, scene, num_frames):
    """A scene of vivid boxes turning from grey to full colour."""
    vivid = lambda: rng.permutation([rng.uniform(0, 40), rng.uniform(90, 160), rng.uniform(215, 255)])  # noqa: E731
    scene = _with_boxes(rng, scene, (3, 6), (6, 2), vivid)
    grey = scene.mean(axis=2, keepdims=True)
    p = _progress(rng, num_frames)[:, None, None, None]
    return grey[None] + (scene[None] - grey[None]) * (rng.uniform(0.0, 0.1) + p * rng.uniform(0.85, 0.9))


# (forward class, its time-reversed twin, renderer of the forward kind), in classInd order.
_TWINS = [
    ("Grow", "Shrink", _grow),
    ("FadeIn", "FadeOut", _fade_in),
    ("FillUp", "Drain", _fill_up),
    ("Colorize", "Decolorize", _colorize),
]
DEMO_CLASSES: list[str] = [name for forward, backward, _ in _TWINS for name in (forward, backward)]
_RENDERER = {name: (render, name == backward) for forward, backward, render in _TWINS for name in (forward, backward)}


def render_clip(class_name: str, seed, size: int = 96, num_frames: int = 36, scene_seed=None) -> np.ndarray:
    """uint8 frames [T, size, size, 3] of one demo clip; parameters drawn from ``seed``, scene from ``scene_seed``.

    The twin class renders the forward kind with the same draws and reverses time, so
    ``render_clip('Shrink', s)`` equals ``render_clip('Grow', s)[::-1]``.
    """
    if class_name not in _RENDERER:
        raise ValueError(f"Unknown demo class {class_name!r}; choose one of {DEMO_CLASSES}.")
    render, reverse = _RENDERER[class_name]
    scene = _scene(np.random.default_rng(seed if scene_seed is None else scene_seed), size)
    rng = np.random.default_rng(seed)
    frames = render(rng, scene, num_frames)
    frames = frames + rng.normal(0.0, rng.uniform(2.0, 6.0), frames.shape)  # a little sensor noise
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    return frames[::-1].copy() if reverse else frames


# -------------------------------------------------------------------------------------------------- dataset


def make_demo_dataset(
    out_dir,
    clips_per_class: int = 12,
    seed: int = 0,
    size: int = 96,
    num_frames: int = 36,
    fps: float = 12.0,
    test_groups: int | None = None,
    clips_per_group: int | None = None,
) -> Path:
    """Write the demo dataset to out_dir (see the module doc) and return out_dir.

    Groups and test groups left as None follow clips_per_class (see `group_layout`). Deterministic for a seed;
    returns at once when out_dir already holds it with the same parameters. It is built in a temporary sibling
    folder and renamed into place, so an interrupted run leaves no half dataset.
    """
    out_dir = Path(out_dir)
    auto_per_group, auto_test = group_layout(clips_per_class)
    clips_per_group = auto_per_group if clips_per_group is None else clips_per_group
    test_groups = auto_test if test_groups is None else test_groups
    params = {
        "version": _VERSION, "classes": DEMO_CLASSES, "clips_per_class": clips_per_class, "seed": seed,
        "size": size, "num_frames": num_frames, "fps": fps, "test_groups": test_groups,
        "clips_per_group": clips_per_group,
    }  # fmt: skip
    if _manifest(out_dir) == params:
        return out_dir
    num_groups = _check_params(clips_per_class, clips_per_group, test_groups, size, num_frames)
    _refuse_foreign(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _write_dataset(staging, params, num_groups)
        _publish(staging, out_dir, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def group_layout(clips_per_class: int) -> tuple[int, int]:
    """(clips per group, test groups) for a number of clips per class: groups of 2 with the last 2 groups as
    the test list from 5 clips a class up (the default 12 gives 6 groups, 4 for training); below that, groups
    of one clip and one test group, so 2-4 clips a class still leave training clips and a test clip."""
    return (2, 2) if clips_per_class >= 5 else (1, 1)


def _check_params(clips_per_class, clips_per_group, test_groups, size, num_frames) -> int:
    # DatasetError: the CLI's --clips-per-class reaches here, and its user gets this sentence.
    num_groups = math.ceil(clips_per_class / clips_per_group) if clips_per_group > 0 else 0
    if clips_per_class < 2:
        raise DatasetError(f"The demo dataset needs at least 2 clips per class (one to train on, one to test), "
                           f"got {clips_per_class}.")
    if not 0 < test_groups < num_groups:
        raise DatasetError(
            f"{clips_per_class} clips per class in groups of {clips_per_group} make {num_groups} groups; "
            f"test_groups must be between 1 and {num_groups - 1}."
        )
    if size < 16 or size % 2 or num_frames < 2:
        raise DatasetError(f"size must be an even number >= 16 and num_frames >= 2, got {size} and {num_frames}.")
    return num_groups


def _manifest(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _refuse_foreign(out_dir: Path) -> None:
    """Only an empty folder or an earlier demo dataset may be replaced: never someone's data."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and _manifest(out_dir) is None:
        raise DatasetError(f"{out_dir} already holds files that are not a demo dataset; choose an empty folder.")


def _clip_names(clips_per_class: int, clips_per_group: int):
    """(group, clip) numbers, 1-based, of a class's clips: groups filled in turn, the last may be smaller."""
    for number in range(clips_per_class):
        yield number // clips_per_group + 1, number % clips_per_group + 1


def _write_dataset(root: Path, params: dict, num_groups: int) -> None:
    train, test = [], []
    first_test_group = num_groups - params["test_groups"] + 1
    for class_index, name in enumerate(DEMO_CLASSES, 1):
        for group, clip in _clip_names(params["clips_per_class"], params["clips_per_group"]):
            stem = f"v_{name}_g{group:02d}_c{clip:02d}"
            frames = render_clip(
                name,
                seed=[params["seed"], class_index, group, clip],
                size=params["size"],
                num_frames=params["num_frames"],
                scene_seed=[params["seed"], class_index, group],  # one scene per group, as in UCF-101
            )
            write_clip(root / "UCF-101" / name / f"{stem}.avi", frames, fps=params["fps"], codec="mpeg4")
            entry = f"{name}/{stem}.avi"
            (test if group >= first_test_group else train).append((entry, class_index))
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    _write_crlf(lists / "classInd.txt", [f"{i} {name}" for i, name in enumerate(DEMO_CLASSES, 1)])
    _write_crlf(lists / "trainlist01.txt", [f"{entry} {label}" for entry, label in train])
    _write_crlf(lists / "testlist01.txt", [entry for entry, _ in test])
    (root / MANIFEST).write_text(json.dumps(params, indent=2))  # last: marks the dataset complete


def _write_crlf(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())  # CRLF, like the official files


def _publish(staging: Path, out_dir: Path, params: dict) -> None:
    """Move the finished dataset into place, replacing an older demo dataset (or an empty folder)."""
    if _manifest(out_dir) == params:
        return  # a concurrent run finished the same dataset first: keep it, readers may be using it
    old = None
    if out_dir.exists():
        old = staging.with_name(staging.name + ".old")
        os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except OSError:
        if _manifest(out_dir) != params:  # not "a concurrent run just finished the same dataset"
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
