import json

import numpy as np
import pytest
import torch

from arlib.checkpoints import load_checkpoint
from arlib.errors import ArlibError
from arlib.runs import JobLock, RunDir
from arlib.train import make_config, train
from synthetic import feature_dataset

SMALL = dict(latent_dim=16, hidden_dim=16, head_dim=16, batch_size=4, seq_len=8, lr=3e-3, dropout=0.2,
             checkpoint_every=2)


@pytest.fixture
def feats(tmp_path):
    return feature_dataset(tmp_path / "ds")


def _cfg(feats, **kw):
    features, splits = feats
    return make_config(None, **{**SMALL, "features": str(features), "splits": str(splits), **kw})


def _weights(path):
    return load_checkpoint(path).model_state


def test_run_directory_metrics_and_checkpoints(feats, tmp_path):
    result = train(_cfg(feats, epochs=6), tmp_path / "runs" / "r1", progress=False)
    run = RunDir(tmp_path / "runs" / "r1")
    assert result["state"] == "finished" and run.read_status()["state"] == "finished"
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "val_mean_class_accuracy",
                "val_ece", "per_class_recall", "confusion", "lr", "seconds", "clips_skipped", "test_top1",
                "test_loss"):
        assert key in rows[-1]
    assert rows[-1]["test_top1"] >= 0.8  # the synthetic classes are learnable
    # validation is one whole group of the training clips; the test list (group 4) is reported apart
    assert np.array(rows[-1]["confusion"]).sum() == rows[-1]["num_val_clips"] == 6 and rows[-1]["num_test_clips"] == 6
    names = sorted(p.name for p in run.checkpoints())
    assert names == ["best.safetensors", "epoch_002.safetensors", "epoch_004.safetensors", "epoch_006.safetensors",
                     "last.safetensors", "selected.safetensors"]  # best = the refit, selected = validation's choice
    meta = load_checkpoint(run.checkpoint("best")).meta
    assert meta["classes"] == ["Alpha", "Beta", "Gamma"] and meta["seq_len"] == 8
    split = meta["split"]
    assert split["test_groups"] == ["g04"] and len(split["val_groups"]) == 1
    assert not set(split["val_groups"]) & set(split["train_groups"]) and "g04" not in split["train_groups"]
    # best = lowest validation loss (the default select_by); the temperature was fitted after training
    assert meta["epoch"] == min(rows, key=lambda r: r["val_loss"])["epoch"] == result["best_epoch"]
    assert meta["calibration"]["fitted_on"] == "val" and meta["calibration"]["val_clips"] == 6


@pytest.mark.parametrize("refit", [{"refit": False}, {"refit": True}, {"refit": True, "temperature_folds": 2}],
                         ids=["selection", "refit", "refit+temperature_folds"])
def test_the_test_list_never_chooses_anything(feats, tmp_path, refit):
    """Same run with the split's test list present or emptied: byte-identical `best` weights and temperature
    (with a refit on train + validation, and with the temperature fitted on out-of-fold training clips)."""
    features, splits = feats
    # Label every test clip as the next class: the better the model, the worse its test loss, so any
    # peeking at the test list would choose another epoch than validation does.
    classes = ["Alpha", "Beta", "Gamma"]
    lines = [line.split("/", 1) for line in (splits / "testlist01.txt").read_text().split()]
    (splits / "testlist01.txt").write_text("".join(f"{classes[(classes.index(c) + 1) % 3]}/{stem}\r\n"
                                                   for c, stem in lines))
    train(_cfg(feats, epochs=6, **refit), tmp_path / "with_test", progress=False)
    rows = RunDir(tmp_path / "with_test").read_metrics()
    assert min(rows, key=lambda r: r["test_loss"])["epoch"] != min(rows, key=lambda r: r["val_loss"])["epoch"]
    (splits / "testlist01.txt").write_text("")
    train(_cfg(feats, epochs=6, **refit), tmp_path / "without_test", progress=False)
    with_test = load_checkpoint(tmp_path / "with_test/checkpoints/best.safetensors")
    without = load_checkpoint(tmp_path / "without_test/checkpoints/best.safetensors")
    assert with_test.meta["split"]["test_clips"] == 6 and without.meta["split"]["test_clips"] == 0
    assert with_test.meta["epoch"] == without.meta["epoch"]
    assert with_test.meta["calibration"]["temperature"] == without.meta["calibration"]["temperature"]
    assert bool(with_test.meta.get("refit")) == bool(without.meta.get("refit")) == refit["refit"]
    if refit.get("temperature_folds"):  # every training clip (train + validation) predicted once, out of fold
        assert with_test.meta["calibration"]["oof_clips"] == 18 and "out-of-fold" in with_test.meta["calibration"]["fitted_on"]
    assert with_test.model_state.keys() == without.model_state.keys()
    for k in with_test.model_state:
        a, b = with_test.model_state[k], without.model_state[k]
        assert a.dtype == b.dtype and a.numpy().tobytes() == b.numpy().tobytes(), k


def test_early_stopping_and_batch_size_one(feats, tmp_path):
    result = train(_cfg(feats, epochs=8, batch_size=1, patience=1, lr=3e-2), tmp_path / "r", progress=False)
    rows = RunDir(tmp_path / "r").read_metrics()
    assert result["state"] == "finished" and result["stopped_early_at"] == len(rows) < 8
    assert rows[-1]["epoch"] - result["best_epoch"] == 1


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _rows(run):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunDir(run).read_metrics()]


def test_resume_after_finished_epochs_equals_an_uninterrupted_run(feats, tmp_path):
    train(_cfg(feats, epochs=4), tmp_path / "full", progress=False)
    train(_cfg(feats, epochs=2), tmp_path / "split", progress=False)
    train(None, tmp_path / "split", resume=True, epochs=4, progress=False)
    _same(_weights(tmp_path / "full/checkpoints/last.safetensors"), _weights(tmp_path / "split/checkpoints/last.safetensors"))
    assert _rows(tmp_path / "full") == _rows(tmp_path / "split")


def test_graceful_stop_mid_epoch_then_resume_equals_uninterrupted(feats, tmp_path):
    train(_cfg(feats, epochs=3), tmp_path / "full", progress=False)
    steps = {"n": 0}

    def stop_in_epoch_two():
        steps["n"] += 1
        return steps["n"] >= 5  # epoch 2, after its first step (3 steps and one end-of-epoch check per epoch)

    result = train(_cfg(feats, epochs=3), tmp_path / "stopped", progress=False, should_stop=stop_in_epoch_two)
    assert result["state"] == "stopped"
    run = RunDir(tmp_path / "stopped")
    assert run.read_status()["state"] == "stopped" and [r["epoch"] for r in run.read_metrics()] == [1]
    assert load_checkpoint(run.checkpoint("last")).meta["step_in_epoch"] > 0
    train(None, tmp_path / "stopped", resume=True, progress=False)
    _same(_weights(tmp_path / "full/checkpoints/last.safetensors"), _weights(run.checkpoint("last")))
    assert _rows(tmp_path / "full") == _rows(tmp_path / "stopped")


def test_a_bad_clip_is_skipped_counted_and_named(feats, tmp_path):
    features, _ = feats
    bad = features / "Alpha" / "v_Alpha_g01_c01.npy"
    bad.write_bytes(b"not an array")
    train(_cfg(feats, epochs=1), tmp_path / "r", progress=False)
    row = RunDir(tmp_path / "r").read_metrics()[0]
    assert row["clips_skipped"] == 1 and row["skipped"][0]["clip"].endswith("v_Alpha_g01_c01.npy")
    assert "could not be read" in row["skipped"][0]["reason"]


def test_one_job_at_a_time_and_no_overwriting_runs(feats, tmp_path):
    lock = JobLock(tmp_path / "runs")
    lock.acquire("other")
    try:
        with pytest.raises(ArlibError, match="Another training job is running"):
            train(_cfg(feats, epochs=1), tmp_path / "runs" / "second", progress=False)
    finally:
        lock.release()
    train(_cfg(feats, epochs=1), tmp_path / "runs" / "second", progress=False)
    with pytest.raises(ArlibError, match="already holds a run"):
        train(_cfg(feats, epochs=1), tmp_path / "runs" / "second", progress=False)
    with pytest.raises(ArlibError, match="no run to resume"):
        train(None, tmp_path / "runs" / "nothing", resume=True, progress=False)


def test_presets_fill_only_what_was_not_given():
    thesis = make_config("thesis")
    assert (thesis.lr, thesis.batch_size, thesis.epochs, thesis.seq_len, thesis.hidden_dim, thesis.dropout) == (
        1e-5, 16, 10, 40, 1024, 0.0)
    assert make_config("thesis", lr=1e-3).lr == 1e-3
    with pytest.raises(ArlibError, match="Unknown preset"):
        make_config("nope")


def test_the_motion_stream_is_default_except_where_one_stream_is_the_point():
    assert make_config(None).motion and not make_config("thesis").motion and not make_config("demo").motion
    assert make_config("thesis").cache_frames >= 2 * make_config("thesis").seq_len  # room for the thesis's strides
    # background footage is cached as appearance only: it implies one stream, and asking for both is one sentence
    assert not make_config(None, background="unselected").motion
    with pytest.raises(ArlibError, match="cannot be combined with --background"):
        make_config(None, background="unselected", motion=True)


def test_status_reports_progress_to_a_callback(feats, tmp_path):
    seen = []
    train(_cfg(feats, epochs=2), tmp_path / "r", progress=False, on_progress=seen.append)
    states = {s.get("state") for s in seen}
    assert {"training", "evaluating"} <= states
    steps = [s for s in seen if s.get("state") == "training" and "global_step" in s]
    assert steps[-1]["global_step"] == steps[-1]["total_steps"] and "eta_s" in steps[-1]
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["state"] == "finished" and status["pid"]


def test_checkpoint_retention_keeps_the_newest_epochs(feats, tmp_path):
    """Issue 9 defect 12: a long run keeps only --keep epoch_NNN checkpoints, plus best and last."""
    train(_cfg(feats, epochs=4, checkpoint_every=1, keep=2), tmp_path / "runs" / "kept", progress=False)
    names = sorted(p.name for p in RunDir(tmp_path / "runs" / "kept").checkpoints())
    assert names == ["best.safetensors", "epoch_003.safetensors", "epoch_004.safetensors", "last.safetensors",
                     "selected.safetensors"]


def test_refit_is_a_run_on_all_training_clips_for_the_chosen_epochs(feats, tmp_path):
    """--refit: validation chooses the epoch and the temperature, then the same initial weights train on train +
    validation for exactly that many epochs; byte for byte the run without validation stopped there."""
    result = train(_cfg(feats, epochs=6, refit=True), tmp_path / "refit", progress=False)
    run = RunDir(tmp_path / "refit")
    best, selected = load_checkpoint(run.checkpoint("best")), load_checkpoint(run.checkpoint("selected"))
    chosen = result["best_epoch"]
    assert best.meta["refit"]["epochs"] == selected.meta["epoch"] == best.meta["epoch"] == chosen
    assert best.meta["refit"]["clips"] == best.meta["split"]["train_clips"] + best.meta["split"]["val_clips"] == 18
    # the temperature is validation's, fitted on the weights validation chose
    assert best.meta["calibration"]["temperature"] == selected.meta["calibration"]["temperature"]
    assert best.meta["calibration"]["fitted_on"] == "val" and best.meta["calibration"]["refit"]
    train(_cfg(feats, epochs=chosen, val_fraction=0.0), tmp_path / "all", progress=False)
    _same(best.model_state, _weights(tmp_path / "all/checkpoints/best.safetensors"))
    assert any(not torch.equal(best.model_state[k], selected.model_state[k]) for k in best.model_state)
