"""The Predict panels: a cached prediction with Grad-CAM heat maps, the frame/attention strip (frames, heat or
both), a frame-by-frame view, attention over time against the uniform level with one sentence, GIF, downloads."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from arlib import viz
from arlib.attention_scale import attention_summary, format_ratio, ratio_to_uniform

from . import resources
from .formatting import probability
from .playback import show_video
from .uploads import ClipSource, safe_filename

LONG_CLIP_S = 20.0
WINDOW_S = 8.0
TOP_K = 5


def windows_for(duration_s: float) -> int:
    return int(math.ceil(duration_s / WINDOW_S)) if duration_s > LONG_CLIP_S else 1


VIEW_LABELS = {"frames": "Frames", "heat": "Heat maps", "both": "Both"}


@st.cache_data(show_spinner=False, max_entries=48)
def _predict(clip_key: str, ckpt: str, ckpt_mtime_ns: int, windows: int, top_k: int, _clip_path: str,
             heatmaps: bool = True) -> dict:
    # With heat maps the prediction is the same (one backbone pass serves both); the maps stay out of the
    # JSON shown on the page (float16 [T, rows, cols]) and go into the downloaded JSON.
    pred = resources.predictor(ckpt).predict(_clip_path, top_k=top_k, windows=windows, heatmaps=heatmaps)
    out = {"json": pred.to_json(), "frames": _shrink(pred.frames, 192)}
    out["json"].pop("heatmaps", None)
    out["heat"] = None if pred.heat is None else pred.heat.astype(np.float16)
    return out


def _shrink(frames: np.ndarray, height: int) -> np.ndarray:
    """Display copies of the sampled frames (strip, GIF): at most `height` px tall, so cached
    predictions stay small."""
    from PIL import Image

    if frames is None or len(frames) == 0 or frames.shape[1] <= height:
        return frames
    width = max(1, round(frames.shape[2] * height / frames.shape[1]))
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames])


def predict_clip(source: ClipSource, path, checkpoint, top_k: int = TOP_K, heatmaps: bool = True) -> dict:
    """Cached by clip content + checkpoint: {'json': Prediction.to_json() without the heat maps, 'frames': uint8
    [N,H,W,3], 'heat': Grad-CAM per frame [N, rows, cols] in [0, 1] over the whole frame (None without)}."""
    info = resources.probe_clip(source.key, path)
    windows = windows_for(float(info["duration_s"]))
    ckpt, mtime = resources.checkpoint_key(checkpoint)
    result = _predict(source.key, ckpt, mtime, windows, top_k, str(path), heatmaps)
    out = {"json": dict(result["json"], clip=source.name), "frames": result["frames"], "heat": result["heat"]}
    return out


def per_row_for(n: int, max_per_row: int) -> int:
    rows = max(1, math.ceil(n / max_per_row))
    return max(1, math.ceil(n / rows))


@st.cache_data(show_spinner=False, max_entries=64)
def strip_png(key: str, frames: np.ndarray, attention: tuple, timestamps: tuple, max_per_row: int = 10,
              thumb_h: int = 84, heat: np.ndarray | None = None, view: str = "frames",
              uniform: float | None = None) -> bytes:
    import io

    img = viz.attention_strip(frames, list(attention), list(timestamps), per_row=per_row_for(len(attention), max_per_row),
                              thumb_h=thumb_h, heat=heat, mode=view, uniform=uniform)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=32)
def gif_bytes(key: str, frames: np.ndarray, label: str, probability: float, attention: tuple,
              heat: np.ndarray | None = None) -> bytes:
    attention = np.asarray(attention, float)
    uniform = 1.0 / len(attention)  # of the whole clip, before any subsampling below
    if len(frames) > 64:  # keep long clips' GIFs small: 64 evenly spaced sampled frames
        pick = np.unique(np.linspace(0, len(frames) - 1, 64).round().astype(int))
        frames, attention = frames[pick], attention[pick]
        heat = None if heat is None else heat[pick]
    return viz.annotated_gif(frames, label, probability, attention, height=192, uniform=uniform,
                             heat=None if heat is None else heat.astype(np.float32))


def window_slices(pred: dict) -> list[slice]:
    n_windows = max(1, len(pred.get("windows") or []))
    t = len(pred["attention"]) // n_windows
    return [slice(w * t, (w + 1) * t) for w in range(n_windows)]


def show_strip(key: str, pred: dict, frames: np.ndarray, budget_px: int = 1150, thumb_h: int = 96,
               window: int | None = None, heat: np.ndarray | None = None, view: str = "frames") -> None:
    """The sampled frames (or their heat maps, or both) with each frame's attention in a cell directly beneath
    it (one image, so the two cannot drift apart), in as few balanced rows as fit budget_px."""
    slices = window_slices(pred)
    sl = slices[window or 0] if len(slices) > 1 else slice(None)
    scale = len(slices)  # with windows, each window's attention sums to 1/windows
    attention = tuple(round(a * scale, 6) for a in pred["attention"][sl])
    stamps = tuple(pred["timestamps_s"][sl])
    h, w = frames.shape[1:3]
    thumb_w = max(1, round(w * thumb_h / h))
    max_per_row = max(2, (budget_px - 4) // (thumb_w + 4))
    png = strip_png(f"{key}:{window}:{view}", frames[sl], attention, stamps, max_per_row, thumb_h,
                    None if heat is None else heat[sl].astype(np.float32), view if heat is not None else "frames")
    st.image(png, width="content")


def show_frame_steps(key: str, pred: dict, frames: np.ndarray, heat: np.ndarray | None, view: str,
                     window: int | None = None) -> None:
    """One sampled frame at a time, large, chosen with a slider: the frame, its heat map or both."""
    sl = window_slices(pred)[window or 0]
    stamps, attention = pred["timestamps_s"][sl], pred["attention"][sl]
    if len(stamps) < 2:
        return
    i = st.slider("Frame", 1, len(stamps), 1, key=f"{key}_step_{window}",
                  help="Step through the sampled frames; the GIF below plays them all.") - 1
    frame = frames[sl][i]
    if heat is not None:
        frame = viz.heat_overlay(frame, heat[sl][i].astype(np.float32), view)
    ratio = ratio_to_uniform(attention, 1.0 / len(attention))[i]
    what = {"frames": "the frame", "heat": f"heat map for {pred.get('heatmap_label')}",
            "both": f"heat map for {pred.get('heatmap_label')} over the frame"}[view if heat is not None else "frames"]
    st.image(frame, width=min(560, max(320, frame.shape[1])),
             caption=f"frame {i + 1} of {len(stamps)} at {stamps[i]:.2f} s · attention {format_ratio(ratio)} "
                     f"uniform · {what}")


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


def show_prediction(key: str, source: ClipSource, path, pred: dict, frames: np.ndarray,
                    explain: Callable[[], dict] | None = None) -> None:
    """The Predict page's panels: clip + GIF, top-k, timings; frame/attention strip with heat maps (frames /
    heat / both) and a frame-by-frame view; attention over time with the uniform level and one sentence;
    timeline for long clips; downloads.

    explain() returns the same prediction with heat maps (predict_clip(..., heatmaps=True)); it is called only
    once the top-k is on screen and only when the chosen view shows heat, so the answer comes as fast as
    plain prediction."""
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
    view, heat = "frames", None
    if explain is not None:
        view = st.segmented_control("Show", list(VIEW_LABELS), format_func=VIEW_LABELS.get, default="both",
                                    key=f"{key}_view") or "both"
    if view != "frames":
        with st.spinner("Computing the heat maps (Grad-CAM through the backbone)…"):
            explained = explain()
        heat = explained["heat"]
        pred = dict(pred, heatmap_label=explained["json"].get("heatmap_label"))
    st.caption("Each frame the model saw, in time order, with its attention in the cell directly beneath it as a "
               "ratio to uniform (1.0x = every frame weighted equally; red above, blue below, one fixed scale for "
               "every clip) and its time in the clip."
               + (f" Heat maps (Grad-CAM for **{pred.get('heatmap_label')}**) show which parts of each frame "
                  "raised that class's score; brightest = the strongest spot in the whole clip, dark = none "
                  "(areas outside the model's centre crop are never lit)." if heat is not None else ""))
    window = None
    if len(windows) > 1:
        labels = [f"window {i + 1}: {w['start_s']:.0f}–{w['end_s']:.0f} s · {w['label']} {w['probability']:.0%}"
                  for i, w in enumerate(windows)]
        window = st.selectbox("Window", range(len(windows)), format_func=labels.__getitem__, key=f"{key}_window")
    show_strip(f"{key}", pred, frames, budget_px=1150, thumb_h=96, window=window, heat=heat, view=view)
    show_frame_steps(key, pred, frames, heat, view, window)
    if len(windows) > 1:
        st.caption("A long clip is read in windows; a window with fewer distinct frames than the model's sequence "
                   "length repeats its last frame.")
    st.plotly_chart(viz.attention_curve({best["label"]: attention_by_time(pred["timestamps_s"], pred["attention"])},
                                        title="Attention over time", uniform=1 / len(pred["attention"])),
                    key=f"{key}_attn")
    st.markdown(f"**{attention_summary(pred['attention'], pred['timestamps_s'])}**")
    if len(windows) > 1:
        whole = pred.get("whole_clip") or {}
        attention = attention_by_time(whole["timestamps_s"], whole["attention"]) if whole else None
        st.plotly_chart(viz.timeline(windows, f"Prediction over time ({len(windows)} windows of the clip)", attention),
                        key=f"{key}_timeline")
        if whole:
            st.caption("Where the action is: the line is the attention of one pass over the whole clip "
                       f"({len(whole['attention'])} frames spread over it, read as {whole['label']}), as a ratio to "
                       "uniform; each window's own attention above is normalised within the window. "
                       + attention_summary(whole["attention"], whole["timestamps_s"]))

    scale = max(1, len(windows))
    gif = gif_bytes(f"{key}:gif:{view}", frames, best["label"], float(best["probability"]),
                    tuple(a * scale for a in pred["attention"]), heat if view != "frames" else None)
    g1, g2 = st.columns([5, 6], gap="large")
    with g1:
        st.subheader("Annotated GIF")
        st.image(gif, width=320, caption="Sampled frames with the label and each frame's attention on the fixed "
                                         "scale (the tick marks uniform)" + (" and heat maps" if view != "frames" and
                                                                             heat is not None else ""))
    with g2:
        st.subheader("Downloads")
        stem = Path(safe_filename(source.name)).stem
        st.download_button("Download the annotated GIF", gif, file_name=f"{stem}-prediction.gif", mime="image/gif",
                           key=f"{key}_dl_gif", icon=":material/download:")
        full = pred if heat is None else dict(pred, heatmaps=np.round(heat.astype(np.float32), 3).tolist())
        st.download_button("Download the prediction JSON", json.dumps(full), file_name=f"{stem}-prediction.json",
                           mime="application/json", key=f"{key}_dl_json", icon=":material/download:")
        with st.expander("Prediction JSON"):
            st.json(pred, expanded=1)


def matched_positions(results: list[dict], count: int = 6) -> list[list[int]]:
    """For each prediction, the positions of its sampled frames nearest to `count` moments spread over the
    first one's frames: the same frames when the checkpoints sample alike, else the nearest ones in time."""
    first = np.asarray(results[0]["json"]["timestamps_s"], float)
    moments = first[np.unique(np.linspace(0, len(first) - 1, min(count, len(first))).round().astype(int))]
    return [[int(np.argmin(np.abs(np.asarray(r["json"]["timestamps_s"], float) - t))) for t in moments]
            for r in results]


def show_heat_comparison(results: dict[str, dict], names: dict[str, str], count: int = 6) -> None:
    """Each checkpoint's Grad-CAM heat maps (for its own top-1 class) over the same frames, one row each."""
    ready = {ck: r for ck, r in results.items() if r.get("heat") is not None and len(r["json"]["timestamps_s"])}
    if len(ready) < 2:
        return
    picks = matched_positions(list(ready.values()), count)
    frame_sets = [[r["json"]["frame_indices"][i] for i in p] for r, p in zip(ready.values(), picks)]
    st.markdown("**Where in the picture: each checkpoint's heat maps on the same frames**")
    same = all(f == frame_sets[0] for f in frame_sets)
    st.caption("Grad-CAM for each checkpoint's own top-1 class, over the frame; brightest = that checkpoint's "
               "strongest spot in the whole clip. " + ("These are exactly the same frames for every checkpoint." if same
               else "The checkpoints sample different frames; each row shows its frames nearest to the same moments."))
    for (ck, res), pick in zip(ready.items(), picks):
        pred = res["json"]
        attention = np.asarray(pred["attention"], float)
        png = strip_png(f"cmpheat:{ck}", res["frames"][pick], tuple(attention[pick]),
                        tuple(pred["timestamps_s"][i] for i in pick), len(pick), 110,
                        res["heat"][pick].astype(np.float32), "both", 1.0 / len(attention))
        st.caption(f"{names.get(ck, ck)} · heat for {pred.get('heatmap_label')}")
        st.image(png, width="content")
