"""Attention finds the action: train with background footage on real UCF-101 clips, then splice held-out
clips between held-out background into real video files and ask where the attention went.

6 of the 9 classes are the targets, the other 3 the background; whole groups are held out of training
(clips and background alike). Skipped cleanly when ../shared/ucf101-mini is absent.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"
pytestmark = pytest.mark.skipif(not UCF.is_dir(), reason=f"real UCF-101 clips not found at {UCF}")

TARGETS = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "BandMarching"]
BACKGROUND = ["BaseballPitch", "Basketball", "BasketballDunk"]
HELD_OUT_GROUPS = {"g09", "g11", "g15", "g21", "g25"}  # every class keeps clips on both sides
# Cached frames per clip = sequence length: 30 % of the backbone work of the default 80. test_ucf_integration
# trains at the same count on the session's cache (conftest), so it reuses these clips' features.
FRAMES = 24


def _group(path: Path) -> str:
    return path.stem.split("_")[-2]


def _clips(classes, held_out: bool) -> list[Path]:
    return [p for c in classes for p in sorted((UCF / c).iterdir()) if (_group(p) in HELD_OUT_GROUPS) == held_out]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, ucf_cache_dir):
    root = tmp_path_factory.mktemp("background_ucf")
    (root / "cache").symlink_to(ucf_cache_dir)  # the session's features of the real clips (conftest)
    # UCF layout with split files of our own: the held-out groups are the test list (only ever reported by
    # the trainer, which carves its validation from the training groups).
    splits = root / "data" / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(TARGETS)))
    for name, held_out in (("trainlist01.txt", False), ("testlist01.txt", True)):
        clips = _clips(TARGETS, held_out)
        for clip in clips:
            _link(clip, root / "data" / clip.parent.name / clip.name)
        (splits / name).write_text("".join(f"{c.parent.name}/{c.stem}.avi {TARGETS.index(c.parent.name) + 1}\n"
                                           for c in clips))
    for i, clip in enumerate(_clips(BACKGROUND, held_out=False)):  # background in a layout of its own
        _link(clip, root / "background" / f"batch{i % 2}" / "nested" / clip.name)
    env = {**os.environ, "ARLIB_CACHE_DIR": str(root / "cache"), "OMP_NUM_THREADS": "2"}
    run = root / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "arlib", "train", "--data", root / "data", "--background", root / "background",
         "--cache-frames", str(FRAMES), "--seq-len", str(FRAMES), "--out", run, "--quiet"],
        check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, run


def test_training_reports_attention_on_the_action_every_epoch(trained):
    _, run = trained
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    masses = [r["val_attention_on_action"] for r in rows]
    assert len(masses) == len(rows) > 1 and all(0 <= m <= 1 for m in masses)
    assert masses[-1] > 1.5 / 3  # uniform attention would put a third on the action's third


def test_attention_finds_held_out_actions_spliced_into_real_videos(trained):
    from arlib.background import splice_videos
    from arlib.predict import Predictor
    from arlib.video import probe

    root, run = trained
    predictor = Predictor(run / "checkpoints" / "best.safetensors")
    backgrounds = _clips(BACKGROUND, held_out=True)
    rng = np.random.default_rng(0)
    masses, shares, spliced_hits, plain_hits = [], [], [], []
    for action in _clips(TARGETS, held_out=True):
        label = action.parent.name
        order = rng.permutation(len(backgrounds))  # two clips a side: held-out background clips are short
        before, after = [backgrounds[i] for i in order[:2]], [backgrounds[i] for i in order[2:4]]
        duration = probe(action).duration_s
        share = rng.uniform(0.3, 0.5)  # the action fills 30-50 % of the spliced video
        before_s = duration * (1 / share - 1) * rng.uniform(0.2, 0.8)
        after_s = duration * (1 / share - 1) - before_s
        out = root / "spliced" / f"{action.stem}.mp4"
        first, end = splice_videos(action, before, after, out, max_before_s=before_s, max_after_s=after_s)
        spliced = predictor.predict(out, top_k=1)
        frames = np.array(spliced.frame_indices)
        on_action = (frames >= first) & (frames < end)
        masses.append(float(np.sum(np.array(spliced.attention)[on_action])))
        shares.append(on_action.mean())  # what uniform attention would put there
        spliced_hits.append(spliced.top_k[0]["label"] == label)
        plain_hits.append(predictor.predict(action, top_k=1).top_k[0]["label"] == label)
    print(f"attention on action {np.mean(masses):.3f} (uniform: {np.mean(shares):.3f}) over {len(masses)} clips; top-1 spliced "
          f"{np.mean(spliced_hits):.3f} vs plain {np.mean(plain_hits):.3f}")
    assert np.mean(shares) < 0.5
    assert np.mean(masses) >= 0.70
    assert np.mean(spliced_hits) >= np.mean(plain_hits) - 0.10


def test_a_long_video_puts_the_attention_on_its_action_third(trained):
    """predict --json on a 20-40 s video whose action fills about a third: the mass lies on that third, in the
    plain prediction and in the whole-clip pass that a windowed prediction (the studio's timeline) adds."""
    from arlib.background import splice_videos
    from arlib.video import probe

    root, run = trained
    action = UCF / "BabyCrawling" / "v_BabyCrawling_g15_c01.mp4"  # held out, 8 s: a third of 24 s
    backgrounds = _clips(BACKGROUND, held_out=True)
    duration = probe(action).duration_s
    out = root / "long.mp4"
    first, end = splice_videos(action, backgrounds[: len(backgrounds) // 2], backgrounds[len(backgrounds) // 2:], out,
                               max_before_s=duration, max_after_s=duration)
    assert 20 <= probe(out).duration_s <= 40
    env = {**os.environ, "ARLIB_CACHE_DIR": str(root / "cache")}
    for windows in (1, 3):
        proc = subprocess.run([sys.executable, "-m", "arlib", "predict", "--checkpoint", run / "checkpoints" / "best.safetensors",
                               "--json", "--windows", str(windows), out], check=False, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        where = result["whole_clip"] if windows > 1 else result
        frames = np.array(where["frame_indices"])
        on_action = (frames >= first) & (frames < end)
        mass = float(np.sum(np.array(where["attention"])[on_action]))
        print(f"long video, {windows} window(s): attention on the action {mass:.3f} (its share of the frames "
              f"{on_action.mean():.3f})")
        assert on_action.mean() < 0.45 and mass >= 0.6
