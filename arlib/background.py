"""Background footage: what teaches temporal attention to find the action.

Trimmed clips show the action in every frame, so attention has no reason to prefer any of them (it learns
to average). Splicing each training clip's frames between frames of footage that is *not* any target action,
and keeping the clip's label, gives it that reason (weakly supervised localisation: STPN, Nguyen et al. 2018;
attention-MIL, Ilse et al. 2018). Splicing happens on cached per-frame features, so background clips cost one
backbone pass each, like any clip; `splice_videos` does the same to real video files, for tests and demos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import video
from .errors import DatasetError
from .sampling import test_positions, train_positions

UNSELECTED = "unselected"  # --background unselected: the dataset's other classes on disk


# ---------------------------------------------------------------------------------------------
# Finding background clips


def find_clips(folder: str | Path) -> list[str]:
    """Every clip under folder, any depth and layout, symlinks followed (each real folder visited once).

    A clip is a video file or a folder of frame images (which is not searched further)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"Background folder {root} {problem}: pass a folder of clips without the target "
                           f"actions, or '{UNSELECTED}'.")
    clips: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or two links to one folder
            dirnames[:] = []
            continue
        seen.add(real)
        if dirpath != str(root) and video.is_frame_folder(dirpath):
            clips.append(dirpath)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        clips.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                     if not f.startswith(".") and Path(f).suffix.lower() in video.VIDEO_EXTENSIONS)
    return clips


def unselected_clips(dataset_kwargs: dict, selected: list[str]) -> list[str]:
    """Clips on disk of the dataset's classes that were not selected (`--background unselected`)."""
    from .datasets import load_dataset

    everything = load_dataset(**{**dataset_kwargs, "classes": None})
    return sorted({c.path for c in everything.train + everything.test if c.class_name not in set(selected)})


def background_clips(source: str, dataset_kwargs: dict, selected: list[str], limit: int | None,
                     seed: int) -> list[str]:
    """The background clips for `train --background SOURCE`, at most `limit` of them (a seeded sample)."""
    if source == UNSELECTED:
        clips = unselected_clips(dataset_kwargs, selected)
        where = "the dataset's unselected classes"
    else:
        clips = find_clips(source)
        where = str(source)
    if not clips:
        raise DatasetError(f"No background clips found in {where}: it needs videos (or frame folders) that show "
                           "none of the target actions.")
    if limit and len(clips) > limit:
        keep = np.random.default_rng(seed).choice(len(clips), size=limit, replace=False)
        clips = [clips[i] for i in sorted(keep)]
    return clips


# ---------------------------------------------------------------------------------------------
# Splicing features


@dataclass(frozen=True)
class SpliceSettings:
    """How training splices: the action's share of the sequence is drawn from [share_min, share_max];
    a clip is spliced with probability `probability` (the rest stay whole, as at test time)."""

    share_min: float = 0.2
    share_max: float = 0.8
    probability: float = 1.0


def splice_features(action: np.ndarray, before: np.ndarray, after: np.ndarray, seq_len: int, share: float,
                    start: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A seq_len sequence: background `before`, then the action's frames, then background `after`.

    action/before/after are per-frame feature grids [G, D]; the action gets round(share * seq_len) steps
    starting at step `start`. With rng, frames are sampled as in training (random stride and start inside
    each piece); without, uniformly as at test time. Returns (features [T, D], action mask [T] bool).
    """
    k = int(np.clip(round(share * seq_len), 1, seq_len))
    start = int(np.clip(start, 0, seq_len - k))
    lengths = (start, k, seq_len - k - start)
    pieces = []
    for grid, n in zip((before, action, after), lengths):
        if n > len(grid):  # stretch a short piece evenly rather than freeze its last frame
            pieces.append(grid[np.round(np.linspace(0, len(grid) - 1, n)).astype(int)])
        elif n:
            positions = train_positions(len(grid), n, rng) if rng is not None else test_positions(len(grid), n)
            pieces.append(grid[positions])
    mask = np.zeros(seq_len, bool)
    mask[start : start + k] = True
    return np.concatenate(pieces), mask


def random_splice(action: np.ndarray, backgrounds: list[np.ndarray], seq_len: int, settings: SpliceSettings,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """A training splice with a random share, position and background clip(s); None = leave whole."""
    if not backgrounds or rng.random() >= settings.probability:
        return None
    share = rng.uniform(settings.share_min, settings.share_max)
    k = int(np.clip(round(share * seq_len), 1, seq_len))
    start = int(rng.integers(0, seq_len - k + 1))
    before, after = (backgrounds[int(i)] for i in rng.integers(len(backgrounds), size=2))
    return splice_features(action, before, after, seq_len, share, start, rng)


def attention_on_action(attention: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Attention mass inside the action's span, per sequence ([N, T] -> [N]); uniform gives the share."""
    return (np.asarray(attention) * np.asarray(mask)).sum(axis=-1)


# ---------------------------------------------------------------------------------------------
# Splicing real video files


def splice_videos(action: str | Path, before, after, out: str | Path, max_before_s: float | None = None,
                  max_after_s: float | None = None) -> tuple[int, int]:
    """Write background, then the action clip, then background as one video (the action's size and rate).

    `before` and `after` are a clip or a list of clips played one after another; each side is cut to at
    most max_*_s seconds (None: all of it). Returns the action's frame span [first, end) in the new video.
    """
    info = video.probe(action)
    frames = video.read_frames(action, range(info.num_frames))
    height, width = frames.shape[1:3]
    height, width = height - height % 2, width - width % 2  # H.264 needs even sizes

    def fitted(array: np.ndarray) -> np.ndarray:
        if array.shape[1:3] == (height, width):
            return array
        return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in array])

    def background(paths, limit_s) -> np.ndarray:
        budget = np.inf if limit_s is None else max(1, round(limit_s * info.fps))
        pieces = []
        for path in [paths] if isinstance(paths, (str, Path)) else list(paths):
            n = int(min(video.probe(path).num_frames, budget - sum(len(p) for p in pieces)))
            if n <= 0:
                break
            pieces.append(fitted(video.read_frames(path, range(n))))
        return np.concatenate(pieces) if pieces else np.zeros((0, height, width, 3), np.uint8)

    pre, post = background(before, max_before_s), background(after, max_after_s)
    video.write_clip(out, np.concatenate([pre, fitted(frames), post]), fps=info.fps)
    return len(pre), len(pre) + len(frames)


# ---------------------------------------------------------------------------------------------
# Validation: the attention mass on the action in spliced held-out clips

VALIDATION_SHARE = 1 / 3  # the action fills a third of each spliced validation sequence


def split_background(clips: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) background clips, whole groups apart (UCF names share a group; other clips are their own)."""
    from .datasets import Clip, group_of, group_split

    if len(clips) < 2 or val_fraction <= 0:
        return list(clips), []
    items = [Clip(path=c, label=0, class_name="background", stem=Path(c).stem, group=group_of(Path(c).stem),
                  kind="video") for c in clips]
    train, val = group_split(items, val_fraction, seed)
    return [c.path for c in train], [c.path for c in val]


def spliced_set(actions: list[np.ndarray], backgrounds: list[np.ndarray], seq_len: int, seed: int,
                share: float = VALIDATION_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Each action grid spliced once (test-time sampling) at a seeded position between seeded backgrounds.

    Returns (features [N, T, D] float32, action masks [N, T]); the same seed gives the same set every epoch."""
    rng = np.random.default_rng(seed)
    xs, masks = [], []
    k = int(np.clip(round(share * seq_len), 1, seq_len))
    for action in actions:
        before, after = (backgrounds[int(i)] for i in rng.integers(len(backgrounds), size=2))
        x, mask = splice_features(action, before, after, seq_len, share, int(rng.integers(0, seq_len - k + 1)))
        xs.append(x.astype(np.float32))
        masks.append(mask)
    return np.stack(xs), np.stack(masks)


# ---------------------------------------------------------------------------------------------
# Training with background: the features in memory, the spliced batches, the localisation metric


@dataclass
class BackgroundData:
    """Background feature grids [G, D] (centre view) for training splices and for spliced validation."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    failed: dict[str, str]
    description: str


def load_background(cfg, selected: list[str], dataset_clips: list[str] = (), progress: bool = False,
                    on_progress=None, log=lambda _m: None) -> BackgroundData | None:
    """Background clips of `cfg.background` through the run's feature cache, split into train/val groups.

    Clips of the dataset itself (the same file, through any link) are never used as background."""
    from .features import FeatureCache
    from .transforms import TEST_VIEW

    if not cfg.background:
        return None
    if cfg.features:
        raise DatasetError("Background footage needs video clips: it cannot be used with precomputed --features.")
    dataset_kwargs = {"data": cfg.data, "splits": cfg.splits, "split": cfg.split}
    own = {os.path.realpath(p) for p in dataset_clips}
    paths = [p for p in background_clips(cfg.background, dataset_kwargs, selected, None, cfg.seed)
             if os.path.realpath(p) not in own]
    if len(paths) > cfg.background_clips:
        keep = np.random.default_rng(cfg.seed).choice(len(paths), size=cfg.background_clips, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    if not paths:
        raise DatasetError(f"The background {cfg.background} holds only clips of the dataset itself; "
                           "give footage without the target actions.")
    cache = FeatureCache(cfg.backbone, cfg.cache_dir, cfg.cache_frames)
    done, failed = cache.ensure(paths, [TEST_VIEW], progress=progress, on_progress=on_progress)
    usable = [p for p in paths if p in done]
    if not usable:
        raise DatasetError(f"None of the {len(paths)} background clips could be read; first problem: "
                           f"{next(iter(failed.values()), 'none listed')}")
    train, val = split_background(usable, cfg.val_fraction, cfg.seed)
    grids = {p: done[p][TEST_VIEW].features for p in usable}
    source = "the dataset's unselected classes" if cfg.background == UNSELECTED else cfg.background
    description = (f"background: {len(usable)} clips from {source} ({len(train)} for training splices, "
                   f"{len(val)} for spliced validation; {len(failed)} unreadable)")
    log(description)
    for path, reason in failed.items():
        log(f"skipped background {path}: {reason}")
    return BackgroundData([grids[p] for p in train], [grids[p] for p in val] or [grids[p] for p in train],
                          failed, description)


def splice_seed(seed: int, epoch: int, step: int, item: int) -> np.random.Generator:
    """The splice of one planned batch item: fixed by its place in the run, so a resumed epoch replays it."""
    return np.random.default_rng([seed, epoch, step, item, 0x5B1CE])


def spliced_batch(grids: list[np.ndarray], positions: list[np.ndarray], backgrounds: list[np.ndarray], seq_len: int,
                  settings: SpliceSettings, rngs: list[np.random.Generator]) -> tuple[list[np.ndarray], np.ndarray, list[bool]]:
    """A planned batch with each clip spliced (or, with 1 - probability, left as planned).

    Returns (sequences [T, D], action masks [B, T], which were spliced)."""
    items, masks, spliced = [], [], []
    for grid, pos, rng in zip(grids, positions, rngs):
        result = random_splice(grid, backgrounds, seq_len, settings, rng)
        if result is None:
            items.append(grid[pos])
            masks.append(np.ones(seq_len, bool))
        else:
            items.append(result[0])
            masks.append(result[1])
        spliced.append(result is not None)
    return items, np.stack(masks), spliced


def attention_span_loss(attention, mask):
    """-log(attention mass inside the action's span), averaged over the spliced sequences (mask rows with
    no background are skipped): the splice says where the action is, so attention can be told directly."""
    import torch

    spliced = ~mask.all(dim=1)
    if not bool(spliced.any()):
        return attention.new_zeros(())
    mass = (attention[spliced] * mask[spliced]).sum(dim=1)
    return -torch.log(mass.clamp_min(1e-6)).mean()


def localisation_report(model, x: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict:
    """Attention mass on the action and top-1 on spliced validation sequences."""
    import torch

    if len(x) == 0:
        return {"val_attention_on_action": None, "val_spliced_top1": None}
    model.eval()
    with torch.inference_mode():
        logits, attention = model(torch.from_numpy(x).to(next(model.parameters()).device))
    return {
        "val_attention_on_action": float(attention_on_action(attention.float().cpu().numpy(), mask).mean()),
        "val_spliced_top1": float((logits.argmax(1).cpu().numpy() == labels).mean()),
        "val_action_share": float(mask.mean()),  # what uniform attention would score
    }
