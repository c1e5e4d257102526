"""What a motion stream costs live recognition: worker time per frame of an appearance-only checkpoint against
a two-stream one, measured side by side on the same decoded frames of real clips (ucf101-mini).

    python benchmarks/live_motion_cost.py --plain runs/plain9/checkpoints/best.safetensors \
        --motion runs/motion9/checkpoints/best.safetensors [--rounds 3]

Each round pushes every frame of each clip through a fresh LiveRecognizer for one checkpoint and then the
other (the order alternates), as `arlib live --fast` does: everything the worker does per frame (resize,
crop, backbone, and the model every 0.5 s of video), nothing dropped. It prints, per checkpoint, the median
over rounds of the wall-clock and the CPU time (all threads of this process) per frame, the frame rate the
worker could sustain (1 / wall time), backbone images per frame, and the ratios. On a shared machine the wall
times follow the load; CPU time, the work itself, much less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from arlib.live import LiveRecognizer, open_source
from arlib.predict import Predictor

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini" / "UCF-101"
CLIPS = ["Archery/v_Archery_g15_c01.mp4", "BabyCrawling/v_BabyCrawling_g14_c04.mp4",
         "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.mp4"]


def per_frame(predictor: Predictor, frames: list) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds) for all frames of one clip, and the backbone images they took."""
    recognizer = LiveRecognizer(predictor)  # warms up before the clocks start
    wall, cpu = time.perf_counter(), time.process_time()
    for frame, t in frames:
        recognizer.push(frame, t)
    recognizer.finish()
    return time.perf_counter() - wall, time.process_time() - cpu, recognizer.backbone_passes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plain", required=True, help="an appearance-only checkpoint")
    ap.add_argument("--motion", required=True, help="a two-stream (--motion) checkpoint with the same backbone")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    predictors = {"plain": Predictor(a.plain), "motion": Predictor(a.motion)}
    assert predictors["plain"].streams == 1 and predictors["motion"].streams == 2, "--plain and --motion swapped?"
    short_side = predictors["plain"].backbone.spec.preprocessing.resize_short_side
    clips = {c: list(open_source(MINI / c, realtime=False, short_side=short_side)) for c in CLIPS}  # decoded once
    n = sum(len(frames) for frames in clips.values())
    wall, cpu, images = ({name: [] for name in predictors} for _ in range(3))
    for r in range(a.rounds):
        totals = {name: [0.0, 0.0, 0] for name in predictors}
        for frames in clips.values():  # clip by clip, so a change of load hits both checkpoints alike
            for name in (("plain", "motion") if r % 2 == 0 else ("motion", "plain")):
                totals[name] = [x + y for x, y in zip(totals[name], per_frame(predictors[name], frames))]
        for name, (w, c, i) in totals.items():
            wall[name].append(1000 * w / n)
            cpu[name].append(1000 * c / n)
            images[name].append(i / n)
    out = {"frames_per_round": n}
    for name in predictors:
        ms = statistics.median(wall[name])
        out[name] = {"wall_ms_per_frame": round(ms, 1), "cpu_ms_per_frame": round(statistics.median(cpu[name]), 1),
                     "sustainable_fps": round(1000 / ms, 1), "backbone_passes_per_frame": round(images[name][0], 2),
                     "rounds_wall_ms": [round(v, 1) for v in wall[name]]}
    for kind in ("wall", "cpu"):
        key = f"{kind}_ms_per_frame"
        out[f"motion_over_plain_{kind}"] = round(out["motion"][key] / out["plain"][key], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
