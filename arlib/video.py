"""Open, probe and decode video clips and folders of frames, with PyAV (FFmpeg) only.

Two kinds of clip are accepted everywhere:
- a video file FFmpeg can read (XviD/MPEG-4 AVI, H.264 MP4/MOV/MKV, VP9 WebM, MJPEG AVI, animated GIF, ...);
- a frame folder, the thesis layout ``<clip>/<N>.jpg``, read in NUMERIC order (1, 2, 10, 100).

Frames are addressed by 0-based index in presentation order, and every frame has a presentation time
relative to the clip's first frame (``VideoInfo.times_s``). Both come from demuxing every packet of the
chosen stream (no decoding): exact counts and times where the container's header is missing or wrong
(start offsets, variable frame rates, recordings joined with a timestamp jump, files cut short).
Frames are returned upright: the stream's display matrix (or its 'rotate' tag) is applied, all four right
angles and mirroring. Decoding forward, frames are counted; after a seek, the landing frame's index is
found from its timestamp in the demuxed timeline and counting resumes from there. Any unusable clip raises
``VideoError`` with one sentence naming the file; raw PyAV/FFmpeg exceptions never escape the public functions.
"""

from __future__ import annotations

import array
import errno
import functools
import os
import re
import shutil
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from .errors import DatasetError, VideoError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}
)
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})

# Bumped whenever the frames a clip decodes to change, so cached features of the old frames are not reused.
# 2: upright (display matrix / rotate tag), the default stream, frame grids even in presentation time.
DECODER_VERSION = 2
DEFAULT_FPS = 25.0  # when a container states no usable rate, and for frame folders
SEEK_GAP_SECONDS = 2.0  # seek instead of decoding through a gap longer than this
_MAX_FPS = 1000.0  # a larger "rate" is a time base in disguise, not a frame rate
_PROBE_PACKETS = 300  # probe gives up when this many packets yield no decodable frame
_MAX_PIXELS = 8192 * 8192  # larger frames are refused before decoding: a 150-byte GIF can claim 16000 x 16000
_FFMPEG_ERRORS = (av.error.FFmpegError,)
_AVFMT_TS_DISCONT = 0x200  # FFmpeg's flag for formats whose timestamps may jump (MPEG-TS, MPEG-PS, FLV)

# Demuxers that open things which are not clips: text shown as ANSI art, single still images.
_NOT_A_CLIP = {"tty": "a text file", "image2": "a still image"}


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int  # >= 1: frames in the demuxed stream (or image files of a folder)
    fps: float  # > 0: the average rate, num_frames / duration_s
    width: int  # as displayed, after rotation
    height: int
    duration_s: float
    codec: str  # e.g. 'h264', 'mpeg4', 'vp9', 'gif', 'frames'
    exact_count: bool  # False when num_frames was estimated from duration * fps
    rotation: int = 0  # degrees turned clockwise to show the picture upright (0, 90, 180, 270), after mirroring
    mirrored: bool = False  # flipped left-right (before the rotation) to show it as recorded
    stream: int = 0  # index of the video stream used, in the container's numbering
    warnings: tuple[str, ...] = ()  # sentences about what is odd in this clip (cut short, timestamp jumps, ...)
    # [num_frames] presentation time of each frame in seconds, relative to the first frame, increasing.
    times_s: np.ndarray | None = field(default=None, compare=False, repr=False)
    # [num_frames] each frame's raw pts in stream time base, for placing seeks; None when seeking cannot be trusted.
    seek_pts: np.ndarray | None = field(default=None, compare=False, repr=False)

    def frame_times(self) -> np.ndarray:
        """Presentation time (s) of every frame, relative to the first."""
        if self.times_s is not None:
            return self.times_s
        return np.arange(self.num_frames) / self.fps


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


@dataclass(frozen=True)
class Orientation:
    """How a stored picture is turned to be shown upright: rows/columns swapped, then flipped.

    Derived from a display matrix [a b u; c d v; x y w], which maps a stored pixel (x, y) (y down) to the
    shown position (a*x + c*y, b*x + d*y): the eight right-angle cases are every sign pattern of a..d.
    """

    swap: bool = False  # transpose (90 or 270 degrees)
    flip_rows: bool = False
    flip_cols: bool = False

    @classmethod
    def from_matrix(cls, matrix: Sequence[int]) -> Orientation | None:
        """None for a matrix that is not a right-angle turn (arbitrary angles are not applied)."""
        a, b, c, d = (float(matrix[i]) / 65536 for i in (0, 1, 3, 4))
        tiny = 1e-3 * max(abs(a), abs(b), abs(c), abs(d), 1e-9)
        if abs(b) < tiny and abs(c) < tiny and abs(a) > tiny and abs(d) > tiny:
            return cls(False, d < 0, a < 0)
        if abs(a) < tiny and abs(d) < tiny and abs(b) > tiny and abs(c) > tiny:
            return cls(True, b < 0, c < 0)  # after the transpose, rows follow x (b) and columns follow y (c)
        return None

    @classmethod
    def clockwise(cls, degrees: int) -> Orientation:
        """A plain turn, as a 'rotate' tag states it (degrees clockwise)."""
        return {90: cls(True, False, True), 180: cls(False, True, True), 270: cls(True, True, False)}.get(
            int(degrees) % 360, cls())

    @property
    def mirrored(self) -> bool:
        # An odd number of reflections: a transpose is one, each flip another.
        return (self.swap + self.flip_rows + self.flip_cols) % 2 == 1

    @property
    def rotation(self) -> int:
        """Clockwise degrees, applied after a left-right mirror when mirrored."""
        # Undoing a left-right mirror done first toggles only the flip that follows the same axis (columns
        # without a swap, rows after one), so the other flip alone tells the angle.
        if self.swap:
            return 90 if self.flip_cols else 270
        return 180 if self.flip_rows else 0

    def apply(self, array: np.ndarray) -> np.ndarray:
        if self.swap:
            array = array.swapaxes(0, 1)
        if self.flip_rows:
            array = array[::-1]
        if self.flip_cols:
            array = array[:, ::-1]
        return np.ascontiguousarray(array) if (self.swap or self.flip_rows or self.flip_cols) else array

    def shown_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.swap else (width, height)


class _Scaler:
    """Converts frames to upright uint8 RGB at one output size, fixed by the first frame (a clip never
    changes shape). Sizes are computed on the stored picture: a short side stays the short side when turned."""

    def __init__(self, sizer, orientation: Orientation | None = None):
        self._sizer = sizer  # (width, height) -> (out_width, out_height)
        self.size: tuple[int, int] | None = None
        self.orientation = orientation

    def _size_for(self, width: int, height: int) -> tuple[int, int]:
        if self.size is None:
            self.size = self._sizer(width, height)
        return self.size

    def video(self, frame: av.VideoFrame, stream=None) -> np.ndarray:
        if self.orientation is None:
            self.orientation = frame_orientation(frame, stream)
        # libswscale converts and resizes in one pass, so a 4K frame never exists as a full-size RGB array.
        width, height = self._size_for(frame.width, frame.height)
        # Bilinear (PyAV's default, named because cached features depend on it), as PIL and torchvision resize.
        array = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="BILINEAR")
        return self.orientation.apply(array)

    def image(self, image: Image.Image) -> np.ndarray:
        image = ImageOps.exif_transpose(image)  # phone photos store their turn in EXIF, like videos in metadata
        size = self._size_for(*image.size)
        image = image.convert("RGB")
        if image.size != size:
            image = image.resize(size, Image.BILINEAR)
        return np.asarray(image)


def frame_orientation(frame: av.VideoFrame, stream=None) -> Orientation:
    """How to turn this decoded frame (and its stream's, when given) to show it upright."""
    return _orientation(frame, stream)[0]


def _orientation(frame: av.VideoFrame, stream) -> tuple[Orientation, str | None]:
    """The stream's turn from the frame's display matrix, else its 'rotate' tag; and a warning, if any."""
    for side_data in frame.side_data:
        if side_data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX and len(bytes(side_data)) == 36:
            matrix = struct.unpack("<9i", bytes(side_data))
            orientation = Orientation.from_matrix(matrix)
            if orientation is None:
                return Orientation(), (f"The clip asks to be turned by {-frame.rotation} degrees, not a right angle, "
                                       "so its frames are used as stored.")
            return orientation, None
    tags = {str(k).lower(): str(v) for k, v in ((stream.metadata if stream is not None else None) or {}).items()}
    try:
        degrees = float(tags.get("rotate", "0"))
    except ValueError:
        degrees = 0.0
    if degrees % 90:
        return Orientation(), f"The clip's rotate tag says {degrees:g} degrees, not a right angle, so its frames are used as stored."
    return Orientation.clockwise(int(degrees)), None


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


_PLAYLIST_EXTENSIONS = {
    ".m3u8": "an HLS playlist", ".m3u": "an M3U playlist", ".mpd": "a DASH manifest", ".pls": "a PLS playlist",
    ".xspf": "an XSPF playlist", ".asx": "an ASX playlist", ".ism": "a Smooth Streaming manifest",
    ".f4m": "an HDS manifest", ".sdp": "an SDP stream description", ".ffconcat": "an FFmpeg concat list",
}  # fmt: skip
_PLAYLIST_SIGNATURES = [  # (bytes near the start, what it is)
    (b"#EXTM3U", "an HLS/M3U playlist"), (b"<MPD", "a DASH manifest"), (b"[playlist]", "a PLS playlist"),
    (b"ffconcat version", "an FFmpeg concat list"), (b"<asx", "an ASX playlist"), (b"<smil", "a SMIL playlist"),
    (b"<SmoothStreamingMedia", "a Smooth Streaming manifest"), (b"<playlist", "an XSPF playlist"),
]  # fmt: skip
# Demuxers that read other files or network addresses named inside the file.
_PLAYLIST_FORMATS = {"hls": "an HLS playlist", "dash": "a DASH manifest", "concat": "an FFmpeg concat list",
                     "sdp": "an SDP stream description", "rtsp": "an RTSP address", "smoothstreaming": "a manifest"}
# Only local files may ever be opened, even by a demuxer that follows references inside a file.
_OPEN_OPTIONS = {"protocol_whitelist": "file"}


def _not_a_file_kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None if stat.S_ISREG(mode) else "not a file or folder"


def check_file(path) -> os.stat_result:
    """stat() of a path that should be a regular file; a VideoError saying what it is instead (a named pipe
    or device, a link loop, a dangling link, nothing), before anything opens it."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise VideoError(f"{path} is a symbolic link loop (its links point back to each other), so no file is "
                             "behind it; fix the link.") from None
        if path.is_symlink():
            raise VideoError(f"{path} is a link to {os.readlink(path)}, which does not exist; fix the link or "
                             "give the clip itself.") from None
        if error.errno == errno.EACCES:
            raise VideoError(f"{path} cannot be read (permission denied); check its permissions.") from None
        raise VideoError(f"{path} does not exist; check the path.") from None
    kind = _not_a_file_kind(info.st_mode)
    if kind:  # opening a pipe or device could block forever or read without end
        raise VideoError(f"{path} is not a regular file ({kind}); give a video file or a folder of frames.")
    return info


def _playlist_sentence(path: Path, kind: str) -> VideoError:
    return VideoError(f"{path} is {kind}, which only points to video stored elsewhere; arlib reads local video "
                      "files and never fetches anything over a network, so give the video file itself.")


def _sniff_playlist(path: Path) -> str | None:
    kind = _PLAYLIST_EXTENSIONS.get(path.suffix.lower())
    if kind:
        return kind
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n")  # a UTF-8 byte-order mark, blank lines
    except OSError:
        return None
    lowered = head.lower()
    for signature, what in _PLAYLIST_SIGNATURES:
        if lowered.startswith(signature.lower()) or (lowered.startswith(b"<?xml") and signature.lower() in lowered):
            return what
    return None


def _open(path: Path):
    """Open a video file for reading, turning every kind of 'not a clip' into a clear VideoError."""
    if check_file(path).st_size == 0:
        raise VideoError(f"{path} is an empty file (0 bytes); copy or export the clip again.")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise VideoError(f"{path} is a still image, not a video; give a video clip or a folder of frames.")
    playlist = _sniff_playlist(path)
    if playlist:
        raise _playlist_sentence(path, playlist)
    try:
        container = av.open(str(path), metadata_errors="ignore", options=dict(_OPEN_OPTIONS))
    except _FFMPEG_ERRORS as error:
        raise VideoError(
            f"{path} is not a video FFmpeg can open ({_reason(error)}); check that it is a complete video file."
        ) from error
    if container.format.name in _PLAYLIST_FORMATS:
        container.close()
        raise _playlist_sentence(path, _PLAYLIST_FORMATS[container.format.name])
    return container


def _pixels_times_frames(stream) -> float:
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    frames = stream.frames
    if frames <= 0 and stream.duration and stream.time_base:
        frames = float(stream.duration * stream.time_base) * _stream_fps(stream)
    return width * height * max(frames, 1)


def _choose_stream(container):
    """The video stream a player would show: the one marked default, else the most pixels x frames.

    Cover art and thumbnails (attached pictures) are never chosen; among several marked default, size decides.
    """
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        return None
    marked = [s for s in streams if s.disposition & av.stream.Disposition.default]
    return max(marked or streams, key=_pixels_times_frames)


def _video_stream(container, path: Path):
    fmt = container.format.name
    kind = _NOT_A_CLIP.get(fmt) or ("a still image" if fmt.endswith("_pipe") else None)
    if kind:
        raise VideoError(f"{path} is {kind}, not a video; give a video clip or a folder of frames.")
    stream = _choose_stream(container)
    if stream is None:
        raise VideoError(f"{path} has no video stream (audio or data only); give a clip that contains video.")
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
    """Frame count, times, rate, displayed size and codec of a clip: every packet of its video stream is
    demuxed (cheap, no decoding) and only the first frame is decoded (proof the clip is usable)."""
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path)
    return _probe_file(path)


def _probe_folder(folder: Path) -> VideoInfo:
    files = _frame_files_or_error(folder)
    width, height = ImageOps.exif_transpose(_load_image(files[0])).size
    return VideoInfo(str(folder), len(files), DEFAULT_FPS, width, height, len(files) / DEFAULT_FPS, "frames", True,
                     times_s=np.arange(len(files)) / DEFAULT_FPS)


def _frame_files_or_error(folder: Path) -> list[Path]:
    files = list_frame_files(folder)
    if not files:
        raise VideoError(f"{folder} is a folder that holds no image frames (.jpg/.png/.bmp){_folder_contents(folder)}; "
                         "give a video file or a folder of frames.")
    return files


def _folder_contents(folder: Path) -> str:
    """What a folder without frames holds instead, so the sentence says what to give."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return ""
    if not entries:
        return ", it is empty"
    videos = sum(1 for p in entries if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    folders = sum(1 for p in entries if p.is_dir())
    if videos:
        return f" but {videos} video file{'s' * (videos > 1)}, so give one of those clips"
    if folders:
        return f" but {folders} sub-folder{'s' * (folders > 1)}, so give one clip's own folder"
    return f", only {len(entries)} other file{'s' * (len(entries) > 1)}"


@_ffmpeg_errors_as_video_errors
def _probe_file(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = _video_stream(container, path)
        first, packets = _demux_all(container, stream)
        if first is None:
            raise _undecodable(path)
        orientation, turn_warning = _orientation(first, stream)
        timeline = _Timeline.from_packets(packets, stream, container)
        warnings = [w for w in (turn_warning, *timeline.warnings) if w]
        num_frames, exact = timeline.num_frames, True
        if stream.frames > num_frames + 1:  # a header may count one frame the muxer never wrote
            warnings.append(f"Only {num_frames} of the {stream.frames} frames its header declares are in the "
                            "file; the clip looks cut short, so it is sampled over the frames that are there.")
        width, height = orientation.shown_size(first.width, first.height)
        others = [s for s in container.streams.video if s is not stream]
        if others:
            why = "marked default" if stream.disposition & av.stream.Disposition.default else "the largest"
            warnings.append(f"The file holds {len(others) + 1} video streams; stream {stream.index} "
                            f"({width} x {height}, {why}) is the one used.")
        return VideoInfo(
            str(path), num_frames, timeline.fps, width, height, timeline.duration_s, stream.codec_context.name,
            exact, orientation.rotation, orientation.mirrored, stream.index, tuple(warnings), timeline.times_s,
            timeline.seek_pts,
        )


def _demux_all(container, stream) -> tuple[av.VideoFrame | None, np.ndarray]:
    """Decode up to the first frame; demux every packet: [n, 3] (pts, dts, duration) in decode order, NaN
    where a packet has none. Kept in a flat array: a 10-hour clip's million packets take 24 MB, not 150.

    A last packet FFmpeg marks corrupt (torn by a file cut short) is no frame and is left out; corrupt
    packets before it still count (joined MPEG-TS files mark the packet at the seam, and it decodes).
    """
    first, packets, tried, torn = None, array.array("d"), 0, False
    nan = float("nan")
    try:
        for packet in container.demux(stream):
            if packet.size <= 0:
                continue
            pts, dts, duration = packet.pts, packet.dts, packet.duration
            packets.extend((nan if pts is None else pts, nan if dts is None else dts, duration or nan))
            torn = packet.is_corrupt
            if first is None:
                tried += 1
                try:
                    first = next(iter(packet.decode()), None)
                except _FFMPEG_ERRORS:
                    pass
                if first is None and tried > _PROBE_PACKETS:
                    break  # hundreds of packets and no picture: not worth demuxing the rest
        if first is None and packets:
            first = next(iter(stream.decode(None)), None)  # the decoder may still hold the first frame
    except _FFMPEG_ERRORS:
        pass  # a broken tail does not make the head unusable
    table = np.frombuffer(packets, dtype=np.float64).reshape(-1, 3)
    return first, table[:-1] if torn and len(table) > 1 else table


@dataclass
class _Timeline:
    """Presentation times of a stream's frames from its demuxed packets."""

    times_s: np.ndarray  # [n] seconds from the first frame, increasing
    duration_s: float
    seek_pts: np.ndarray | None  # [n] raw pts in presentation order, when seeking by pts is sound
    warnings: list[str]

    @property
    def num_frames(self) -> int:
        return len(self.times_s)

    @property
    def fps(self) -> float:
        return self.num_frames / self.duration_s

    @classmethod
    def from_packets(cls, packets: np.ndarray, stream, container) -> _Timeline:
        n = len(packets)
        time_base = float(stream.time_base) if stream.time_base else 0.0
        pts, dts = packets[:, 0], packets[:, 1]
        pts = np.where(np.isnan(pts), dts, pts)
        fps = _stream_fps(stream)
        if not time_base or np.isnan(pts).any() or n < 2:
            # No usable timestamps (raw streams, some AVIs): the stated constant rate is all there is.
            return cls(np.arange(n) / fps, n / fps, None, [])
        order = np.where(np.isnan(dts), pts, dts) * time_base  # decode-order clock
        seconds = pts * time_base
        steps = np.diff(order)
        forward = steps[steps > 0]
        typical = float(np.median(forward)) if len(forward) else 1.0 / fps
        # A recording joined to another restarts or leaps its clock: a step back of more than a few frames
        # (B-frame reordering moves pts, never this far), or, in formats built for it (MPEG-TS), a leap forward.
        discont = bool(container.format.flags & _AVFMT_TS_DISCONT)
        jumps = np.flatnonzero((steps < -max(16 * typical, 0.5)) |
                               (discont & (steps > max(50 * typical, 2.0)))) + 1
        warnings = []
        if len(jumps):
            seconds = seconds.copy()
            for at in jumps:  # each later part continues one frame after the previous part's last frame
                shift = seconds[:at].max() + typical - seconds[at:].min()
                seconds[at:] += shift
            where = ", ".join(f"{seconds[at] - np.nanmin(seconds):.1f} s" for at in jumps[:3])
            warnings.append(f"Its timestamps jump {len(jumps)} time{'s' * (len(jumps) > 1)} (at {where}), "
                            "as in recordings joined together; the parts are counted one after another.")
        presentation = np.argsort(seconds, kind="stable")
        times = seconds[presentation] - seconds[presentation[0]]
        if times[-1] <= 0:  # every packet stamped alike: the timestamps say nothing
            return cls(np.arange(n) / fps, n / fps, None, warnings)
        last = packets[presentation[-1], 2]
        last_duration = last * time_base if last > 0 else typical  # NaN > 0 is False
        duration = float(times[-1] + last_duration)
        seek_pts = None if len(jumps) else pts[presentation].astype(np.int64)
        return cls(times, duration, seek_pts, warnings)


def _undecodable(path: Path) -> VideoError:
    return VideoError(
        f"No frame of {path} could be decoded; the file is corrupt or its codec is unsupported, "
        "so re-encode it (e.g. to H.264 MP4)."
    )


# ------------------------------------------------------------------------------------------------ reading


def read_frames(path, indices: Sequence[int], short_side: int | None = None, info: VideoInfo | None = None,
                warnings: list[str] | None = None) -> np.ndarray:
    """Upright uint8 RGB frames [len(indices), H, W, 3], one per requested 0-based index, in the order given.

    Duplicates are allowed (padding repeats the last frame); indices past the real end of the clip repeat its
    last frame, and a sentence saying so is appended to `warnings` when a list is given. With short_side,
    every frame is resized as it is decoded so its shorter side is short_side. `info` is this clip's probe()
    when the caller has it (it places seeks); without it the clip is probed here.
    """
    path = Path(path)
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise ValueError(f"Frame indices must be >= 0, got {min(indices)}.")
    if not indices:
        info = info or probe(path)
        width, height = _scaled_size(info.width, info.height, short_side)
        return np.zeros((0, height, width, 3), np.uint8)
    wanted = sorted(set(indices))
    if path.is_dir():
        by_index = _read_folder(path, wanted, short_side)
    else:
        by_index, decoded = _read_video(path, wanted, short_side, info or probe(path))
        if decoded is not None and warnings is not None:
            warnings.append(f"Only {decoded} frames could be decoded, fewer than the {wanted[-1] + 1} asked for; "
                            "the clip looks damaged or cut short, so its last good frame stands in for the rest.")
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
def _read_video(path: Path, wanted: list[int], short_side: int | None, info: VideoInfo,
                ) -> tuple[dict[int, np.ndarray], int | None]:
    try:
        return _decode_wanted(path, wanted, short_side, info.seek_pts)
    except _SeekMiss:
        return _decode_wanted(path, wanted, short_side, None)


def _decode_wanted(path: Path, wanted: list[int], short_side: int | None, seek_pts: np.ndarray | None,
                   ) -> tuple[dict[int, np.ndarray], int | None]:
    """Decode only what the sorted, unique indices need; each kept frame is downscaled as it is decoded.

    Returns the frames by index, and how many frames decoded when the clip ended before the last wanted one.
    """
    scaler = _Scaler(functools.partial(_scaled_size, short_side=short_side))
    got: dict[int, np.ndarray] = {}
    with _open(path) as container:
        stream = _video_stream(container, path)
        cursor = _Cursor(container, stream, seek_pts)
        pos, last = 0, None
        while pos < len(wanted):
            cursor.skip_towards(wanted[pos])
            frame = cursor.next()
            if frame is None:
                break  # end of stream (or of what decodes)
            last, kept = frame, None
            while pos < len(wanted) and wanted[pos] <= cursor.index:  # gaps in time: nearest later frame
                kept = scaler.video(frame, stream) if kept is None else kept
                got[wanted[pos]] = kept
                pos += 1
        if last is None:
            raise _undecodable(path)
        short = None
        if pos < len(wanted):  # past the real end: repeat the last decoded frame
            got.update(dict.fromkeys(wanted[pos:], scaler.video(last, stream)))
            short = cursor.index + 1
    return got, short


DECODER_THREADS_ENV = "ARLIB_DECODER_THREADS"


def _use_decoder_threads(stream) -> None:
    """FFmpeg's frame/slice threads, as many as it likes unless $ARLIB_DECODER_THREADS caps them (decode workers)."""
    stream.thread_type = "AUTO"
    cap = os.environ.get(DECODER_THREADS_ENV, "").strip()
    if cap.isdigit() and int(cap) > 0:
        stream.thread_count = int(cap)


class _Cursor:
    """Walks a video stream forward, knowing each frame's index, and seeks over gaps worth skipping.

    Decoding forward, frames are counted: exact frame numbers even where timestamps are scrambled (packed
    B-frame XviD AVIs). After a seek, the landing frame's index is the place of its pts among the demuxed
    frames' pts (seek_pts, in presentation order), and counting resumes from there. A seek pays only when
    the keyframe before the target lies beyond the current frame, so the cursor seeks only over gaps wider
    than any keyframe interval seen so far (at least SEEK_GAP_SECONDS); a seek that lands early widens that
    estimate instead of being repeated. Without seek_pts (no trustworthy timestamps) it never seeks.
    """

    def __init__(self, container, stream, seek_pts: np.ndarray | None):
        _use_decoder_threads(stream)
        self._container, self._stream = container, stream
        self._frames = _decoded_frames(container, stream)
        self._seek_pts = seek_pts if seek_pts is not None and len(seek_pts) > 1 else None
        if self._seek_pts is not None:
            seconds = float((self._seek_pts[-1] - self._seek_pts[0]) * stream.time_base)
            rate = (len(self._seek_pts) - 1) / seconds if seconds > 0 else DEFAULT_FPS
        else:
            rate = DEFAULT_FPS
        self._keyframe_gap = max(1, round(SEEK_GAP_SECONDS * rate))
        self._last_key = None  # index of the last keyframe decoded since the last seek
        self._seeked_for = None  # target of a seek whose landing frame is not decoded yet
        self.index = -1  # index of the frame last returned

    def skip_towards(self, target: int) -> None:
        if self._seek_pts is None or target - self.index <= self._keyframe_gap or target >= len(self._seek_pts):
            return
        self._frames.close()
        pts = int(self._seek_pts[target - 1])  # just before the target: the keyframe at or before it
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
        if frame.key_frame:
            if self._last_key is not None:
                self._keyframe_gap = max(self._keyframe_gap, self.index - self._last_key)
            self._last_key = self.index
        return frame

    def _landing_index(self, frame: av.VideoFrame) -> int:
        target, self._seeked_for = self._seeked_for, None
        if frame.pts is None:
            raise _SeekMiss  # cannot tell where the seek landed
        index = int(np.searchsorted(self._seek_pts, frame.pts))
        if index >= len(self._seek_pts) or self._seek_pts[index] != frame.pts or index > target:
            raise _SeekMiss  # a frame the demuxer never listed, or past the target: timestamps cannot be trusted
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


def transcode_for_browser(src, dst, max_frames: int = 900, short_side: int = 360) -> Path:
    """H.264 MP4 (even sizes, yuv420p, faststart) of a clip or frame folder that browsers cannot play.

    Streams decode -> scale -> encode one frame at a time, so memory stays a frame however long the clip;
    the first `max_frames` frames are kept and the shorter side is at most `short_side` (never enlarged).
    """
    src, dst = Path(src), Path(dst)
    info = probe(src)
    side = min(short_side, info.width, info.height)

    def even_size(width: int, height: int) -> tuple[int, int]:
        w, h = _scaled_size(width, height, side)
        return max(2, w // 2 * 2), max(2, h // 2 * 2)

    scaler = _Scaler(even_size)
    rate = Fraction(info.fps).limit_denominator(1001)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(dst), "w", options={"movflags": "+faststart"}) as container:
            stream = None
            for count, array in enumerate(_all_frames(src, scaler)):
                if count >= max_frames:
                    break
                if stream is None:
                    stream = container.add_stream("libx264", rate=rate,
                                                  options={"preset": "ultrafast", "crf": "26"})
                    stream.height, stream.width = array.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.codec_context.gop_size = max(1, round(info.fps))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            if stream is None:
                raise VideoError(f"{src} has no decodable frames to show.")
            container.mux(stream.encode())
    except _FFMPEG_ERRORS as error:
        raise VideoError(f"{src} could not be converted for the browser ({_reason(error)}).") from error
    return dst


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
        _use_decoder_threads(stream)
        for frame in _decoded_frames(container, stream):
            yield scaler.video(frame, stream)


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
