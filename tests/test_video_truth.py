"""Video input that tells the truth (issue 12): upright frames, real presentation times, sampling even in
time, the right stream, honest frame counts with warnings, and sentences that name what a path really is.

Every odd file is made here with PyAV (tiny: 64 x 48, a few dozen frames), its frames spelling their own
index (test_video.indexed_frames), so a frame read back says which one it is and which way up it is.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from test_video import decoded_indices, indexed_frames

from arlib import cli, video
from arlib.errors import VideoError
from arlib.features import FeatureCache
from arlib.predict import Predictor
from arlib.sampling import cache_grid
from arlib.shipped import shipped_checkpoint
from arlib.transforms import TEST_VIEW
from arlib.video import probe, read_frames

DEMO = shipped_checkpoint("demo")
H, W = 48, 64


def write_timed(path: Path, frames: np.ndarray, pts: list[int], time_base=Fraction(1, 1000), fmt: str | None = None,
                options: dict | None = None, rotation: tuple[int, bool] | None = None, matrix=None,
                rotate_tag: str | None = None) -> Path:
    """An H.264 clip whose frame i is presented at pts[i] * time_base, with optional display matrix or tag."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "18"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = 25
        if rotation is not None:
            stream.set_display_rotation(rotation[0], hflip=rotation[1])
        if matrix is not None:
            stream.set_display_matrix(matrix)
        if rotate_tag is not None:
            stream.metadata["rotate"] = rotate_tag
        for array, t in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts, frame.time_base = int(t), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def constant_pts(count: int, step: int = 40, start: int = 0) -> list[int]:
    return [start + step * i for i in range(count)]


def assert_same_picture(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 8  # codec noise only, not a turned picture


# ---------------------------------------------------------------------------------------------- rotation

UPRIGHT = indexed_frames(6)  # 64 wide, 48 high as it should be seen


@pytest.mark.parametrize("ccw, hflip, clockwise, mirrored", [
    (90, False, 270, False), (180, False, 180, False), (270, False, 90, False),
    (0, True, 0, True), (90, True, 90, True),
])  # fmt: skip
def test_display_matrix_turns_frames_upright(tmp_path, ccw, hflip, clockwise, mirrored):
    # set_display_rotation: "turn counter-clockwise by ccw, then mirror"; so the stored picture is the inverse.
    stored = np.rot90(UPRIGHT[:, :, ::-1] if hflip else UPRIGHT, k=-ccw // 90, axes=(1, 2))
    path = write_timed(tmp_path / "phone.mp4", stored, constant_pts(6), rotation=(ccw, hflip))
    info = probe(path)
    assert (info.width, info.height, info.rotation, info.mirrored) == (W, H, clockwise, mirrored)
    frames = read_frames(path, range(6))
    assert_same_picture(frames, UPRIGHT)
    assert decoded_indices(frames) == list(range(6))
    assert read_frames(path, [2], short_side=24).shape == (1, 24, 32, 3)  # resized and turned


def test_phone_portrait_matrix_and_rotate_tag(tmp_path):
    # The matrix phones write for "turn 90 degrees clockwise", and the older 'rotate' tag (here in Matroska).
    stored = np.rot90(UPRIGHT, k=1, axes=(1, 2))
    phone = write_timed(tmp_path / "iphone.mov", stored, constant_pts(6), matrix=[0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30])
    tagged = write_timed(tmp_path / "tagged.mkv", stored, constant_pts(6), rotate_tag="90")
    for path in (phone, tagged):
        info = probe(path)
        assert (info.width, info.height, info.rotation) == (W, H, 90), path.name
        assert_same_picture(read_frames(path, range(6)), UPRIGHT)


def test_frame_folder_images_follow_their_exif_orientation(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(np.rot90(UPRIGHT, k=1, axes=(1, 2)), 1):  # stored turned; EXIF 6 = turn clockwise
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.ascontiguousarray(frame)).save(folder / f"{i}.png", exif=exif)
    assert (probe(folder).width, probe(folder).height) == (W, H)
    assert_same_picture(read_frames(folder, range(6)), UPRIGHT)


# -------------------------------------------------------------------------------------------------- time

VFR_PTS = list(np.cumsum([0] + [20] * 27 + [400] * 20))  # 28 frames in 0.54 s, then one every 0.4 s: 8.54 s


def test_variable_frame_rate_times_and_sampling_even_in_time(tmp_path):
    path = write_timed(tmp_path / "vfr.mp4", indexed_frames(len(VFR_PTS)), VFR_PTS)
    info = probe(path)
    assert info.num_frames == len(VFR_PTS)
    assert np.abs(info.frame_times() - np.array(VFR_PTS) / 1000).max() < 1e-3
    assert info.duration_s == pytest.approx(8.94, abs=0.01)  # the last frame is shown for its own 0.4 s
    grid = cache_grid(info.frame_times(), 12)
    picked = info.frame_times()[grid]
    # Even in time: about one pick falls in the dense first 0.54 s (index-even sampling put 7 there)...
    assert (picked < 0.6).sum() <= 2
    # ...and every pick is the frame nearest its instant.
    targets = np.linspace(0, picked[-1], 12)
    nearest = np.abs(info.frame_times()[None, :] - targets[:, None]).min(axis=1)
    assert np.allclose(np.abs(picked - targets), nearest)
    assert decoded_indices(read_frames(path, grid, info=info)) == grid.tolist()


def test_a_start_ten_hours_in_counts_from_the_first_frame(tmp_path):
    count = 150  # 6 s, so reading the end crosses gaps by seeking
    path = write_timed(tmp_path / "offset.mkv", indexed_frames(count), constant_pts(count, start=36_000_000))
    info = probe(path)
    assert (info.num_frames, info.fps) == (count, pytest.approx(25.0))
    assert info.duration_s == pytest.approx(6.0, abs=0.05)
    assert info.frame_times()[0] == 0 and info.frame_times()[-1] == pytest.approx(5.96, abs=1e-3)
    assert decoded_indices(read_frames(path, [0, 75, 140, 149], info=info)) == [0, 75, 140, 149]


@pytest.mark.parametrize("second_start", [0, 3600 * 90000], ids=["restarts", "leaps_forward"])
def test_joined_mpeg_ts_recordings_are_counted_one_after_another(tmp_path, second_start):
    frames = indexed_frames(60)
    parts = [write_timed(tmp_path / f"part{k}.ts", frames[30 * k : 30 * k + 30], constant_pts(30, 3600, start),
                         time_base=Fraction(1, 90000), fmt="mpegts")
             for k, start in enumerate([90000, second_start + 90000])]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    info = probe(joined)
    assert info.num_frames == 60
    assert info.duration_s == pytest.approx(2.4, abs=0.05)
    assert np.all(np.diff(info.frame_times()) > 0)
    assert any("jump" in w for w in info.warnings), info.warnings
    grid = cache_grid(info.frame_times(), 6)
    assert grid.tolist() == [0, 12, 24, 35, 47, 59]  # the second recording is looked at too
    assert decoded_indices(read_frames(joined, [0, 29, 30, 59], info=info)) == [0, 29, 30, 59]


# ------------------------------------------------------------------------------------------------ streams


def write_two_streams(path: Path, default: int | None) -> Path:
    """Stream 0: 64 x 48 black; stream 1: 96 x 64 frames spelling their index. `default` is marked default."""
    with av.open(str(path), "w") as container:
        black = container.add_stream("libx264", rate=25)
        black.width, black.height, black.pix_fmt = 64, 48, "yuv420p"
        picture = container.add_stream("libx264", rate=25)
        picture.width, picture.height, picture.pix_fmt = 96, 64, "yuv420p"
        for index, stream in enumerate((black, picture)):
            stream.disposition = av.stream.Disposition.default if index == default else av.stream.Disposition(0)
        content = indexed_frames(10, 64, 96)
        for i in range(10):
            container.mux(black.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
            container.mux(picture.encode(av.VideoFrame.from_ndarray(content[i], format="rgb24")))
        container.mux(black.encode())
        container.mux(picture.encode())
    return path


@pytest.mark.parametrize("name, default", [("marked.mp4", 1), ("unmarked.mkv", None)])
def test_the_default_stream_else_the_largest_is_read(tmp_path, name, default):
    path = write_two_streams(tmp_path / name, default)
    with av.open(str(path)) as container:  # the file really is as described
        assert [bool(s.disposition & av.stream.Disposition.default) for s in container.streams.video] == \
            [False, default == 1]
    info = probe(path)
    assert (info.stream, info.width, info.height) == (1, 96, 64)
    assert any("2 video streams" in w for w in info.warnings)
    assert decoded_indices(read_frames(path, [0, 4, 9], info=info)) == [0, 4, 9]


# ---------------------------------------------------------------------------------------- cut-short files


def test_a_half_written_mp4_is_sampled_over_what_is_there_and_says_so(tmp_path):
    noise = np.random.default_rng(0).integers(-30, 30, (100, H, W, 3))  # incompressible: frames fill the file
    content = (indexed_frames(100).astype(int) + noise).clip(0, 255).astype(np.uint8)
    whole = write_timed(tmp_path / "whole.mp4", content, constant_pts(100),
                        options={"movflags": "faststart"})  # the index first: a cut file still opens
    data = whole.read_bytes()
    frames_start = data.index(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: frames_start + (len(data) - frames_start) // 2])
    info = probe(cut)
    assert 20 < info.num_frames < 90
    assert any("of the 100 frames" in w and "cut short" in w for w in info.warnings), info.warnings
    assert info.duration_s == pytest.approx(info.num_frames / 25, abs=0.05)
    grid = cache_grid(info.frame_times(), 20)
    warnings: list[str] = []
    got = decoded_indices(read_frames(cut, grid, info=info, warnings=warnings))
    assert got[-1] >= info.num_frames - 3  # the last sample is near the real end, not a copy of an early frame
    assert len(set(got)) >= len(got) - 2


def test_reading_past_what_decodes_says_so(tmp_path):
    path = write_timed(tmp_path / "short.mp4", indexed_frames(10), constant_pts(10))
    warnings: list[str] = []
    read_frames(path, [0, 9, 20], warnings=warnings)
    assert len(warnings) == 1 and "Only 10 frames could be decoded" in warnings[0]
    read_frames(path, [0, 9], warnings=warnings)
    assert len(warnings) == 1


# ----------------------------------------------------------------------------------------------- sentences


def refusal(path) -> str:
    """The VideoError of probe and read_frames, which must agree, run off the test's own thread: a pipe that
    were opened would block the reader forever, and a hung test shows nothing."""
    messages = []

    def attempt():
        for call in (lambda: probe(path), lambda: read_frames(path, [0])):
            try:
                call()
                messages.append("no error")
            except VideoError as error:
                messages.append(str(error))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)
    assert len(messages) == 2, "probing blocked (it opened the path instead of refusing it)"
    assert messages[0] == messages[1] and str(path) in messages[0] and "\n" not in messages[0]
    return messages[0]


def test_a_named_pipe_is_not_a_regular_file(tmp_path):
    pipe = tmp_path / "camera.mp4"
    os.mkfifo(pipe)
    assert "is not a regular file (a named pipe)" in refusal(pipe)
    assert "is not a regular file (a device)" in refusal(Path("/dev/null"))


def test_links_that_loop_or_dangle_say_so(tmp_path):
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    assert "symbolic link loop" in refusal(tmp_path / "a.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")
    assert "deleted.mp4, which does not exist" in refusal(tmp_path / "gone.mp4")


def test_playlists_are_named_and_never_fetched(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{url}/segment0.ts\n#EXT-X-ENDLIST\n"
    (tmp_path / "live.m3u8").write_text(hls)
    (tmp_path / "disguised.mp4").write_text(hls)  # a playlist renamed: found by its content
    (tmp_path / "stream.mpd").write_text(f'<?xml version="1.0"?>\n<MPD><BaseURL>{url}/</BaseURL></MPD>\n')
    (tmp_path / "list.txt").write_text(f"ffconcat version 1.0\nfile {url}/a.mp4\n")
    for name, kind in [("live.m3u8", "HLS playlist"), ("disguised.mp4", "HLS/M3U playlist"),
                       ("stream.mpd", "DASH manifest"), ("list.txt", "FFmpeg concat list")]:
        message = refusal(tmp_path / name)
        assert f"is an {kind}" in message or f"is a {kind}" in message, message
        assert "never fetches anything over a network" in message
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever connected
    listener.close()


def test_folders_without_frames_say_what_they_hold(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "holds no image frames" in refusal(tmp_path / "empty") and "it is empty" in refusal(tmp_path / "empty")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.mp4").write_bytes(b"x")
    (clips / "b.avi").write_bytes(b"x")
    assert "but 2 video files, so give one of those clips" in refusal(clips)
    classes = tmp_path / "UCF-101"
    (classes / "Archery").mkdir(parents=True)
    assert "but 1 sub-folder, so give one clip's own folder" in refusal(classes)


# --------------------------------------------------------------------------------- cache and prediction


def test_the_feature_cache_key_follows_the_decoder(monkeypatch, tmp_path):
    before = FeatureCache(root=tmp_path).dir
    monkeypatch.setattr(video, "DECODER_VERSION", video.DECODER_VERSION + 1)
    assert FeatureCache(root=tmp_path).dir != before


def test_cached_features_sit_even_in_time_and_keep_their_times(tmp_path):
    path = write_timed(tmp_path / "vfr.mp4", indexed_frames(len(VFR_PTS)), VFR_PTS)
    cache = FeatureCache(root=tmp_path / "cache", cache_frames=8)
    computed = cache.compute(path, [TEST_VIEW])[TEST_VIEW]
    times = probe(path).frame_times()
    assert computed.frame_indices.tolist() == cache_grid(times, 8).tolist()
    assert (times[computed.frame_indices] < 0.6).sum() <= 2  # training and evaluation sample this grid
    reloaded = cache.get(path, TEST_VIEW)
    assert np.allclose(reloaded.frame_times(), times[computed.frame_indices])


def test_filling_the_cache_names_pipes_and_loops_and_goes_on(tmp_path):
    good = write_timed(tmp_path / "good.mp4", indexed_frames(6), constant_pts(6))
    pipe = tmp_path / "pipe.mp4"
    os.mkfifo(pipe)
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    clips = [str(pipe), str(tmp_path / "loop.mp4"), str(good)]
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(
        FeatureCache(root=tmp_path / "cache", cache_frames=4).ensure(clips, [TEST_VIEW], progress=False)), daemon=True)
    worker.start()
    worker.join(120)
    assert outcome, "filling the cache blocked on the pipe"
    done, failed = outcome[0]
    assert list(done) == [str(good)]
    assert "not a regular file (a named pipe)" in failed[str(pipe)]
    assert "symbolic link loop" in failed[str(tmp_path / "loop.mp4")]


def test_predict_json_tells_the_truth_about_the_clip(tmp_path, capsys):
    # A phone clip turned 90 degrees with a variable frame rate, read from the CLI as a user would.
    frames = indexed_frames(len(VFR_PTS))
    stored = np.rot90(frames, k=-1, axes=(1, 2))  # to be turned 90 degrees counter-clockwise when shown
    path = write_timed(tmp_path / "phone.mp4", stored, VFR_PTS, rotation=(90, False))
    code = cli.main(["predict", str(path), "--checkpoint", str(DEMO), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (result["width"], result["height"], result["rotation"], result["stream"]) == (W, H, 270, 0)
    assert result["warnings"] == []
    times = np.array(VFR_PTS) / 1000
    assert np.allclose(result["timestamps_s"], times[result["frame_indices"]], atol=1e-3)
    assert (np.array(result["timestamps_s"]) < 0.6).sum() <= 3  # 16 samples even in time, not crowded early
    predictor = Predictor(DEMO)
    prediction = predictor.predict(path)
    assert decoded_indices(prediction.frames) == prediction.frame_indices  # upright frames (the index reads back)
    halves = predictor.predict(path, windows=2).windows  # windows are equal stretches of time, not of frames
    assert halves[0]["start_s"] == 0 and halves[1]["start_s"] == pytest.approx(8.54 / 2, abs=0.5)
    assert halves[1]["end_s"] == pytest.approx(8.94, abs=1e-3)
