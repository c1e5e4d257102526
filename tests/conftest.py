"""Fixtures shared by several test files, made once per session and then only read.

The demo dataset and its backbone features cost seconds to minutes on the 2-core machine each time they are
made; one copy serves every module. Tests must not write into these folders (copy what you change).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import moving_square_clip


@pytest.fixture(scope="session")
def motion_run(tmp_path_factory):
    """A tiny two-class video dataset (square moving right vs standing still), trained with --motion: a
    two-stream checkpoint for tests/test_motion.py and tests/test_live.py. Returns (root, TrainConfig); the
    checkpoint is root/run/checkpoints/best.safetensors."""
    from arlib.train import make_config, train

    root = tmp_path_factory.mktemp("motion")
    for name, step in (("Moving", 6), ("Still", 0)):
        (root / "data" / name).mkdir(parents=True)
        for g in range(1, 5):
            moving_square_clip(root / "data" / name / f"v_{name}_g{g:02d}_c01.mp4", step=step, seed=g)
    cfg = make_config(None, data=str(root / "data"), cache_dir=str(root / "cache"), motion=True, epochs=2,
                      latent_dim=8, hidden_dim=8, head_dim=8, batch_size=4, seq_len=6, cache_frames=8,
                      val_fraction=0.25)
    result = train(cfg, root / "run", progress=False)
    assert result["state"] == "finished"
    return root, cfg



@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """An ARLIB_DATA_DIR that already holds the demo dataset (<dir>/demo), so pages that generate it on first
    use find it ready; the clips are <dir>/demo/UCF-101/<Class>/*.avi."""
    from arlib.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("session-data")
    make_demo_dataset(root / "demo")
    return root


@pytest.fixture(scope="session")
def feature_cache_dir(tmp_path_factory) -> Path:
    """One feature cache for the session's demo-data trainings and servers: the demo clips go through the
    backbone once, not once per module (the cache is keyed by clip content, so copies of a clip hit too)."""
    return tmp_path_factory.mktemp("session-features")


@pytest.fixture(scope="session")
def demo_runs(demo_data_dir, feature_cache_dir, tmp_path_factory) -> Path:
    """A runs folder holding one finished 2-epoch demo run, 'demo2', launched the way the Train page does."""
    import os

    from arlib import jobs

    runs = tmp_path_factory.mktemp("session-runs")
    data = demo_data_dir / "demo" / "UCF-101"
    previous = os.environ.get("ARLIB_CACHE_DIR")
    os.environ["ARLIB_CACHE_DIR"] = str(feature_cache_dir)  # the trainer process inherits it
    try:
        run = jobs.launch(runs, "demo2", jobs.TrainOptions(data=str(data), preset="demo", epochs=2))
        state = jobs.wait_until_done(run, 300)
    finally:
        if previous is None:
            os.environ.pop("ARLIB_CACHE_DIR", None)
        else:
            os.environ["ARLIB_CACHE_DIR"] = previous
    assert state["state"] == "finished", run.log_tail()
    return runs


@pytest.fixture(scope="session")
def ucf_cache_dir(tmp_path_factory) -> Path:
    """One feature cache for the tests that train on the real ../shared/ucf101-mini clips at the same cache
    frame count (test_background_ucf, test_ucf_integration): each real clip goes through the backbone once."""
    return tmp_path_factory.mktemp("session-ucf-features")
