"""Decoding clips ahead of the backbone: in one thread on the CPU, in worker processes on a GPU.

A GPU encodes 14-35k frames/s and one core decodes ~5k UCF frames/s, so a GPU cache fill is decode-bound
unless several cores decode at once. PyAV releases the GIL only inside FFmpeg; demuxing, frame conversion
and Python bookkeeping hold it, so several decode workers are worker *processes* (spawned: never a fork of a
parent that may have initialised CUDA; $ARLIB_DECODE_PROCESSES=0 keeps them threads, and
benchmarks/decode_workers.py compares the two). The worker function takes plain arguments and returns plain
values (uint8 frames), and this module imports no torch, so a worker starts in well under a second; workers
never run the parent's main script (see _ScriptlessProcess), and if they cannot start at all, threads take
over (one log line).
On the CPU default (one worker) a thread decodes one clip ahead: processes would only add pickling there.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import types
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

import numpy as np

from . import video
from .errors import ArlibError, VideoError
from .sampling import cache_grid

log = logging.getLogger("arlib")


def failure_sentence(clip: str, exc: BaseException) -> str:
    """The one sentence recorded for a clip that failed with an unexpected exception."""
    reason = " ".join(str(exc).split())[:160]
    return str(ArlibError(f"{clip} could not be processed ({type(exc).__name__}: {reason})."))


def decode_grid(clip_path: str, cache_frames: int, short_side: int, partners: bool = False,
                ) -> tuple[video.VideoInfo, np.ndarray, np.ndarray, np.ndarray | None]:
    """(info, grid frame numbers, uint8 frames resized so the short side is short_side, and with `partners` the
    motion stream's partner frames, else None) of a clip's cache grid; partners come from the same pass."""
    info = video.probe(clip_path)
    grid = cache_grid(info.frame_times(), cache_frames)
    if partners:
        from .motion import frames_and_partners

        return info, grid, *frames_and_partners(clip_path, grid, info, short_side)
    return info, grid, video.read_frames(clip_path, grid, short_side=short_side, info=info), None


def _decode_in_worker(clip_path: str, cache_frames: int, short_side: int, partners: bool = False):
    # Only ArlibErrors cross the process boundary: they pickle with their sentence, whereas an arbitrary
    # library exception might not unpickle in the parent (which would break the whole pool).
    try:
        return decode_grid(clip_path, cache_frames, short_side, partners)
    except ArlibError:
        raise
    except Exception as exc:
        raise ArlibError(failure_sentence(clip_path, exc)) from None


def _ready() -> bool:
    return True  # a worker answered: the pool can start (see DecodeAhead._executor)


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and shuts the pool down), so
    # workers never die half-way through sending a result.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One FFmpeg thread per worker: the workers already fill the cores, and FFmpeg's own threads (one per
    # core in every worker) oversubscribed an H200 machine's 16 cores 15-fold.
    os.environ[video.DECODER_THREADS_ENV] = "1"


class _ScriptlessProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker that does not run the parent's main script.

    spawn re-imports `__main__` in every child so that functions defined there unpickle; ours live in this
    module, and the main script may be anything: a Streamlit page (Streamlit and its AppTest install the page
    as `__main__`, and a worker would run the whole app), stdin, or a script without a `__main__` guard. For
    the instant the child is launched, `__main__` is a bare module with no file, so the child imports none.
    """

    def start(self) -> None:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            super().start()
        finally:
            sys.modules["__main__"] = main


class _ScriptlessSpawn(type(multiprocessing.get_context("spawn"))):
    Process = _ScriptlessProcess


def _lost(future: Future) -> bool:
    """True when a decode never finished because its pool broke (a decoded clip or a clip's own error is kept)."""
    if future.cancelled() or not future.done():
        return True
    return isinstance(future.exception(), BrokenProcessPool)


class DecodeAhead:
    """Decodes clips i+1 .. i+depth while the caller encodes clip i; take(i) hands clip i's decode over.

    decode_args(j) gives (clip_path, cache_frames, short_side) for clip j, or None when it needs no decoding.
    A worker process that dies (a decoder crash on a hostile file) breaks the pool: it is restarted, the
    clips still ahead are sent again, and the clip that was being taken gets one more try alone before it is
    failed with a sentence of its own, so one such file never stops the others.
    """

    def __init__(self, decode_args: Callable[[int], tuple | None], count: int, workers: int,
                 processes: bool | None = None):
        self.workers = max(1, int(workers))
        if processes is None:  # $ARLIB_DECODE_PROCESSES=0 keeps several workers in threads (for comparison)
            processes = self.workers > 1 and os.environ.get("ARLIB_DECODE_PROCESSES", "1").strip() != "0"
        self.processes = bool(processes)
        # processes: twice as many clips in flight as workers, so none idles while the parent unpickles
        self.depth = 2 * self.workers if self.processes else self.workers
        self._decode_args = decode_args
        self._count = count
        self._pool: Executor | None = None  # started on the first clip that needs decoding (a warm cache needs none)
        self._ahead: dict[int, tuple[tuple, Future] | None] = {}
        for j in range(self.depth):
            self._schedule(j)

    def _executor(self) -> Executor:
        if self._pool is None and self.processes:
            pool = ProcessPoolExecutor(self.workers, mp_context=_ScriptlessSpawn(), initializer=_worker_init)
            try:
                pool.submit(_ready).result()
                self._pool = pool
            except BrokenProcessPool:
                # Workers could not start (an environment that cannot spawn): threads decode the same frames.
                pool.shutdown(wait=True, cancel_futures=True)
                log.warning("decode worker processes could not start; decoding in %d threads instead", self.workers)
                self.processes = False
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        return self._pool

    def _submit(self, args: tuple) -> Future:
        try:
            pool = self._executor()
            return pool.submit(_decode_in_worker if self.processes else decode_grid, *args)
        except BrokenProcessPool:  # a worker died since the last look: start afresh
            self._restart()
            pool = self._executor()
            return pool.submit(_decode_in_worker if self.processes else decode_grid, *args)

    def _schedule(self, j: int) -> None:
        if j < self._count and j not in self._ahead:
            args = self._decode_args(j)
            self._ahead[j] = (args, self._submit(args)) if args is not None else None

    def _restart(self) -> None:
        """A worker died: a fresh pool, and every clip still ahead is decoded again."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        for j, entry in self._ahead.items():
            if entry is not None and _lost(entry[1]):
                self._ahead[j] = (entry[0], self._submit(entry[0]))

    def take(self, i: int) -> Future | None:
        """Clip i's decode (None: nothing to decode); schedules the clip `depth` places further on."""
        self._schedule(i)
        entry = self._ahead.pop(i, None)
        self._schedule(i + self.depth)
        if entry is None:
            return None
        args, future = entry
        if not self.processes:
            return future
        for attempt in range(2):
            if not isinstance(future.exception(), BrokenProcessPool):
                return future
            self._restart()
            if attempt == 0:
                future = self._submit(args)
        failed: Future = Future()
        failed.set_exception(VideoError(f"Decoding {args[0]} crashed its worker process twice; the file looks "
                                        "damaged or hostile, so it was skipped."))
        return failed

    def close(self) -> None:
        """Stop the workers: clips not started yet are dropped, running ones finish (each well under a second)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ahead.clear()

    def __enter__(self) -> "DecodeAhead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
