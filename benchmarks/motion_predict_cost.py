"""One clip predicted end to end with an appearance-only and a two-stream (motion) checkpoint, side by side.

Both checkpoints load once; predictions alternate between them on the same clip; the median of each and their
ratio are printed. Make the two checkpoints alike, e.g.
    python -m arlib train --data ../shared/ucf101-mini/UCF-101 --classes 9 --epochs 2 --no-motion --out runs/plain2
    python -m arlib train --data ../shared/ucf101-mini/UCF-101 --classes 9 --epochs 2 --motion --out runs/motion2
    PYTHONPATH=. python benchmarks/motion_predict_cost.py --plain runs/plain2/checkpoints/best.safetensors \\
        --motion runs/motion2/checkpoints/best.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from arlib.predict import Predictor

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini" / "UCF-101" / "ApplyEyeMakeup"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plain", required=True)
    p.add_argument("--motion", required=True)
    p.add_argument("--clip", default=str(min(CLIP.glob("*.mp4"), default=CLIP)))
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    plain, motion = Predictor(a.plain), Predictor(a.motion)
    assert plain.streams == 1 and motion.streams == 2, "--plain needs one stream, --motion two"
    plain.predict(a.clip), motion.predict(a.clip)  # warm-up
    seconds = {"plain": [], "motion": []}
    for _ in range(a.rounds):
        for name, predictor in (("plain", plain), ("motion", motion)):
            t = time.perf_counter()
            predictor.predict(a.clip)
            seconds[name].append(time.perf_counter() - t)
    off, on = statistics.median(seconds["plain"]), statistics.median(seconds["motion"])
    print(json.dumps({"clip": a.clip, "plain_s": round(off, 3), "motion_s": round(on, 3), "ratio": round(on / off, 2),
                      "rounds": a.rounds, "load_average": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
