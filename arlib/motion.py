"""The motion stream: the same frozen CNN applied to RGB differences of nearby frames (TSN's RGB-diff idea).

For every cached grid frame g the stream encodes 128 + GAIN * (frame[g + GAP] - frame[g]), centre-cropped
like the appearance view, so still regions are flat grey and what moved shows as edges. The frozen
ImageNet CNN was never trained on such images, yet its features of them tell apart actions that look
alike in one frame (eye make-up vs lipstick, archery vs pitching): 4-fold group-aware CV on the 9 real
classes (README, "Results"). The features are cached as a view of their own named MOTION_VIEW; a
two-stream model (model.TwoStreamClassifier) reads [appearance | motion] concatenated per frame.
"""

from __future__ import annotations

import numpy as np

from . import video
from .transforms import TEST_VIEW, apply_view

MOTION_VIEW = "motion"
GAP = 2  # frames between the two images of a difference (~0.08 s at 25 fps)
GAIN = 2.0  # differences of frames 2 apart are small; doubled they use more of the 0-255 range


def partner_frames(frame_numbers: np.ndarray, num_frames: int) -> np.ndarray:
    """The frame GAP after each frame, clamped to the last frame of the clip."""
    return np.minimum(np.asarray(frame_numbers) + GAP, max(0, int(num_frames) - 1))


def difference_images(frames: np.ndarray, later: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W,3] frames and the frames GAP later -> uint8 difference images, grey where nothing moved."""
    diff = later.astype(np.int16) - frames.astype(np.int16)
    return np.clip(128 + GAIN * diff, 0, 255).astype(np.uint8)


def difference_crops(frames: np.ndarray, later: np.ndarray, input_size: int) -> np.ndarray:
    """What the backbone sees of the motion stream: difference images, centre-cropped like the appearance view."""
    return apply_view(difference_images(frames, later), input_size, TEST_VIEW)


def frames_and_partners(clip_path, frame_numbers: np.ndarray, info: video.VideoInfo, short_side: int,
                        warnings: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames at frame_numbers, the frames GAP after them) decoded in one pass over the clip: partners lie a
    frame or two beyond frames the decoder passes anyway, so a second pass would nearly double the decoding."""
    frame_numbers = np.asarray(frame_numbers)
    both = video.read_frames(clip_path, np.concatenate([frame_numbers, partner_frames(frame_numbers, info.num_frames)]),
                             short_side=short_side, info=info, warnings=warnings)
    return both[: len(frame_numbers)], both[len(frame_numbers):]


def fuse_streams(appearance: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """[G, D] + [G, D] -> [G, 2D]: what a two-stream model reads per frame."""
    return np.concatenate([appearance, motion], axis=1)
