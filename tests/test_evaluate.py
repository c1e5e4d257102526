"""`evaluate` rebuilds the run's own split from the checkpoint and says what every number was measured on."""

from pathlib import Path

import numpy as np
import pytest

from arlib.checkpoints import load_checkpoint
from arlib.errors import ArlibError
from arlib.evaluate import evaluate_checkpoint
from arlib.train import make_config, train
from synthetic import feature_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    features, splits = feature_dataset(root / "ds")
    cfg = make_config(None, features=str(features), splits=str(splits), latent_dim=16, hidden_dim=16, head_dim=16,
                      batch_size=4, seq_len=8, lr=3e-3, epochs=3, seed=1)  # seed 0 would carve another group
    train(cfg, root / "run", progress=False)
    return features, splits, root / "run/checkpoints/best.safetensors"


def _groups(report):
    return sorted({Path(row["clip"]).stem.split("_")[2] for row in report["clips"]})


def test_subsets_are_the_runs_own_split(trained):
    features, splits, best = trained
    split = load_checkpoint(best).meta["split"]
    reports = {subset: evaluate_checkpoint(best, features=features, splits=splits, subset=subset, progress=False)
               for subset in ("train", "val", "test")}
    assert _groups(reports["val"]) == split["val_groups"] and _groups(reports["train"]) == split["train_groups"]
    assert _groups(reports["test"]) == split["test_groups"] == ["g04"]
    report = reports["test"]
    assert report["num_clips"] == len(report["clips"]) == 6 and report["top1_interval"]["n"] == 6
    assert 0 <= report["ece"] <= 1 and sum(r["count"] for r in report["reliability"]) == 6
    for row in report["clips"]:
        assert abs(sum(row["probabilities"]) - 1) < 1e-5
        assert row["probability"] == max(row["probabilities"]) and row["label"] in ("Alpha", "Beta", "Gamma")


def test_training_clips_are_never_called_test(trained, tmp_path):
    features, splits, best = trained
    other = tmp_path / "splits"
    other.mkdir()
    for name in ("classInd.txt", "trainlist01.txt"):
        (other / name).write_bytes((splits / name).read_bytes())
    (other / "testlist01.txt").write_text("Alpha/v_Alpha_g01_c01.avi\r\nAlpha/v_Alpha_g04_c01.avi\r\n")
    with pytest.raises(ArlibError, match="trained or validated on .*g01"):
        evaluate_checkpoint(best, features=features, splits=other, subset="test", progress=False)
    assert np.isfinite(evaluate_checkpoint(best, features=features, splits=splits, subset="test",
                                           progress=False)["top1"])


def test_a_checkpoint_says_what_its_accuracy_was_measured_on(trained):
    from arlib.evaluate import checkpoint_accuracy

    _, _, best = trained
    meta = load_checkpoint(best).meta
    assert checkpoint_accuracy(meta).endswith("(6 clips) on the test list")
    meta["metrics"]["test_top1"], meta["dataset"]["test_used"] = None, 0  # a run without test clips
    assert checkpoint_accuracy(meta).endswith("(6 clips) on the validation clips that chose this epoch "
                                              "(then refit on them too)")  # the default refit trained on them
    meta.pop("refit")
    assert checkpoint_accuracy(meta).endswith("(6 clips) on the validation clips that chose this epoch")
