"""Pictures of predictions and runs: the annotated GIF, the frame/attention strip, plotly figures."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from .attention_scale import (
    RATIO_OCTAVES,
    format_ratio,
    ratio_to_uniform,
    scale_position,
    uniform_level,
)
from .explain import upsample

# Diverging scale for attention relative to uniform (coolwarm): blue = below uniform, grey = uniform,
# red = above. Positions come from attention_scale.scale_position, the same fixed scale for every clip.
_COOLWARM = np.array([[59, 76, 192], [98, 130, 234], [141, 176, 254], [184, 208, 249], [221, 221, 221],
                      [245, 196, 173], [244, 154, 123], [222, 96, 77], [180, 4, 38]], float)
# Heat maps (Grad-CAM): transparent at 0, then dark red -> orange -> yellow -> white ("hot").
_HOT = np.array([[0, 0, 0], [128, 0, 0], [230, 30, 0], [255, 140, 0], [255, 230, 60], [255, 255, 220]], float)

# What the strip and the Predict page's toggle can show for each sampled frame.
FRAME_MODES = ("frames", "heat", "both")


def _interpolate(table: np.ndarray, values) -> np.ndarray:
    x = np.clip(np.asarray(values, float), 0, 1) * (len(table) - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, len(table) - 1)
    return table[lo] + (x - lo)[..., None] * (table[hi] - table[lo])


def scale_colour(position: float) -> tuple[int, int, int]:
    """A place on the fixed attention scale (0 = 1/4x uniform, 0.5 = uniform, 1 = 4x) -> an RGB colour."""
    return tuple(int(c) for c in _interpolate(_COOLWARM, position))


def heat_overlay(frame: np.ndarray, heat: np.ndarray | None, mode: str = "both", strength: float = 0.75) -> np.ndarray:
    """A frame [H, W, 3] with its heat map [rows, cols] in [0, 1] (whole-frame coordinates) drawn over it.

    'both' blends the heat colour in proportion to the heat, so cold areas keep the frame as it is; 'heat'
    shows the heat alone on black; 'frames' returns the frame."""
    if heat is None or mode == "frames":
        return frame
    h, w = frame.shape[:2]
    heat = upsample(heat, h, w)
    colour = _interpolate(_HOT, heat)
    if mode == "heat":
        return colour.astype(np.uint8)
    alpha = (strength * np.sqrt(heat))[..., None]  # sqrt: moderate heat stays visible
    return (frame * (1 - alpha) + colour * alpha).clip(0, 255).astype(np.uint8)


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


def _scale_bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], position: float) -> None:
    """A bar on the fixed scale: filled from the left to the weight's place, with a tick at uniform."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(255, 255, 255), width=1)
    draw.rectangle([x0 + 1, y0 + 1, x0 + 1 + int((x1 - x0 - 2) * position), y1 - 1], fill=scale_colour(position))
    mid = (x0 + x1) // 2
    draw.line([mid, y0 - 3, mid, y1 + 3], fill=(255, 255, 255), width=2)


def annotated_frames(frames: np.ndarray, label: str, probability: float, attention, height: int = 224,
                     heat: np.ndarray | None = None, uniform: float | None = None) -> list[np.ndarray]:
    """Each sampled frame with the predicted label, its probability and that frame's attention drawn on it.

    The attention bar is on the fixed scale relative to uniform (the tick; 1/4x at the left end, 4x at the
    right), never scaled to the clip's own peak. With heat ([T, rows, cols]) the Grad-CAM map is overlaid."""
    attention = np.asarray(attention, float)
    uniform = uniform or uniform_level(attention)
    ratios, positions = ratio_to_uniform(attention, uniform), scale_position(attention, uniform)
    font, small = _font(max(12, height // 14)), _font(max(10, height // 18))
    out = []
    for i, frame in enumerate(frames):
        if heat is not None:
            frame = heat_overlay(frame, heat[i])
        img = _fit(frame, height).convert("RGB")
        draw = ImageDraw.Draw(img, "RGBA")
        w, h = img.size
        draw.rectangle([0, 0, w, height // 8 + 6], fill=(0, 0, 0, 160))
        draw.text((6, 3), f"{label}  {probability:.1%}", font=font, fill=(255, 255, 255))
        bar_h = max(8, height // 16)
        draw.rectangle([0, h - bar_h - 22, w, h], fill=(0, 0, 0, 150))
        _scale_bar(draw, (4, h - bar_h - 5, w - 5, h - 5), float(positions[i]))
        draw.text((6, h - bar_h - 22), f"attention {format_ratio(ratios[i])} uniform", font=small, fill=(255, 255, 255))
        out.append(np.asarray(img))
    return out


def annotated_gif(frames: np.ndarray, label: str, probability: float, attention, fps: float = 6.0,
                  height: int = 224, heat: np.ndarray | None = None, uniform: float | None = None) -> bytes:
    """The thesis's GIF done better: the sampled frames, label, probability, per-frame attention on the fixed
    scale and, given heat, the Grad-CAM maps over the frames."""
    images = annotated_frames(frames, label, probability, attention, height, heat=heat, uniform=uniform)
    buf = io.BytesIO()
    iio.imwrite(buf, np.stack(images), extension=".gif", duration=1000.0 / fps, loop=0)
    return buf.getvalue()


def _scale_legend(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, uniform: float, font) -> None:
    steps = 64
    for k in range(steps):
        x0 = x + k * width // steps
        draw.rectangle([x0, y, x + (k + 1) * width // steps, y + 10], fill=scale_colour((k + 0.5) / steps))
    lo, hi = 2 ** -RATIO_OCTAVES, 2 ** RATIO_OCTAVES
    draw.text((x, y + 12), f"{format_ratio(lo)} uniform or less", font=font, fill=(60, 60, 60))
    label = f"uniform (1/T = {uniform:.3f})"
    draw.text((x + width // 2 - draw.textlength(label, font=font) / 2, y + 12), label, font=font, fill=(60, 60, 60))
    draw.line([x + width // 2, y - 2, x + width // 2, y + 12], fill=(0, 0, 0), width=1)
    label = f"{format_ratio(hi)} or more"
    draw.text((x + width - draw.textlength(label, font=font), y + 12), label, font=font, fill=(60, 60, 60))


def attention_strip(frames: np.ndarray, attention, timestamps=None, per_row: int = 10, thumb_h: int = 72,
                    heat: np.ndarray | None = None, mode: str = "frames", uniform: float | None = None) -> Image.Image:
    """Thumbnails in time order, each with a cell beneath it coloured by its attention on the fixed scale
    relative to uniform (ratio written in it), and a legend of that scale. With heat, mode picks what each
    thumbnail shows: the frame, its Grad-CAM heat map, or both."""
    attention = np.asarray(attention, float)
    uniform = uniform or uniform_level(attention)
    ratios, positions = ratio_to_uniform(attention, uniform), scale_position(attention, uniform)
    thumbs = [_fit(heat_overlay(f, None if heat is None else heat[i], mode), thumb_h) for i, f in enumerate(frames)]
    tw = max(t.width for t in thumbs)
    cell_h, text_h, gap, legend_h = 22, 16, 4, 34
    rows = int(np.ceil(len(thumbs) / per_row))
    col = tw + gap
    row_h = thumb_h + cell_h + text_h + gap * 2
    width = min(len(thumbs), per_row) * col + gap
    canvas = Image.new("RGB", (width, rows * row_h + gap + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(11)
    for i, thumb in enumerate(thumbs):
        x = gap + (i % per_row) * col
        y = gap + (i // per_row) * row_h
        canvas.paste(thumb, (x + (tw - thumb.width) // 2, y))
        draw.rectangle([x, y + thumb_h + 2, x + tw - 1, y + thumb_h + 2 + cell_h], fill=scale_colour(positions[i]))
        ink = (255, 255, 255) if abs(positions[i] - 0.5) > 0.3 else (0, 0, 0)
        draw.text((x + 4, y + thumb_h + 6), format_ratio(ratios[i]), font=font, fill=ink)
        if timestamps is not None:
            draw.text((x + 2, y + thumb_h + cell_h + 4), f"{timestamps[i]:.2f}s", font=font, fill=(60, 60, 60))
    _scale_legend(draw, gap, rows * row_h + gap + 4, min(width - 2 * gap, 420), uniform, font)
    return canvas


def time_aligned_strip(frames: np.ndarray, attention, timestamps, duration_s: float, width: int = 1100,
                       thumb_h: int = 56, uniform: float | None = None) -> Image.Image:
    """One row of thumbnails placed at their time in the clip (x = time / duration), each with its attention
    cell beneath on the fixed scale relative to uniform: strips of models that sample different numbers of
    frames line up by time, one above another."""
    attention = np.asarray(attention, float)
    positions = scale_position(attention, uniform or uniform_level(attention))
    if len(frames):  # many frames: smaller thumbnails, so neighbours overlap less
        aspect = frames.shape[2] / max(1, frames.shape[1])
        distinct = max(1, len({round(float(t), 3) for t in timestamps}))
        thumb_h = max(24, min(thumb_h, int(width / distinct / aspect)))
    thumbs = [_fit(f, thumb_h) for f in frames]
    tw = max((t.width for t in thumbs), default=1)
    cell_h, axis_h = 14, 16
    canvas = Image.new("RGB", (width, thumb_h + cell_h + axis_h + 6), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(10)
    span = max(1, width - tw)
    duration_s = max(float(duration_s), 1e-6)
    for thumb, position, t in zip(thumbs, positions, timestamps):
        x = round(min(max(t / duration_s, 0.0), 1.0) * span)
        canvas.paste(thumb, (x, 0))
        draw.rectangle([x, thumb_h + 2, x + tw - 1, thumb_h + 2 + cell_h], fill=scale_colour(position))
    y = thumb_h + cell_h + 4
    step = max(1, int(np.ceil(duration_s / 10)))  # at most ~10 labelled seconds
    for second in range(0, int(duration_s) + 1, step):
        x = round(second / duration_s * span) + tw // 2
        draw.line([x, y, x, y + 3], fill=(120, 120, 120))
        draw.text((min(x + 2, width - 24), y + 2), f"{second}s", font=font, fill=(60, 60, 60))
    return canvas


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def top_k_bars(top_k: list[dict], title: str = "Top predictions") -> go.Figure:
    labels = [r["label"] for r in top_k][::-1]
    probs = [r["probability"] for r in top_k][::-1]
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", text=[f"{p:.1%}" for p in probs],
                           textposition="auto", marker_color="#4c78a8"))
    # Fixed ticks up to 100 %, with the range a little past it: plotly drops a tick that sits on the edge.
    fig.update_xaxes(range=[0, 1.05], tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%")  # 1.0 inside the range
    return _layout(fig, title, height=60 + 36 * len(labels))


def attention_curve(series: dict[str, tuple[list[float], list[float]]], title: str = "Attention over time",
                    uniform: dict[str, float] | float | None = None) -> go.Figure:
    """series: name -> (timestamps_s, attention). Several checkpoints share one time axis.

    The uniform level (1/T: every frame weighted equally) is drawn as a dashed reference line, and each point
    is coloured on the fixed scale relative to it, so a flat-but-wiggly curve cannot pass for a peak.
    uniform: the level per series (or one for all); default the mean weight of each series."""
    fig = go.Figure()
    levels = {}
    for name, (ts, attn) in series.items():
        level = uniform.get(name) if isinstance(uniform, dict) else uniform
        level = levels[name] = level or uniform_level(attn)
        ratios = ratio_to_uniform(attn, level)
        fig.add_trace(go.Scatter(
            x=ts, y=attn, mode="lines+markers", name=name, line={"color": "#888888" if len(series) == 1 else None},
            marker={"size": 9, "color": scale_position(attn, level), "cmin": 0, "cmax": 1,
                    "colorscale": [[k / (len(_COOLWARM) - 1), f"rgb{tuple(int(c) for c in rgb)}"]
                                   for k, rgb in enumerate(_COOLWARM)],
                    "line": {"width": 0.5, "color": "#444444"}},
            customdata=[format_ratio(r) for r in ratios],
            hovertemplate="%{x:.2f} s: weight %{y:.4f} (%{customdata} uniform)<extra>" + name + "</extra>"))
    for level in sorted({round(v, 6) for v in levels.values()}):
        fig.add_hline(y=level, line_dash="dash", line_color="#555555",
                      annotation_text=f"uniform 1/T = {level:.3f}", annotation_position="top left")
    fig.update_xaxes(title="time in clip (s)")
    top = max([max(a, default=0) for _, a in series.values()] + [2 * v for v in levels.values()] + [0])
    fig.update_yaxes(title="attention weight", range=[0, top * 1.1 or 1])
    return _layout(fig, title)


def timeline(windows: list[dict], title: str = "Prediction over time",
             attention: tuple[list[float], list[float]] | None = None) -> go.Figure:
    """The predicted label and its confidence per temporal window, as bars spanning each window's time.

    attention: (timestamps_s, weights) of one pass over the whole clip, drawn as a ratio to uniform on a
    second axis: where the model finds the action (windows each normalise their own attention, so they cannot)."""
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
    if attention is not None and len(attention[1]):
        ts, ratios = list(attention[0]), ratio_to_uniform(attention[1]).tolist()
        fig.add_trace(go.Scatter(x=ts, y=ratios, yaxis="y2", mode="lines+markers", name="attention, whole clip",
                                 line={"color": "#222222", "width": 2}, marker={"size": 5},
                                 hovertemplate="%{x:.1f} s: %{y:.2f}x uniform<extra>attention</extra>"))
        fig.add_trace(go.Scatter(x=[0, max(ts[-1], max((w["end_s"] for w in windows), default=0))], y=[1, 1],
                                 yaxis="y2", mode="lines", name="uniform (1.0x)", hoverinfo="skip",
                                 line={"color": "#555555", "dash": "dash", "width": 1}))
        fig.update_layout(yaxis2={"title": "attention (x uniform)", "overlaying": "y", "side": "right",
                                  "range": [0, max(2.0, max(ratios) * 1.1)], "showgrid": False})
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


LARGE_CLASS_COUNT = 20  # above this a matrix is read by zooming and hovering, not cell by cell


def confusion_heatmap(confusion: list[list[int]], classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    """Counts per (true, predicted) class. Up to LARGE_CLASS_COUNT classes every cell is labelled; beyond it
    the figure keeps a fixed height (zoom and hover to read it) instead of growing past the screen."""
    cm = np.asarray(confusion)
    large = len(classes) > LARGE_CLASS_COUNT
    fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues",
                               text=None if large else cm, texttemplate=None if large else "%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} clips<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true", tickfont=dict(size=9) if large else None)
    fig.update_xaxes(title="predicted", tickfont=dict(size=9) if large else None)
    return _layout(fig, title, height=640 if large else 120 + 34 * len(classes))


def recall_bars(recalls: dict[str, dict[str, float | None]], title: str = "Per-class recall") -> go.Figure:
    """recalls: series name -> {class: recall}."""
    fig = go.Figure()
    for name, per_class in recalls.items():
        values = list(per_class.values())
        # Every bar says its value: a 0 % bar is otherwise indistinguishable from a class with no clips.
        fig.add_trace(go.Bar(x=list(per_class), y=[v if v is not None else 0 for v in values], name=name,
                             text=["no clips" if v is None else f"{v:.0%}" for v in values],
                             textposition="outside", cliponaxis=False))
    fig.update_yaxes(range=[0, 1.12], tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%")
    fig = _layout(fig, title)
    if len(recalls) > 1:  # the legend under the plot, so it does not squeeze it
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.3, x=0, xanchor="left"), height=380)
    return fig


def reliability_diagram(bins: list[dict], title: str = "Reliability", ece: float | None = None,
                        clips: int | None = None) -> go.Figure:
    """Accuracy against confidence per bin (arlib.metrics.reliability_bins); the diagonal is perfect calibration.

    Bar width is the bin; the number on each bar is how many clips fell in it."""
    used = [b for b in bins if b["count"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "grey"},
                             name="perfectly calibrated"))
    fig.add_trace(go.Bar(x=[(b["lower"] + b["upper"]) / 2 for b in used], y=[b["accuracy"] for b in used],
                         width=[b["upper"] - b["lower"] for b in used], text=[b["count"] for b in used],
                         name="accuracy", marker_color="#4c78a8", opacity=0.8,
                         customdata=[b["confidence"] for b in used],
                         hovertemplate="confidence %{customdata:.2f}<br>accuracy %{y:.2f}<br>%{text} clips"))
    fig.add_trace(go.Scatter(x=[b["confidence"] for b in used], y=[b["accuracy"] for b in used], mode="markers",
                             name="mean confidence", marker={"color": "#e45756"}))
    detail = [f"ECE {ece:.3f}" if ece is not None else "", f"{clips} clips" if clips is not None else ""]
    suffix = " · ".join(d for d in detail if d)
    fig = _layout(fig, f"{title} ({suffix})" if suffix else title)
    fig.update_xaxes(title="confidence (top-1 probability)", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return fig
