"""arlib.demo: the synthetic time-reversed-twins dataset in UCF-101 layout."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from arlib import demo
from arlib.demo import DEMO_CLASSES, make_demo_dataset, render_clip
from arlib.errors import DatasetError
from arlib.video import probe, read_frames

SMALL = dict(clips_per_class=4, clips_per_group=2, test_groups=1, size=32, num_frames=8)


@pytest.fixture(scope="module")
def dataset(demo_data_dir) -> Path:
    """The default demo dataset: the session's (conftest), built once (it takes a couple of seconds)."""
    return demo_data_dir / "demo"


def read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n"), f"{path.name} must use CRLF"
    return raw.decode().split("\r\n")[:-1]


def test_classes_are_twins_in_class_index_order(dataset):
    assert DEMO_CLASSES == ["Grow", "Shrink", "FadeIn", "FadeOut", "FillUp", "Drain", "Colorize", "Decolorize"]
    lines = read_lines(dataset / "ucfTrainTestlist" / "classInd.txt")
    assert lines == [f"{i} {name}" for i, name in enumerate(DEMO_CLASSES, 1)]


def test_layout_and_clips(dataset):
    for name in DEMO_CLASSES:
        clips = sorted((dataset / "UCF-101" / name).iterdir())
        assert len(clips) == 12
        assert all(re.fullmatch(rf"v_{name}_g\d\d_c\d\d\.avi", clip.name) for clip in clips)
    info = probe(dataset / "UCF-101" / "Grow" / "v_Grow_g01_c01.avi")
    assert (info.num_frames, info.width, info.height, info.fps, info.codec) == (36, 96, 96, 12.0, "mpeg4")


def test_split_lists_hold_whole_groups(dataset):
    lists = dataset / "ucfTrainTestlist"
    train = [line.split(" ") for line in read_lines(lists / "trainlist01.txt")]
    test = read_lines(lists / "testlist01.txt")
    assert all(len(entry) == 2 and entry[0].endswith(".avi") for entry in train)
    assert all(" " not in entry and entry.endswith(".avi") for entry in test)
    for entry, label in train:
        assert DEMO_CLASSES[int(label) - 1] == entry.split("/")[0]
    listed = sorted([entry for entry, _ in train] + test)
    on_disk = sorted(str(p.relative_to(dataset / "UCF-101")) for p in (dataset / "UCF-101").glob("*/*.avi"))
    assert listed == on_disk
    assert len(test) == len(listed) // 3  # 2 of 6 groups per class

    groups = defaultdict(set)  # (class, group) -> {"train", "test"}
    for split, entries in (("train", [entry for entry, _ in train]), ("test", test)):
        for entry in entries:
            groups[re.search(r"v_(\w+)_g(\d+)_", entry).groups()].add(split)
    assert all(len(splits) == 1 for splits in groups.values()), "a group straddles train and test"


def test_rebuild_is_skipped_when_parameters_match(dataset):
    manifest = dataset / demo.MANIFEST
    before = manifest.stat().st_mtime_ns
    started = time.perf_counter()
    assert make_demo_dataset(dataset) == dataset
    assert time.perf_counter() - started < 0.5
    assert manifest.stat().st_mtime_ns == before
    assert json.loads(manifest.read_text())["clips_per_class"] == 12


def test_other_parameters_replace_the_old_dataset(tmp_path):
    out = tmp_path / "data"
    make_demo_dataset(out, **SMALL)
    make_demo_dataset(out, **{**SMALL, "clips_per_class": 6})
    assert len(list((out / "UCF-101" / "Grow").iterdir())) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no staging or old copies left behind


def test_deterministic_for_a_seed(tmp_path):
    a, b = make_demo_dataset(tmp_path / "a", **SMALL), make_demo_dataset(tmp_path / "b", **SMALL)
    for name in ("trainlist01.txt", "testlist01.txt"):
        assert (a / "ucfTrainTestlist" / name).read_bytes() == (b / "ucfTrainTestlist" / name).read_bytes()
    clip = Path("UCF-101/FillUp/v_FillUp_g02_c01.avi")
    assert np.array_equal(read_frames(a / clip, range(8)), read_frames(b / clip, range(8)))
    assert np.array_equal(render_clip("Grow", 7), render_clip("Grow", 7))
    assert not np.array_equal(render_clip("Grow", 7), render_clip("Grow", 8))


def test_cli_with_few_clips_per_class_works_or_says_why_in_one_sentence(tmp_path, capsys):
    """2-4 clips a class (once 'unexpected ValueError'): groups of one clip, the last one the test list, the
    rest to train on; 1 clip a class cannot be both: one sentence, exit status 2, nothing written."""
    from arlib.cli import main

    assert main(["demo-data", "--out", str(tmp_path / "two"), "--clips-per-class", "2"]) == 0
    lists = tmp_path / "two" / "ucfTrainTestlist"
    train, test = read_lines(lists / "trainlist01.txt"), read_lines(lists / "testlist01.txt")
    assert [entry.split("/")[0] for entry in test] == DEMO_CLASSES
    assert [entry.split("/")[0] for entry, _ in map(str.split, train)] == DEMO_CLASSES
    assert all("_g01_" in line for line in train) and all("_g02_" in entry for entry in test)
    capsys.readouterr()
    assert main(["demo-data", "--out", str(tmp_path / "one"), "--clips-per-class", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "error: The demo dataset needs at least 2 clips per class (one to train on, one to test), got 1.\n"
    assert not (tmp_path / "one").exists()


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    written = []

    def failing_write(path, frames, fps, codec):
        written.append(path)
        if len(written) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(demo, "write_clip", failing_write)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path / "data", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match=str(tmp_path)):
        make_demo_dataset(tmp_path, **SMALL)
    assert (tmp_path / "notes.txt").exists()


# ---------------------------------------------------------------------------------------------- twin property


@pytest.mark.parametrize("forward, backward", [DEMO_CLASSES[i : i + 2] for i in range(0, 8, 2)])
def test_twin_is_the_same_kind_of_clip_played_backwards(forward, backward):
    frames = render_clip(forward, seed=3, size=48, num_frames=12)
    assert frames.shape == (12, 48, 48, 3) and frames.dtype == np.uint8
    assert np.array_equal(render_clip(backward, seed=3, size=48, num_frames=12), frames[::-1])
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 20  # something visibly happens


def centre_coverage(frames: np.ndarray) -> np.ndarray:
    """Per frame: share of pixels close to the colour at the centre (the disc's colour for Grow/Shrink)."""
    centre = frames[:, 48 - 4 : 48 + 4, 48 - 4 : 48 + 4].reshape(len(frames), -1, 3).mean(axis=1)
    distance = np.linalg.norm(frames.astype(float) - centre[:, None, None, :], axis=3)
    return (distance < 40).mean(axis=(1, 2))


def brightness(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(axis=1)


@pytest.mark.parametrize(
    "forward, backward, curve",
    [("Grow", "Shrink", centre_coverage), ("FadeIn", "FadeOut", brightness)],
)
def test_twins_run_in_opposite_directions_in_the_files(dataset, forward, backward, curve):
    for name, sign in ((forward, 1), (backward, -1)):
        for clip in sorted((dataset / "UCF-101" / name).iterdir())[:3]:
            values = curve(read_frames(clip, range(36)))
            assert sign * (values[-4:].mean() - values[:4].mean()) > 0.3 * np.ptp(values), clip.name
            assert sign * np.corrcoef(np.arange(36), values)[0, 1] > 0.8, clip.name
