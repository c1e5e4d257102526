"""What the trainer tells the studio while it runs: live numbers stay live (issue 9, defects 4 and 5)."""

from __future__ import annotations

from arlib import train as train_module
from arlib.runs import RunDir
from arlib.train import TrainConfig, Trainer, feature_phase_status


class Clock:
    def __init__(self):
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def test_forced_phase_writes_do_not_freeze_live_numbers(tmp_path, monkeypatch):
    """Epochs shorter than a second: the forced 'evaluating' write must not hold back the next step's write."""
    clock = Clock()
    monkeypatch.setattr(train_module.time, "time", clock.time)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    trainer = Trainer(TrainConfig(), run, progress=False)
    trainer.status(state="training", phase="training", train_loss=2.0, eta_s=50)
    clock.now += 0.6
    trainer.status(force=True, state="evaluating", phase="evaluating")
    clock.now += 0.5  # 1.1 s after the last throttled write, 0.5 s after the forced one
    trainer.status(state="training", phase="training", train_loss=1.0, eta_s=40)
    status = run.read_raw_status()
    assert status["train_loss"] == 1.0 and status["eta_s"] == 40
    clock.now += 0.3  # still throttled: at most one ordinary write a second
    trainer.status(state="training", phase="training", train_loss=0.5, eta_s=39)
    assert run.read_raw_status()["train_loss"] == 1.0


def test_feature_phase_reports_frames_rate_and_time_left():
    status = feature_phase_status(clips_done=3, clips_total=10, frames_done=300, frames_total=1000, seconds=2.0)
    assert status["phase"] == "features" and status["frames_total"] == 1000
    assert status["frames_per_s"] == 150.0
    assert status["eta_s"] == round(700 / 150, 1)
    assert "300/1,000" in status["message"] and "clip 3/10" in status["message"]
    assert feature_phase_status(0, 10, 0, 1000, 0.0)["eta_s"] is None  # no rate yet: no guess


def test_studio_shows_the_feature_phase_time_left():
    from studio.job_view import progress

    status = dict(feature_phase_status(3, 10, 300, 1000, 2.0), active=True)
    fraction, line = progress(status)
    assert fraction == 0.3
    assert "about 5 s left" in line and "frames/s" in line
