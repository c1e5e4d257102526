"""Nothing is lost: kill -9 at any moment of training, and two processes filling one feature cache at once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import feature_dataset, index_clip

from arlib.checkpoints import load_checkpoint
from arlib.features import FeatureCache
from arlib.runs import RunDir
from arlib.train import make_config, train

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 20
MODEL_ARGS = ["--batch-size", "4", "--seq-len", "8", "--latent-dim", "16", "--hidden-dim", "16", "--head-dim", "16",
              "--lr", "3e-3", "--checkpoint-every", "2", "--keep", "0"]  # keep every snapshot: none may be lost


def env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "ARLIB_CACHE_DIR": str(tmp_path / "cache"), "ARLIB_DEBUG": ""}


# Run the CLI killed half-way through its Nth write of a checkpoint whose temp name starts with KILL_PREFIX.
KILL_MID_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    real_fdopen, writes = os.fdopen, [0]

    class HalfThenDie:
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *exc): return self.f.__exit__(*exc)
        def __getattr__(self, name): return getattr(self.f, name)
        def write(self, data):
            self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(os.environ["KILL_PREFIX"]):
            writes[0] += 1
            if writes[0] == int(os.environ["KILL_AT_WRITE"]):
                return HalfThenDie(f)
        return f

    os.fdopen = fdopen
    from arlib.cli import main
    sys.exit(main(sys.argv[1:]))
""")


class Trainer:
    def __init__(self, tmp_path: Path, features: Path, splits: Path):
        self.tmp_path, self.run_dir = tmp_path, tmp_path / "runs" / "r"
        self.new_args = ["train", "--features", str(features), "--splits", str(splits), "--epochs", str(EPOCHS),
                         *MODEL_ARGS, "--out", str(self.run_dir), "--quiet"]
        self.resume_args = ["train", "--resume", "--out", str(self.run_dir), "--quiet"]

    def start(self, resume: bool, wrapper: str | None = None, **extra_env) -> subprocess.Popen:
        args = self.resume_args if resume else self.new_args
        cmd = [sys.executable, "-c", wrapper, *args] if wrapper else [sys.executable, "-m", "arlib", *args]
        return subprocess.Popen(cmd, cwd=self.tmp_path, env={**env(self.tmp_path), **extra_env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)

    def metrics_lines(self) -> int:
        try:
            return self.run.metrics_path.read_bytes().count(b"\n")
        except OSError:
            return 0


def wait_for(proc: subprocess.Popen, condition, timeout: float = 60, interval: float = 0.0005) -> bool:
    """Poll until condition() or the process ends; True when the condition was met first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(interval)
    raise AssertionError("timed out waiting for the trainer")


def kill9(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, f"the trainer ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def assert_consistent_after_a_crash(run: RunDir) -> int:
    """Checkpoints load, metrics have no torn line, epochs have no gap or duplicate, the status says 'died'."""
    names = {p.name for p in run.checkpoints()}
    for path in run.checkpoints():
        load_checkpoint(path)  # raises on a torn file
    text = run.metrics_path.read_text() if run.metrics_path.exists() else ""
    assert text == "" or text.endswith("\n"), "torn last line"
    epochs = [json.loads(line)["epoch"] for line in text.splitlines()]  # every line parses
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    if "last.safetensors" in names:
        last_epoch = load_checkpoint(run.checkpoint("last")).meta["epoch"]
        # metrics are appended just before `last` commits the epoch: they lead it by at most one row
        assert len(epochs) in (last_epoch, last_epoch + 1), (epochs, last_epoch)
    status = run.read_status()
    assert status["state"] == "died", status
    assert "stopped without saying why" in status["error"] and str(status["pid"]) in status["error"]
    assert "\n" not in status["error"] and status["error"].endswith(".")
    return len(epochs)


@pytest.fixture
def trainer(tmp_path) -> Trainer:
    # 3 classes x 10 groups x 4 clips (96 train / 24 val): 24 tiny steps an epoch, ~0.1 s on this CPU.
    features, splits = feature_dataset(tmp_path / "ds", groups=10, per_group=4, length=40, dim=32, test_groups=2)
    return Trainer(tmp_path, features, splits)


def test_kill_9_at_any_moment_then_resume_loses_nothing(trainer, tmp_path):
    rng = random.Random(1234)
    run = trainer.run

    # 1. A random moment in the middle of training.
    proc = trainer.start(resume=False)
    assert wait_for(proc, lambda: trainer.metrics_lines() >= 2)
    time.sleep(rng.uniform(0.0, 0.3))
    kill9(proc)
    assert_consistent_after_a_crash(run)

    # 2. Right after a metrics row is appended (before `last` commits that epoch).
    proc = trainer.start(resume=True)
    assert wait_for(proc, lambda: run.read_raw_status().get("pid") == proc.pid)
    rows = trainer.metrics_lines()
    assert wait_for(proc, lambda: trainer.metrics_lines() > rows)
    kill9(proc)
    assert_consistent_after_a_crash(run)

    # 3. While a checkpoint temp file exists, if the poller catches one (writes are short); else a random moment.
    proc = trainer.start(resume=True)
    assert wait_for(proc, lambda: run.read_raw_status().get("pid") == proc.pid)
    deadline = time.time() + rng.uniform(0.2, 0.6)
    while time.time() < deadline and not any(run.checkpoints_dir.glob(".*.tmp")):
        pass
    kill9(proc)
    assert_consistent_after_a_crash(run)

    # 4. Deterministically half-way through writing `last` (its second write in this process).
    before = load_checkpoint(run.checkpoint("last")).meta["epoch"]
    proc = trainer.start(resume=True, wrapper=KILL_MID_CHECKPOINT, KILL_PREFIX=".last.", KILL_AT_WRITE="2")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert list(run.checkpoints_dir.glob(".last.safetensors.*.tmp")), "the kill did not land mid-write"
    assert load_checkpoint(run.checkpoint("last")).meta["epoch"] == before + 1  # the previous `last`, intact
    rows = assert_consistent_after_a_crash(run)
    assert rows == before + 2  # the metrics row of the epoch whose `last` was torn is there, to be redone

    # 5. Deterministically half-way through writing an epoch_NNN snapshot: resume must write that one again.
    # Its second snapshot in this process is of an epoch never reached before (at most one epoch is redone).
    proc = trainer.start(resume=True, wrapper=KILL_MID_CHECKPOINT, KILL_PREFIX=".epoch_", KILL_AT_WRITE="2")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (torn,) = run.checkpoints_dir.glob(".epoch_*.tmp")
    torn_epoch = int(torn.name.split(".")[1].removeprefix("epoch_"))
    assert not run.checkpoint(f"epoch_{torn_epoch:03d}").exists()
    assert load_checkpoint(run.checkpoint("last")).meta["epoch"] == torn_epoch - 1  # `last` commits after snapshots
    assert_consistent_after_a_crash(run)

    # Resume to the end: epochs exactly 1..N, no temp file left, the same model an uninterrupted run makes.
    proc = trainer.start(resume=True)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["state"] == "finished"
    assert [r["epoch"] for r in run.read_metrics()] == list(range(1, EPOCHS + 1))
    assert run.read_status()["state"] == "finished"
    assert not list(run.checkpoints_dir.glob(".*.tmp"))
    assert {p.name for p in run.checkpoints()} == {"last.safetensors", "best.safetensors", "selected.safetensors"} | {
        f"epoch_{e:03d}.safetensors" for e in range(2, EPOCHS + 1, 2)}  # no snapshot lost to a kill
    for path in run.checkpoints():
        assert load_checkpoint(path).meta["classes"] == ["Alpha", "Beta", "Gamma"]

    config = run.read_config()
    reference = tmp_path / "reference"
    train(make_config(None, **{k: v for k, v in config.items() if k != "preset"}), reference, progress=False)
    want, got = load_checkpoint(reference / "checkpoints/last.safetensors"), load_checkpoint(run.checkpoint("last"))
    for key, value in want.model_state.items():
        assert torch.allclose(value, got.model_state[key], atol=1e-5), key
    want_rows, got_rows = RunDir(reference).read_metrics(), run.read_metrics()
    assert [r["val_top1"] for r in want_rows] == [r["val_top1"] for r in got_rows]


def test_a_run_killed_during_start_up_can_be_resumed(trainer):
    proc = trainer.start(resume=False)
    assert wait_for(proc, lambda: trainer.run.read_raw_status().get("pid") == proc.pid, interval=0)
    kill9(proc)  # before its first checkpoint: there is nothing to resume from, and the folder is taken
    assert_consistent_after_a_crash(trainer.run)
    assert not trainer.run.checkpoint("last").exists()
    proc = trainer.start(resume=True)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert [r["epoch"] for r in trainer.run.read_metrics()] == list(range(1, EPOCHS + 1))
    assert trainer.run.read_status()["state"] == "finished"


def test_a_torn_metrics_line_is_dropped_on_resume(trainer, tmp_path):
    config = make_config(None, features=str(tmp_path / "ds/features"), splits=str(tmp_path / "ds/ucfTrainTestlist"),
                         epochs=2, batch_size=4, seq_len=8, latent_dim=16, hidden_dim=16, head_dim=16)
    train(config, trainer.run_dir, progress=False)
    with open(trainer.run.metrics_path, "a") as f:
        f.write('{"epoch": 3, "train_loss": 0.5, "val_t')  # a power cut mid-append, say
    train(None, trainer.run_dir, resume=True, epochs=3, progress=False)
    lines = trainer.run.metrics_path.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


# ------------------------------------------------------------------------------------------- feature cache


FILL_CACHE = textwrap.dedent("""
    import json, os, sys, time
    import filelock
    import arlib.features as features
    from arlib.backbones import load_backbone

    real_acquire, waited = filelock.FileLock.acquire, [0]

    def acquire(self, timeout=None, *args, **kwargs):  # count the times this process had to wait for the other's
        if timeout is None:
            try:
                return real_acquire(self, 0, *args, **kwargs)
            except filelock.Timeout:
                waited[0] += 1
        return real_acquire(self, timeout, *args, **kwargs)

    filelock.FileLock.acquire = acquire
    cache_dir, ready, go, *clips = sys.argv[1:]
    cache = features.FeatureCache("efficientnet_lite0", cache_dir, cache_frames=6)
    load_backbone("efficientnet_lite0")  # warm up before the start line, so both really run together
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    done, failed = cache.ensure(clips, ["center", "center+flip"], progress=False)
    print(json.dumps({"frames": cache.backbone_frames, "waited": waited[0], "done": len(done), "failed": failed}))
""")


def test_two_processes_filling_one_cache_compute_each_clip_once(tmp_path):
    clips = [str(index_clip(tmp_path / "clips" / f"c{i}.avi", frames=12 + i, size=32)) for i in range(5)]
    cache_dir, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", FILL_CACHE, str(cache_dir), str(tmp_path / f"ready{i}"), str(go),
                               *clips], env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert all(r["done"] == len(clips) and not r["failed"] for r in results)
    # 5 clips x 6 grid frames x 2 views encoded once in all, however the work was shared out...
    assert sum(r["frames"] for r in results) == len(clips) * 6 * 2, results
    # ...and the processes really did meet at a clip's lock (the barrier makes them start together).
    assert sum(r["waited"] for r in results) >= 1, results

    shared = FeatureCache("efficientnet_lite0", cache_dir, cache_frames=6)
    single = FeatureCache("efficientnet_lite0", tmp_path / "single", cache_frames=6)
    for clip in clips:
        for view in ("center", "center+flip"):
            got, want = shared.get(clip, view), single.compute(clip, [view])[view]
            assert got is not None, (clip, view)
            assert np.array_equal(got.frame_indices, want.frame_indices) and got.num_frames == want.num_frames
            assert got.fps == want.fps and got.features.dtype == np.float16
            np.testing.assert_allclose(got.features.astype(np.float32), want.features.astype(np.float32),
                                       rtol=1e-2, atol=1e-2)
    leftovers = [p.name for p in cache_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
