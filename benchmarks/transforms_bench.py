"""Crop + flip of decoded frames: numpy slicing (what arlib did before) against torchvision's crop and flip
on a uint8 tensor view (what arlib.transforms.apply_view does now). Same frames, same bytes, interleaved rounds.

    python benchmarks/transforms_bench.py
"""

from __future__ import annotations

import time

import numpy as np

from arlib.transforms import apply_view


def numpy_view(frames: np.ndarray, size: int, flip: bool) -> np.ndarray:
    h, w = frames.shape[1:3]
    top, left = (h - size) // 2, (w - size) // 2
    out = frames[:, top : top + size, left : left + size]
    return np.ascontiguousarray(out[:, :, ::-1] if flip else out)


def main() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (44, 256, 341, 3), dtype=np.uint8)  # one clip's cache grid
    for view, flip in (("center", False), ("center+flip", True)):
        assert np.array_equal(numpy_view(frames, 224, flip), apply_view(frames, 224, view))
        best = {"numpy": [], "torchvision": []}
        for _ in range(7):
            for name, fn, arg in (("numpy", numpy_view, flip), ("torchvision", apply_view, view)):
                t = time.perf_counter()
                fn(frames, 224, arg)
                best[name].append(time.perf_counter() - t)
        a, b = min(best["numpy"]), min(best["torchvision"])
        print(f"44 frames 256x341 -> 224 '{view}': numpy {a * 1e3:.1f} ms, torchvision {b * 1e3:.1f} ms "
              f"(numpy / torchvision = {a / b:.1f}x)")


if __name__ == "__main__":
    main()
