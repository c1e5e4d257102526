"""One source of truth for features (issue 13): a run does not depend on whether the cache was warm, and
`predict` on a clip gives exactly the probabilities `evaluate` gives for it."""

import numpy as np
import pytest

from arlib.checkpoints import load_checkpoint
from arlib.evaluate import evaluate_checkpoint
from arlib.predict import Predictor
from arlib.runs import RunDir
from arlib.train import make_config, train
from arlib.video import write_clip

SMALL_VIDEO = dict(latent_dim=16, hidden_dim=16, head_dim=16, batch_size=2, seq_len=4, cache_frames=6,
                   epochs=3, lr=1e-2, val_fraction=0.25, seed=3)


def coloured_clip(path, colour: int, frames: int, seed: int):
    """Class A clips are reddish, class B bluish, each with its own brightness ramp and noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 200, frames)[:, None, None, None]
    data = np.zeros((frames, 32, 32, 3)) + ramp * 0.3
    data[..., colour] += ramp[..., 0] * 0.7
    return write_clip(path, np.clip(data + rng.normal(0, 8, data.shape), 0, 255).astype(np.uint8), fps=10.0)


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    """2 classes x 4 training groups of tiny clips, and a test list holding one clip of an unseen group."""
    root = tmp_path_factory.mktemp("repro")
    for i, cls in enumerate(("A", "B")):
        for g in range(1, 6):
            coloured_clip(root / "UCF-101" / cls / f"v_{cls}_g{g:02d}_c01.avi", 2 * i, frames=5 + 2 * g + i, seed=10 * g + i)
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 A\r\n2 B\r\n")
    (splits / "trainlist01.txt").write_text("".join(f"{c}/v_{c}_g{g:02d}_c01.avi {i}\r\n"
                                                    for i, c in enumerate("AB", 1) for g in range(1, 5)))
    (splits / "testlist01.txt").write_text("A/v_A_g05_c01.avi\r\n")
    return root


def _rows(run):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunDir(run).read_metrics()]


def test_cold_and_warm_cache_give_the_same_run(tiny_videos, tmp_path):
    cfg = lambda: make_config(None, data=str(tiny_videos / "UCF-101"), cache_dir=str(tmp_path / "cache"), **SMALL_VIDEO)  # noqa: E731
    train(cfg(), tmp_path / "cold", progress=False)  # empty cache: features computed in this run
    train(cfg(), tmp_path / "warm", progress=False)  # the same features read back from disk
    assert _rows(tmp_path / "cold") == _rows(tmp_path / "warm")
    cold = load_checkpoint(tmp_path / "cold/checkpoints/best.safetensors").model_state
    warm = load_checkpoint(tmp_path / "warm/checkpoints/best.safetensors").model_state
    for k in cold:
        assert cold[k].numpy().tobytes() == warm[k].numpy().tobytes(), k


def test_predict_equals_evaluate_on_a_one_clip_test_list(tiny_videos, tmp_path):
    cfg = make_config(None, data=str(tiny_videos / "UCF-101"), cache_dir=str(tmp_path / "cache"), **SMALL_VIDEO)
    train(cfg, tmp_path / "r", progress=False)
    best = tmp_path / "r/checkpoints/best.safetensors"
    assert load_checkpoint(best).meta["calibration"]["temperature"] != 1.0  # so a missing temperature would show
    report = evaluate_checkpoint(best, data=tiny_videos / "UCF-101", subset="test", cache_dir=tmp_path / "cache",
                                 progress=False)
    assert report["num_clips"] == 1 and report["clips"][0]["clip"].endswith("v_A_g05_c01.avi")
    from_evaluate = np.array(report["clips"][0]["probabilities"])
    prediction = Predictor(best).predict(tiny_videos / "UCF-101" / "A" / "v_A_g05_c01.avi", top_k=2)
    from_predict = np.zeros(2)
    for row in prediction.top_k:
        from_predict[["A", "B"].index(row["label"])] = row["probability"]
    assert np.array_equal(from_predict, from_evaluate), (from_predict, from_evaluate)  # the same numbers, exactly
