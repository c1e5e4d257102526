"""Pictures of predictions and runs: the annotated GIF, the frame/attention strip, plotly figures."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

# viridis, sampled: low attention dark purple, high attention yellow
_VIRIDIS = np.array([[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
                     [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]], float)


def heat_colour(value: float) -> tuple[int, int, int]:
    """value in [0, 1] -> an RGB viridis colour."""
    x = float(np.clip(value, 0, 1)) * (len(_VIRIDIS) - 1)
    lo = int(np.floor(x))
    hi = min(lo + 1, len(_VIRIDIS) - 1)
    return tuple(int(c) for c in _VIRIDIS[lo] + (x - lo) * (_VIRIDIS[hi] - _VIRIDIS[lo]))


def _font(size: int):
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit(frame: np.ndarray, height: int) -> Image.Image:
    img = Image.fromarray(frame)
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.BILINEAR)


def annotated_frames(frames: np.ndarray, label: str, probability: float, attention, height: int = 224) -> list[np.ndarray]:
    """Each sampled frame with the predicted label, its probability and that frame's attention drawn on it."""
    attention = np.asarray(attention, float)
    peak = attention.max() if len(attention) and attention.max() > 0 else 1.0
    font, small = _font(max(12, height // 14)), _font(max(10, height // 18))
    out = []
    for frame, weight in zip(frames, attention):
        img = _fit(frame, height).convert("RGB")
        draw = ImageDraw.Draw(img, "RGBA")
        w, h = img.size
        draw.rectangle([0, 0, w, height // 8 + 6], fill=(0, 0, 0, 160))
        draw.text((6, 3), f"{label}  {probability:.0%}", font=font, fill=(255, 255, 255))
        bar_h = max(8, height // 16)
        draw.rectangle([0, h - bar_h - 18, w, h], fill=(0, 0, 0, 150))
        draw.rectangle([4, h - bar_h - 4, 4 + int((w - 8) * weight / peak), h - 4], fill=heat_colour(weight / peak))
        draw.text((6, h - bar_h - 18), f"attention {weight:.3f}", font=small, fill=(255, 255, 255))
        out.append(np.asarray(img))
    return out


def annotated_gif(frames: np.ndarray, label: str, probability: float, attention, fps: float = 6.0,
                  height: int = 224) -> bytes:
    """The thesis's GIF done better: the sampled frames, label, probability and per-frame attention."""
    images = annotated_frames(frames, label, probability, attention, height)
    buf = io.BytesIO()
    iio.imwrite(buf, np.stack(images), extension=".gif", duration=1000.0 / fps, loop=0)
    return buf.getvalue()


def attention_strip(frames: np.ndarray, attention, timestamps=None, per_row: int = 10, thumb_h: int = 72) -> Image.Image:
    """Thumbnails in time order, each with a heat cell of its attention weight directly beneath it."""
    attention = np.asarray(attention, float)
    peak = attention.max() if len(attention) and attention.max() > 0 else 1.0
    thumbs = [_fit(f, thumb_h) for f in frames]
    tw = max(t.width for t in thumbs)
    cell_h, text_h, gap = 22, 16, 4
    rows = int(np.ceil(len(thumbs) / per_row))
    col = tw + gap
    row_h = thumb_h + cell_h + text_h + gap * 2
    canvas = Image.new("RGB", (min(len(thumbs), per_row) * col + gap, rows * row_h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(11)
    for i, (thumb, weight) in enumerate(zip(thumbs, attention)):
        x = gap + (i % per_row) * col
        y = gap + (i // per_row) * row_h
        canvas.paste(thumb, (x + (tw - thumb.width) // 2, y))
        colour = heat_colour(weight / peak)
        draw.rectangle([x, y + thumb_h + 2, x + tw - 1, y + thumb_h + 2 + cell_h], fill=colour)
        ink = (0, 0, 0) if weight / peak > 0.6 else (255, 255, 255)
        draw.text((x + 4, y + thumb_h + 6), f"{weight:.3f}", font=font, fill=ink)
        if timestamps is not None:
            draw.text((x + 2, y + thumb_h + cell_h + 4), f"{timestamps[i]:.2f}s", font=font, fill=(60, 60, 60))
    return canvas


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def top_k_bars(top_k: list[dict], title: str = "Top predictions") -> go.Figure:
    labels = [r["label"] for r in top_k][::-1]
    probs = [r["probability"] for r in top_k][::-1]
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", text=[f"{p:.1%}" for p in probs],
                           textposition="auto", marker_color="#4c78a8"))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, title, height=60 + 36 * len(labels))


def attention_curve(series: dict[str, tuple[list[float], list[float]]], title: str = "Attention over time") -> go.Figure:
    """series: name -> (timestamps_s, attention). Several checkpoints share one time axis."""
    fig = go.Figure()
    for name, (ts, attn) in series.items():
        fig.add_trace(go.Scatter(x=ts, y=attn, mode="lines+markers", name=name))
    fig.update_xaxes(title="time in clip (s)")
    fig.update_yaxes(title="attention weight", rangemode="tozero")
    return _layout(fig, title)


def timeline(windows: list[dict], title: str = "Prediction over time") -> go.Figure:
    """The predicted label and its confidence per temporal window, as bars spanning each window's time."""
    fig = go.Figure()
    for label in dict.fromkeys(w["label"] for w in windows):
        rows = [w for w in windows if w["label"] == label]
        fig.add_trace(go.Bar(x=[w["start_s"] for w in rows], y=[w["probability"] for w in rows],
                             width=[w["end_s"] - w["start_s"] for w in rows], offset=0, name=label,
                             text=[f"{label} {w['probability']:.0%}" for w in rows], textposition="inside",
                             hovertemplate=label + " %{y:.0%} from %{x:.1f} s<extra></extra>"))
    fig.update_xaxes(title="time in clip (s)", range=[0, max((w["end_s"] for w in windows), default=1.0)])
    fig.update_yaxes(title="confidence", range=[0, 1], tickformat=".0%")
    fig.update_layout(bargap=0.02)
    return _layout(fig, title)


def metric_curves(runs: dict[str, list[dict]], keys: list[str], title: str) -> go.Figure:
    """runs: name -> metrics.jsonl rows; one line per (run, key)."""
    fig = go.Figure()
    for name, rows in runs.items():
        for key in keys:
            points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                         name=f"{name} · {key}" if len(runs) > 1 else key))
    fig.update_xaxes(title="epoch", dtick=1)
    return _layout(fig, title)


def confusion_heatmap(confusion: list[list[int]], classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    cm = np.asarray(confusion)
    fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues", text=cm, texttemplate="%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} clips<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true")
    fig.update_xaxes(title="predicted")
    return _layout(fig, title, height=120 + 34 * len(classes))


def recall_bars(recalls: dict[str, dict[str, float | None]], title: str = "Per-class recall") -> go.Figure:
    """recalls: series name -> {class: recall}."""
    fig = go.Figure()
    for name, per_class in recalls.items():
        fig.add_trace(go.Bar(x=list(per_class), y=[v if v is not None else 0 for v in per_class.values()], name=name))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, title)
