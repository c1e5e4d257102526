"""Shared pieces of the Streamlit pages: where things live, cached models and predictions, clip pickers,
uploads, playable videos and the prediction panels. Pages stay thin; model logic stays in arlib.

Paths: runs go to $ARLIB_RUNS_DIR (default runs/), the demo dataset to $ARLIB_DATA_DIR/demo (default
data/demo), both relative to the repository root; $ARLIB_DEMO_CHECKPOINT overrides the shipped demo checkpoint (arlib/assets/demo.safetensors).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from . import viz
from .attention_scale import attention_summary
from .errors import ArlibError, CheckpointError

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("arlib.app")

UPLOAD_TYPES = ["mp4", "avi", "mov", "mkv", "webm", "gif"]
BROWSER_PLAYABLE = {".mp4": {"h264", "vp9", "av1"}, ".m4v": {"h264"}, ".webm": {"vp8", "vp9", "av1"}}
LONG_CLIP_S = 20.0
WINDOW_S = 8.0
TOP_K = 5


# ------------------------------------------------------------------------------------------------ places


def _dir(env: str, default: str) -> Path:
    path = Path(os.environ.get(env) or default).expanduser()
    return path if path.is_absolute() else ROOT / path


def runs_dir() -> Path:
    return _dir("ARLIB_RUNS_DIR", "runs")


def data_dir() -> Path:
    return _dir("ARLIB_DATA_DIR", "data")


def demo_root() -> Path:
    return data_dir() / "demo"


def demo_data_path() -> Path:
    return demo_root() / "UCF-101"


def demo_checkpoint() -> Path:
    from .shipped import shipped_checkpoint

    return Path(os.environ.get("ARLIB_DEMO_CHECKPOINT") or shipped_checkpoint("demo"))


def ucf_mini_root() -> Path | None:
    """The real UCF-101 clips next to the repo (../shared/ucf101-mini/UCF-101), when present."""
    root = Path(os.environ.get("ARLIB_UCF_MINI") or ROOT.parent / "shared" / "ucf101-mini")
    return root / "UCF-101" if (root / "UCF-101").is_dir() else None


def short_path(path) -> str:
    """A path relative to the repo when inside it (readable), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def user_path(text: str) -> Path:
    """A folder typed by the user: ~ expanded, relative paths taken from the repository folder."""
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else ROOT / path


def ensure_demo_dataset() -> Path:
    """The demo dataset's UCF-101 folder, generated on first use (~2 s) into data/demo."""
    from .demo import MANIFEST, make_demo_dataset

    root = demo_root()
    if (root / MANIFEST).exists():
        return demo_data_path()
    with st.spinner("Generating the demo dataset (first use, a few seconds)…"):
        make_demo_dataset(root)
    return demo_data_path()


@st.cache_data(show_spinner=False, ttl=30, max_entries=16)
def dataset_info(path: str, split: int = 1) -> dict:
    """load_dataset as plain data (cached 30 s): summary, description, missing, [(path, class, part)]."""
    from .datasets import load_dataset

    ds = load_dataset(data=path, split=split)
    return {"summary": ds.summary(), "description": ds.description, "missing": ds.missing, "layout": ds.layout,
            "clips": [(c.path, c.class_name, part) for part, clips in (("train", ds.train), ("test", ds.test))
                      for c in clips]}


def default_checkpoint(source: "ClipSource | None" = None) -> Path:
    """The best checkpoint of the newest finished run trained on the same kind of data as the clip (the demo
    data for demo clips and when no clip is chosen, anything else for real clips); without one, the shipped
    checkpoint of that kind: the demo twins, or the 9 UCF-101 classes."""
    from .runs import list_runs
    from .shipped import shipped_checkpoint

    ucf_checkpoint = shipped_checkpoint("ucf9-mini")
    demo_wanted = source is None or is_demo_clip(source)
    for run in list_runs(runs_dir()):
        if run.read_status().get("state") != "finished" or not run.checkpoint("best").exists():
            continue
        data = run.read_config().get("data") or run.read_config().get("features") or ""
        if _inside(Path(data), data_dir()) == demo_wanted:
            return run.checkpoint("best")
    if not demo_wanted and ucf_checkpoint.is_file():
        return ucf_checkpoint
    return demo_checkpoint()


def _inside(path: Path, folder: Path) -> bool:
    try:
        return folder.resolve() in path.resolve().parents
    except OSError:
        return False


def is_demo_clip(source: "ClipSource") -> bool:
    return source.path is not None and _inside(source.path, data_dir())


def require_navigation() -> None:
    """Call first in every page. Streamlit runs a deep link (/predict) on a freshly started server as an old
    style pages/ page, without streamlit_app.py's st.navigation (no wide layout, a raw file list for a menu),
    until the entry script has run once. Mark the app as navigation-based and rerun: the rerun goes through
    streamlit_app.py and lands on the same page."""
    import sys

    if "streamlit.testing.v1" in sys.modules:  # AppTest resets the flag before every run; pages run directly
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the old pages/ mode
        return
    # The flag is process-wide: a second session whose deep link started in the old mode before the first
    # session cleared it would otherwise stay there, so the run's own page list is checked as well.
    if PagesManager.uses_pages_directory or _old_style_run():
        PagesManager.uses_pages_directory = False
        st.rerun()


def _old_style_run() -> bool:
    """True when this script run is Streamlit's old pages/ mode: its page list holds the entry script itself
    (st.navigation in streamlit_app.py lists only pages/*.py)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        manager = get_script_run_ctx().pages_manager
        entry = Path(manager.main_script_path).resolve()
        return any(info.get("script_path") and Path(info["script_path"]).resolve() == entry
                   for info in manager.get_pages().values())
    except Exception:  # internals moved in a future Streamlit: keep the flag check only
        return False


# ------------------------------------------------------------------------------------------------ errors


@contextmanager
def guard(what: str = "this page"):
    """One sentence for the user, never a traceback: ArlibError as is, anything else generic + logged.

    Streamlit's own control flow (st.stop, st.rerun, st.switch_page) derives from BaseException and passes.
    """
    try:
        yield
    except ArlibError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # last resort: keep serving, log the traceback for the developer
        log.exception("error while showing %s", what)
        st.error(f"Something went wrong while showing {what} ({type(exc).__name__}); the details are in the "
                 "server log. Try another input or reload the page.", icon=":material/error:")


# ------------------------------------------------------------------------------------------------ files


def safe_filename(name: str, default: str = "clip") -> str:
    """An uploaded file's name made safe: no directories, unicode letters kept, extension kept (lower case)."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control characters
    stem, ext = os.path.splitext(name)
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:10].lower()
    stem = re.sub(r"[^\w.\-]+", "_", stem).strip("._-")[:120]
    stem = stem or default
    return f"{stem}.{ext}" if ext else stem


@st.cache_data(show_spinner=False, max_entries=1024)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    return file_hash(path)


def file_hash(path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ClipSource:
    """A clip chosen on a page: an example file on disk, or an upload held in memory."""

    name: str
    path: Path | None = None  # examples
    data: bytes | None = None  # uploads

    @property
    def key(self) -> str:
        """The content hash: the same clip uploaded or picked from disk shares cached predictions."""
        if self.data is not None:
            return hashlib.sha1(self.data).hexdigest()
        st_ = self.path.stat()
        return _file_hash(str(self.path.resolve()), st_.st_size, st_.st_mtime_ns)


@contextmanager
def materialised(source: ClipSource):
    """A path to the clip: the example itself, or the upload written under a sanitised name into a fresh
    temporary folder that is removed as soon as the caller is done with it."""
    if source.data is None:
        if not source.path.exists():
            raise ArlibError(f"Clip {source.path} does not exist any more; pick another clip.")
        yield source.path
        return
    folder = Path(tempfile.mkdtemp(prefix="arlib-upload-"))
    try:
        target = (folder / safe_filename(source.name)).resolve()
        if target.parent != folder.resolve():  # cannot happen after safe_filename; belt and braces
            raise ArlibError(f"Upload name {source.name!r} is not usable; rename the file and upload it again.")
        target.write_bytes(source.data)
        try:
            yield target
        except ArlibError as exc:  # name the upload as the user knows it, not by its temporary path
            raise type(exc)(str(exc).replace(str(target), source.name)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ clips


def example_clips() -> list[tuple[str, Path]]:
    """(label, path): the demo dataset's test clips, then the real UCF-101 clips when present."""
    from .datasets import load_dataset

    out: list[tuple[str, Path]] = []
    try:
        ds = load_dataset(data=ensure_demo_dataset())
        out += [(f"demo · {c.class_name} · {Path(c.path).name}", Path(c.path)) for c in ds.test]
    except ArlibError as exc:
        log.warning("demo dataset unavailable: %s", exc)
    ucf = ucf_mini_root()
    if ucf is not None:
        from .video import VIDEO_EXTENSIONS

        for path in sorted(ucf.glob("*/*")):
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                out.append((f"UCF-101 · {path.parent.name} · {path.name}", path))
    return out


def clip_picker(key: str, upload_area=None, example_area=None) -> ClipSource | None:
    """An upload box next to an example list; an uploaded clip takes precedence. Returns the clip or None."""
    upload_area = upload_area or st.container()
    example_area = example_area or st.container()
    with upload_area:
        limit = st.get_option("server.maxUploadSize")  # .streamlit/config.toml, or --server.maxUploadSize
        up = st.file_uploader("Upload a clip", type=UPLOAD_TYPES, key=f"{key}_upload",
                              help=f"mp4, avi, mov, mkv, webm or gif, up to {limit} MB; it is deleted after "
                                   "prediction.")
    examples = example_clips()
    with example_area:
        if not examples:
            st.caption("No example clips found; upload a clip.")
        else:
            labels = [lab for lab, _ in examples]
            choice = st.selectbox("…or pick an example clip", labels, key=f"{key}_example", disabled=up is not None,
                                  help="The demo dataset's test clips, and real UCF-101 clips when "
                                       "../shared/ucf101-mini exists.")
            if up is not None:
                st.caption("Using the uploaded clip; remove it to use an example.")
    if up is not None:
        return ClipSource(name=up.name, data=up.getvalue())
    if not examples:
        return None
    path = dict(examples)[choice]
    return ClipSource(name=path.name, path=path)


@st.cache_data(show_spinner=False, max_entries=64)
def _probe(key: str, _path: str) -> dict:
    from .video import probe

    info = probe(_path)
    return dict(info.__dict__)


def probe_clip(key: str, path) -> dict:
    return _probe(key, str(path))


def _transcode_mp4(path, info: dict, max_frames: int = 900, short_side: int = 360) -> bytes:
    from .video import read_frames, write_clip

    n = min(int(info["num_frames"]), max_frames)
    side = min(short_side, min(int(info["width"]), int(info["height"])))
    frames = read_frames(path, list(range(n)), short_side=side)
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    frames = np.ascontiguousarray(frames[:, :h, :w])
    with tempfile.TemporaryDirectory(prefix="arlib-play-") as tmp:
        target = Path(tmp) / "clip.mp4"
        write_clip(target, frames, fps=float(info["fps"]), codec="libx264")
        return target.read_bytes()


@st.cache_data(show_spinner="Preparing the clip for the browser…", max_entries=32)
def _playable(key: str, _path: str, _info: dict) -> bytes:
    return _transcode_mp4(_path, _info)


def show_video(key: str, path, info: dict | None = None, data: bytes | None = None) -> None:
    """st.video of a clip; clips browsers cannot play (avi, gif, mkv, ...) are converted to H.264 MP4 first."""
    path = Path(path)
    info = info or probe_clip(key, path)
    codecs = BROWSER_PLAYABLE.get(path.suffix.lower(), set())
    # Browsers play the first video track and turn it, but may not mirror it: other clips are converted upright.
    if info.get("codec") in codecs and not info.get("stream") and not info.get("mirrored"):
        st.video(data if data is not None else str(path), format="video/webm" if path.suffix.lower() == ".webm"
                 else "video/mp4")
        return
    try:
        st.video(_playable(key, str(path), info), format="video/mp4")
        what = "Frame folder" if path.is_dir() else f"{path.suffix.lstrip('.').upper()} ({info.get('codec')})"
        st.caption(f"{what} converted to MP4 for the browser.")
    except ArlibError as exc:
        st.warning(f"This clip cannot be shown in the browser ({exc})")


# ------------------------------------------------------------------------------------------------ models


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _predictor(path: str, mtime_ns: int):
    from .predict import Predictor

    return Predictor(path)


def predictor(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {short_path(path)} does not exist; pick another checkpoint or train one.")
    return _predictor(str(path.resolve()), path.stat().st_mtime_ns)


def checkpoint_key(path) -> tuple[str, int]:
    path = Path(path)
    return str(path.resolve()), path.stat().st_mtime_ns


@st.cache_data(show_spinner=False, max_entries=64)
def _checkpoint_meta(path: str, mtime_ns: int) -> dict:
    from .checkpoints import load_checkpoint

    meta = dict(load_checkpoint(path).meta)
    meta.pop("optimizer", None)
    return meta


def checkpoint_meta(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {short_path(path)} does not exist; pick another checkpoint.")
    return _checkpoint_meta(*checkpoint_key(path))


@dataclass
class CheckpointChoice:
    path: Path
    label: str


def checkpoint_choices() -> list[CheckpointChoice]:
    """Every run's checkpoints (newest run first), then the demo checkpoint and its siblings in arlib/assets/."""
    from .runs import list_runs
    from .shipped import shipped_checkpoint

    ucf_checkpoint = shipped_checkpoint("ucf9-mini")
    order = {"best": 0, "last": 1}
    out = []
    for run in list_runs(runs_dir()):
        for ck in sorted(run.checkpoints(), key=lambda p: (order.get(p.stem, 2), p.stem)):
            out.append(CheckpointChoice(ck, f"{run.name} · {ck.stem}"))
    demo = demo_checkpoint()
    if demo.is_file():
        out.append(CheckpointChoice(demo, f"shipped · demo twins (8 synthetic classes) · {demo.name}"))
    for sibling in sorted(demo.parent.glob("*.safetensors")):
        if sibling.resolve() != demo.resolve():
            what = "UCF-101, 9 classes" if sibling.name == ucf_checkpoint.name else "shipped"
            out.append(CheckpointChoice(sibling, f"shipped · {what} · {sibling.name}"))
    return out


def checkpoint_picker(key: str, label: str = "Checkpoint", source: "ClipSource | None" = None) -> Path | None:
    choices = checkpoint_choices()
    if not choices:
        st.warning("No checkpoint yet: the shipped demo checkpoint (arlib/assets/demo.safetensors) is missing and no run has "
                   "saved one. Train the demo on the Train page (about a minute), then come back.")
        return None
    default = default_checkpoint(source)
    paths = [c.path for c in choices]
    index = next((i for i, p in enumerate(paths) if p.resolve() == default.resolve()), 0)
    label_of = {str(c.path): c.label for c in choices}
    # One widget per kind of clip, so switching from a demo example to an upload brings its own default.
    kind = "demo" if source is not None and is_demo_clip(source) else "real"
    chosen = st.selectbox(label, [str(p) for p in paths], index=index, key=f"{key}_{kind}", format_func=label_of.get,
                          help="Default: the best checkpoint of the newest finished run trained on the same kind of "
                               "data (demo or real); else the shipped demo checkpoint for demo clips and the "
                               "shipped UCF-101 (9 classes) one for real clips.")
    return Path(chosen)


def run_of_checkpoint(path):
    """The run directory a checkpoint belongs to: its parent run folder, else runs/<meta run>."""
    from .runs import RunDir

    path = Path(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.json").exists():
        return RunDir(path.parent.parent)
    try:
        name = checkpoint_meta(path).get("run")
    except ArlibError:
        return None
    if name and (runs_dir() / name / "config.json").exists():
        return RunDir(runs_dir() / name)
    return None


# ------------------------------------------------------------------------------------------------ predict


def windows_for(duration_s: float) -> int:
    return int(math.ceil(duration_s / WINDOW_S)) if duration_s > LONG_CLIP_S else 1


@st.cache_data(show_spinner=False, max_entries=48)
def _predict(clip_key: str, ckpt: str, ckpt_mtime_ns: int, windows: int, top_k: int, _clip_path: str) -> dict:
    pred = predictor(ckpt).predict(_clip_path, top_k=top_k, windows=windows)
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
    info = probe_clip(source.key, path)
    windows = windows_for(float(info["duration_s"]))
    ckpt, mtime = checkpoint_key(checkpoint)
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
        st.subheader(f"{best['label']} · {best['probability']:.0%}")
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


# ------------------------------------------------------------------------------------------------ runs


def legend_below(fig, height: int = 380):
    """For charts in narrow columns: the legend under the plot instead of eating its width."""
    fig.update_layout(height=height, legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, xanchor="left"),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def epoch_axis(fig, rows_by_run: dict):
    """viz.metric_curves ticks every epoch; past 8 epochs let plotly choose fewer ticks."""
    longest = max((len(rows) for rows in rows_by_run.values()), default=0)
    if longest > 8:
        fig.update_xaxes(dtick=None, nticks=8)
    return fig


def unavailable_backbones() -> list[str]:
    """One markdown line per reason: the backbones that cannot run here, grouped by why."""
    from .backbones import availability

    by_reason: dict[str, list[str]] = {}
    for name, reason in availability().items():
        if reason is not None:
            by_reason.setdefault(reason, []).append(name)
    return [f"{', '.join(f'**{n}**' for n in names)}: {reason}" for reason, names in by_reason.items()]


@st.cache_data(show_spinner=False, max_entries=32)
def _metrics(path: str, mtime_ns: int) -> list[dict]:
    from .fileio import read_jsonl

    return read_jsonl(path)


def run_metrics(run) -> list[dict]:
    """metrics.jsonl rows of a run, cached until the file changes."""
    try:
        mtime = run.metrics_path.stat().st_mtime_ns
    except OSError:
        return []
    return _metrics(str(run.metrics_path), mtime)


@st.cache_data(show_spinner=False, max_entries=32)
def frames_at(path: str, mtime_ns: int, indices: tuple, short_side: int = 112) -> np.ndarray:
    """The frames of a clip at these frame numbers (repeats allowed), decoded once each."""
    from .video import read_frames

    unique, inverse = np.unique(np.asarray(indices, int), return_inverse=True)
    return read_frames(path, unique, short_side=short_side)[inverse]


SCALAR_KEYS = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "val_mean_class_accuracy",
               "lr", "seconds", "clips_skipped"]


def epoch_table(rows: list[dict], run: str | None = None) -> list[dict]:
    out = []
    for r in rows:
        row = {"run": run} if run else {}
        row.update({k: r.get(k) for k in SCALAR_KEYS})
        out.append(row)
    return out


def pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def state_badge(state: str) -> str:
    colour = {"finished": "green", "training": "blue", "features": "blue", "evaluating": "blue", "starting": "blue",
              "stopped": "orange", "failed": "red", "died": "red"}.get(state, "gray")
    return f":{colour}-badge[{state}]"
