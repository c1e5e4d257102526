"""Views made with torchvision's crop and flip are byte for byte the numpy crops the cache was built with."""

import numpy as np
import pytest

from arlib.transforms import CROPS, apply_view, view_name


def numpy_view(frames, size, crop, flip):
    h, w = frames.shape[1:3]
    top = {"center": (h - size) // 2, "tl": 0, "tr": 0, "bl": h - size, "br": h - size}[crop]
    left = {"center": (w - size) // 2, "tl": 0, "bl": 0, "tr": w - size, "br": w - size}[crop]
    out = frames[:, top : top + size, left : left + size]
    return out[:, :, ::-1] if flip else out


@pytest.mark.parametrize("crop", CROPS)
@pytest.mark.parametrize("flip", [False, True])
def test_every_view_equals_numpy_slicing(crop, flip):
    frames = np.random.default_rng(0).integers(0, 256, (3, 37, 53, 3), dtype=np.uint8)
    got = apply_view(frames, 29, view_name(crop, flip))
    assert got.dtype == np.uint8 and got.shape == (3, 29, 29, 3) and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, numpy_view(frames, 29, crop, flip))


def test_too_small_frames_are_refused():
    with pytest.raises(ValueError, match="smaller than the 32px crop"):
        apply_view(np.zeros((1, 20, 40, 3), np.uint8), 32, "center")
