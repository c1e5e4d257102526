"""Open, probe and decode video clips and folders of frames, with PyAV (FFmpeg) only.

Two kinds of clip are accepted everywhere:
- a video file FFmpeg can read (XviD/MPEG-4 AVI, H.264 MP4/MOV/MKV, VP9 WebM, MJPEG AVI, animated GIF, ...);
- a frame folder, the thesis layout ``<clip>/<N>.jpg``, read in NUMERIC order (1, 2, 10, 100).

Frames are addressed by 0-based index in time order. Decoding forward, frames are counted; after a seek,
the landing frame's index is derived from its timestamp, ``(pts - first frame's pts) * time_base * fps``,
and counting resumes from there. Any unusable clip raises ``VideoError`` with one
sentence naming the file; raw PyAV/FFmpeg exceptions never escape the public functions.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from .errors import DatasetError, VideoError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}
)
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})

DEFAULT_FPS = 25.0  # when a container states no usable rate, and for frame folders
SEEK_GAP_SECONDS = 2.0  # seek instead of decoding through a gap longer than this
_MAX_FPS = 1000.0  # a larger "rate" is a time base in disguise, not a frame rate
_PROBE_PACKETS = 300  # probe gives up when this many packets yield no decodable frame
_MAX_PIXELS = 8192 * 8192  # larger frames are refused before decoding: a 150-byte GIF can claim 16000 x 16000
_FFMPEG_ERRORS = (av.error.FFmpegError,)

# Demuxers that open things which are not clips: text shown as ANSI art, single still images.
_NOT_A_CLIP = {"tty": "a text file", "image2": "a still image"}


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int  # >= 1
    fps: float  # > 0
    width: int
    height: int
    duration_s: float
    codec: str  # e.g. 'h264', 'mpeg4', 'vp9', 'gif', 'frames'
    exact_count: bool  # False when num_frames was estimated from duration * fps


# --------------------------------------------------------------------------------------------- frame folders


def _frame_sort_key(path: Path) -> tuple:
    """Sort by the last integer in the name (1 < 2 < 10 < 100); names without digits go last."""
    numbers = re.findall(r"\d+", path.stem)
    return (0, int(numbers[-1]), path.name) if numbers else (1, 0, path.name)


def list_frame_files(folder) -> list[Path]:
    """The image files of a frame folder in time order (numeric, never text order); other files ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(images, key=_frame_sort_key)


def is_frame_folder(path) -> bool:
    """True for a folder that directly holds at least one image frame."""
    return len(list_frame_files(path)) > 0


# ------------------------------------------------------------------------------------------- shared helpers


def _reason(error: Exception) -> str:
    """FFmpeg's own short description of an error, without errno noise."""
    return getattr(error, "strerror", None) or str(error)


def _scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(w, h) with the shorter side equal to short_side, aspect ratio kept; unchanged when None."""
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def _fitted_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) shrunk so the longer side is <= max_side; never enlarged."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Scaler:
    """Converts frames to uint8 RGB at one output size, fixed by the first frame (a clip never changes shape)."""

    def __init__(self, sizer):
        self._sizer = sizer  # (width, height) -> (out_width, out_height)
        self.size: tuple[int, int] | None = None

    def _size_for(self, width: int, height: int) -> tuple[int, int]:
        if self.size is None:
            self.size = self._sizer(width, height)
        return self.size

    def video(self, frame: av.VideoFrame) -> np.ndarray:
        # libswscale converts and resizes in one pass, so a 4K frame never exists as a full-size RGB array.
        width, height = self._size_for(frame.width, frame.height)
        # Bilinear (PyAV's default, named because cached features depend on it), as PIL and torchvision resize.
        return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")

    def image(self, image: Image.Image) -> np.ndarray:
        size = self._size_for(*image.size)
        image = image.convert("RGB")
        if image.size != size:
            image = image.resize(size, Image.BILINEAR)
        return np.asarray(image)


def _load_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            if image.width * image.height > _MAX_PIXELS:  # known from the header, before any pixel is decoded
                raise VideoError(f"Frame image {path} is {image.width} x {image.height} pixels, more than arlib "
                                 "decodes (8192 x 8192); downscale the frames first.")
            image.load()
            return image
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # UnidentifiedImageError is an OSError
        raise VideoError(f"Frame image {path} could not be read ({error}); replace or delete that file.") from error


def _ffmpeg_errors_as_video_errors(func):
    """Public functions take the clip path first: any FFmpeg error becomes a VideoError naming it."""

    @functools.wraps(func)
    def wrapper(path, *args, **kwargs):
        try:
            return func(path, *args, **kwargs)
        except _FFMPEG_ERRORS as error:
            raise VideoError(
                f"{path} could not be decoded by FFmpeg ({_reason(error)}); check that it is a complete, valid video."
            ) from error

    return wrapper


# ------------------------------------------------------------------------------------------ opening a file


def _open(path: Path):
    """Open a video file for reading, turning every kind of 'not a clip' into a clear VideoError."""
    if not path.exists():
        raise VideoError(f"{path} does not exist; check the path.")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is an empty file (0 bytes); copy or export the clip again.")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise VideoError(f"{path} is a still image, not a video; give a video clip or a folder of frames.")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except _FFMPEG_ERRORS as error:
        raise VideoError(
            f"{path} is not a video FFmpeg can open ({_reason(error)}); check that it is a complete video file."
        ) from error


def _video_stream(container, path: Path):
    fmt = container.format.name
    kind = _NOT_A_CLIP.get(fmt) or ("a still image" if fmt.endswith("_pipe") else None)
    if kind:
        raise VideoError(f"{path} is {kind}, not a video; give a video clip or a folder of frames.")
    if not container.streams.video:
        raise VideoError(f"{path} has no video stream (audio or data only); give a clip that contains video.")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > _MAX_PIXELS:
        raise VideoError(f"{path} has {width} x {height} pixel frames, more than arlib decodes (8192 x 8192); "
                         "downscale the clip first.")
    return stream


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) <= _MAX_FPS:
            return float(rate)
    return DEFAULT_FPS


def _decoded_frames(container, stream) -> Iterator[av.VideoFrame]:
    """Frames from the current position on, skipping packets the decoder rejects (corrupt data mid-clip)."""
    try:
        for packet in container.demux(stream):  # ends with an empty packet that flushes the decoder
            try:
                frames = packet.decode()
            except _FFMPEG_ERRORS:
                continue
            yield from frames
    except _FFMPEG_ERRORS:
        return  # the demuxer gave up (truncated/corrupt container): keep what was decoded


# -------------------------------------------------------------------------------------------------- probe


def probe(path) -> VideoInfo:
    """Frame count, rate, size and codec of a clip from its header plus one decoded frame (never a full decode)."""
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path)
    return _probe_file(path)


def _probe_folder(folder: Path) -> VideoInfo:
    files = _frame_files_or_error(folder)
    width, height = _load_image(files[0]).size
    return VideoInfo(str(folder), len(files), DEFAULT_FPS, width, height, len(files) / DEFAULT_FPS, "frames", True)


def _frame_files_or_error(folder: Path) -> list[Path]:
    files = list_frame_files(folder)
    if not files:
        raise VideoError(f"{folder} holds no image frames (.jpg/.png/.bmp); give a video file or a folder of frames.")
    return files


@_ffmpeg_errors_as_video_errors
def _probe_file(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        duration = _stated_duration(container, stream)
        count_packets = stream.frames <= 0 and duration is None
        first, packets = _scan(container, stream, count_packets)
        if first is None:
            raise _undecodable(path)
        if stream.frames > 0:
            num_frames, exact = stream.frames, True
        elif duration is not None:
            num_frames, exact = max(1, round(duration * fps)), False
        else:
            num_frames, exact = max(1, packets), True
        if duration is None:
            duration = num_frames / fps
        return VideoInfo(
            str(path), num_frames, fps, first.width, first.height, duration, stream.codec_context.name, exact
        )


def _stated_duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _scan(container, stream, count_all: bool) -> tuple[av.VideoFrame | None, int]:
    """Decode up to the first frame (proof the clip is usable); with count_all keep demuxing to count packets."""
    first, packets = None, 0
    try:
        for packet in container.demux(stream):
            packets += packet.size > 0
            if first is None:
                try:
                    first = next(iter(packet.decode()), None)
                except _FFMPEG_ERRORS:
                    pass
            if first is None and packets > _PROBE_PACKETS:
                break
            if first is not None and not count_all:
                break
    except _FFMPEG_ERRORS:
        pass  # a broken tail does not make the head unusable
    return first, packets


def _undecodable(path: Path) -> VideoError:
    return VideoError(
        f"No frame of {path} could be decoded; the file is corrupt or its codec is unsupported, "
        "so re-encode it (e.g. to H.264 MP4)."
    )


# ------------------------------------------------------------------------------------------------ reading


def read_frames(path, indices: Sequence[int], short_side: int | None = None) -> np.ndarray:
    """uint8 RGB frames [len(indices), H, W, 3], one per requested 0-based index, in the order given.

    Duplicates are allowed (padding repeats the last frame); indices past the real end of the clip repeat its
    last frame. With short_side, every frame is resized as it is decoded so its shorter side is short_side.
    """
    path = Path(path)
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise ValueError(f"Frame indices must be >= 0, got {min(indices)}.")
    if not indices:
        info = probe(path)
        width, height = _scaled_size(info.width, info.height, short_side)
        return np.zeros((0, height, width, 3), np.uint8)
    wanted = sorted(set(indices))
    if path.is_dir():
        by_index = _read_folder(path, wanted, short_side)
    else:
        by_index = _read_video(path, wanted, short_side)
    return np.stack([by_index[i] for i in indices])


def _read_folder(folder: Path, wanted: list[int], short_side: int | None) -> dict[int, np.ndarray]:
    files = _frame_files_or_error(folder)
    scaler = _Scaler(functools.partial(_scaled_size, short_side=short_side))
    loaded: dict[Path, np.ndarray] = {}
    for index in wanted:
        file = files[min(index, len(files) - 1)]  # past the end: repeat the last frame
        if file not in loaded:
            loaded[file] = scaler.image(_load_image(file))
    return {index: loaded[files[min(index, len(files) - 1)]] for index in wanted}


class _SeekMiss(Exception):
    """A seek landed somewhere we cannot place in time; the read is redone by plain decoding."""


def _seek(container, stream, pts: int) -> None:
    # The nearest keyframe at or before pts; PyAV flushes the decoders, so no stale frame follows.
    container.seek(pts, stream=stream, backward=True, any_frame=False)


@_ffmpeg_errors_as_video_errors
def _read_video(path: Path, wanted: list[int], short_side: int | None) -> dict[int, np.ndarray]:
    try:
        return _decode_wanted(path, wanted, short_side, allow_seek=True)
    except _SeekMiss:
        return _decode_wanted(path, wanted, short_side, allow_seek=False)


def _decode_wanted(path: Path, wanted: list[int], short_side: int | None, allow_seek: bool) -> dict[int, np.ndarray]:
    """Decode only what the sorted, unique indices need; each kept frame is downscaled as it is decoded."""
    scaler = _Scaler(functools.partial(_scaled_size, short_side=short_side))
    got: dict[int, np.ndarray] = {}
    with _open(path) as container:
        cursor = _Cursor(container, _video_stream(container, path), allow_seek)
        pos, last = 0, None
        while pos < len(wanted):
            cursor.skip_towards(wanted[pos])
            frame = cursor.next()
            if frame is None:
                break  # end of stream (or of what decodes)
            last, kept = frame, None
            while pos < len(wanted) and wanted[pos] <= cursor.index:  # gaps in time: nearest later frame
                kept = scaler.video(frame) if kept is None else kept
                got[wanted[pos]] = kept
                pos += 1
        if last is None:
            raise _undecodable(path)
        if pos < len(wanted):  # past the real end: repeat the last decoded frame
            got.update(dict.fromkeys(wanted[pos:], scaler.video(last)))
    return got


class _Cursor:
    """Walks a video stream forward, knowing each frame's index, and seeks over gaps worth skipping.

    Decoding forward, frames are counted: exact frame numbers even where timestamps are scrambled (packed
    B-frame XviD AVIs). After a seek, the landing frame's index is (pts - pts of frame 0) * time_base * fps
    and counting resumes from there. A seek pays only when the keyframe before the target lies beyond the
    current frame, so the cursor seeks only over gaps wider than any keyframe interval seen so far (at least
    SEEK_GAP_SECONDS); a seek that lands early widens that estimate instead of being repeated.
    """

    def __init__(self, container, stream, allow_seek: bool):
        stream.thread_type = "AUTO"
        self._container, self._stream = container, stream
        self._fps, self._time_base = _stream_fps(stream), stream.time_base
        self._frames = _decoded_frames(container, stream)
        self._allow_seek = allow_seek and self._time_base is not None
        self._keyframe_gap = max(1, round(SEEK_GAP_SECONDS * self._fps))
        self._origin_pts = None  # pts of frame 0: where index 0 sits in time
        self._last_key = None  # index of the last keyframe decoded since the last seek
        self._seeked_for = None  # target of a seek whose landing frame is not decoded yet
        self.index = -1  # index of the frame last returned

    def skip_towards(self, target: int) -> None:
        if not self._allow_seek or self._origin_pts is None or target - self.index <= self._keyframe_gap:
            return
        self._frames.close()
        pts = self._origin_pts + int((target - 0.5) / self._fps / self._time_base)
        try:
            _seek(self._container, self._stream, pts)
        except _FFMPEG_ERRORS as error:
            raise _SeekMiss from error
        self._frames = _decoded_frames(self._container, self._stream)
        self._seeked_for = target

    def next(self) -> av.VideoFrame | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        if self._seeked_for is not None:
            self.index, self._last_key = self._landing_index(frame), None
        else:
            self.index += 1
        if self.index == 0 and self._origin_pts is None:
            self._origin_pts = frame.pts  # None disables seeking: nothing to place a seek by
        if frame.key_frame:
            if self._last_key is not None:
                self._keyframe_gap = max(self._keyframe_gap, self.index - self._last_key)
            self._last_key = self.index
        return frame

    def _landing_index(self, frame: av.VideoFrame) -> int:
        target, self._seeked_for = self._seeked_for, None
        if frame.pts is None:
            raise _SeekMiss  # cannot tell where the seek landed
        index = max(0, round(float((frame.pts - self._origin_pts) * self._time_base) * self._fps))
        if index > target:
            raise _SeekMiss  # landed past the target: this file's timestamps cannot be trusted
        self._keyframe_gap = max(self._keyframe_gap, target - index)  # the keyframe before target is this far back
        return index


# ------------------------------------------------------------------------------------------------ writing


_CODEC_BY_EXTENSION = {
    ".avi": "mpeg4", ".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
    ".webm": "libvpx-vp9", ".gif": "gif",
}  # fmt: skip
_PIXEL_FORMAT = {"mjpeg": "yuvj420p", "gif": "pal8"}  # everything else: yuv420p, what players expect
_CODEC_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "18"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "24", "b": "0"},
}


def write_clip(path, frames: np.ndarray, fps: float = 25.0, codec: str | None = None) -> Path:
    """Write uint8 RGB frames [T, H, W, 3] as a clip; the codec follows the extension unless given.

    Supported: mpeg4 (.avi), libx264 (.mp4/.mov/.mkv, even width and height), libvpx-vp9 (.webm),
    mjpeg (.avi), gif (.gif). A keyframe every second keeps seeking cheap.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}.")
    codec = codec or _CODEC_BY_EXTENSION.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"No default codec for '{path.suffix}'; pass codec= (e.g. 'mpeg4', 'libx264').")
    height, width = frames.shape[1:3]
    if codec == "libx264" and (width % 2 or height % 2):
        raise ValueError(f"libx264 needs even width and height, got {width}x{height}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _encode(path, frames, fps, codec)
    except _FFMPEG_ERRORS as error:
        raise VideoError(f"{path} could not be written with {codec} ({_reason(error)}); try another codec.") from error
    return path


def _encode(path: Path, frames: np.ndarray, fps: float, codec: str) -> None:
    rate = Fraction(fps).limit_denominator(1001)  # 29.97... -> 30000/1001
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=dict(_CODEC_OPTIONS.get(codec, {})))
        stream.width, stream.height = width, height
        stream.pix_fmt = _PIXEL_FORMAT.get(codec, "yuv420p")
        if codec != "gif":
            stream.codec_context.gop_size = max(1, round(fps))
        if codec in ("mpeg4", "mjpeg"):  # these default to a tiny bit rate
            stream.codec_context.bit_rate = max(200_000, int(width * height * fps * 1.5))
        for array in frames:
            frame = _palette_frame(array) if codec == "gif" else av.VideoFrame.from_ndarray(array, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _palette_frame(array: np.ndarray) -> av.VideoFrame:
    """A GIF frame with its own adaptive 256-colour palette (swscale's fixed palette bands flat colours)."""
    image = Image.fromarray(array).quantize(256)
    rgb = np.zeros((256, 3), np.uint8)
    palette = np.asarray(image.getpalette(), np.uint8).reshape(-1, 3)[:256]
    rgb[: len(palette)] = palette
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
    return av.VideoFrame.from_ndarray((np.asarray(image), argb), format="pal8")


# ----------------------------------------------------------------------------------------- frame extraction


def _all_frames(src: Path, scaler: _Scaler) -> Iterator[np.ndarray]:
    """Every frame of a clip in order, as RGB arrays (one at a time: memory stays one frame)."""
    if src.is_dir():
        for file in _frame_files_or_error(src):
            yield scaler.image(_load_image(file))
        return
    with _open(src) as container:
        stream = _video_stream(container, src)
        stream.thread_type = "AUTO"
        for frame in _decoded_frames(container, stream):
            yield scaler.video(frame)


def extract_frames(src, dst_dir, max_side: int | None = None, quality: int = 90) -> int:
    """Decode a clip to dst_dir/00001.jpg, 00002.jpg, ... (longer side <= max_side); returns the frame count.

    Atomic and resumable: frames go to '<dst_dir>.partial', renamed to dst_dir when complete. An existing
    dst_dir counts as done and is not touched.
    """
    src, dst_dir = Path(src), Path(dst_dir)
    if dst_dir.is_dir():
        return len(list_frame_files(dst_dir))
    return _extract_frames(src, dst_dir, max_side, quality)


@_ffmpeg_errors_as_video_errors
def _extract_frames(src: Path, dst_dir: Path, max_side: int | None, quality: int) -> int:
    partial = dst_dir.with_name(dst_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # leftovers of an interrupted run
    partial.mkdir(parents=True)
    try:
        width = 5 if src.is_dir() else max(5, len(str(probe(src).num_frames)))
        scaler, count = _Scaler(functools.partial(_fitted_size, max_side=max_side)), 0
        for count, array in enumerate(_all_frames(src, scaler), 1):
            Image.fromarray(array).save(partial / f"{count:0{width}d}.jpg", quality=quality)
        if count == 0:
            raise _undecodable(src)
        _widen_names(partial, count, width)
        _publish(partial, dst_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return len(list_frame_files(dst_dir))


def _widen_names(folder: Path, count: int, width: int) -> None:
    """Keep names fixed-width (sortable as text too) when the clip had more frames than its header said."""
    if len(str(count)) <= width:
        return
    for number in range(1, count + 1):
        (folder / f"{number:0{width}d}.jpg").rename(folder / f"{number:0{len(str(count))}d}.jpg")


def _publish(partial: Path, dst_dir: Path) -> None:
    try:
        os.rename(partial, dst_dir)
    except OSError:
        if not dst_dir.is_dir():  # not "someone else finished it first"
            raise
        shutil.rmtree(partial, ignore_errors=True)


def extract_frames_tree(src_root, dst_root, max_side=None, progress=True) -> dict:
    """Extract every <src_root>/<Class>/<clip>.<video ext> to <dst_root>/<Class>/<clip_stem>/.

    A bad clip is recorded in 'failed' ({path: reason}) and skipped; it never stops the run.
    """
    src_root, dst_root = Path(src_root), Path(dst_root)
    if not src_root.is_dir():
        raise DatasetError(f"{src_root} is not a folder; give the folder that holds one sub-folder per class.")
    clips = sorted(p for p in src_root.glob("*/*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    report = {"done": 0, "skipped_existing": 0, "failed": {}}
    for clip in tqdm(clips, desc="Extracting frames", unit="clip", disable=not progress):
        dst = dst_root / clip.parent.name / clip.stem
        if dst.is_dir():
            report["skipped_existing"] += 1
            continue
        try:
            extract_frames(clip, dst, max_side=max_side)
            report["done"] += 1
        except (VideoError, OSError) as error:
            report["failed"][str(clip)] = str(error)
    return report
