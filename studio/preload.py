"""Warm the server in the background as soon as the first page is opened: the default checkpoints' models
(backbone weights, one forward pass) and the decode and drawing paths, so the first clip a visitor uploads
does not pay for them. Runs once per server process; pages never wait for it."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

from arlib import places

log = logging.getLogger("studio")


def _warm() -> None:
    from arlib import viz
    from arlib.video import write_clip

    from . import resources

    t0 = time.perf_counter()
    checkpoints = dict.fromkeys([places.default_checkpoint(uploaded=True), places.default_checkpoint()])
    with tempfile.TemporaryDirectory(prefix="arlib-warm-") as tmp:
        levels = np.linspace(20, 230, 24).astype(np.uint8)
        clip = write_clip(Path(tmp) / "warm.mp4", np.broadcast_to(levels[:, None, None, None], (24, 64, 64, 3)).copy(),
                          fps=12)
        for checkpoint in checkpoints:
            if not Path(checkpoint).is_file():
                continue
            try:
                pred = resources.predictor(checkpoint).predict(clip, top_k=5)  # the pages' cached model
                viz.annotated_gif(pred.frames[:4], "warm", 0.5, pred.attention[:4], height=64)
                viz.top_k_bars(pred.top_k)
            except Exception:  # a broken checkpoint is the page's to explain; warming just skips it
                log.exception("preloading %s failed", checkpoint)
    log.info("studio preloaded %d model(s) in %.1f s", len(checkpoints), time.perf_counter() - t0)


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Start warming once per server process (cache_resource is shared by every session)."""
    # pandas first, on this thread: plotly imports it lazily from both the warming thread and a page's
    # first chart, and two threads importing it at once handed one of them a half-initialised module
    # ("partially initialized module 'pandas' has no attribute 'Series'").
    import pandas  # noqa: F401

    thread = threading.Thread(target=_warm, name="studio-preload", daemon=True)
    thread.start()
    return thread
