"""Fixtures shared by several test files, made once per session."""

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
