"""Clips in the browser: played as they are when the browser can, else converted to H.264 MP4 once."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from arlib.errors import ArlibError

from .resources import probe_clip

BROWSER_PLAYABLE = {".mp4": {"h264", "vp9", "av1"}, ".m4v": {"h264"}, ".webm": {"vp8", "vp9", "av1"}}


@st.cache_data(show_spinner="Preparing the clip for the browser…", max_entries=32)
def _playable(key: str, _path: str) -> bytes:
    from arlib.video import transcode_for_browser

    with tempfile.TemporaryDirectory(prefix="arlib-play-") as tmp:
        return transcode_for_browser(_path, Path(tmp) / "clip.mp4").read_bytes()


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
        st.video(_playable(key, str(path)), format="video/mp4")
        what = "Frame folder" if path.is_dir() else f"{path.suffix.lstrip('.').upper()} ({info.get('codec')})"
        st.caption(f"{what} converted to MP4 for the browser.")
    except ArlibError as exc:
        st.warning(f"This clip cannot be shown in the browser ({exc})")
