"""Spatial views of a frame sequence: centre or corner crops, optionally flipped, whole-sequence.

A view is named like 'center', 'center+flip', 'tl', 'br+flip'. Every frame of a sequence gets the same
view (the thesis flipped and cropped whole sequences), and each view's features are cached on their own.
"""

from __future__ import annotations

import numpy as np

CROPS = ("center", "tl", "tr", "bl", "br")
TEST_VIEW = "center"


def view_name(crop: str, flip: bool) -> str:
    return crop + ("+flip" if flip else "")


def parse_view(view: str) -> tuple[str, bool]:
    crop, _, flip = view.partition("+")
    if crop not in CROPS or flip not in ("", "flip"):
        raise ValueError(f"unknown view '{view}'")
    return crop, flip == "flip"


def training_views(crops: tuple[str, ...] | list[str] = ("center",), flip: bool = True) -> list[str]:
    """All views training may draw from; flip doubles them (p = 0.5 per sequence)."""
    for crop in crops:
        parse_view(crop)
    return [view_name(c, f) for c in crops for f in ((False, True) if flip else (False,))]


def apply_view(frames: np.ndarray, size: int, view: str) -> np.ndarray:
    """uint8 [N,H,W,3] with min(H,W) >= size -> uint8 [N,size,size,3] for the named view.

    torchvision's crop and flip on a uint8 tensor view give the same bytes as numpy slicing; flipped views
    are 5-7x faster (44 frames: 7-9 ms against 43-49 ms for numpy's negative-stride copy), plain crops are
    within a millisecond (benchmarks/transforms_bench.py).
    """
    import torch
    import torchvision.transforms.v2.functional as F

    crop, flip = parse_view(view)
    h, w = frames.shape[1:3]
    if h < size or w < size:
        raise ValueError(f"frames {h}x{w} are smaller than the {size}px crop")
    top = {"center": (h - size) // 2, "tl": 0, "tr": 0, "bl": h - size, "br": h - size}[crop]
    left = {"center": (w - size) // 2, "tl": 0, "bl": 0, "tr": w - size, "br": w - size}[crop]
    x = F.crop(torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2), top, left, size, size)
    if flip:
        x = F.horizontal_flip(x)
    return x.permute(0, 2, 3, 1).contiguous().numpy()
