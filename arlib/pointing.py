"""The pointing game (Zhang et al. 2016) for Grad-CAM, on synthetic clips whose only evidence is one object.

Each clip shows a coloured disc moving inside one quadrant over a random grey texture; its colour is the
class. A frame scores a hit when its heat map's peak lies in the disc's quadrant (the game issue 7 names,
chance 1/4); the stricter score counts only peaks on the disc itself, within the usual 15 px tolerance at
the network's input scale. Used by tests/test_explain.py and `python -m arlib.explain_bench`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .video import write_clip

TOLERANCE_INPUT_PX = 15  # the pointing game's tolerance, in pixels of the backbone's input crop

CLIP_SIZE = 64


# The disc's colour is the class. A third class shows no disc at all, so no colour class can be recognised by
# the mere absence of another's colour: each needs its own evidence in the picture (with only Red and Blue,
# "not red" is enough to say blue, and a blue clip's map has nothing to point at).
QUADRANT_COLOURS = {"Red": (220, 40, 30), "Blue": (30, 60, 220)}
NO_OBJECT = "Nothing"
QUADRANT_CLASSES = (*QUADRANT_COLOURS, NO_OBJECT)


def quadrant_clip(path: Path, label: str, quadrant: int, seed: int, frames: int = 8, size: int = CLIP_SIZE,
                  radius: int = 8, fps: float = 8.0) -> tuple[Path, np.ndarray]:
    """A clip whose only evidence of its class is a coloured disc moving inside one quadrant (0 = top left,
    1 = top right, 2 = bottom left, 3 = bottom right) over a random grey texture (Nothing: the texture alone).
    Returns (path, the disc's box per frame as [x0, y0, x1, y1] in frame pixels)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 190, (8, 8))
    texture = np.kron(coarse, np.ones((size // 8, size // 8)))[:size, :size]
    texture = texture + rng.normal(0, 8, (size, size))
    # Quadrants inside the 7/8 centre crop the backbone sees (crop margin = size/16 on each side).
    margin, half = size // 16 + radius, size // 2
    qy, qx = divmod(quadrant, 2)
    lo_x, hi_x = qx * half + (margin if qx == 0 else radius), (qx + 1) * half - (radius if qx == 0 else margin)
    lo_y, hi_y = qy * half + (margin if qy == 0 else radius), (qy + 1) * half - (radius if qy == 0 else margin)
    start, end = rng.uniform([lo_x, lo_y], [hi_x, hi_y]), rng.uniform([lo_x, lo_y], [hi_x, hi_y])
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    video, boxes = np.empty((frames, size, size, 3), np.uint8), []
    for t in range(frames):
        cx, cy = start + (end - start) * t / max(1, frames - 1)
        img = np.repeat(texture[..., None], 3, axis=2)
        disc = np.hypot(xx - cx, yy - cy) <= radius
        if label != NO_OBJECT:
            img[disc] = QUADRANT_COLOURS[label]
        video[t] = np.clip(img, 0, 255).astype(np.uint8)
        boxes.append([cx - radius, cy - radius, cx + radius, cy + radius])
    return write_clip(path, video, fps=fps), np.asarray(boxes)


def quadrant_dataset(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """<root>/<Class>/v_<Class>_gNN_c01.mp4 quadrant clips (one group per clip, random quadrants)."""
    rng = np.random.default_rng(seed)
    for label in QUADRANT_CLASSES:
        for i in range(per_class):
            quadrant_clip(root / label / f"v_{label}_g{i + 1:02d}_c01.mp4", label, int(rng.integers(4)),
                          seed=int(rng.integers(1 << 30)))
    return root



def hits(heat: np.ndarray, boxes: np.ndarray, frame_hw: tuple[int, int], input_size: int,
         resize_short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """heat [T, rows, cols] over whole frames of size frame_hw; boxes [T, 4] the object per frame in frame
    pixels -> (bool [T] is the heat peak on the object, within the tolerance; bool [T] is it in the object's
    quadrant, the game the issue names, chance 1/4)."""
    h, w = frame_hw
    tolerance = TOLERANCE_INPUT_PX * min(h, w) / resize_short_side
    on_object, in_quadrant = [], []
    for frame_heat, (x0, y0, x1, y1) in zip(heat, boxes):
        rows, cols = frame_heat.shape
        r, c = np.unravel_index(int(np.argmax(frame_heat)), frame_heat.shape)
        y, x = (r + 0.5) * h / rows, (c + 0.5) * w / cols
        on_object.append(x0 - tolerance <= x <= x1 + tolerance and y0 - tolerance <= y <= y1 + tolerance)
        in_quadrant.append((x < w / 2) == ((x0 + x1) / 2 < w / 2) and (y < h / 2) == ((y0 + y1) / 2 < h / 2))
    return np.asarray(on_object, bool), np.asarray(in_quadrant, bool)


def pointing_score(predictor, clips: list[tuple[Path, np.ndarray]]) -> dict:
    """Over all frames of the clips, with the heat maps a user gets by default (for the predicted class):
    {'quadrant': share of frames whose heat peak lies in the object's quadrant, 'object': share whose peak
    lies on the object itself (15 px tolerance), 'frames': frames scored}."""
    pre = predictor.backbone.spec.preprocessing
    scored = []
    for clip, boxes in clips:
        pred = predictor.predict(clip, heatmaps=True)
        frame_hw = pred.frames.shape[1:3]
        scale = frame_hw[0] / CLIP_SIZE  # boxes are in the written clip's pixels; frames come back resized
        scored.append(hits(pred.heat, boxes[pred.frame_indices] * scale, frame_hw, pre.input_size,
                           pre.resize_short_side))
    on_object = np.concatenate([s[0] for s in scored])
    in_quadrant = np.concatenate([s[1] for s in scored])
    return {"quadrant": float(in_quadrant.mean()), "object": float(on_object.mean()), "frames": len(on_object)}


def test_clips(root: Path, count: int, seed: int = 1000) -> list[tuple[Path, np.ndarray]]:
    """Fresh clips (never trained on) of the colour classes, taking turns; 8 clips put each colour in each quadrant."""
    colours = list(QUADRANT_COLOURS)
    n = len(colours)
    return [quadrant_clip(root / f"{colours[i % n]}_{i}.mp4", colours[i % n], (i // n) % 4, seed=seed + i)
            for i in range(count)]


def train_model(root: Path, per_class: int = 8, epochs: int = 30, seed: int = 0) -> Path:
    """A small attention model on quadrant clips (frozen EfficientNet-Lite0, the default backbone, 8 frames
    per clip); returns its best checkpoint. About 30 s on two busy cores."""
    from .runs import RunDir
    from .train import make_config, train

    quadrant_dataset(root / "data", per_class=per_class, seed=seed)
    cfg = make_config(None, data=str(root / "data"), cache_dir=str(root / "cache"), cache_frames=8, seq_len=8,
                      latent_dim=32, hidden_dim=32, head_dim=32, dropout=0.0, epochs=epochs, lr=3e-3, batch_size=8,
                      checkpoint_every=1000, seed=seed, motion=False)  # the maps of one stream, appearance
    train(cfg, root / "run", progress=False)
    return RunDir(root / "run").checkpoint("best")
