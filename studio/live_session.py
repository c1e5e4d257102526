"""A browser session's live recognition: the recogniser, its newest-frame worker, and the source feeding it.

Frames come from the browser's camera (streamlit-webrtc calls `submit` on its own thread for every frame)
or from a file or stream URL read on a thread of ours at the source's own rate. The page only reads
`latest`, `picture` and `error`; all the work happens off the script thread, so reruns never block it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import streamlit as st

from arlib.errors import ArlibError
from arlib.live import (
    LiveRecognizer,
    LiveStream,
    LiveUpdate,
    open_source,
    save_recording,
)

PICTURE_SHORT_SIDE = 240  # the file/URL picture shown on the page


class LiveSession:
    def __init__(self, predictor, window_s: float):
        self.recognizer = LiveRecognizer(predictor, window_s=window_s)
        self.stream = LiveStream(self.recognizer)
        self.origin = time.perf_counter()
        self.source: str | None = None  # the file or URL being played, None for the camera
        self.picture: np.ndarray | None = None  # the newest file/URL frame, for display
        self.ended = False
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self._reader_error: str | None = None

    # -- camera ------------------------------------------------------------------------------------------
    def submit(self, frame: av.VideoFrame) -> av.VideoFrame:
        """streamlit-webrtc's video_frame_callback: hand the frame to the worker, give it back untouched."""
        self.stream.submit(frame, time.perf_counter() - self.origin)
        return frame

    # -- file or URL -------------------------------------------------------------------------------------
    def play(self, source: str) -> None:
        """Start reading a file (at its own rate) or a stream URL; VideoError at once when it cannot be opened."""
        self.stop_source()
        short_side = self.recognizer.predictor.backbone.spec.preprocessing.resize_short_side
        frames = open_source(source, realtime=True, short_side=short_side)
        self.source, self.ended, self._reader_error = source, False, None
        self._stop_reading = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(frames, self._stop_reading),
                                        name="studio-live-reader", daemon=True)
        self._reader.start()

    def _read(self, frames, stop: threading.Event) -> None:
        offset = time.perf_counter() - self.origin  # timestamps keep rising across sources
        try:
            for frame, t in frames:
                if stop.is_set():
                    return
                self.picture = frame.to_ndarray(format="rgb24") if isinstance(frame, av.VideoFrame) else frame
                self.stream.submit(frame, offset + t)
            self.stream.finish()  # a clip that ended before its first update (or a busy machine's) still gets a label
        except ArlibError as exc:
            self._reader_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one sentence on the page, never a dead silent thread
            self._reader_error = f"Reading {self.source} stopped ({type(exc).__name__}: {str(exc)[:160]})."
        finally:
            frames.close()  # the file or connection is released even when stopped mid-way
            if not stop.is_set():
                self.ended = True

    def stop_source(self) -> None:
        self._stop_reading.set()
        if self._reader is not None:
            self._reader.join(timeout=2)
        self._reader, self.source = None, None

    @property
    def playing(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    # -- what the page reads -----------------------------------------------------------------------------
    @property
    def latest(self) -> LiveUpdate | None:
        return self.stream.latest

    @property
    def error(self) -> str | None:
        return self._reader_error or self.stream.error

    def record(self, folder: Path) -> tuple[Path, Path]:
        return save_recording(self.recognizer, folder, self.latest)

    def close(self) -> None:
        self.stop_source()
        self.stream.stop()


def session_for(predictor, checkpoint_key: tuple, window_s: float) -> LiveSession:
    """This browser session's LiveSession, rebuilt when the checkpoint or the window changes."""
    key = (checkpoint_key, float(window_s))
    current: LiveSession | None = st.session_state.get("live_session")
    if current is not None and st.session_state.get("live_session_key") == key:
        return current
    if current is not None:
        current.close()
    st.session_state["live_session"] = session = LiveSession(predictor, window_s)
    st.session_state["live_session_key"] = key
    return session
