"""The Live page's panels: the label, the top-5, the attention strip and the speed figures, redrawn in place.

Each panel is an st.fragment with run_every, so only it reruns (twice a second); it reads what the
LiveSession's threads have produced and never waits for them.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from arlib import viz
from arlib.live import LiveUpdate

from .live_session import PICTURE_SHORT_SIDE, LiveSession

STRIP_CELLS = 10  # thumbnails in the attention strip; each sums the attention of its share of sampled frames


def strip_image(session: LiveSession, update: LiveUpdate):
    """STRIP_CELLS thumbnails in time order; each cell's weight is the attention summed over its frames."""
    cells = np.array_split(np.arange(len(update.attention)), min(STRIP_CELLS, len(update.attention)))
    middle = [update.frame_times_s[c[len(c) // 2]] for c in cells]
    frames = session.recognizer.frames_at(middle)
    if frames is None:
        return None  # the buffer moved on since this update; the next redraw catches up
    weights = [float(np.sum(np.asarray(update.attention)[c])) for c in cells]
    ago = [t - update.stream_time_s for t in middle]
    return viz.attention_strip(frames, weights, ago, per_row=len(cells), thumb_h=64, uniform=1 / len(cells))


def top_k_table(top_k: list[dict], width: int = 12) -> str:
    """The top 5 as one markdown table with text bars: a single element, redrawn in place twice a second
    without the placeholder flicker that separate widgets show while a fragment reruns."""
    rows = ["| Top 5, newest window | |", "|---|---|"]
    for row in top_k:
        filled = round(row["probability"] * width)
        rows.append(f"| {row['label']} | {row['probability']:.0%}&nbsp;`{'█' * filled}{'░' * (width - filled)}` |")
    return "\n".join(rows)


def speed_line(update: LiveUpdate, streams: int = 1) -> str:
    backbone_ms = 1000 * update.seconds.get("backbone_per_frame", 0.0)
    passes = " for its two passes, appearance and motion" if streams == 2 else ""
    return (f"{update.processed_fps:.1f} frames/s processed ({backbone_ms:.0f} ms of backbone per frame{passes}) · "
            f"delay {update.delay_s:.2f} s · "
            f"{update.dropped_frames} frames dropped to keep up · {update.buffered_frames} frames "
            f"({update.window_s:.1f} s) in the window")


@st.fragment(run_every=0.5)
def predictions(session: LiveSession) -> None:
    if session.error:
        st.error(session.error, icon=":material/error:")
    update = session.latest
    if update is None:
        st.info("No label yet: start the camera or a clip; the first label comes about half a second later.",
                icon=":material/hourglass_empty:")
        return
    st.markdown(f"## {update.label}")
    st.caption(f"{update.probability:.0%} · smoothed over the last {session.recognizer.smoothing} updates "
               f"(one every {session.recognizer.update_every_s:g} s)")
    st.markdown(top_k_table(update.top_k))
    st.caption(speed_line(update, session.recognizer.streams))


@st.fragment(run_every=0.5)
def attention(session: LiveSession) -> None:
    update = session.latest
    if update is None:
        return
    strip = strip_image(session, update)
    if strip is not None:
        st.markdown("**Attention over the window**, oldest to newest")
        st.image(strip, caption=f"Each cell sums the attention of {len(update.attention) // STRIP_CELLS} of the "
                                f"{len(update.attention)} sampled frames; its colour and number say how much more "
                                "or less than uniform it got (1x = the model weighs all frames alike). Under each: "
                                "seconds before the newest frame.")


@st.fragment(run_every=0.5)
def picture(session: LiveSession) -> None:
    """The file or stream as it plays (the camera shows itself in the WebRTC component)."""
    frame = session.picture
    if frame is None:
        st.caption("Press Start to play the clip as if it were a camera.")
        return
    st.image(frame, width=int(frame.shape[1] * PICTURE_SHORT_SIDE / min(frame.shape[:2])))
    if session.ended:
        st.caption("The clip has ended; the last prediction stays on screen. Press Start to play it again.")


@st.fragment(run_every=0.5)
def heat_map(session: LiveSession) -> None:
    """The latest heat map (they come at most every few updates) drawn over the frame it was computed on."""
    last = session.recognizer.last_heat
    update = session.latest
    if last is None or update is None:
        if session.recognizer.heat_map:
            st.caption("The heat map comes with one of the next updates.")
        return
    when, frame, heat = last
    st.image(viz.heat_overlay(frame, heat), width=360,
             caption=f"Where the frame at {when - update.stream_time_s:+.1f} s pushed the label of that moment up "
                     "(Grad-CAM; red = most, over the part of the frame the backbone saw)")
