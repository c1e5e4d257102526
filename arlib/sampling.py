"""Which frames a clip contributes: the cached frame grid, and the thesis's temporal sampling on it.

Positions returned here always increase (or repeat the last frame as padding), so sequences are in
time order; the thesis sorted frame files as text and its LSTM never saw time order.
"""

from __future__ import annotations

import numpy as np

# 20 frames, each with its motion partner (motion.py), cost the backbone what 40 appearance frames did and
# scored as well as 40 (CV, README "Accuracy on real clips"); the thesis preset keeps its 40.
DEFAULT_SEQ_LEN = 20
# Features are cached for at most this many frames per clip, spread uniformly over the whole clip
# (every frame of a short clip). Twice the sequence length, so training draws real temporal strides
# (1-2; a grid as long as the sequence would make every stride 1). Cost: README, "Feature cache".
DEFAULT_CACHE_FRAMES = 40


def even_in_time(times_s: np.ndarray, count: int) -> np.ndarray:
    """Indices of the frames nearest to `count` evenly spaced instants from the first frame to the last.

    times_s are the frames' presentation times (increasing). On a variable-frame-rate clip a frame shown for
    long is picked repeatedly, as a viewer would see it, instead of crowding the picks where frames are dense.
    """
    times = np.asarray(times_s, dtype=float)
    targets = np.linspace(times[0], times[-1], max(1, int(count)))
    after = np.searchsorted(times, targets).clip(1, max(1, len(times) - 1))
    before = after - 1
    if len(times) == 1:
        return np.zeros(len(targets), int)
    return np.where(targets - times[before] <= times[after] - targets, before, after)


def cache_grid(times_s: np.ndarray | int, max_frames: int = DEFAULT_CACHE_FRAMES) -> np.ndarray:
    """Frame numbers whose features are cached for a clip: at most max_frames, even in time.

    times_s: the clip's frame times (VideoInfo.frame_times()), or a frame count for a constant rate. Every
    frame of a short constant-rate clip; a variable-rate clip may list a long-shown frame more than once.
    """
    times = np.arange(max(1, int(times_s)), dtype=float) if np.isscalar(times_s) else np.asarray(times_s, float)
    return even_in_time(times, min(len(times), int(max_frames)))


def _pad(positions: np.ndarray, seq_len: int) -> np.ndarray:
    # Short clips are padded by repeating the last frame, as the thesis did.
    if len(positions) >= seq_len:
        return positions[:seq_len]
    return np.concatenate([positions, np.full(seq_len - len(positions), positions[-1])])


def real_steps(n: int, seq_len: int) -> int:
    """How many of the seq_len sampled steps are real frames; the rest are padding (masked by the model)."""
    return max(1, min(int(n), int(seq_len)))


def train_positions(n: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Thesis training sampling over the n cached frames: a random stride in [1, n // T] and a random
    start, so the T positions increase and stay inside the clip."""
    if n <= seq_len:
        return _pad(np.arange(n), seq_len)
    stride = int(rng.integers(1, n // seq_len + 1))
    start = int(rng.integers(0, n - (seq_len - 1) * stride))
    return start + stride * np.arange(seq_len)


def test_positions(n: int, seq_len: int) -> np.ndarray:
    """Test sampling: T positions spread uniformly over the whole clip (not the first T frames)."""
    if n <= seq_len:
        return _pad(np.arange(n), seq_len)
    return np.round(np.linspace(0, n - 1, seq_len)).astype(int)


def window_positions(n: int, seq_len: int, windows: int) -> list[np.ndarray]:
    """Uniform test positions inside each of `windows` equal, consecutive stretches of the clip."""
    windows = max(1, min(int(windows), n))
    edges = np.linspace(0, n, windows + 1).round().astype(int)
    return [lo + test_positions(hi - lo, seq_len) for lo, hi in zip(edges[:-1], edges[1:])]
