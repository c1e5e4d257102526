"""What the motion stream adds to the feature cache: time and bytes of the 'motion' view against 'center',
measured side by side on the same real clips (ucf101-mini), each in a fresh cache.

    python benchmarks/motion_cache_cost.py [--clips 8]

Both views are timed from a cold cache: decode the grid frames, (motion: also decode the frames GAP later
and take differences), encode, write. The ratio is what matters; absolute times follow the machine's load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from arlib.backbones import DEFAULT_BACKBONE, load_backbone
from arlib.datasets import load_dataset
from arlib.features import FeatureCache
from arlib.motion import MOTION_VIEW
from arlib.transforms import TEST_VIEW

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini" / "UCF-101"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    a = ap.parse_args()
    clips = [c.path for c in load_dataset(data=MINI, classes=9).train][:: max(1, 72 // a.clips)][: a.clips]
    load_backbone(a.backbone)  # built once, outside every timing
    out = {}
    for view in (TEST_VIEW, MOTION_VIEW, TEST_VIEW):  # centre twice: the second run shows the noise
        with tempfile.TemporaryDirectory() as tmp:
            cache = FeatureCache(a.backbone, tmp)
            t = time.perf_counter()
            for clip in clips:
                cache.compute(clip, [view])
            seconds = time.perf_counter() - t
            size = sum(f.stat().st_size for f in Path(tmp).rglob(f"{view}.npz"))
        out.setdefault(view, []).append({"seconds": round(seconds, 2), "bytes": size})
    centre = sum(r["seconds"] for r in out[TEST_VIEW]) / len(out[TEST_VIEW])
    print(json.dumps({"clips": len(clips), "views": out,
                      "motion_time_vs_center": round(out[MOTION_VIEW][0]["seconds"] / centre, 2),
                      "motion_bytes_vs_center": round(out[MOTION_VIEW][0]["bytes"] / out[TEST_VIEW][0]["bytes"], 2)}))


if __name__ == "__main__":
    main()
