"""Integration on real UCF-101 clips from ../shared/ucf101-mini (skipped cleanly when it is absent)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UCF = REPO.parent / "shared" / "ucf101-mini"
pytestmark = pytest.mark.skipif(not (UCF / "UCF-101").is_dir(), reason=f"real UCF-101 clips not found at {UCF}")


def cli(env, *args):
    proc = subprocess.run([sys.executable, "-m", "arlib", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


FRAMES = 24  # as test_background_ucf, whose training caches these clips' features in the session's cache


def test_train_briefly_on_real_clips_then_predict_a_real_clip(tmp_path, ucf_cache_dir):
    env = {**os.environ, "ARLIB_CACHE_DIR": str(ucf_cache_dir)}
    run = tmp_path / "runs" / "ucf3"
    # The first 3 classes of classInd, official split 1, default backbone (EfficientNet-Lite0).
    # The mini copy holds no split-1 test clips, so whole groups of the training clips are held out.
    cli(env, "train", "--data", UCF / "UCF-101", "--classes", "3", "--epochs", "3", "--hidden-dim", "128",
        "--latent-dim", "128", "--head-dim", "128", "--lr", "1e-3", "--cache-frames", FRAMES, "--seq-len", FRAMES,
        "--out", run, "--quiet")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["classes"] == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    assert rows[-1]["clips_skipped"] == 0 and rows[-1]["num_val_clips"] > 0
    assert rows[-1]["train_top1"] > 0.6  # real ImageNet features separate these classes quickly

    clip = UCF / "UCF-101" / "Archery" / "v_Archery_g16_c05.avi"  # an original XviD AVI
    out = json.loads(cli(env, "predict", "--checkpoint", run / "checkpoints" / "best.safetensors", "--json",
                         "--top-k", "3", clip))
    assert out["clip"] == str(clip)
    assert [r["label"] for r in out["top_k"]][0] in ("ApplyEyeMakeup", "ApplyLipstick", "Archery")
    assert abs(sum(r["probability"] for r in out["top_k"]) - 1) < 1e-4  # 3 classes, top-3 is everything
    assert len(out["attention"]) == len(out["frame_indices"]) == len(out["timestamps_s"]) == FRAMES  # seq_len
    assert abs(sum(out["attention"]) - 1) < 1e-3
    assert out["frame_indices"] == sorted(out["frame_indices"]) and out["frame_indices"][-1] < out["num_frames"]
    assert 20 < out["fps"] < 31 and out["duration_s"] > 1
    assert out["timestamps_s"][-1] <= out["duration_s"]
    assert all(v >= 0 for v in out["seconds"].values())
