"""Decode-only throughput of the feature cache's look-ahead: worker threads against worker processes.

    python benchmarks/decode_workers.py [--clips 24] [--workers 2] [--data FOLDER] [--rounds 2]

Each clip's cache grid (80 frames, short side 256: what filling Lite0's cache decodes) is decoded through
arlib.decoding.DecodeAhead exactly as FeatureCache.ensure runs it, with nothing encoding, so the figure is
the most a backbone could be fed. One worker in-line (the caller decoding itself) is the reference. Modes
are interleaved and the best round of each is kept; ratios are side by side from one run. Without --data,
UCF-sized synthetic clips (320x240, 7 s, 25 fps, H.264; arlib.bench.make_clips) are written first.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from arlib.decoding import DecodeAhead, decode_grid
from arlib.sampling import DEFAULT_CACHE_FRAMES


def _decode_all(clips: list[str], workers: int, mode: str, short_side: int) -> tuple[float, int]:
    """Seconds to decode every clip's grid in order, and the frames decoded."""
    args = [(c, DEFAULT_CACHE_FRAMES, short_side) for c in clips]
    frames = 0
    t = time.perf_counter()
    if mode == "inline":
        for a in args:
            frames += len(decode_grid(*a)[1])
    else:  # pool start-up counts: ensure() pays it too
        with DecodeAhead(lambda j: args[j], len(args), workers, processes=mode == "processes") as ahead:
            for i in range(len(args)):
                frames += len(ahead.take(i).result()[1])
    return time.perf_counter() - t, frames


def compare(clips: list[str], workers: int, rounds: int = 2, short_side: int | None = None) -> dict:
    """clips/s and frames/s of in-line, threads and processes decoding of the same clips, interleaved."""
    from arlib.backbones import DEFAULT_BACKBONE, get_spec  # torch: kept out of what spawned workers import

    short_side = short_side or get_spec(DEFAULT_BACKBONE).preprocessing.resize_short_side
    best: dict[str, float] = {}
    frames = 0
    for _ in range(rounds):
        for mode in ("inline", "threads", "processes"):
            seconds, frames = _decode_all(clips, workers, mode, short_side)
            best[mode] = min(best.get(mode, seconds), seconds)
    out = {"clips": len(clips), "workers": workers, "frames": frames, "cores": os.cpu_count()}
    for mode, seconds in best.items():
        out[f"{mode}_clips_per_s"] = round(len(clips) / seconds, 1)
        out[f"{mode}_frames_per_s"] = round(frames / seconds)
    out["processes_vs_threads"] = round(best["threads"] / best["processes"], 2)
    out["processes_vs_inline"] = round(best["inline"] / best["processes"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24, help="synthetic clips to write (without --data)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", help="a folder of clips to decode instead (every .mp4/.avi below it)")
    a = ap.parse_args()
    if a.data:
        clips = sorted(str(p) for p in Path(a.data).rglob("*") if p.suffix.lower() in (".mp4", ".avi"))
    else:
        from arlib.bench import make_clips

        data = make_clips(Path(tempfile.mkdtemp(prefix="arlib-decode-")), a.clips)
        clips = sorted(str(p) for p in data.rglob("*.mp4"))
    result = compare(clips, a.workers, a.rounds)
    print(f"decode only, {result['clips']} clips, {result['workers']} workers: "
          f"in-line {result['inline_frames_per_s']} frames/s, threads {result['threads_frames_per_s']}, "
          f"processes {result['processes_frames_per_s']} ({result['processes_vs_threads']}x threads)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
