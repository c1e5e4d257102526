"""The on-disk feature cache: the frozen backbone runs once per frame and view, ever.

Layout: <cache_root>/<backbone>-<preprocessing hash>/<clip hash>/<view>.npz holding
  features [G, D] float16, frame_indices [G] (frame numbers in the clip, even in time), times_s [G]
  (their presentation times from the clip's first frame), num_frames, fps.
The clip hash is taken from the file's size and its first and last 64 KiB, so a moved or renamed copy
of the same clip hits the cache, and an edited one misses it. Entries are written atomically and a
per-clip lock stops two processes from encoding the same clip twice; a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import video
from .backbones import DEFAULT_BACKBONE, compute_precision, get_spec, load_backbone
from .decoding import DecodeAhead, decode_grid, failure_sentence
from .devices import decode_workers
from .errors import ArlibError
from .fileio import atomic_write_bytes
from .motion import MOTION_VIEW, difference_crops
from .sampling import DEFAULT_CACHE_FRAMES
from .transforms import TEST_VIEW, apply_view

CACHE_VERSION = 1
DEFAULT_CACHE_DIR = Path(os.environ.get("ARLIB_CACHE_DIR", Path.home() / ".cache" / "arlib" / "features"))


# The one precision of per-frame features: the cache stores float16, and every consumer (training on a
# cold or a warm cache, evaluation, prediction) sees features rounded to it, so a run never depends on
# whether the cache was warm and `predict` agrees with `evaluate` on the same clip. README, "Feature cache".
STORED_DTYPE = np.float16


def as_stored(features: np.ndarray) -> np.ndarray:
    """Backbone output rounded to the cache's stored precision."""
    return np.asarray(features).astype(STORED_DTYPE)


@dataclass
class ClipFeatures:
    features: np.ndarray  # [G, D] float16 (float32 for precomputed)
    frame_indices: np.ndarray  # [G] increasing frame numbers
    num_frames: int
    fps: float
    times_s: np.ndarray | None = None  # [G] presentation times of frame_indices (None: frame_indices / fps)

    def frame_times(self) -> np.ndarray:
        return self.times_s if self.times_s is not None else np.asarray(self.frame_indices) / self.fps


def content_key(path: str | Path) -> str:
    """A cheap identity for a clip file or frame folder."""
    path = Path(path)
    h = hashlib.sha1()
    if path.is_dir():
        for f in video.list_frame_files(path):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()[:20]
    size = video.check_file(path).st_size  # a pipe is never opened (it would block), a link loop is named
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(65536))
        if size > 131072:
            f.seek(-65536, os.SEEK_END)
            h.update(f.read(65536))
    return h.hexdigest()[:20]


def load_precomputed(path: str | Path) -> ClipFeatures:
    """A <clip_stem>.npy of T x D floats made by another tool (I3D, VGG, ...)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # OSError, ValueError, and EOFError for a 0-byte file
        raise ArlibError(f"Feature file {Path(path).name} could not be read as a .npy array ({exc}).") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise ArlibError(f"Feature file {Path(path).name} has shape {getattr(arr, 'shape', '?')}; expected T x D numbers.")
    if not np.isfinite(arr).all():
        raise ArlibError(f"Feature file {Path(path).name} holds NaN or infinite values; recompute it.")
    return ClipFeatures(arr.astype(np.float32), np.arange(len(arr)), len(arr), 25.0)


class FeatureCache:
    def __init__(self, backbone: str = DEFAULT_BACKBONE, root: str | Path | None = None,
                 cache_frames: int = DEFAULT_CACHE_FRAMES):
        self.spec = get_spec(backbone)
        self.cache_frames = int(cache_frames)
        identity = {
            "backbone": self.spec.name,
            "preprocessing": self.spec.preprocessing.to_dict(),
            "cache_frames": self.cache_frames,
            "version": CACHE_VERSION,
            "decoder": video.DECODER_VERSION,  # decoded frames changed: entries made from the old ones are not reused
        }
        if compute_precision() != "fp32":  # bf16 on a GPU gives other numbers: a cache of its own
            identity["compute_precision"] = compute_precision()
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
        self.dir = Path(root or DEFAULT_CACHE_DIR) / f"{self.spec.name}-{digest}"
        self.backbone_frames = 0  # frames encoded by this instance (tests and the bench read it)

    def clip_dir(self, clip_path: str | Path) -> Path:
        return self.dir / content_key(clip_path)  # reads up to 128 KiB: take it once per clip

    def entry_path(self, clip_path: str | Path, view: str) -> Path:
        return self.clip_dir(clip_path) / f"{view}.npz"

    def get(self, clip_path: str | Path, view: str = TEST_VIEW) -> ClipFeatures | None:
        return self._load(self.entry_path(clip_path, view))

    @staticmethod
    def _load(entry: Path) -> ClipFeatures | None:
        try:
            with np.load(entry, allow_pickle=False) as z:
                times = z["times_s"] if "times_s" in z.files else None
                return ClipFeatures(z["features"], z["frame_indices"], int(z["num_frames"]), float(z["fps"]), times)
        except (OSError, ValueError, KeyError):
            return None  # absent, or unreadable: recompute

    def _write(self, path: Path, item: ClipFeatures) -> None:
        buf = io.BytesIO()
        np.savez(buf, features=as_stored(item.features), frame_indices=item.frame_indices.astype(np.int32),
                 num_frames=np.int64(item.num_frames), fps=np.float64(item.fps),
                 times_s=item.frame_times().astype(np.float64))
        atomic_write_bytes(path, buf.getvalue())

    @contextmanager
    def _clip_lock(self, clip_dir: Path):
        from filelock import FileLock

        clip_dir.mkdir(parents=True, exist_ok=True)
        # Another process (or torchrun rank) encoding this clip: wait, then reuse its entries.
        # is_singleton=False: decode threads of one process must exclude each other too.
        with FileLock(str(clip_dir / ".lock"), is_singleton=False):
            yield

    def _decode_settings(self) -> tuple[int, int]:
        return self.cache_frames, self.spec.preprocessing.resize_short_side

    def compute(self, clip_path: str | Path, views: Iterable[str], decoded: Future | None = None,
                ) -> dict[str, ClipFeatures]:
        """Features of every requested view, from the cache or by decoding the grid frames once.

        `decoded` may hold this clip's decode() already running in a thread or process (see ensure()).
        """
        views = list(dict.fromkeys(views))
        clip_dir = self.clip_dir(clip_path)
        result = {v: self._load(clip_dir / f"{v}.npz") for v in views}
        missing = [v for v, item in result.items() if item is None]
        if not missing:
            return result
        with self._clip_lock(clip_dir):
            result.update({v: self._load(clip_dir / f"{v}.npz") for v in missing})
            missing = [v for v, item in result.items() if item is None]
            if missing:
                # the motion view's partner frames come from the same decoding pass (in the decode worker)
                info, grid, frames, later = (decoded.result() if decoded else
                                             decode_grid(str(clip_path), *self._decode_settings(), MOTION_VIEW in missing))
                pre = self.spec.preprocessing
                backbone = load_backbone(self.spec.name)
                for view in missing:
                    if view == MOTION_VIEW:  # RGB differences with the frames GAP later (motion.py)
                        crops = difference_crops(frames, later, pre.input_size)
                    else:
                        crops = apply_view(frames, pre.input_size, view)
                    feats = backbone.encode(crops)
                    self.backbone_frames += len(feats)
                    item = ClipFeatures(as_stored(feats), grid, info.num_frames, info.fps,
                                        info.frame_times()[grid])
                    self._write(clip_dir / f"{view}.npz", item)
                    result[view] = item
        return result

    def _decode_args(self, clip_path: str, views: list[str]) -> tuple | None:
        """What a decode worker needs for this clip (plain values), or None when there is nothing to decode."""
        try:
            clip_dir = self.clip_dir(clip_path)
            if all((clip_dir / f"{v}.npz").exists() for v in views):
                return None  # cached already: nothing to decode
        except (OSError, ArlibError):
            return None  # missing, unreadable or not a file: compute() reports it for this clip alone
        return (str(clip_path), *self._decode_settings(), MOTION_VIEW in views)

    def ensure(self, clip_paths: list[str], views: Iterable[str], progress: bool = True,
               on_progress: Callable[[int, int, str], None] | None = None,
               ) -> tuple[dict[str, dict[str, ClipFeatures]], dict[str, str]]:
        """Fill the cache for many clips. Returns ({clip: {view: features}}, {clip: reason it failed}).

        One bad clip is recorded and skipped; it never stops the others.
        """
        from tqdm import tqdm

        views = list(views)
        done: dict[str, dict[str, ClipFeatures]] = {}
        failed: dict[str, str] = {}
        bar = tqdm(clip_paths, desc="features", unit="clip", disable=not progress, dynamic_ncols=True)
        # Decode the next clip(s) while the backbone encodes this one: decoding was a third of the cache
        # build (measured on 320x240 H.264 clips). On the CPU one thread, one clip ahead (2 cores); a GPU
        # encodes far faster than one core decodes, so several worker processes decode at once (decoding.py).
        # The pool is shut down however this ends (a bad clip, an error, Ctrl-C): no worker outlives it.
        with DecodeAhead(lambda j: self._decode_args(clip_paths[j], views), len(clip_paths), decode_workers()) as ahead:
            for i, clip in enumerate(bar):
                decoded = ahead.take(i)
                try:
                    done[clip] = self.compute(clip, views, decoded)
                except ArlibError as exc:
                    failed[clip] = str(exc)
                except Exception as exc:  # whatever it was, one clip never stops the others
                    failed[clip] = failure_sentence(clip, exc)
                if on_progress:
                    on_progress(i + 1, len(clip_paths), clip)
        return done, failed

