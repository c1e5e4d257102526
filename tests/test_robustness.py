"""Nothing crashes, nothing untrusted runs: bad clips, bad datasets, hostile or wrong checkpoints, bad run names.

Every odd-but-valid clip gets a prediction, every invalid one gets one clear sentence (an ArlibError whose text
is one line, names the file and ends with '.'), from the library and from the CLI, in bounded time and memory.
(Crashes and concurrent writers are in test_crash_recovery.py.)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from synthetic import feature_dataset, index_clip

from arlib import cli
from arlib.checkpoints import load_checkpoint, save_checkpoint
from arlib.demo import render_clip
from arlib.errors import ArlibError, CheckpointError
from arlib.predict import Prediction, Predictor
from arlib.runs import RunDir, validate_run_name
from arlib.train import make_config, train
from arlib.video import write_clip

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "arlib" / "assets" / "demo.safetensors"


def cli_env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "ARLIB_CACHE_DIR": str(tmp_path / "cache"), "ARLIB_DEBUG": ""}


def run_cli(tmp_path: Path, *args, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arlib", *map(str, args)], cwd=cwd or tmp_path,
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def assert_one_sentence(message: str, name: str) -> None:
    """One line, names the file (a line break in the name shows escaped), ends with a full stop."""
    assert "\n" not in message and "\r" not in message, message
    assert name.replace("\n", "\\n") in message, (name, message)
    assert message.endswith("."), message


def assert_cli_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def main_in_process(capsys, *args) -> tuple[int, str, str]:
    """cli.main exactly as `python -m arlib` runs it, without paying a process start per case."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_main_error(result: tuple[int, str, str], *needles: str) -> str:
    code, _, err = result
    return assert_cli_error_line(subprocess.CompletedProcess([], code, "", err), *needles)


# ------------------------------------------------------------------------------------------------- clips


def gif_bomb(path: Path, side: int = 16000) -> Path:
    """A 150-byte animated GIF whose header claims a side x side canvas (a decompression bomb)."""
    frames = [Image.new("P", (2, 2), i) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", side, side)
    path.write_bytes(bytes(data))
    return path


def png_bomb_folder(folder: Path, side: int) -> Path:
    """A frame folder whose one small PNG claims side x side pixels in its header (CRC fixed up)."""
    import zlib

    folder.mkdir()
    buf = io.BytesIO()
    Image.new("L", (2, 2)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    (folder / "1.png").write_bytes(bytes(data))
    return folder


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def damaged(src: Path, dst: Path, at: float, length: int = 2000, truncate: bool = False) -> Path:
    data = bytearray(src.read_bytes())
    cut = int(len(data) * at)
    if truncate:
        dst.write_bytes(bytes(data[:cut]))
    else:
        data[cut : cut + length] = np.random.default_rng(1).bytes(length)
        dst.write_bytes(bytes(data))
    return dst


CLASS = "Drain"  # a demo class the shipped model gets right in every codec (direction-symmetric codecs)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[Path, bool]]:
    """name -> (path, valid). Content is a demo-class clip, so the demo model has something real to see."""
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    content = render_clip(CLASS, seed=123)  # 36 frames, 96 x 96
    ref = write_clip(d / "reference.mp4", content)
    avi = write_clip(d / "reference.avi", content)
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(rng.bytes(100_000))
    (d / "random.avi").write_bytes(rng.bytes(100_000))
    (d / "text.mp4").write_text("this is not a video\n" * 200)
    Image.fromarray(content[0]).save(d / "png.png")
    (d / "png.png").rename(d / "image renamed.mp4")
    Image.fromarray(content[0]).save(d / "jpeg.jpg")
    (d / "jpeg.jpg").rename(d / "jpeg_renamed.mp4")
    (d / "no_frames").mkdir()
    (d / "bad\nname.mp4").write_bytes(b"")
    (d / "frames").mkdir()
    for i, frame in enumerate(content, 1):
        Image.fromarray(frame).save(d / "frames" / f"{i}.jpg", quality=90)
    portrait = np.ascontiguousarray(content[:, :, 16:80])  # 64 wide, 96 high
    small = np.ascontiguousarray(content[:, ::12, ::12])  # 8 x 8
    cases = {
        # invalid: one clear sentence each
        "empty.mp4": (d / "empty.mp4", False),
        "random.mp4": (d / "random.mp4", False),
        "random.avi": (d / "random.avi", False),
        "text.mp4": (d / "text.mp4", False),
        "image renamed.mp4": (d / "image renamed.mp4", False),
        "jpeg_renamed.mp4": (d / "jpeg_renamed.mp4", False),
        "audio_only.mp4": (audio_only(d / "audio_only.mp4"), False),
        "truncated.mp4": (damaged(ref, d / "truncated.mp4", 0.5, truncate=True), False),  # its index is at the end
        "bomb.gif": (gif_bomb(d / "bomb.gif"), False),
        "no_frames": (d / "no_frames", False),
        "missing.mp4": (d / "missing.mp4", False),
        "bad\nname.mp4": (d / "bad\nname.mp4", False),
        "huge_png_frames": (png_bomb_folder(d / "huge_png_frames", 9000), False),  # over arlib's 8192 x 8192
        "pil_bomb_frames": (png_bomb_folder(d / "pil_bomb_frames", 20000), False),  # PIL's own bomb check
        # odd but valid: a prediction each
        "reference.mp4": (ref, True),
        "truncated.avi": (damaged(avi, d / "truncated.avi", 0.5, truncate=True), True),
        "corrupt_middle.avi": (damaged(avi, d / "corrupt_middle.avi", 0.5), True),
        "corrupt_middle.mp4": (damaged(ref, d / "corrupt_middle.mp4", 0.5), True),
        "one_frame.mp4": (write_clip(d / "one_frame.mp4", content[:1]), True),
        "8x8.mp4": (write_clip(d / "8x8.mp4", small), True),
        "portrait.mp4": (write_clip(d / "portrait.mp4", portrait), True),
        "vp9.webm": (write_clip(d / "vp9.webm", content), True),
        "mjpeg.avi": (write_clip(d / "mjpeg.avi", content, codec="mjpeg"), True),
        "animated.gif": (write_clip(d / "animated.gif", content), True),
        "with spaces ünïcødé 日本.mp4": (Path(shutil.copy(ref, d / "with spaces ünïcødé 日本.mp4")), True),
        "two\nlines.mp4": (Path(shutil.copy(ref, d / "two\nlines.mp4")), True),
        "frames": (d / "frames", True),
    }
    return cases


INVALID = ["empty.mp4", "random.mp4", "random.avi", "text.mp4", "image renamed.mp4", "jpeg_renamed.mp4",
           "audio_only.mp4", "truncated.mp4", "bomb.gif", "no_frames", "missing.mp4", "bad\nname.mp4",
           "huge_png_frames", "pil_bomb_frames"]
VALID = ["reference.mp4", "truncated.avi", "corrupt_middle.avi", "corrupt_middle.mp4", "one_frame.mp4", "8x8.mp4",
         "portrait.mp4", "vp9.webm", "mjpeg.avi", "animated.gif", "with spaces ünïcødé 日本.mp4", "two\nlines.mp4",
         "frames"]
SAME_CONTENT = ["corrupt_middle.avi", "corrupt_middle.mp4", "truncated.avi", "vp9.webm", "mjpeg.avi",
                "animated.gif", "with spaces ünïcødé 日本.mp4", "two\nlines.mp4", "frames"]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(DEMO)


@pytest.mark.parametrize("name", INVALID, ids=lambda n: n.replace("\n", "_"))
def test_an_invalid_clip_gets_one_clear_sentence(clips, predictor, name):
    path, _ = clips[name]
    t0 = time.perf_counter()
    with pytest.raises(ArlibError) as caught:
        predictor.predict(path)
    assert_one_sentence(str(caught.value), path.name)
    result = predictor.predict_or_error(path)
    assert result == {"clip": str(path), "error": str(caught.value)}
    assert time.perf_counter() - t0 < 20


def test_decompression_bombs_are_refused_before_decoding(clips, predictor):
    with pytest.raises(ArlibError, match="16000 x 16000"):
        predictor.predict(clips["bomb.gif"][0])
    with pytest.raises(ArlibError, match="9000 x 9000"):
        predictor.predict(clips["huge_png_frames"][0])


@pytest.mark.parametrize("name", VALID, ids=lambda n: n.replace("\n", "_"))
def test_an_odd_but_valid_clip_gets_a_prediction(clips, predictor, name):
    path, _ = clips[name]
    t0 = time.perf_counter()
    result = predictor.predict_or_error(path, top_k=3)
    assert isinstance(result, Prediction), result
    assert result.clip == str(path) and len(result.top_k) == 3
    assert {row["label"] for row in result.top_k} <= set(predictor.classes)
    probabilities = [row["probability"] for row in result.top_k]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert len(result.attention) == len(result.frame_indices) == predictor.seq_len
    assert abs(sum(result.attention) - 1) < 1e-3
    assert all(0 <= i < result.num_frames for i in result.frame_indices)
    assert result.frames.shape[0] == predictor.seq_len and result.frames.dtype == np.uint8
    json.dumps(result.to_json())  # what the CLI prints
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize("name", SAME_CONTENT, ids=lambda n: n.replace("\n", "_"))
def test_the_same_content_in_any_container_or_name_gets_the_same_answer(clips, predictor, name):
    reference = predictor.predict(clips["reference.mp4"][0])
    assert reference.top_k[0]["label"] == CLASS
    result = predictor.predict(clips[name][0])
    assert result.top_k[0]["label"] == CLASS, result.top_k
    if "lines" in name or "spaces" in name:  # byte-identical copies: identical answers
        assert result.top_k == reference.top_k


def test_an_unexpected_exception_is_still_one_sentence_naming_the_clip(clips, predictor, monkeypatch):
    from arlib import video

    def broken(*args, **kwargs):
        raise KeyError("something deep inside\nwith a line break")

    monkeypatch.setattr(video, "read_frames", broken)
    path = clips["reference.mp4"][0]
    result = predictor.predict_or_error(path)
    assert set(result) == {"clip", "error"} and "KeyError" in result["error"]
    assert_one_sentence(result["error"], path.name)


def test_cli_predict_json_gives_one_line_per_clip(clips, tmp_path):
    names = INVALID + VALID
    proc = run_cli(tmp_path, "predict", "--checkpoint", DEMO, "--json", *[clips[n][0] for n in names])
    assert proc.returncode == 1  # some clips failed
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(names), proc.stdout
    for name, line in zip(names, lines):
        path, valid = clips[name]
        row = json.loads(line)
        assert row["clip"] == str(path)
        if valid:
            assert "error" not in row and row["top_k"][0]["label"]
        else:
            assert set(row) == {"clip", "error", "checkpoint"}  # the JSON always names the checkpoint used
            assert_one_sentence(row["error"], path.name)


def test_4k_and_4_minute_clips_in_bounded_time_and_memory(tmp_path):
    # A 3840x2160 clip of 8 frames and a 4-minute 64x48 clip (4 fps, 960 frames, a keyframe every second).
    y = np.arange(2160, dtype=np.uint16)[:, None] // 16
    x = np.arange(3840, dtype=np.uint16)[None, :] // 16
    base = ((x + y) % 256).astype(np.uint8)
    uhd = np.empty((8, 2160, 3840, 3), np.uint8)
    for i in range(8):
        uhd[i, ..., 0], uhd[i, ..., 1], uhd[i, ..., 2] = base + np.uint8(20 * i), base, 255 - base
    write_clip(tmp_path / "uhd 4k.mp4", uhd)
    del uhd, base
    levels = (np.arange(960) * 7 % 250).astype(np.uint8)
    long = np.repeat(levels[:, None, None, None], 48, 1).repeat(64, 2).repeat(3, 3)
    long[:, :, :32, 1] = 255 - long[:, :, :32, 1]
    write_clip(tmp_path / "long 4min.mp4", long, fps=4)
    # Measure the CLI in a child of a child, so the peak is this prediction's alone.
    measure = textwrap.dedent("""
        import resource, subprocess, sys, time
        t0 = time.time()
        proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        print(proc.stdout, end="")
        sys.stderr.write(proc.stderr)
        print("SECONDS", time.time() - t0, "MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.exit(proc.returncode)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-m", "arlib", "predict", "--checkpoint", str(DEMO), "--json",
         str(tmp_path / "uhd 4k.mp4"), str(tmp_path / "long 4min.mp4")],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    *rows, stats = proc.stdout.splitlines()
    uhd_row, long_row = map(json.loads, rows)
    assert uhd_row["num_frames"] == 8 and uhd_row["top_k"]
    assert long_row["num_frames"] == 960 and long_row["duration_s"] == 240.0
    assert long_row["timestamps_s"][-1] > 230  # sampled over the whole four minutes
    _, seconds, _, maxrss_kb = stats.split()
    assert float(seconds) < 60, stats
    assert int(maxrss_kb) < 1.5 * 1024 * 1024, stats


# -------------------------------------------------------------------------------------- the CLI's last line


def test_cli_turns_any_unexpected_exception_into_one_line(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("deep failure\nspanning lines")

    monkeypatch.setattr(cli, "cmd_backbones", boom)
    monkeypatch.delenv("ARLIB_DEBUG", raising=False)
    line = assert_main_error(main_in_process(capsys, "backbones"), "RuntimeError", "deep failure spanning lines",
                             "ARLIB_DEBUG=1")
    assert "Traceback" not in line
    monkeypatch.setenv("ARLIB_DEBUG", "1")  # developers get the traceback back
    with pytest.raises(RuntimeError, match="deep failure"):
        cli.main(["backbones"])


def test_cli_unexpected_exception_in_a_real_process_has_no_traceback(tmp_path):
    code = ("import sys, arlib.cli as c\n"
            "def boom(a): raise ZeroDivisionError('division by zero')\n"
            "c.cmd_backbones = boom\n"
            "sys.exit(c.main(['backbones']))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(tmp_path), capture_output=True, text=True,
                          timeout=60)
    assert_cli_error_line(proc, "ZeroDivisionError")


# ------------------------------------------------------------------------------------------------ datasets


@pytest.fixture
def video_dataset(tmp_path) -> Path:
    """<tmp>/ds/UCF-101/<A|B>/v_X_gNN_c01.avi + split files: 2 classes x 3 groups of tiny clips."""
    root = tmp_path / "ds"
    for cls in ("A", "B"):
        for g in (1, 2, 3):
            index_clip(root / "UCF-101" / cls / f"v_{cls}_g{g:02d}_c01.avi", frames=10, size=32)
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 A\r\n2 B\r\n")
    (splits / "trainlist01.txt").write_text("".join(f"{c}/v_{c}_g0{g}_c01.avi {i}\r\n"
                                                    for i, c in enumerate("AB", 1) for g in (1, 2)))
    (splits / "testlist01.txt").write_text("A/v_A_g03_c01.avi\r\nB/v_B_g03_c01.avi\r\n")
    return root


def _dataset_case(root: Path, case: str) -> tuple[list[str], str]:
    """Break a copy of the dataset one way; returns (train args, text the error must contain)."""
    data, splits = root / "UCF-101", root / "ucfTrainTestlist"
    if case == "missing root":
        return ["--data", root / "nope"], str(root / "nope")
    if case == "missing splits folder":
        return ["--data", data, "--splits", root / "nosplits"], str(root / "nosplits")
    if case == "missing split file":
        (splits / "testlist01.txt").unlink()
        return ["--data", data], "testlist01.txt"
    if case == "malformed split file":
        (splits / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 1\r\nthis line is garbage\r\n")
        return ["--data", data], "trainlist01.txt line 2"
    if case == "malformed class index":
        (splits / "classInd.txt").write_text("A 1\r\n")
        return ["--data", data], "classInd.txt line 1"
    if case == "unknown class":
        return ["--data", data, "--classes", "A,Zebra"], "Zebra"
    if case in ("empty class folders", "empty class folders, no split files"):
        if case.endswith("no split files"):
            shutil.rmtree(splits)
        for cls in ("A", "B"):
            shutil.rmtree(data / cls)
            (data / cls).mkdir()
        return ["--data", data], str(data)
    if case == "split with no clips on disk":
        (splits / "trainlist01.txt").write_text("A/v_A_g09_c01.avi 1\r\nB/v_B_g09_c01.avi 2\r\n")
        return ["--data", data], "trainlist01.txt"
    raise AssertionError(case)


DATASET_CASES = ["missing root", "missing splits folder", "missing split file", "malformed split file", "malformed class index",
                 "unknown class", "empty class folders", "empty class folders, no split files",
                 "split with no clips on disk"]


@pytest.mark.parametrize("case", DATASET_CASES)
def test_a_broken_dataset_is_one_line_naming_the_path_and_leaves_no_run(video_dataset, tmp_path, capsys, case):
    args, needle = _dataset_case(video_dataset, case)
    out = tmp_path / "runs" / "r"
    line = assert_main_error(main_in_process(capsys, "train", *args, "--out", out, "--quiet"), needle)
    assert len(line) < 600
    assert not out.exists()  # nothing to clean up before retrying with the same --out


def test_a_broken_dataset_in_a_real_process(video_dataset, tmp_path):
    proc = run_cli(tmp_path, "train", "--data", video_dataset / "nope", "--out", tmp_path / "runs" / "r", "--quiet")
    assert_cli_error_line(proc, str(video_dataset / "nope"), "pass the folder")


# --------------------------------------------------------------------------------------------- run names


@pytest.mark.parametrize("out", ["runs/../../escaped", "runs/with space", "runs/new\nline", "runs/-dash",
                                 "runs/" + "x" * 65, "runs/ünï", "runs/.."])
def test_bad_run_names_are_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    features, splits = feature_dataset(tmp_path / "ds")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    line = assert_main_error(main_in_process(capsys, "train", "--features", features, "--splits", splits, "--out",
                                             out, "--quiet"))
    assert "Run" in line
    assert not (tmp_path / "runs").exists() and sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_run_name_validation():
    for good in ("a", "run-1.2_x", "R" * 64):
        assert validate_run_name(good) == good
    for bad in ("", "a b", "a/b", "..", "a..b", ".hidden", "x\n", "ü", "R" * 65):
        with pytest.raises(ArlibError) as caught:
            validate_run_name(bad)
        assert "\n" not in str(caught.value)


def test_the_climbing_out_run_path_in_a_real_process(tmp_path):
    features, splits = feature_dataset(tmp_path / "ds")
    (tmp_path / "work").mkdir()
    proc = run_cli(tmp_path, "train", "--features", features, "--splits", splits, "--out", "runs/../../x",
                   "--quiet", cwd=tmp_path / "work")
    assert_cli_error_line(proc, "..")
    assert not (tmp_path / "x").exists() and not (tmp_path / "work" / "runs").exists()


# -------------------------------------------------------------------------------- unreadable training clips


SMALL_VIDEO = dict(latent_dim=16, hidden_dim=16, head_dim=16, batch_size=2, seq_len=4, cache_frames=6,
                   flip=False, epochs=2, lr=3e-3)


def test_an_unreadable_clip_is_skipped_counted_and_named_in_training_and_evaluation(video_dataset, tmp_path):
    bad = video_dataset / "UCF-101" / "B" / "v_B_g03_c01.avi"  # a test clip: reported every epoch and by evaluate
    bad.write_bytes(np.random.default_rng(0).bytes(30_000))
    truncated = video_dataset / "UCF-101" / "A" / "v_A_g02_c01.avi"  # a training clip with its tail cut off
    data = truncated.read_bytes()
    truncated.write_bytes(data[: data.index(b"movi") + (data.rindex(b"idx1") - data.index(b"movi")) * 2 // 3])
    cache = tmp_path / "cache"
    cfg = make_config(None, data=str(video_dataset / "UCF-101"), cache_dir=str(cache), **SMALL_VIDEO)
    result = train(cfg, tmp_path / "runs" / "r", progress=False)
    assert result["state"] == "finished"
    rows = RunDir(tmp_path / "runs" / "r").read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert row["clips_skipped"] == 1 and row["num_test_clips"] == 1  # the test list's readable clip
        (skipped,) = row["skipped"]
        assert skipped["clip"] == str(bad)
        assert_one_sentence(skipped["reason"], bad.name)
    assert "v_B_g03_c01.avi" in (tmp_path / "runs" / "r" / "train.log").read_text()

    best = tmp_path / "runs" / "r" / "checkpoints" / "best.safetensors"
    proc = run_cli(tmp_path, "evaluate", "--checkpoint", best, "--data", video_dataset / "UCF-101", "--cache-dir",
                   cache, "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert report["num_clips"] == 1 and report["skipped"] == report["clips_skipped"] == 1
    assert report["skipped_clips"][0]["clip"] == str(bad)


def test_bad_feature_files_are_skipped_not_fatal(tmp_path):
    features, splits = feature_dataset(tmp_path / "ds")
    np.save(features / "Alpha" / "v_Alpha_g01_c01.npy", np.full((20, 16), np.nan, np.float32))
    (features / "Beta" / "v_Beta_g01_c01.npy").write_bytes(b"")  # np.load raises EOFError here
    np.save(features / "Gamma" / "v_Gamma_g01_c01.npy", np.zeros((20, 7), np.float32))  # other width
    for cls in ("Beta", "Gamma"):  # most val clips have another width: still the training width wins
        for c in (1, 2):
            np.save(features / cls / f"v_{cls}_g04_c0{c}.npy", np.zeros((20, 9), np.float32))
    cfg = make_config(None, features=str(features), splits=str(splits), latent_dim=16, hidden_dim=16, head_dim=16,
                      batch_size=4, seq_len=8, epochs=1)
    assert train(cfg, tmp_path / "r", progress=False)["state"] == "finished"
    row = RunDir(tmp_path / "r").read_metrics()[0]
    reasons = {Path(s["clip"]).name: s["reason"] for s in row["skipped"]}
    assert row["clips_skipped"] == 7 and set(reasons) == {
        "v_Alpha_g01_c01.npy", "v_Beta_g01_c01.npy", "v_Gamma_g01_c01.npy", "v_Beta_g04_c01.npy", "v_Beta_g04_c02.npy",
        "v_Gamma_g04_c01.npy", "v_Gamma_g04_c02.npy"}
    assert "NaN" in reasons["v_Alpha_g01_c01.npy"] and "9-d features, not 16-d" in reasons["v_Gamma_g04_c01.npy"]
    assert row["num_test_clips"] == 2  # Alpha's two test clips, the ones with the training width
    for name, reason in reasons.items():
        assert_one_sentence(reason, name)


# ----------------------------------------------------------------------------------- hostile or wrong files


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickle_checkpoints_are_refused_by_the_cli_and_run_no_code(video_dataset, tmp_path):
    import torch

    work = tmp_path / "work"
    work.mkdir()
    torch.save({"model": _Payload()}, work / "evil.pt")
    (work / "evil.safetensors").write_bytes(pickle.dumps(_Payload()))
    clip = video_dataset / "UCF-101" / "A" / "v_A_g01_c01.avi"
    proc = run_cli(tmp_path, "predict", "--checkpoint", "evil.pt", "--json", clip, cwd=work)
    assert_cli_error_line(proc, "evil.pt", "pickle")
    proc = run_cli(tmp_path, "evaluate", "--checkpoint", "evil.safetensors", "--data", video_dataset / "UCF-101",
                   "--json", cwd=work)
    assert_cli_error_line(proc, "evil.safetensors", "pickle")
    assert not (work / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def _edited_demo(tmp_path: Path, name: str, edit) -> Path:
    ckpt = load_checkpoint(DEMO)
    edit(ckpt.meta)
    return save_checkpoint(ckpt, tmp_path / name)


def test_truncated_corrupt_and_mismatched_checkpoints_are_explained(tmp_path, capsys, clips):
    data = DEMO.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    corrupt[8:40] = b"\xff" * 32  # inside the JSON header
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(corrupt))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    cases = {
        "truncated.safetensors": "truncated",
        "corrupt.safetensors": "corrupt.safetensors",
        "empty.safetensors": "empty",
        "missing.safetensors": "does not exist",
        _edited_demo(tmp_path, "resnet152.safetensors", lambda m: m.update(backbone="resnet152")).name: "resnet152",
        _edited_demo(tmp_path, "unknown_backbone.safetensors", lambda m: m.update(backbone="vit_huge")).name:
            "vit_huge",
        _edited_demo(tmp_path, "dim.safetensors", lambda m: m["model"].update(feature_dim=2048)).name: "2048-d",
        _edited_demo(tmp_path, "no_seq_len.safetensors", lambda m: m.pop("seq_len")).name: "seq_len",
        _edited_demo(tmp_path, "no_classes.safetensors", lambda m: m.pop("classes")).name: "classes",
        _edited_demo(tmp_path, "features_only.safetensors", lambda m: m.update(backbone=None)).name:
            "precomputed features",
    }
    clip = clips["reference.mp4"][0]
    for name, needle in cases.items():
        with pytest.raises(ArlibError) as caught:
            Predictor(tmp_path / name)
        assert_one_sentence(str(caught.value), name)
        assert needle in str(caught.value), str(caught.value)
        assert_main_error(main_in_process(capsys, "predict", "--checkpoint", tmp_path / name, "--json", clip),
                          name, needle)


def test_a_checkpoint_for_other_classes_is_explained_by_evaluate(video_dataset, tmp_path, capsys):
    line = assert_main_error(main_in_process(capsys, "evaluate", "--checkpoint", DEMO, "--data",
                                             video_dataset / "UCF-101", "--json"), "demo.safetensors", "Grow")
    assert "trained on classes" in line
    with pytest.raises(CheckpointError, match="classes"):
        from arlib.evaluate import evaluate_checkpoint

        evaluate_checkpoint(DEMO, data=video_dataset / "UCF-101", classes="A,B", progress=False)


def test_evaluate_on_a_split_with_no_clips_on_disk_says_what_to_do(tmp_path, capsys):
    features, splits = feature_dataset(tmp_path / "ds")
    cfg = make_config(None, features=str(features), splits=str(splits), latent_dim=16, hidden_dim=16, head_dim=16,
                      batch_size=4, seq_len=8, epochs=1)
    train(cfg, tmp_path / "r", progress=False)
    (splits / "testlist01.txt").write_text("Alpha/v_Alpha_g09_c01.avi\r\n")  # listed, not on disk
    line = assert_main_error(main_in_process(capsys, "evaluate", "--checkpoint", tmp_path / "r/checkpoints/best.safetensors",
                                             "--features", features, "--splits", splits, "--json"),
                             str(features), "--subset val")
    assert "no clips on disk" in line


def test_the_feature_cache_skips_a_clip_whatever_goes_wrong_with_it(tmp_path, monkeypatch):
    from arlib import video
    from arlib.features import FeatureCache

    good, odd = (index_clip(tmp_path / f"{n}.avi", frames=8, size=32) for n in ("good", "odd"))
    real_probe = video.probe

    def probe(path):
        if Path(path).name == "odd.avi":
            raise IndexError("list index out of range")  # a bug deep in some library, say
        return real_probe(path)

    monkeypatch.setattr(video, "probe", probe)
    missing = tmp_path / "deleted since the dataset was listed.avi"
    done, failed = FeatureCache("efficientnet_lite0", tmp_path / "cache", cache_frames=4).ensure(
        [str(odd), str(missing), str(good)], ["center"], progress=False)
    assert list(done) == [str(good)] and list(failed) == [str(odd), str(missing)]
    assert "IndexError" in failed[str(odd)]
    assert_one_sentence(failed[str(odd)], "odd.avi")
    assert_one_sentence(failed[str(missing)], missing.name)


def test_evaluate_explains_a_checkpoint_for_another_backbone_before_decoding_anything(tmp_path, capsys, monkeypatch):
    from arlib import video
    from arlib.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "demo", clips_per_class=2, clips_per_group=1, test_groups=1, size=32,
                             num_frames=8) / "UCF-101"
    monkeypatch.setattr(video, "read_frames", lambda *a, **k: pytest.fail("decoded a clip"))
    cases = {
        _edited_demo(tmp_path, "resnet152.safetensors", lambda m: m.update(backbone="resnet152")): "resnet152",
        _edited_demo(tmp_path, "vit.safetensors", lambda m: m.update(backbone="vit_huge")): "vit_huge",
        _edited_demo(tmp_path, "dim.safetensors", lambda m: m["model"].update(feature_dim=2048)): "2048-d",
    }
    for path, needle in cases.items():
        assert_main_error(main_in_process(capsys, "evaluate", "--checkpoint", path, "--data", data, "--cache-dir",
                                          tmp_path / "cache", "--json"), path.name, needle)


def test_an_unexpected_training_failure_is_one_line_pointing_at_the_log(tmp_path, capsys, monkeypatch):
    from arlib import train as train_module

    def kaboom(self, resume):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(train_module.Trainer, "_fit", kaboom)
    monkeypatch.delenv("ARLIB_DEBUG", raising=False)
    features, splits = feature_dataset(tmp_path / "ds")
    out = tmp_path / "runs" / "r"
    line = assert_main_error(main_in_process(capsys, "train", "--features", features, "--splits", splits, "--out", out,
                                             "--quiet"), "RuntimeError: kaboom", f"see {out / 'train.log'}")
    status = RunDir(out).read_status()
    assert status["state"] == "failed" and status["error"] == "RuntimeError: kaboom"
    assert "Traceback" in (out / "train.log").read_text() and "Traceback" not in line


def test_a_reader_that_goes_away_is_not_a_traceback(clips, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "arlib", "predict", "--checkpoint", str(DEMO), "--json",
                             str(clips["reference.mp4"][0]), str(clips["vp9.webm"][0])],
                            cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -0`: the first print hits a closed pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and err == b"", err  # quiet, like any Unix tool whose reader left
