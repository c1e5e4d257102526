"""Streaming recognition: frames with timestamps in, rolling predictions out (no Streamlit here).

Each new frame costs one backbone pass (two for a checkpoint with a motion stream): its features go into a
rolling buffer that spans the last `window_s` seconds. Every `update_every_s` seconds of stream time the sequence model classifies that
buffer, sampled exactly as `Predictor.predict` samples a clip of the same frames (the cache grid, then
uniform test positions). Scores are averaged over the last few updates for a steady label, as
MMAction2's webcam demo does.

A two-stream checkpoint (arlib.motion) also needs each frame's motion features: the backbone on the
difference between the frame and the frame GAP later. Frame k's partner only exists once frame k + GAP has
arrived, so each new frame's pass pairs the frame GAP before it with it (batched with its own appearance
pass: two images per frame). At an update, the frames whose partner has not arrived yet are paired with the
newest frame, exactly as motion.partner_frames clamps the last frames of a clip: the newest frame with itself
(a flat grey image, encoded once) and, when sampled, the GAP - 1 frames before it (at most GAP - 1 extra
images per update). So an update equals `predict` on a clip made of the buffered frames. When frames are
dropped to keep up, a partner is the GAP-th *processed* frame later, so the difference spans more time.

`LiveStream` runs a recogniser on a worker thread that only ever takes the newest frame: when the
backbone cannot keep up, frames are dropped rather than queued, so the delay stays bounded.
`open_source` turns a camera index, a file or a stream URL into (frame, timestamp) pairs.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from . import video
from .errors import ArlibError, VideoError
from .features import as_stored
from .fileio import atomic_write_json
from .motion import GAP, difference_crops, fuse_streams
from .predict import Predictor, _WithMotion
from .sampling import cache_grid, test_positions
from .transforms import TEST_VIEW, apply_view

DEFAULT_WINDOW_S = 4.0  # UCF-101 clips run 4-10 s; the model was trained on whole clips of that length
DEFAULT_UPDATE_EVERY_S = 0.5
DEFAULT_SMOOTHING = 3  # updates averaged for the steady label (1.5 s at the default rate)
_FPS_SPAN_S = 2.0
# A heat map costs a torch backbone pass with gradients; after one that took c seconds the next waits
# HEAT_SPACING * c, so heat maps take at most about a fifth of the worker's time and never starve the label.
HEAT_SPACING = 4.0
# A LiveStream worker with no frame for this long ends (a closed browser tab sends none); the next frame starts
# another, so an abandoned session leaves no idle thread behind.
IDLE_EXIT_S = 10.0


@dataclass
class LiveUpdate:
    stream_time_s: float  # timestamp of the newest frame classified
    label: str  # smoothed over the last few updates
    probability: float
    top_k: list[dict]  # this window alone
    attention: list[float]  # over the seq_len sampled frames, sums to 1
    frame_times_s: list[float]  # timestamps of those sampled frames, in time order
    buffered_frames: int  # frames in the window
    window_s: float  # span the buffer covers
    processed_fps: float  # frames through the backbone per second of wall-clock time, recently
    delay_s: float  # wall-clock time from the newest frame's arrival to this update
    elapsed_s: float  # wall-clock time from the first frame's arrival to this update
    frames_processed: int  # frames through the backbone so far
    backbone_passes: int  # images through the backbone so far: one per frame, two with a motion stream
    dropped_frames: int  # frames skipped so far to keep up (LiveStream only)
    seconds: dict = field(default_factory=dict)  # backbone time per frame (mean), head time
    # Grad-CAM of the smoothed label on the newest frame, [rows, cols] in [0, 1] over the whole (resized) frame;
    # when the recogniser's heat_map is on and one was due at this update (see HEAT_SPACING)
    heat_map: list[list[float]] | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _prepare(frame, short_side: int) -> np.ndarray:
    """An av.VideoFrame or uint8 RGB array -> uint8 RGB with the short side resized, as clip decoding does."""
    if not isinstance(frame, av.VideoFrame):
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise VideoError(f"A live frame must be uint8 RGB [H, W, 3], got {array.dtype} {array.shape}.")
        if min(array.shape[:2]) == short_side:
            return array  # already decoded at the right size (open_source does that for files)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
    width, height = video._scaled_size(frame.width, frame.height, short_side)
    # Same conversion, bilinear resize and turn upright as video.read_frames, so a file streamed here matches predict.
    array = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")
    return video.frame_orientation(frame).apply(array)


class LiveRecognizer:
    """Feed `push(frame, timestamp_s)` in time order; it returns a LiveUpdate when one is due, else None."""

    def __init__(self, predictor: Predictor | str | Path, window_s: float = DEFAULT_WINDOW_S,
                 update_every_s: float = DEFAULT_UPDATE_EVERY_S, smoothing: int = DEFAULT_SMOOTHING, top_k: int = 5,
                 heat_map: bool = False):
        self.predictor = predictor if isinstance(predictor, Predictor) else Predictor(predictor)
        self.streams = self.predictor.streams  # 2: appearance + motion
        if window_s <= 0 or update_every_s <= 0:
            raise ArlibError("The live window and the update interval must be positive numbers of seconds.")
        self.window_s = float(window_s)
        self.update_every_s = float(update_every_s)
        self.smoothing = max(1, int(smoothing))
        self.top_k = max(1, min(int(top_k), len(self.predictor.classes)))
        pre = self.predictor.backbone.spec.preprocessing
        self._short_side, self._size = pre.resize_short_side, pre.input_size
        self.dropped_frames = 0  # set by LiveStream
        self.heat_map = heat_map  # may be switched while running: read at every update
        self.reset()
        self._warm_up()

    def _warm_up(self) -> None:
        # The first pass through each step is many times slower than the rest (lazy imports such as
        # torchvision's inside apply_view, allocation, kernel selection): pay for it now, through the very
        # path a frame takes, not as a late first label or a stalled worker.
        blank = _prepare(np.zeros((480, 640, 3), np.uint8), self._short_side)[None]
        crops = apply_view(blank, self._size, TEST_VIEW)
        if self.streams == 2:  # with the batch of two a frame sends; the second image is a still frame's motion
            crops = np.concatenate([crops, difference_crops(blank, blank, self._size)])
        feats = self.predictor.backbone.encode(crops)
        # The newest frame of a window pairs with itself (motion.partner_frames): a flat grey image, encoded once.
        self._still_motion = feats[1] if self.streams == 2 else None
        x = feats[:1] if self.streams == 1 else fuse_streams(feats[:1], feats[1:])
        with torch.inference_mode():
            self.predictor.model(torch.from_numpy(np.repeat(x[None], self.predictor.seq_len, axis=1))
                                 .to(self.predictor.device))

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    def reset(self) -> None:
        # [timestamp, arrival wall time, features [D], resized frame, motion features [D] once its partner frame
        # has arrived (two-stream only)] per buffered frame; the lock lets another thread (Record) copy the
        # buffer while the worker thread pushes
        self._lock = threading.Lock()
        self._buffer: collections.deque = collections.deque()
        self._recent_probs: collections.deque = collections.deque(maxlen=self.smoothing)
        self._processed_at: collections.deque = collections.deque()
        self._backbone_s = collections.deque(maxlen=50)
        self._last_update_t: float | None = None
        self._first_t: float | None = None
        self._first_arrival: float | None = None
        self._heat_due = 0.0
        self.last_heat: tuple[float, np.ndarray, np.ndarray] | None = None  # (stream time, frame, heat map)
        self.frames_encoded = 0
        self.backbone_passes = 0

    def push(self, frame, timestamp_s: float, arrived: float | None = None) -> LiveUpdate | None:
        arrived = time.perf_counter() if arrived is None else arrived
        t = float(timestamp_s)
        if self._buffer and t <= self._buffer[-1][0]:
            return None  # a repeated or out-of-order timestamp: the stream restarted or stuttered
        resized = _prepare(frame, self._short_side)
        t0 = time.perf_counter()
        crops = apply_view(resized[None], self._size, TEST_VIEW)
        # Two-stream: the frame GAP back now has its partner (this frame), unless it leaves the window now.
        waiting = None
        if self.streams == 2 and len(self._buffer) >= GAP and self._buffer[-GAP][0] > t - self.window_s + 1e-6:
            waiting = self._buffer[-GAP]
            crops = np.concatenate([crops, difference_crops(waiting[3][None], resized[None], self._size)])
        encoded = self.predictor.backbone.encode(crops)
        features = encoded[0]
        if waiting is not None:
            waiting[4] = encoded[1]
        now = time.perf_counter()
        self._backbone_s.append(now - t0)
        self.frames_encoded += 1
        self.backbone_passes += len(crops)
        self._processed_at.append(now)
        while self._processed_at and self._processed_at[0] < now - _FPS_SPAN_S:
            self._processed_at.popleft()
        with self._lock:
            self._buffer.append([t, arrived, features, resized, None])
            while self._buffer[0][0] <= t - self.window_s + 1e-6:  # a window holds under window_s of video
                self._buffer.popleft()
        if self._first_t is None:
            self._first_t, self._first_arrival = t, arrived
        since = t - (self._first_t if self._last_update_t is None else self._last_update_t)
        if since + 1e-9 < self.update_every_s:
            return None
        self._last_update_t = t
        return self.classify()

    def finish(self) -> LiveUpdate | None:
        """At the end of a source: an update for the frames that arrived since the last one, if any."""
        if not self._buffer or self._buffer[-1][0] == self._last_update_t:
            return None
        self._last_update_t = self._buffer[-1][0]
        return self.classify()

    def _sampled(self) -> np.ndarray:
        """Buffer positions, sampled as predict samples a clip made of exactly the buffered frames.

        One difference: when frames were dropped and the window holds fewer frames than the model's
        sequence, they are spread over the sequence (each repeated about equally) instead of padding with
        the last frame as predict does for a short clip: the window still spans its seconds, and the newest
        frame must not outweigh the rest.
        """
        n = len(self._buffer)
        if n < self.predictor.seq_len:
            return np.arange(self.predictor.seq_len) * n // self.predictor.seq_len
        # Even in time, as predict samples a clip: frames dropped under load leave no crowding.
        grid = cache_grid(np.array([entry[0] for entry in self._buffer]), self.predictor.cache_frames)
        return grid[test_positions(len(grid), self.predictor.seq_len)]

    def classify(self) -> LiveUpdate:
        if not self._buffer:
            raise ArlibError("No frames have arrived yet, so there is nothing to classify.")
        t0 = time.perf_counter()
        positions = self._sampled()
        # Rounded to the feature cache's precision, as predict and evaluate see them (arlib.features.as_stored).
        feats = as_stored(np.stack([self._buffer[i][2] for i in positions])).astype(np.float32)
        motion = None if self.streams == 1 else as_stored(self._motion_at(positions)).astype(np.float32)
        x = feats if motion is None else fuse_streams(feats, motion)
        with torch.inference_mode():
            logits, attention = self.predictor.model(torch.from_numpy(x[None]).to(self.predictor.device))
            probs = self.predictor.probabilities(logits)[0]  # with the checkpoint's temperature
            attention = attention.cpu()
        self._recent_probs.append(probs)
        smoothed = np.mean(self._recent_probs, axis=0)
        best = int(smoothed.argmax())
        order = np.argsort(-probs)[: self.top_k]
        heat = None
        if self.heat_map and time.perf_counter() >= self._heat_due:
            h0 = time.perf_counter()
            heat = self._newest_heat_map(positions, feats, motion, best)
            self._heat_due = time.perf_counter() + HEAT_SPACING * (time.perf_counter() - h0)
            self.last_heat = (self._buffer[-1][0], self._buffer[-1][3], heat)
        now = time.perf_counter()
        times = [self._buffer[i][0] for i in positions]
        span = self._buffer[-1][0] - self._buffer[0][0]
        return LiveUpdate(
            stream_time_s=round(self._buffer[-1][0], 3),
            label=self.classes[best],
            probability=float(smoothed[best]),
            top_k=[{"label": self.classes[i], "probability": float(probs[i])} for i in order],
            attention=[round(float(a), 6) for a in attention[0]],
            frame_times_s=[round(x, 3) for x in times],
            buffered_frames=len(self._buffer),
            window_s=round(span, 3),
            processed_fps=round(self.processed_fps(), 2),
            delay_s=round(now - self._buffer[-1][1], 3),
            elapsed_s=round(now - self._first_arrival, 3),
            frames_processed=self.frames_encoded,
            backbone_passes=self.backbone_passes,
            dropped_frames=self.dropped_frames,
            seconds={"backbone_per_frame": round(float(np.mean(self._backbone_s)), 4), "head": round(now - t0, 4)},
            heat_map=None if heat is None else np.round(heat, 3).tolist(),
        )

    def _motion_at(self, positions: np.ndarray) -> np.ndarray:
        """Motion features [len(positions), D] of the sampled frames, each paired as motion.partner_frames
        pairs a clip made of the buffered frames: with the frame GAP later, or the newest frame near the end."""
        newest = len(self._buffer) - 1
        # Not paired yet (their partner has not arrived): paired with the newest frame now, as predict clamps.
        early = sorted({int(i) for i in positions if self._buffer[i][4] is None and i < newest})
        paired = {}
        if early:
            frames = np.stack([self._buffer[i][3] for i in early])
            later = np.repeat(self._buffer[newest][3][None], len(early), axis=0)
            paired = dict(zip(early, self.predictor.backbone.encode(difference_crops(frames, later, self._size))))
            self.backbone_passes += len(early)
        return np.stack([self._buffer[i][4] if self._buffer[i][4] is not None
                         else self._still_motion if i == newest else paired[int(i)] for i in positions])

    def _newest_heat_map(self, positions: np.ndarray, feats: np.ndarray, motion: np.ndarray | None,
                         class_index: int) -> np.ndarray:
        """Grad-CAM (arlib.explain) for one class on the newest frame only: the other positions keep their
        buffered features, so it costs one torch backbone pass and a small backward, not one per frame.
        Two-stream: through the appearance stream with the motion features held fixed, as predict does."""
        from .explain import _CamHooks, feature_map_layer, on_full_frame

        backbone, model, device = self.predictor.backbone, self.predictor.model, self.predictor.device
        if motion is not None:
            model = _WithMotion(model, torch.from_numpy(motion[None]).to(device))
        newest = self._buffer[-1][3]
        crop = apply_view(newest[None], self._size, TEST_VIEW)
        hooks = _CamHooks(feature_map_layer(backbone), detach=True)  # the backward pass stops at the maps
        try:
            with torch.enable_grad():
                f_new = backbone.net(backbone.normalise(torch.from_numpy(crop))).float().to(device)  # [1, D]
                base = torch.from_numpy(feats).to(device)
                is_newest = torch.from_numpy(positions == len(self._buffer) - 1)[:, None].to(device)
                logits, _ = model(torch.where(is_newest, f_new.expand_as(base), base)[None])
                logits[0, class_index].backward(inputs=hooks.outputs)
        finally:
            hooks.remove()
        maps, grads = hooks.outputs[0].detach().float().cpu(), hooks.grads[0].float().cpu()
        cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * maps).sum(dim=1)).numpy()
        full = on_full_frame(cam, newest.shape[:2], self._size)[0]
        peak = float(full.max())
        return full / peak if peak > 0 else full

    def processed_fps(self) -> float:
        if len(self._processed_at) < 2:
            return 0.0
        return (len(self._processed_at) - 1) / max(1e-6, self._processed_at[-1] - self._processed_at[0])

    def frames_at(self, times_s: list[float]) -> np.ndarray | None:
        """The buffered frames at these timestamps, in the order asked (None once any has left the buffer)."""
        with self._lock:
            by_time = {round(b[0], 3): b[3] for b in self._buffer}
        try:
            return np.stack([by_time[round(t, 3)] for t in times_s])
        except (KeyError, ValueError):
            return None

    def recent_frames(self) -> tuple[np.ndarray, list[float]]:
        """The buffered frames (short side resized) and their timestamps: what Record saves."""
        with self._lock:
            items = list(self._buffer)
        if not items:
            return np.zeros((0, 1, 1, 3), np.uint8), []
        return np.stack([b[3] for b in items]), [b[0] for b in items]


class LiveStream:
    """Runs a recogniser on a worker thread that takes only the newest submitted frame.

    `submit` never blocks: a frame still waiting when a newer one arrives is dropped (and counted), so
    the backbone always works on the freshest picture and the delay cannot grow. The worker starts with the
    first frame and ends after `idle_exit_s` without one (the next frame starts a new one): a browser session
    that was closed without stopping its stream leaves no thread behind.
    """

    def __init__(self, recognizer: LiveRecognizer, on_update: Callable[[LiveUpdate], None] | None = None,
                 idle_exit_s: float = IDLE_EXIT_S):
        self.recognizer = recognizer
        self.on_update = on_update
        self.idle_exit_s = float(idle_exit_s)
        self.latest: LiveUpdate | None = None
        self.error: str | None = None
        self.frames_submitted = 0
        self._pending = None
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def worker_alive(self) -> bool:
        with self._cond:
            return self._thread is not None and self._thread.is_alive()

    def submit(self, frame, timestamp_s: float) -> None:
        with self._cond:
            if self._stopping:
                return
            if self._pending is not None:
                self.recognizer.dropped_frames += 1
            self._pending = (frame, timestamp_s, time.perf_counter())
            self.frames_submitted += 1
            if self._thread is None and self.error is None:
                self._thread = threading.Thread(target=self._work, name="arlib-live", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + self.idle_exit_s
                while self._pending is None and not self._stopping and time.monotonic() < idle_until:
                    self._cond.wait(timeout=max(0.0, idle_until - time.monotonic()))
                if self._pending is None:  # stopped, or idle for long: the next submit starts a new worker
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
                frame, t, arrived = self._pending
                self._pending = None
                self._busy = True
            try:
                update = self.recognizer.push(frame, t, arrived)
                if update is not None:
                    self.latest = update
                    if self.on_update:
                        self.on_update(update)
            except ArlibError as exc:
                self.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - still one sentence for the page or the CLI, never a dead silent thread
                self.error = f"Live recognition stopped ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})."
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if self.error:
                return

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until the frame in hand and the pending one are processed."""
        deadline = time.perf_counter() + timeout_s
        with self._cond:
            while (self._pending is not None or self._busy) and self._thread is not None and self._thread.is_alive():
                if not self._cond.wait(timeout=max(0.0, deadline - time.perf_counter())):
                    break

    def finish(self) -> LiveUpdate | None:
        """At the end of a source: wait for the worker, then one update for the frames that arrived since the
        last one. A clip shorter than the update period, or one that ended while a busy machine was still
        warming up, still ends with a label for what was seen. None if there is nothing new (or on an error)."""
        self.drain()
        with self._cond:
            if self.error or self._pending is not None or self._busy:  # still at work after drain's timeout
                return None
        update = self.recognizer.finish()  # the worker is idle and the source has ended: nothing races it
        if update is not None:
            self.latest = update
            if self.on_update:
                self.on_update(update)
        return update

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)


# ------------------------------------------------------------------------------------------- record


def save_recording(recognizer: LiveRecognizer, folder: str | Path, update: LiveUpdate | None = None,
                   name: str | None = None) -> tuple[Path, Path]:
    """The buffered last seconds as an MP4 clip plus a JSON file with the live prediction for them.

    Both are written under a temporary name and renamed, so a reader never sees half a recording. The
    clip is an ordinary video: Predict (or `arlib predict`) opens it like any other.
    """
    frames, times = recognizer.recent_frames()
    if len(frames) < 2:
        raise ArlibError("Nothing to record yet: start the camera or a stream and wait for the first label.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or time.strftime("live-%Y%m%d-%H%M%S")
    clip, meta = folder / f"{name}.mp4", folder / f"{name}.json"
    span = times[-1] - times[0]
    fps = (len(frames) - 1) / span if span > 0 else 25.0
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # H.264 wants even sizes
    partial = folder / f".{name}.partial.mp4"
    try:
        video.write_clip(partial, np.ascontiguousarray(frames[:, :h, :w]), fps=fps)
        partial.replace(clip)
    finally:
        partial.unlink(missing_ok=True)
    atomic_write_json(meta, {
        "clip": clip.name,
        "checkpoint": recognizer.predictor.name,
        "classes": recognizer.classes,
        "frames": len(frames),
        "fps": round(fps, 3),
        "timestamps_s": [round(t - times[0], 3) for t in times],
        "live": (update.to_json() if update is not None else None),
    })
    return clip, meta


# ------------------------------------------------------------------------------------------- sources


def is_device(source: str) -> bool:
    return str(source).isdigit()


def is_url(source: str) -> bool:
    return "://" in str(source)


def open_source(source: str | int, realtime: bool = True, short_side: int | None = None,
                open_timeout_s: float = 5.0) -> Iterator[tuple[av.VideoFrame, float]]:
    """(frame, timestamp in seconds from the first frame) pairs from a camera index, a file or a URL.

    Files play at their own rate when `realtime` (as if live), else as fast as they decode. Cameras and
    URLs are live by nature; their timestamps are the arrival times. Raises VideoError with one sentence
    when the source cannot be opened; a stream that breaks mid-way raises VideoError too.
    """
    source = str(source)
    if is_device(source):
        return _camera(int(source))
    if is_url(source):
        return _url(source, open_timeout_s)
    return _file(Path(source), realtime, short_side)


def _camera(index: int) -> Iterator[tuple[av.VideoFrame, float]]:
    device = f"/dev/video{index}"
    if not Path(device).exists():
        raise VideoError(f"No camera {index} here ({device} does not exist); connect a camera or give a video "
                         "file or stream URL instead.")
    try:
        container = av.open(device, format="v4l2")
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"Camera {index} ({device}) could not be opened ({video._reason(error)}); "
                         "check that no other program uses it and that you may access it.") from None
    return _live_frames(container, f"camera {index}")


def _url(url: str, open_timeout_s: float) -> Iterator[tuple[av.VideoFrame, float]]:
    micros = str(int(open_timeout_s * 1e6))
    try:
        container = av.open(url, options={"rw_timeout": micros, "timeout": micros}, timeout=open_timeout_s)
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"The stream {url} could not be opened ({video._reason(error)}); check the address and "
                         "that the stream is running.") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"The stream {url} carries no video; give a video stream.")
    return _live_frames(container, f"the stream {url}")


def _live_frames(container, name: str) -> Iterator[tuple[av.VideoFrame, float]]:
    start = time.perf_counter()
    count = 0
    try:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            for frame in packet.decode():
                count += 1
                yield frame, time.perf_counter() - start
    except av.error.FFmpegError as error:
        raise VideoError(f"{name[0].upper()}{name[1:]} broke off after {count} frames ({video._reason(error)}); "
                         "restart it or pick another source.") from None
    finally:
        container.close()
    if count == 0:
        raise VideoError(f"{name[0].upper()}{name[1:]} delivered no frames; check that it is sending video.")


def _file(path: Path, realtime: bool, short_side: int | None) -> Iterator[tuple[np.ndarray, float]]:
    container = video._open(path)  # a clear VideoError for a missing, empty or non-video file
    try:
        stream = video._video_stream(container, path)
    except VideoError:
        container.close()
        raise
    return _file_frames(container, stream, path, realtime, short_side)


def _file_frames(container, stream, path: Path, realtime: bool, short_side: int | None):
    # Decoding at the backbone's short side here (one swscale pass) gives the very pixels predict decodes.
    scaler = video._Scaler(lambda w, h: video._scaled_size(w, h, short_side))
    # Presentation times from the demuxed packets (video.probe): real times for variable-rate clips too.
    times = video.probe(path).frame_times()
    fps = video._stream_fps(stream)
    start = time.perf_counter()
    count = 0
    with container:
        stream.thread_type = "AUTO"
        for index, frame in enumerate(video._decoded_frames(container, stream)):
            t = float(times[index]) if index < len(times) else float(times[-1]) + (index - len(times) + 1) / fps
            if realtime:
                wait = start + t - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            count += 1
            yield scaler.video(frame, stream), t
    if count == 0:
        raise VideoError(f"{path} has no decodable frames; check that it is a complete, valid video.")


# --------------------------------------------------------------------------------------------- runner


def summarize(updates: list[LiveUpdate]) -> dict:
    """What a live run achieved: time to the first label, processed frame rate, delay, frames dropped."""
    if not updates:
        return {"updates": 0}
    delays = np.array([u.delay_s for u in updates])
    last = updates[-1]
    out = {
        "updates": len(updates),
        "first_label_after_s": updates[0].elapsed_s,
        "first_label": updates[0].label,
        "final_label": last.label,
        "processed_fps": round(float(np.median([u.processed_fps for u in updates[1:] or updates])), 2),
        "delay_median_s": round(float(np.median(delays)), 3),
        "delay_p90_s": round(float(np.percentile(delays, 90)), 3),
        "delay_max_s": round(float(delays.max()), 3),
        "frames_processed": last.frames_processed,
        # 1 with an appearance-only checkpoint, about 2 with a motion stream (arlib.motion)
        "backbone_passes_per_frame": round(last.backbone_passes / max(1, last.frames_processed), 2),
        "frames_dropped": last.dropped_frames,
        "stream_seconds": last.stream_time_s,
        "wall_seconds": last.elapsed_s,
    }
    return out



def run_live(source: str, checkpoint, realtime: bool = True, window_s: float = DEFAULT_WINDOW_S,
             update_every_s: float = DEFAULT_UPDATE_EVERY_S, smoothing: int = DEFAULT_SMOOTHING,
             top_k: int = 5, max_seconds: float | None = None, heat_map: bool = False) -> Iterator[LiveUpdate]:
    """Updates for a whole source. Realtime sources go through a LiveStream (frames dropped to keep up);
    a file played as fast as possible goes frame by frame through the recogniser (nothing dropped)."""
    recognizer = LiveRecognizer(checkpoint, window_s=window_s, update_every_s=update_every_s,
                                smoothing=smoothing, top_k=top_k, heat_map=heat_map)
    short_side = recognizer.predictor.backbone.spec.preprocessing.resize_short_side
    live = realtime or is_device(source) or is_url(source)
    frames = open_source(source, realtime=realtime, short_side=short_side)
    if not live:
        for frame, t in frames:
            if max_seconds is not None and t > max_seconds:
                break
            update = recognizer.push(frame, t)
            if update is not None:
                yield update
        update = recognizer.finish()
        if update is not None:
            yield update
        return
    updates: collections.deque = collections.deque()
    ready = threading.Event()

    def collect(update: LiveUpdate) -> None:
        updates.append(update)
        ready.set()

    stream = LiveStream(recognizer, on_update=collect)
    reader_error: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            for frame, t in frames:
                if done.is_set() or stream.error or (max_seconds is not None and t > max_seconds):
                    break
                stream.submit(frame, t)
            if not done.is_set():
                stream.finish()  # the last frames' update, handed to collect
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            reader_error.append(exc)
        finally:
            done.set()
            ready.set()

    reader = threading.Thread(target=read, name="arlib-live-reader", daemon=True)
    reader.start()
    try:
        while True:
            ready.wait(timeout=0.5)
            ready.clear()
            while updates:
                yield updates.popleft()
            if stream.error:
                raise ArlibError(stream.error)
            if done.is_set() and not updates:
                break
        if reader_error:
            raise reader_error[0]
    finally:
        done.set()
        stream.stop()
        reader.join(timeout=5)
