"""torchrun splits the cache fill across ranks (gloo, 2 processes on this CPU); training then finds it all."""

import json
import os
import subprocess
import sys
from pathlib import Path

from synthetic import index_clip

from arlib.distributed import Rank
from arlib.features import FeatureCache

REPO = Path(__file__).resolve().parents[1]


def test_ranks_take_interleaved_disjoint_shares():
    clips = list(range(7))
    shares = [Rank(r, 3).share(clips) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert Rank().share(clips) == clips


def test_torchrun_two_ranks_fill_one_cache(tmp_path):
    data = tmp_path / "UCF-101"
    for i, name in enumerate(("Alpha", "Beta")):
        for g in range(1, 4):  # distinct lengths: distinct clips (the cache keys clips by content)
            index_clip(data / name / f"v_{name}_g{g:02d}_c01.mp4", frames=9 + 3 * i + g, size=64)
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "arlib", "cache", "--data", str(data), "--cache-dir", str(cache_dir), "--cache-frames", "8",
         "--device", "cpu"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 alone reports
    summary = json.loads(lines[0])
    assert summary["clips"] == 6 and summary["failed"] == {}
    ranks = summary["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and [r["clips"] for r in ranks] == [3, 3]
    # each rank encoded its own share, no clip twice: 8 frames of 3 clips, in the centre and motion views
    assert all(r["frames_encoded"] == 3 * 8 * 2 for r in ranks)

    cache = FeatureCache(root=cache_dir, cache_frames=8)
    clips = sorted(str(p) for p in data.rglob("*.mp4"))
    done, failed = cache.ensure(clips, ["center", "motion"], progress=False)
    assert not failed and len(done) == 6
    assert cache.backbone_frames == 0  # everything was already there


def test_train_refuses_to_run_as_several_ranks(monkeypatch, capsys):
    from arlib import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.main(["train", "--data", "nowhere", "--out", "runs/never"]) == 2
    assert "use torchrun for `arlib cache`" in capsys.readouterr().err
