"""arlib.video on small synthetic clips whose frames carry their own index in their colour."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from arlib import video
from arlib.errors import VideoError
from arlib.video import (
    extract_frames,
    extract_frames_tree,
    is_frame_folder,
    list_frame_files,
    probe,
    read_frames,
    write_clip,
)

UCF_MINI = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini"
H, W, T = 48, 64, 30

# ------------------------------------------------------------------------------------------------ helpers


GRID_ROWS, GRID_COLS = 3, 4  # 12 black/white blocks spell a frame's index: robust to codecs and scaling


def indexed_frames(count: int, height: int = H, width: int = W) -> np.ndarray:
    """Frames whose blocks spell their index in Gray code, so neighbours differ in one block (P-frames)."""
    codes = np.arange(count) ^ (np.arange(count) >> 1)
    bits = (codes[:, None] >> np.arange(GRID_ROWS * GRID_COLS)) & 1
    levels = (bits.reshape(count, GRID_ROWS, GRID_COLS) * 200 + 28).astype(np.uint8)
    rows, cols = np.arange(height) * GRID_ROWS // height, np.arange(width) * GRID_COLS // width
    return np.repeat(levels[:, rows][:, :, cols][..., None], 3, axis=3)


def decoded_indices(frames: np.ndarray) -> list[int]:
    """Read each frame's index back from the centres of its blocks."""
    height, width = frames.shape[1:3]
    gray = frames.astype(np.float32).mean(axis=3)
    code = np.zeros(len(frames), np.int64)
    for bit in range(GRID_ROWS * GRID_COLS):
        row, col = divmod(bit, GRID_COLS)
        cy, cx = (2 * row + 1) * height // (2 * GRID_ROWS), (2 * col + 1) * width // (2 * GRID_COLS)
        dy, dx = max(1, height // (4 * GRID_ROWS)), max(1, width // (4 * GRID_COLS))
        code |= (gray[:, cy - dy : cy + dy, cx - dx : cx + dx].mean(axis=(1, 2)) > 128).astype(np.int64) << bit
    index, shift = code.copy(), code >> 1
    while shift.any():  # Gray code back to binary
        index ^= shift
        shift >>= 1
    return [int(i) for i in index]


def make_clip(tmp_path: Path, name: str, count: int = T, codec: str | None = None, fps: float = 25.0) -> Path:
    return write_clip(tmp_path / name, indexed_frames(count), fps=fps, codec=codec)


def write_audio_only(path: Path, codec: str, fmt: str) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000)
        samples = np.zeros((1, 16000), np.int16 if fmt == "s16" else np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


FORMATS = [  # (file name, codec or None for the extension's default, codec name probe reports)
    ("clip.mp4", None, "h264"),
    ("clip.avi", None, "mpeg4"),
    ("clip.webm", None, "vp9"),
    ("clip.gif", None, "gif"),
    ("mjpeg.avi", "mjpeg", "mjpeg"),
    ("clip.mkv", None, "h264"),
]


# -------------------------------------------------------------------------------------------------- probe


@pytest.mark.parametrize("name, codec, expected_codec", FORMATS)
def test_probe_reports_header_facts(tmp_path, name, codec, expected_codec):
    info = probe(make_clip(tmp_path, name, codec=codec))
    assert info.codec == expected_codec
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(25.0)
    assert info.num_frames == T  # exact from metadata, or an estimate that must still be right here
    assert info.duration_s == pytest.approx(T / 25.0, abs=0.05)
    assert info.path == str(tmp_path / name)


def test_counts_are_exact_even_where_the_header_states_none(tmp_path):
    assert probe(make_clip(tmp_path, "clip.mp4")).exact_count is True
    webm = probe(make_clip(tmp_path, "clip.webm", count=37))  # WebM states no frame count: packets are counted
    assert webm.exact_count is True and webm.num_frames == 37


# ------------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("name, codec, expected_codec", FORMATS)
def test_read_frames_in_index_order(tmp_path, name, codec, expected_codec):
    path = make_clip(tmp_path, name, codec=codec)
    wanted = [0, 1, 7, 8, 15, 29]
    frames = read_frames(path, wanted)
    assert frames.shape == (len(wanted), H, W, 3) and frames.dtype == np.uint8
    assert decoded_indices(frames) == wanted


def test_duplicates_and_indices_past_the_end_repeat(tmp_path):
    path = make_clip(tmp_path, "clip.mp4")
    frames = read_frames(path, [3, 3, 28, 29, 29, 30, 45])
    assert decoded_indices(frames) == [3, 3, 28, 29, 29, 29, 29]


def test_indices_in_any_order_come_back_in_that_order(tmp_path):
    assert decoded_indices(read_frames(make_clip(tmp_path, "clip.avi"), [9, 2, 20, 2])) == [9, 2, 20, 2]


def test_short_side_downscales_keeping_aspect(tmp_path):
    landscape = read_frames(make_clip(tmp_path, "clip.mp4"), [0, 5], short_side=24)
    assert landscape.shape == (2, 24, 32, 3)
    assert decoded_indices(landscape) == [0, 5]
    portrait = write_clip(tmp_path / "tall.avi", indexed_frames(4, height=64, width=48))
    assert read_frames(portrait, [1], short_side=24).shape == (1, 32, 24, 3)


def test_empty_index_list_gives_empty_array(tmp_path):
    assert read_frames(make_clip(tmp_path, "clip.mp4"), [], short_side=24).shape == (0, 24, 32, 3)


@pytest.mark.parametrize("name", ["long.mp4", "long.avi", "long.webm"])
def test_long_gaps_are_crossed_by_seeking(tmp_path, monkeypatch, name):
    path = make_clip(tmp_path, name, count=300)  # 12 s at 25 fps, a keyframe every second
    seeks = []
    real_seek = video._seek
    monkeypatch.setattr(video, "_seek", lambda c, s, pts: (seeks.append(pts), real_seek(c, s, pts)))
    wanted = [0, 2, 120, 121, 200, 299, 299]
    got = decoded_indices(read_frames(path, wanted, short_side=24))
    assert seeks, "gaps of several seconds should be crossed by seeking"
    assert all(abs(g - w) <= 1 for g, w in zip(got, wanted)), got


def test_seeking_agrees_with_sequential_decoding(tmp_path, monkeypatch):
    path = make_clip(tmp_path, "long.mp4", count=300)
    sparse = read_frames(path, [10, 150, 280])
    monkeypatch.setattr(video, "SEEK_GAP_SECONDS", 1e9)  # never seek
    dense = read_frames(path, [10, 150, 280])
    assert np.array_equal(sparse, dense)


def avi_payload(path: Path) -> tuple[bytearray, int, int]:
    """The file's bytes and the span of its frame data (the AVI 'movi' list, before the 'idx1' index)."""
    data = bytearray(path.read_bytes())
    return data, data.index(b"movi") + 4, data.rindex(b"idx1")


def test_corrupt_middle_keeps_what_decodes(tmp_path):
    path = make_clip(tmp_path, "clip.avi", count=60)
    data, start, end = avi_payload(path)
    middle = (start + end) // 2
    data[middle : middle + 200] = np.random.default_rng(0).bytes(200)
    path.write_bytes(bytes(data))
    frames = read_frames(path, range(60))
    assert frames.shape == (60, H, W, 3)
    assert decoded_indices(frames[:5]) == [0, 1, 2, 3, 4]


def test_truncated_clip_repeats_its_last_decoded_frame(tmp_path):
    path = make_clip(tmp_path, "clip.avi", count=60)
    data, start, end = avi_payload(path)
    path.write_bytes(bytes(data[: start + (end - start) * 2 // 3]))
    got = decoded_indices(read_frames(path, [0, 10, 58, 59]))
    assert got[:2] == [0, 10] and got[2] == got[3] < 58


# ------------------------------------------------------------------------------------------- frame folders


def write_frame_folder(folder: Path, names: list[str]) -> list[int]:
    """Write one frame per name; frame k (in numeric order) shows index k. Returns the indices by name order."""
    folder.mkdir(parents=True)
    frames = indexed_frames(len(names))
    for k, name in enumerate(names):
        Image.fromarray(frames[k]).save(folder / name)
    return list(range(len(names)))


def test_frame_files_sort_numerically_not_as_text(tmp_path):
    folder = tmp_path / "clip"
    write_frame_folder(folder, ["1.jpg", "2.jpg", "10.jpg", "100.jpg"])
    (folder / "notes.txt").write_text("not a frame")
    (folder / "Thumbs.db").write_bytes(b"\0")
    assert [p.name for p in list_frame_files(folder)] == ["1.jpg", "2.jpg", "10.jpg", "100.jpg"]
    assert is_frame_folder(folder) and not is_frame_folder(tmp_path / "missing")
    assert decoded_indices(read_frames(folder, [0, 1, 2, 3, 3, 9])) == [0, 1, 2, 3, 3, 3]


def test_zero_padded_and_prefixed_frame_names(tmp_path):
    folder = tmp_path / "clip"
    write_frame_folder(folder, ["frame_00009.png", "frame_00010.png", "frame_00100.png"])
    assert [p.name for p in list_frame_files(folder)] == ["frame_00009.png", "frame_00010.png", "frame_00100.png"]
    info = probe(folder)
    assert (info.num_frames, info.codec, info.fps, info.width, info.height) == (3, "frames", 25.0, W, H)
    assert info.exact_count
    frames = read_frames(folder, [2, 0], short_side=24)
    assert frames.shape == (2, 24, 32, 3) and decoded_indices(frames) == [2, 0]


# ------------------------------------------------------------------------------------------------- errors


def unusable_files(tmp_path: Path) -> list[Path]:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(0).bytes(50_000))
    text = tmp_path / "readme.txt"
    text.write_text("this is not a video\n" * 100)  # FFmpeg would open .txt as ANSI art
    text_mp4 = tmp_path / "text.mp4"
    text_mp4.write_text("this is not a video either\n" * 100)
    still = tmp_path / "still.jpg"
    Image.fromarray(indexed_frames(1)[0]).save(still)
    return [
        empty, noise, text, text_mp4, still,
        write_audio_only(tmp_path / "speech.m4a", "aac", "fltp"),
        write_audio_only(tmp_path / "speech.mp4", "aac", "fltp"),
        write_audio_only(tmp_path / "tone.wav", "pcm_s16le", "s16"),
        tmp_path / "does_not_exist.mp4",
        tmp_path / "empty_folder",
    ]  # fmt: skip


def test_unusable_files_raise_one_clear_video_error(tmp_path):
    (tmp_path / "empty_folder").mkdir()
    for path in unusable_files(tmp_path):
        for call in (lambda: probe(path), lambda: read_frames(path, [0, 1])):  # noqa: B023 (called at once)
            with pytest.raises(VideoError) as caught:
                call()
            message = str(caught.value)
            assert path.name in message, message
            assert "\n" not in message


def test_write_clip_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_clip(tmp_path / "odd.mp4", np.zeros((2, 47, 63, 3), np.uint8))
    with pytest.raises(ValueError, match="codec"):
        write_clip(tmp_path / "clip.xyz", indexed_frames(2))
    with pytest.raises(ValueError, match="uint8"):
        write_clip(tmp_path / "clip.avi", np.zeros((2, 8, 8, 3), np.float32))


def test_negative_indices_are_a_programming_error(tmp_path):
    with pytest.raises(ValueError):
        read_frames(make_clip(tmp_path, "clip.avi"), [0, -1])


# ---------------------------------------------------------------------------------------- frame extraction


def test_extract_frames_names_scales_and_skips_existing(tmp_path):
    dst = tmp_path / "frames" / "clip"
    assert extract_frames(make_clip(tmp_path, "clip.avi"), dst, max_side=32) == T
    files = list_frame_files(dst)
    assert [p.name for p in files[:2]] == ["00001.jpg", "00002.jpg"] and files[-1].name == "00030.jpg"
    assert Image.open(files[0]).size == (32, 24)
    assert decoded_indices(read_frames(dst, [0, 17, 29])) == [0, 17, 29]
    assert not dst.with_name("clip.partial").exists()
    files[0].write_bytes(files[0].read_bytes())  # an existing folder is never rewritten
    before = files[0].stat().st_mtime_ns
    assert extract_frames(tmp_path / "anything.avi", dst) == T
    assert files[0].stat().st_mtime_ns == before


def test_extract_frames_replaces_leftovers_and_cleans_up_failures(tmp_path):
    dst = tmp_path / "clip"
    partial = tmp_path / "clip.partial"
    partial.mkdir()
    (partial / "00001.jpg").write_bytes(b"half-written")
    assert extract_frames(make_clip(tmp_path, "clip.mp4"), dst) == T
    assert not partial.exists()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(np.random.default_rng(1).bytes(10_000))
    with pytest.raises(VideoError, match="bad.avi"):
        extract_frames(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


def test_extract_frames_tree_reports_bad_clips_and_resumes(tmp_path):
    src, dst = tmp_path / "UCF-101", tmp_path / "frames"
    make_clip(src / "Grow", "v_Grow_g01_c01.avi", count=6)
    make_clip(src / "Shrink", "v_Shrink_g01_c01.mp4", count=6)
    (src / "Shrink" / "v_Shrink_g01_c02.avi").write_bytes(b"garbage" * 100)
    (src / "Shrink" / "notes.txt").write_text("ignored")
    report = extract_frames_tree(src, dst, max_side=32, progress=False)
    assert report["done"] == 2 and report["skipped_existing"] == 0
    assert list(report["failed"]) == [str(src / "Shrink" / "v_Shrink_g01_c02.avi")]
    assert len(list_frame_files(dst / "Grow" / "v_Grow_g01_c01")) == 6
    again = extract_frames_tree(src, dst, progress=False)
    assert (again["done"], again["skipped_existing"], len(again["failed"])) == (0, 2, 1)


# ---------------------------------------------------------------------------------------- real UCF-101 clips


def first_real_clip(suffix: str) -> Path:
    clips = sorted((UCF_MINI / "UCF-101").glob(f"*/*{suffix}"))
    if not clips:
        pytest.skip(f"no real UCF-101 {suffix} clip: {UCF_MINI} is absent (it lives outside the repo)")
    return clips[0]


@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".avi", "mpeg4")])
def test_real_ucf_clip(suffix, codec):
    path = first_real_clip(suffix)
    info = probe(path)
    assert (info.codec, info.width, info.height) == (codec, 320, 240)
    assert info.num_frames > 40 and info.exact_count
    indices = np.linspace(0, info.num_frames - 1, 40).round().astype(int)
    frames = read_frames(path, indices, short_side=256)
    assert frames.shape == (40, 256, 341, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # real picture content, not a blank repeat
