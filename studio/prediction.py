"""The Predict panels: a cached prediction, the frame/attention strip, attention over time, GIF, downloads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import streamlit as st

from arlib import viz
from arlib.attention_scale import attention_summary

from . import resources
from .formatting import probability
from .playback import show_video
from .uploads import ClipSource, safe_filename

LONG_CLIP_S = 20.0
WINDOW_S = 8.0
TOP_K = 5


def windows_for(duration_s: float) -> int:
    return int(math.ceil(duration_s / WINDOW_S)) if duration_s > LONG_CLIP_S else 1


@st.cache_data(show_spinner=False, max_entries=48)
def _predict(clip_key: str, ckpt: str, ckpt_mtime_ns: int, windows: int, top_k: int, _clip_path: str) -> dict:
    pred = resources.predictor(ckpt).predict(_clip_path, top_k=top_k, windows=windows)
    return {"json": pred.to_json(), "frames": _shrink(pred.frames, 192)}


def _shrink(frames: np.ndarray, height: int) -> np.ndarray:
    """Display copies of the sampled frames (strip, GIF): at most `height` px tall, so cached
    predictions stay small."""
    from PIL import Image

    if frames is None or len(frames) == 0 or frames.shape[1] <= height:
        return frames
    width = max(1, round(frames.shape[2] * height / frames.shape[1]))
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames])


def predict_clip(source: ClipSource, path, checkpoint, top_k: int = TOP_K) -> dict:
    """Cached by clip content + checkpoint: {'json': Prediction.to_json(), 'frames': uint8 [N,H,W,3]}."""
    info = resources.probe_clip(source.key, path)
    windows = windows_for(float(info["duration_s"]))
    ckpt, mtime = resources.checkpoint_key(checkpoint)
    result = _predict(source.key, ckpt, mtime, windows, top_k, str(path))
    out = {"json": dict(result["json"], clip=source.name), "frames": result["frames"]}
    return out


def per_row_for(n: int, max_per_row: int) -> int:
    rows = max(1, math.ceil(n / max_per_row))
    return max(1, math.ceil(n / rows))


@st.cache_data(show_spinner=False, max_entries=64)
def strip_png(key: str, frames: np.ndarray, attention: tuple, timestamps: tuple, max_per_row: int = 10,
              thumb_h: int = 84) -> bytes:
    import io

    img = viz.attention_strip(frames, list(attention), list(timestamps), per_row=per_row_for(len(attention), max_per_row),
                              thumb_h=thumb_h)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=32)
def gif_bytes(key: str, frames: np.ndarray, label: str, probability: float, attention: tuple) -> bytes:
    attention = np.asarray(attention, float)
    if len(frames) > 64:  # keep long clips' GIFs small: 64 evenly spaced sampled frames
        pick = np.unique(np.linspace(0, len(frames) - 1, 64).round().astype(int))
        frames, attention = frames[pick], attention[pick]
    return viz.annotated_gif(frames, label, probability, attention, height=192)


def window_slices(pred: dict) -> list[slice]:
    n_windows = max(1, len(pred.get("windows") or []))
    t = len(pred["attention"]) // n_windows
    return [slice(w * t, (w + 1) * t) for w in range(n_windows)]


def show_strip(key: str, pred: dict, frames: np.ndarray, budget_px: int = 1150, thumb_h: int = 96,
               window: int | None = None) -> None:
    """The sampled frames with each frame's attention in a heat cell directly beneath it (one image, so the
    two cannot drift apart), in as few balanced rows as fit budget_px."""
    slices = window_slices(pred)
    sl = slices[window or 0] if len(slices) > 1 else slice(None)
    scale = len(slices)  # with windows, each window's attention sums to 1/windows
    attention = tuple(round(a * scale, 6) for a in pred["attention"][sl])
    stamps = tuple(pred["timestamps_s"][sl])
    h, w = frames.shape[1:3]
    thumb_w = max(1, round(w * thumb_h / h))
    max_per_row = max(2, (budget_px - 4) // (thumb_w + 4))
    png = strip_png(f"{key}:{window}", frames[sl], attention, stamps, max_per_row, thumb_h)
    st.image(png, width="content")


def attention_by_time(timestamps, attention) -> tuple[list[float], list[float]]:
    """For a curve over time: a frame sampled several times in a row (short clips and windows are padded by
    repeating their last frame) becomes one point with the mean weight of its slots, not a vertical stack."""
    ts, att, count = [], [], []
    for t, a in zip(timestamps, attention):
        if ts and t == ts[-1]:
            att[-1] += a
            count[-1] += 1
        else:
            ts.append(t)
            att.append(a)
            count.append(1)
    return ts, [round(a / n, 6) for a, n in zip(att, count)]


def top1(pred: dict) -> dict:
    return pred["top_k"][0]


def show_prediction(key: str, source: ClipSource, path, pred: dict, frames: np.ndarray) -> None:
    """The Predict page's panels: clip + GIF, top-k, timings; frame/attention strip; attention over time;
    timeline for long clips; downloads."""
    import json

    best = top1(pred)
    windows = pred.get("windows") or []
    left, right = st.columns([5, 6], gap="large")
    with left:
        st.subheader("The clip")
        show_video(source.key, path, data=source.data)
        turned = f" · turned {pred['rotation']}° clockwise" if pred.get("rotation") else ""
        turned += " · mirrored" if pred.get("mirrored") else ""
        st.caption(f"{pred['num_frames']} frames · {pred['fps']:g} fps · {pred['duration_s']:.1f} s{turned}")
    with right:
        st.subheader(f"{best['label']} · {probability(best['probability'])}")
        for warning in pred.get("warnings") or ():  # what is odd in the clip, said where the answer is read
            st.warning(warning, icon="⚠️")
        st.plotly_chart(viz.top_k_bars(pred["top_k"], title=f"Top {len(pred['top_k'])}"), key=f"{key}_topk")
        sec = pred["seconds"]
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("decode", f"{sec['decode']:.2f} s")
        c2.metric("backbone", f"{sec['backbone']:.2f} s")
        c3.metric("head", f"{sec['head']:.3f} s")
        c4.metric("total", f"{sum(sec.values()):.2f} s")

    st.subheader("Sampled frames and their attention")
    st.caption("Each frame the model saw, in time order, with its attention in the cell directly beneath it as a "
               "ratio to uniform (1.0x = every frame weighted equally; red above, blue below, on one fixed scale "
               "for every clip) and its time in the clip.")
    window = None
    if len(windows) > 1:
        labels = [f"window {i + 1}: {w['start_s']:.0f}–{w['end_s']:.0f} s · {w['label']} {w['probability']:.0%}"
                  for i, w in enumerate(windows)]
        window = st.selectbox("Window", range(len(windows)), format_func=labels.__getitem__, key=f"{key}_window")
    show_strip(f"{key}", pred, frames, budget_px=1150, thumb_h=96, window=window)
    if len(windows) > 1:
        st.caption("A long clip is read in windows; a window with fewer distinct frames than the model's sequence "
                   "length repeats its last frame.")
    st.plotly_chart(viz.attention_curve({best["label"]: attention_by_time(pred["timestamps_s"], pred["attention"])},
                                        title="Attention over time", uniform=1 / len(pred["attention"])),
                    key=f"{key}_attn")
    st.caption(attention_summary(pred["attention"], pred["timestamps_s"]))
    if len(windows) > 1:
        st.plotly_chart(viz.timeline(windows, f"Prediction over time ({len(windows)} windows of the clip)"),
                        key=f"{key}_timeline")

    scale = max(1, len(windows))
    gif = gif_bytes(f"{key}:gif", frames, best["label"], float(best["probability"]),
                    tuple(a * scale for a in pred["attention"]))
    g1, g2 = st.columns([5, 6], gap="large")
    with g1:
        st.subheader("Annotated GIF")
        st.image(gif, caption="Sampled frames with the label and each frame's attention", width=320)
    with g2:
        st.subheader("Downloads")
        stem = Path(safe_filename(source.name)).stem
        st.download_button("Download the annotated GIF", gif, file_name=f"{stem}-prediction.gif", mime="image/gif",
                           key=f"{key}_dl_gif", icon=":material/download:")
        st.download_button("Download the prediction JSON", json.dumps(pred, indent=2), file_name=f"{stem}-prediction.json",
                           mime="application/json", key=f"{key}_dl_json", icon=":material/download:")
        with st.expander("Prediction JSON"):
            st.json(pred, expanded=1)
