"""Streaming recognition (arlib.live): matches predict, one backbone pass per frame, drops rather than lags."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from arlib.errors import ArlibError, VideoError
from arlib.live import (
    LiveRecognizer,
    LiveStream,
    open_source,
    run_live,
    save_recording,
    summarize,
)
from arlib.predict import Predictor
from arlib.shipped import shipped_checkpoint
from arlib.video import probe

REPO = Path(__file__).resolve().parents[1]
UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"
UCF_CLIP = UCF / "Archery" / "v_Archery_g15_c01.mp4"
CHECKPOINT = shipped_checkpoint("ucf9-mini")
needs_ucf = pytest.mark.skipif(not UCF_CLIP.is_file(), reason=f"real UCF-101 clip not found at {UCF_CLIP}")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(CHECKPOINT)


class CountingEncoder:
    """Wraps the real backbone's encode and counts the frames it is given (the backbone still runs)."""

    def __init__(self, backbone):
        self.backbone, self.encode_real, self.frames = backbone, backbone.encode, 0

    def __enter__(self):
        def encode(frames, *args, **kwargs):
            self.frames += len(frames)
            return self.encode_real(frames, *args, **kwargs)

        self.backbone.encode = encode
        return self

    def __exit__(self, *exc):
        del self.backbone.encode  # back to the class's method


def noise_frames(n, height=240, width=320, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, height, width, 3), dtype=np.uint8)


@needs_ucf
def test_streaming_a_real_clip_matches_predict_with_one_backbone_pass_per_stream_and_frame(predictor):
    from arlib.motion import GAP

    assert predictor.streams == 2  # the shipped checkpoint: appearance + motion
    recognizer = LiveRecognizer(predictor, window_s=60.0)  # the window holds the whole clip
    short_side = predictor.backbone.spec.preprocessing.resize_short_side
    updates, pushed = [], 0
    with CountingEncoder(predictor.backbone) as counter:
        for frame, t in open_source(UCF_CLIP, realtime=False, short_side=short_side):
            before = counter.frames
            update = recognizer.push(frame, t)
            pushed += 1
            # each new frame: its appearance, and the motion of the frame GAP before it; never the window again
            # (an update may pair the newest few unpaired sampled frames with the newest frame, as predict does)
            passes = counter.frames - before - (1 if pushed <= GAP else 2)
            assert passes == 0 if update is None else 0 <= passes <= GAP - 1
            if update is not None:
                updates.append(update)
        before = counter.frames
        final = recognizer.finish()
        assert counter.frames - before <= GAP  # classifying reuses the buffered features
    assert len(updates) >= 4 and final is not None
    assert [u.stream_time_s for u in updates] == sorted(u.stream_time_s for u in updates)

    expected = predictor.predict(UCF_CLIP, top_k=5)
    assert final.buffered_frames == expected.num_frames == pushed
    assert final.frame_times_s == expected.timestamps_s  # the same frames, sampled the same way
    assert [r["label"] for r in final.top_k] == [r["label"] for r in expected.top_k]
    np.testing.assert_allclose([r["probability"] for r in final.top_k],
                               [r["probability"] for r in expected.top_k], atol=1e-4)
    np.testing.assert_allclose(final.attention, expected.attention, atol=1e-4)
    assert final.label == "Archery" and 0 < final.probability <= 1


@needs_ucf
def test_streaming_with_a_motion_stream_matches_predict_with_two_passes_per_frame(motion_run, tmp_path):
    from arlib.motion import GAP
    from synthetic import moving_square_clip

    root, cfg = motion_run
    predictor = Predictor(root / "run" / "checkpoints" / "best.safetensors")
    assert predictor.streams == 2
    # 9 frames, more than the checkpoint's cache grid (8): predict samples frames 0 1 3 5 7 8, so frame 2 pairs with
    # frame 4, which the grid skips, and frame 7 (GAP = 2 before the end) pairs with the last frame.
    clip = moving_square_clip(tmp_path / "moving.mp4", frames=9, step=6)
    recognizer = LiveRecognizer(predictor, window_s=60.0, update_every_s=0.3)
    short_side = predictor.backbone.spec.preprocessing.resize_short_side
    updates, pushed = [], 0
    with CountingEncoder(predictor.backbone) as counter:
        for frame, t in open_source(clip, realtime=False, short_side=short_side):
            before = counter.frames
            update = recognizer.push(frame, t)
            pushed += 1
            # The frame's appearance, plus the motion of the frame GAP before it (whose partner it is); an update
            # may also pair the newest few unpaired sampled frames with the newest frame, as predict does.
            passes = counter.frames - before - (1 if pushed <= GAP else 2)
            assert passes == 0 if update is None else 0 <= passes <= GAP - 1
            if update is not None:
                updates.append(update)
        recognizer.heat_map = True  # Grad-CAM through the appearance stream, motion held fixed (torch, not counted)
        before = counter.frames
        final = recognizer.finish()
        assert counter.frames - before == 1  # frame 7, sampled and still unpaired: paired with the newest now
    assert recognizer.backbone_passes == counter.frames and final.backbone_passes == counter.frames
    assert len(updates) == 2 and final is not None
    assert summarize([*updates, final])["backbone_passes_per_frame"] >= 2 * (pushed - GAP) / pushed

    expected = predictor.predict(clip, top_k=2)
    assert final.buffered_frames == expected.num_frames == pushed
    assert final.frame_times_s == expected.timestamps_s
    probabilities = {r["label"]: r["probability"] for r in final.top_k}
    np.testing.assert_allclose([probabilities[r["label"]] for r in expected.top_k],
                               [r["probability"] for r in expected.top_k], atol=1e-4)
    np.testing.assert_allclose(final.attention, expected.attention, atol=1e-4)
    heat = np.array(final.heat_map)
    assert heat.max() == 1.0 and heat.min() >= 0


def test_heat_map_on_the_newest_frame_is_grad_cam_of_the_window(predictor):
    from arlib.explain import grad_cam, grid_shape, on_full_frame
    from arlib.predict import _WithMotion
    from arlib.transforms import TEST_VIEW, apply_view

    recognizer = LiveRecognizer(predictor, window_s=1.0, heat_map=True)
    motion_used = []  # the window's motion features the live map held fixed (two-stream checkpoint)
    newest_heat_map = recognizer._newest_heat_map
    recognizer._newest_heat_map = lambda positions, feats, motion, best: (
        motion_used.append(motion), newest_heat_map(positions, feats, motion, best))[1]
    short_side = predictor.backbone.spec.preprocessing.resize_short_side
    for frame, t in open_source(UCF_CLIP, realtime=False, short_side=short_side):
        update = recognizer.push(frame, t)
        if update is not None and update.heat_map is not None and t >= 1.5:
            break  # the buffer still holds exactly this update's window
    heat = np.array(update.heat_map)
    assert heat.shape == grid_shape(*frame.shape[:2]) and heat.max() == 1.0 and heat.min() >= 0
    assert recognizer.last_heat[0] == update.stream_time_s and np.allclose(recognizer.last_heat[2], heat, atol=1e-3)

    # Explain's Grad-CAM over the same window (every sampled frame through the torch backbone, the motion stream
    # held fixed as predict holds it) agrees on the newest frame; the live map reuses the buffered features of the
    # other frames.
    frames = recognizer.frames_at(sorted(set(update.frame_times_s)))
    positions = np.searchsorted(sorted(set(update.frame_times_s)), update.frame_times_s)
    size = predictor.backbone.spec.preprocessing.input_size
    model = _WithMotion(predictor.model, torch.from_numpy(motion_used[-1][None]))
    cam = grad_cam(predictor.backbone, model, apply_view(frames, size, TEST_VIEW), positions, 1,
                   class_index=predictor.classes.index(update.label))
    expected = on_full_frame(cam.cams[-1:], frames.shape[1:3], size)[0]
    expected /= expected.max()
    assert np.abs(heat - expected).max() < 0.01


def test_window_slides_updates_are_periodic_and_bad_frames_are_one_sentence(predictor):
    recognizer = LiveRecognizer(predictor, window_s=1.0, update_every_s=0.5, smoothing=2)
    fps = 10.0
    updates = [u for i, f in enumerate(noise_frames(25)) if (u := recognizer.push(f, i / fps)) is not None]
    assert [u.stream_time_s for u in updates] == [0.5, 1.0, 1.5, 2.0]
    for u in updates:
        assert u.window_s < 1.0 and u.buffered_frames <= 10  # only the last second is classified
        assert min(u.frame_times_s) > u.stream_time_s - 1.0 and max(u.frame_times_s) == u.stream_time_s
        # Fewer frames than the model's 40 steps: each buffered frame is used about equally, in time order
        # (padding with the newest frame, as predict does for a short clip, would let it outweigh the rest).
        counts = np.unique(u.frame_times_s, return_counts=True)[1]
        assert len(counts) == u.buffered_frames and counts.max() - counts.min() <= 1
        assert u.frame_times_s == sorted(u.frame_times_s)
        assert len(u.attention) == len(u.frame_times_s) == predictor.seq_len
        assert abs(sum(u.attention) - 1) < 1e-3
        assert u.top_k[0]["label"] in predictor.classes and len(u.top_k) == 5
    summary = summarize(updates)  # the last update came with frame 20 (t = 2.0 s)
    assert summary["updates"] == 4 and summary["frames_processed"] == 21 and summary["frames_dropped"] == 0
    assert summary["first_label_after_s"] >= 0 and summary["delay_max_s"] >= summary["delay_median_s"] >= 0
    assert recognizer.push(noise_frames(1)[0], 1.0) is None  # a timestamp going backwards is skipped
    assert recognizer.frames_encoded == 25
    with pytest.raises(VideoError, match="uint8 RGB"):
        recognizer.push(np.zeros((240, 320), np.uint8), 9.0)


def test_record_saves_the_buffered_seconds_as_a_clip_predict_opens(predictor, tmp_path):
    recognizer = LiveRecognizer(predictor, window_s=1.0)
    with pytest.raises(ArlibError, match="Nothing to record yet"):
        save_recording(recognizer, tmp_path)
    updates = [u for i, f in enumerate(noise_frames(15)) if (u := recognizer.push(f, i / 10)) is not None]
    clip, meta = save_recording(recognizer, tmp_path / "recordings", updates[-1], name="take")
    assert sorted(p.name for p in clip.parent.iterdir()) == ["take.json", "take.mp4"]  # no partial files left
    info = probe(clip)
    assert info.num_frames == 10 and abs(info.fps - 10) < 0.1 and (info.width, info.height) == (340, 256)
    saved = json.loads(meta.read_text())
    assert saved["clip"] == "take.mp4" and saved["frames"] == 10 and saved["live"]["label"] == updates[-1].label
    assert saved["timestamps_s"][0] == 0 and saved["timestamps_s"][-1] == 0.9
    assert predictor.predict(clip).top_k[0]["label"] in predictor.classes


def test_live_stream_drops_frames_rather_than_queueing_them(predictor):
    recognizer = LiveRecognizer(predictor, window_s=2.0, update_every_s=0.1)
    stream = LiveStream(recognizer)
    try:
        frames = noise_frames(30)
        for i, frame in enumerate(frames):  # far faster than any backbone: most frames must be dropped
            stream.submit(frame, i / 100.0)
        stream.drain()
    finally:
        stream.stop()
    assert stream.error is None
    assert recognizer.dropped_frames > 0
    assert recognizer.frames_encoded + recognizer.dropped_frames == stream.frames_submitted == 30
    assert recognizer.recent_frames()[1][-1] == 29 / 100.0  # the newest frame is always the one processed


def test_an_idle_live_stream_leaves_no_thread_and_wakes_on_the_next_frame(predictor):
    # A browser tab closed without stopping its stream sends no more frames: its worker must not stay behind.
    recognizer = LiveRecognizer(predictor, window_s=1.0)
    stream = LiveStream(recognizer, idle_exit_s=0.2)
    try:
        assert not stream.worker_alive  # nothing to do before the first frame
        frames = noise_frames(2)
        stream.submit(frames[0], 0.0)
        stream.drain()
        for _ in range(100):  # a bound on waiting, not a timing assert
            if not stream.worker_alive:
                break
            threading.Event().wait(0.05)
        assert not stream.worker_alive
        stream.submit(frames[1], 0.1)  # the next frame starts a new worker
        stream.drain()
        assert recognizer.frames_encoded == 2 and stream.error is None
    finally:
        stream.stop()
    assert not stream.worker_alive


def test_unusable_sources_fail_with_one_sentence(tmp_path):
    with pytest.raises(VideoError, match="No camera 57 here"):
        open_source("57")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(VideoError, match="could not be opened"):
        open_source(f"http://127.0.0.1:{port}/live.mp4", open_timeout_s=2)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(VideoError) as info:
        list(open_source(text, realtime=False))
    assert "\n" not in str(info.value)


def test_a_stream_that_breaks_off_mid_way_ends_with_one_sentence(tmp_path, predictor):
    # A server that sends the first part of a real clip's bytes and then hangs up.
    from arlib.video import write_clip

    clip = write_clip(tmp_path / "clip.mkv", noise_frames(40, 120, 160), fps=20, codec="libx264")
    data = clip.read_bytes()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-matroska\r\n\r\n" + data[: len(data) // 2])
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/clip.mkv"
    try:
        with pytest.raises(ArlibError) as info:
            list(run_live(url, predictor, update_every_s=0.2, max_seconds=30))
    finally:
        server.close()
    message = str(info.value)
    assert "broke off" in message or "delivered no frames" in message, message
    assert "\n" not in message


def cli(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    return subprocess.run([sys.executable, "-m", "arlib", *map(str, args)], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@needs_ucf
def test_cli_live_plays_a_file_as_if_live_and_prints_json_lines():
    proc = cli("live", UCF_CLIP, "--checkpoint", CHECKPOINT, "--seconds", "2.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) >= 3
    assert all(r["stream_time_s"] <= 2.5 for r in rows) and rows[0]["stream_time_s"] <= 1.0
    assert {"label", "probability", "top_k", "attention", "processed_fps", "delay_s", "dropped_frames"} <= rows[-1].keys()
    assert rows[-1]["label"] == "Archery"

    proc = cli("live", "57", "--checkpoint", CHECKPOINT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: No camera 57 here") and len(proc.stderr.strip().splitlines()) == 1
