"""Training jobs for the app: `python -m arlib train` runs as its own process, writing its run directory.

The app never trains in-process. It launches the trainer (a new session, so a closed browser or a
restarted app leaves it running), stops it with SIGTERM (graceful: the trainer finishes the step, saves
`last` and says 'stopped'), resumes it with --resume, and reads everything back from the run directory,
so a reload rebuilds the whole picture. One job at a time: `active_job` is checked before every launch,
and the trainer's own lock (runs/.train.lock) catches a race; its one-sentence error is surfaced.

Besides the trainer's files, a launched run holds `launch.json` (pid, command, time) written here: it
covers the seconds between the launch and the trainer's first status.json, and runs that never got that
far (a bad argument, the lock) still show their error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ArlibError
from .fileio import atomic_write_json, read_json
from .runs import ACTIVE_STATES, RunDir, list_runs, process_alive, validate_run_name
from .train import TrainConfig, make_config

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILE = "launch.json"
REQUEST_FILE = "requested_config.json"  # the configuration a launch asks for; the trainer writes config.json
TERMINAL_STATES = ("finished", "stopped", "failed", "died")
LOCK_ERROR = "Another training job is running"

# Popen objects of the trainers this app process started, so their exit codes are collected (no zombies).
_children: dict[str, subprocess.Popen] = {}
_launch_lock = threading.Lock()


@dataclass
class TrainOptions:
    """What the Train form sets; None means 'leave it to the preset / the trainer's defaults'."""

    data: str
    splits: str | None = None
    split: int = 1
    classes: str | None = None
    backbone: str | None = None
    model: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    preset: str | None = None
    background: str | None = None  # a folder of background clips, or "unselected" (arlib.background)
    motion: bool | None = None  # the motion stream (arlib.motion)

    def to_config(self) -> TrainConfig:
        values = {k: v for k, v in asdict(self).items() if k != "preset" and v not in (None, "")}
        return make_config(self.preset, **values)


def train_command(out: str | Path, config_file: Path | None = None, resume: bool = False,
                  epochs: int | None = None, device: str | None = None) -> list[str]:
    """The argv of `python -m arlib train --config FILE --out OUT --quiet` (or `--resume [--epochs N]`),
    with `--device D` when one is given (the studio's device choice)."""
    cmd = [sys.executable, "-m", "arlib", "train"]
    if device:
        cmd += ["--device", str(device)]
    if config_file is not None:
        cmd += ["--config", str(config_file)]
    if resume:
        cmd.append("--resume")
        if epochs:
            cmd += ["--epochs", str(int(epochs))]
    cmd += ["--out", str(out), "--quiet"]
    return cmd


def write_request(run: RunDir, config: TrainConfig | dict) -> Path:
    """The one place a launch writes its training configuration: the trainer reads it back with --config."""
    run.path.mkdir(parents=True, exist_ok=True)
    target = run.path / REQUEST_FILE
    atomic_write_json(target, config.to_dict() if isinstance(config, TrainConfig) else dict(config))
    return target


# ---------------------------------------------------------------------------------------------- state


def _reap() -> None:
    for key, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(key, None)
            launch = Path(key) / LAUNCH_FILE
            record = read_json(launch, {}) or {}
            if record.get("pid") == proc.pid and "returncode" not in record:
                record["returncode"] = proc.returncode
                atomic_write_json(launch, record)


def read_launch(run: RunDir) -> dict:
    return read_json(run.path / LAUNCH_FILE, {}) or {}


def _launch_alive(run: RunDir) -> bool:
    launch = read_launch(run)
    return bool(launch) and process_alive(launch.get("pid"), launch.get("pid_started"))


def list_jobs(root: str | Path) -> list[RunDir]:
    """Run directories (newest first), including launched ones whose trainer has not written config.json yet."""
    _reap()
    runs = list_runs(root)
    known = {r.path for r in runs}
    root = Path(root)
    pending = []
    if root.is_dir():
        pending = [RunDir(p) for p in root.iterdir()
                   if p.is_dir() and p not in known and (p / LAUNCH_FILE).exists()]
    both = runs + pending
    return sorted(both, key=lambda r: _mtime(r), reverse=True)


def _mtime(run: RunDir) -> float:
    for path in (run.config_path, run.path / LAUNCH_FILE, run.path):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def active_job(root: str | Path) -> RunDir | None:
    """The run whose trainer is alive (status says active, or it was just launched), else None."""
    for run in list_jobs(root):
        state = run.read_status().get("state")
        if state in ACTIVE_STATES:
            return run
        if state not in TERMINAL_STATES and _launch_alive(run):
            return run
    return None


def _last_error_line(run: RunDir) -> str | None:
    """The trainer's own one-sentence error ('error: ...' on stderr, appended to train.log)."""
    for line in reversed(run.log_tail(40).splitlines()):
        line = line.strip()
        if line.startswith("error: "):
            return line[len("error: "):]
    return None


def job_state(run: RunDir) -> dict:
    """status.json made whole: state (incl. 'starting' before the trainer's first write), error, active,
    has_last. How to show it (progress bar, ETA) is the studio's business (studio/job_view.py)."""
    _reap()
    status = dict(run.read_status())
    launch = read_launch(run)
    state = status.get("state")
    if not state:
        if _launch_alive(run):
            state, status["message"] = "starting", "starting the trainer"
        elif launch:
            state = "failed"
            status["error"] = _last_error_line(run) or (
                "The trainer exited before it started; read the log below, fix the cause and launch again.")
        else:
            state = "unknown"
    elif state == "died":
        status["error"] = _last_error_line(run) or status.get("error")
    elif state == "failed" and not status.get("error"):
        status["error"] = _last_error_line(run) or "The trainer failed; read the log below."
    status["state"] = state
    status["active"] = state in ACTIVE_STATES
    status["has_last"] = run.checkpoint("last").exists()
    return status


# ---------------------------------------------------------------------------------------------- actions


def _busy_error(busy: RunDir) -> ArlibError:
    state = job_state(busy).get("state")
    return ArlibError(f"Run '{busy.name}' is still {state}; this machine trains one job at a time, so wait for "
                      "it to finish or stop it first.")


def _start(run: RunDir, cmd: list[str], wait_s: float) -> RunDir:
    run.path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(run.log_path, "ab") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} app: {' '.join(cmd[1:])}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    try:
        import psutil

        started = psutil.Process(proc.pid).create_time()
    except Exception:  # the process may already be gone; then there is nothing to match
        started = None
    _children[str(run.path)] = proc
    atomic_write_json(run.path / LAUNCH_FILE, {"pid": proc.pid, "pid_started": started, "command": cmd,
                                               "launched_at": time.time()})
    _wait_for_start(run, proc, wait_s)
    return run


def _wait_for_start(run: RunDir, proc: subprocess.Popen, wait_s: float) -> None:
    """Wait until the trainer says it started (or exits): an immediate failure becomes this launch's error."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            _reap()
            if proc.returncode != 0:
                message = _last_error_line(run) or (
                    f"The trainer exited at once (code {proc.returncode}); read {run.log_path} for the cause.")
                if LOCK_ERROR in message and not run.status_path.exists() and not run.checkpoints():
                    _remove_stillborn(run)  # lost the race for the lock: leave no empty run behind
                raise ArlibError(message)
            return
        if run.read_raw_status().get("pid") == proc.pid:
            return
        time.sleep(0.2)


def _remove_stillborn(run: RunDir) -> None:
    for name in ("config.json", LAUNCH_FILE, REQUEST_FILE, "train.log", "metrics.jsonl"):
        (run.path / name).unlink(missing_ok=True)
    try:
        run.path.rmdir()
    except OSError:
        pass


def launch(root: str | Path, name: str, options: TrainOptions | TrainConfig, wait_s: float = 20.0,
           device: str | None = None) -> RunDir:
    """Start a new run root/name (on `device`: auto/cpu/cuda/mps, None = the trainer's own auto); refuses
    (ArlibError, one sentence) when a job runs or the name is taken."""
    validate_run_name(name)
    config = options.to_config() if isinstance(options, TrainOptions) else options
    root = Path(root)
    with _launch_lock:
        busy = active_job(root)
        if busy is not None:
            raise _busy_error(busy)
        run = RunDir(root / name)
        if run.exists() or (run.path / LAUNCH_FILE).exists() or (run.path / REQUEST_FILE).exists():
            raise ArlibError(f"A run named '{name}' already exists in {root}; choose another name, or resume that run.")
        return _start(run, train_command(run.path.resolve(), write_request(run, config), device=device), wait_s)


def resume(root: str | Path, name: str, epochs: int | None = None, wait_s: float = 20.0,
           device: str | None = None) -> RunDir:
    """Continue a stopped, failed or died run from checkpoints/last (epochs may extend it).

    A run that never saved a checkpoint (it failed while computing features) restarts from scratch with
    its saved configuration: the trainer's --resume needs `last`, and nothing else of value exists yet.
    """
    validate_run_name(name)
    root = Path(root)
    with _launch_lock:
        run = RunDir(root / name)
        busy = active_job(root)
        if busy is not None:
            raise _busy_error(busy)
        if not run.exists():
            raise ArlibError(f"Run '{name}' has no config.json in {root}, so it cannot be resumed; launch a new run.")
        if run.checkpoint("last").exists():
            return _start(run, train_command(run.path.resolve(), resume=True, epochs=epochs, device=device), wait_s)
        config = run.read_config()
        if epochs:
            config["epochs"] = int(epochs)
        if run.read_metrics():
            raise ArlibError(f"Run '{name}' has metrics but no checkpoints/last to resume from; launch a new run.")
        request = write_request(run, config)
        for stale in ("config.json", "status.json", "metrics.jsonl"):
            (run.path / stale).unlink(missing_ok=True)
        return _start(run, train_command(run.path.resolve(), request, device=device), wait_s)


def stop(run: RunDir) -> str:
    """SIGTERM to the trainer: it finishes the step, saves `last` and marks the run 'stopped'."""
    status = run.read_raw_status()
    launch_info = read_launch(run)
    for pid, started in ((status.get("pid"), status.get("pid_started")),
                         (launch_info.get("pid"), launch_info.get("pid_started"))):
        if pid and process_alive(pid, started):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                continue
            return f"Asked run '{run.name}' to stop; it finishes the current step and saves checkpoints/last."
    raise ArlibError(f"Run '{run.name}' is not running, so there is nothing to stop.")


def wait_until_done(run: RunDir, timeout_s: float, poll_s: float = 0.5) -> dict:
    """For scripts and tests: poll until the run leaves the active states or its trainer exits."""
    deadline = time.time() + timeout_s
    state = job_state(run)
    while time.time() < deadline:
        state = job_state(run)
        if not state["active"]:
            return state
        time.sleep(poll_s)
    return state



# ---------------------------------------------------------------------------------------------- cache jobs

CACHE_JOB_DIR = ".cache-job"  # under the runs folder; not a run (no config.json, no launch.json)


def cache_job_dir(root: str | Path) -> Path:
    return Path(root) / CACHE_JOB_DIR


def cache_job_state(root: str | Path) -> dict:
    """The feature-cache job's status.json ({} when none ran), with 'died' for a vanished process."""
    _reap()
    folder = cache_job_dir(root)
    status = read_json(folder / "status.json", {}) or {}
    launch_info = read_json(folder / "cache_launch.json", {}) or {}
    if not status and launch_info:
        status = {"state": "starting", "message": "starting"}
    alive = bool(launch_info) and process_alive(launch_info.get("pid"), launch_info.get("pid_started"))
    if status.get("state") in ("starting", "features") and not alive:
        status["state"] = "died"
        status["error"] = _last_line(folder / "cache.log") or "The cache job stopped without saying why."
    status["active"] = status.get("state") in ("starting", "features") and alive
    status.setdefault("command", launch_info.get("command"))
    return status


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    errors = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None


def launch_cache(root: str | Path, config: TrainConfig, device: str | None = None) -> Path:
    """Fill the feature cache for `config` in the background (`python -m arlib cache`), exactly the
    clips, views and frame count its training would read; progress goes to runs/.cache-job/status.json."""
    folder = cache_job_dir(root)
    with _launch_lock:
        if cache_job_state(root).get("active"):
            raise ArlibError("The feature cache is already being built; wait for it to finish.")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "status.json").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "arlib", "cache", "--data", str(config.data), "--split", str(config.split),
               "--backbone", config.backbone, "--cache-frames", str(config.cache_frames),
               "--crops", ",".join(config.crops), "--flip" if config.flip else "--no-flip",
               "--motion" if config.motion else "--no-motion",
               "--status", str((folder / "status.json").resolve())]
        for flag, value in (("--splits", config.splits), ("--classes", config.classes),
                            ("--val-fraction", config.val_fraction), ("--cache-dir", config.cache_dir),
                            ("--device", device)):
            if value not in (None, ""):
                cmd += [flag, str(value)]
        with open(folder / "cache.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        try:
            import psutil

            started = psutil.Process(proc.pid).create_time()
        except Exception:  # already gone: nothing to match
            started = None
        _children[str(folder)] = proc
        atomic_write_json(folder / "cache_launch.json", {"pid": proc.pid, "pid_started": started, "command": cmd,
                                                         "launched_at": time.time()})
    return folder
