"""Run directories, the unit users see: runs/<name>/ with config.json, status.json, metrics.jsonl,
train.log and checkpoints/. Every file is written atomically or appended whole.

A status that says 'running' is checked against the process table: a trainer killed with -9 cannot
say it died, so a dead pid is reported as state 'died' rather than 'running' forever.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import psutil

from .checkpoints import SUFFIX
from .errors import ArlibError
from .fileio import append_line, atomic_write_bytes, atomic_write_json, read_json, read_jsonl

DEFAULT_RUNS_DIR = Path("runs")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACTIVE_STATES = ("starting", "features", "training", "evaluating", "running")


def validate_run_name(name: str) -> str:
    if not RUN_NAME.fullmatch(name or "") or ".." in name:  # fullmatch: '$' alone lets 'name\n' through
        raise ArlibError(
            f"Run name {name!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return name


def suggested_run_name(data: str | Path | None, preset: str | None, layout: str | None = None,
                       when: float | None = None) -> str:
    """<dataset>-<preset>-<YYYYmmdd-HHMMSS>: 'demo' for the demo data, 'ucf101' for a UCF-101 layout, else
    the dataset folder's name (made a valid run name)."""
    path = Path(str(data or "data"))
    if path.name == "UCF-101" and path.parent.name == "demo":
        tag = "demo"
    elif layout == "ucf101" or path.name == "UCF-101":
        tag = "ucf101"
    else:
        tag = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-._").lower() or "data"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{tag[:32]}-{preset or 'custom'}-{stamp}"


def validate_run_path(path: str | Path) -> Path:
    """A run folder given on the command line: a valid name, and no '..' that would climb out of its parent."""
    path = Path(path)
    if ".." in path.parts:
        raise ArlibError(f"Run folder {str(path)!r} contains '..'; give a plain path such as runs/<name>.")
    validate_run_name(path.name)
    return path


def process_identity(pid: int | None = None) -> dict:
    proc = psutil.Process(pid or os.getpid())
    return {"pid": proc.pid, "pid_started": proc.create_time()}


def process_alive(pid: int | None, started: float | None) -> bool:
    """True when pid runs and is the same process (pids get reused)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")

    def exists(self) -> bool:
        return self.config_path.exists()

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints_dir / f"{name}{SUFFIX}"

    def checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints_dir.glob(f"*{SUFFIX}"))

    def remove_stale_temp_files(self) -> None:
        """Half-written checkpoints of a killed trainer; only the trainer (holding the job lock) writes there."""
        for tmp in self.checkpoints_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- config and status -------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict:
        return read_json(self.config_path, {}) or {}

    def write_status(self, **fields) -> dict:
        status = self.read_raw_status()
        status.update(fields, updated_at=time.time())
        atomic_write_json(self.status_path, status)
        return status

    def read_raw_status(self) -> dict:
        return read_json(self.status_path, {}) or {}

    def read_status(self) -> dict:
        """status.json, with 'running' states that lost their process turned into 'died'."""
        status = self.read_raw_status()
        if status.get("state") in ACTIVE_STATES and not process_alive(status.get("pid"), status.get("pid_started")):
            status["state"] = "died"
            status.setdefault("error", None)
            status["error"] = status["error"] or (
                f"The trainer (pid {status.get('pid')}) stopped without saying why (killed, or out of memory); "
                "the last checkpoint is intact: resume the run to continue."
            )
        return status

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        append_line(self.metrics_path, json.dumps(row, default=str))

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics_path)

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep the rows of epochs <= last_epoch, drop torn lines: resume then appends with no gap or duplicate."""
        rows = [r for r in self.read_metrics() if int(r.get("epoch", 0)) <= last_epoch]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())

    def log(self, message: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        append_line(self.log_path, time.strftime("%Y-%m-%d %H:%M:%S ") + message)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200 * lines))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def list_runs(root: str | Path = DEFAULT_RUNS_DIR) -> list[RunDir]:
    """Run directories under root, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and (p / "config.json").exists()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime, reverse=True)


def active_run(root: str | Path = DEFAULT_RUNS_DIR) -> RunDir | None:
    for run in list_runs(root):
        if run.read_status().get("state") in ACTIVE_STATES:
            return run
    return None


class JobLock:
    """One training job at a time per runs folder (a 2-core machine): an exclusive file lock held by the trainer.

    filelock (flock on POSIX, msvcrt on Windows) instead of fcntl, so the trainer runs on Windows too. The
    holder's name goes to a file beside the lock: a locked file may not be readable on every OS.
    """

    def __init__(self, root: str | Path = DEFAULT_RUNS_DIR):
        self.path = Path(root) / ".train.lock"
        self.owner_path = Path(root) / ".train.owner"
        self._lock = None

    def acquire(self, run_name: str) -> None:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # is_singleton=False: a second JobLock in this same process must be refused too (as flock did).
        lock = FileLock(str(self.path), timeout=0, is_singleton=False)
        try:
            lock.acquire()
        except Timeout:
            try:
                holder = self.owner_path.read_text().strip()
            except OSError:
                holder = ""
            raise ArlibError(
                f"Another training job is running ({holder or 'another run'}); wait for it to finish or stop it first."
            ) from None
        self._lock = lock
        try:
            atomic_write_bytes(self.owner_path, f"run '{run_name}', pid {os.getpid()}".encode())
        except OSError:
            pass  # the name is only for the message; the lock is what counts

    def release(self) -> None:
        if self._lock:
            self._lock.release()
            self._lock = None
