"""Reading temporal attention honestly: weights relative to uniform, on one fixed scale, and one sentence.

A model that averages frames gives every frame about 1/T. Coloured min-to-max per clip, 0.023 vs 0.028 looks
like a strong preference; measured as a ratio to uniform (0.9x vs 1.1x) it is what it is: nothing. Every
picture of attention (strip, chart, GIF bar) uses the same scale: log2 of the ratio to uniform, clipped to
+-RATIO_OCTAVES, so 1/4x is one end, uniform the middle and 4x the other end, whatever the clip.
"""

from __future__ import annotations

import numpy as np

RATIO_OCTAVES = 2.0  # the scale runs from 2**-2 = 1/4x to 2**2 = 4x uniform
# Below this ratio to uniform (the peak frame, or the densest stretch of frames) attention is called close to uniform.
NEAR_UNIFORM_PEAK = 1.5


def uniform_level(attention) -> float:
    """The weight every frame would get if the model used all frames equally (1/T for weights summing to 1;
    the mean weight in general, so per-window scaled or subsampled weights keep the right reference)."""
    attention = np.asarray(attention, float)
    return float(attention.mean()) if attention.size and attention.mean() > 0 else 1.0


def ratio_to_uniform(attention, uniform: float | None = None) -> np.ndarray:
    attention = np.asarray(attention, float)
    return attention / (uniform if uniform else uniform_level(attention))


def scale_position(attention, uniform: float | None = None) -> np.ndarray:
    """Each weight's place on the fixed scale, in [0, 1]: 0 = 1/4x uniform or less, 0.5 = uniform, 1 = 4x or more."""
    ratio = np.maximum(ratio_to_uniform(attention, uniform), 1e-12)
    return np.clip((np.log2(ratio) + RATIO_OCTAVES) / (2 * RATIO_OCTAVES), 0.0, 1.0)


def format_ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2f}x"


def _densest_span(excess: np.ndarray) -> tuple[int, int]:
    """[start, end) of the contiguous run of frames with the largest total weight above uniform (Kadane)."""
    best, best_span, run, start = -np.inf, (0, 1), 0.0, 0
    for i, x in enumerate(excess):
        if run <= 0:
            run, start = 0.0, i
        run += x
        if run > best:
            best, best_span = run, (start, i + 1)
    return best_span


def attention_summary(attention, timestamps_s=None) -> str:
    """One sentence on how peaked the attention is, e.g. 'Attention is close to uniform: the model used all
    frames about equally (no frame above 1.3x uniform)' or '62 % of the attention falls on 2.1-3.4 s (10 of 40
    frames, 2.5x their uniform share)'."""
    a = np.asarray(attention, float)
    if a.size == 0 or a.sum() <= 0:
        return "There is no attention to describe."
    a = a / a.sum()
    n = len(a)
    peak = float(a.max() * n)
    start, end = _densest_span(a - 1.0 / n)
    mass = float(a[start:end].sum())
    share = (end - start) / n
    if peak < NEAR_UNIFORM_PEAK or mass / share < NEAR_UNIFORM_PEAK:
        return (f"Attention is close to uniform: the model used all frames about equally "
                f"(no frame above {format_ratio(peak)} uniform).")
    if timestamps_s is not None and len(timestamps_s) == n:
        where = f"{float(timestamps_s[start]):.1f}-{float(timestamps_s[end - 1]):.1f} s"
        if end - start == 1:
            where = f"the frame at {float(timestamps_s[start]):.1f} s"
    else:
        where = f"frames {start + 1}-{end}" if end - start > 1 else f"frame {start + 1}"
    return (f"{mass * 100:.0f} % of the attention falls on {where} ({end - start} of {n} frames, "
            f"{format_ratio(mass / share)} their uniform share).")
