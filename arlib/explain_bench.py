"""`python -m arlib.explain_bench`: what heat maps cost and how well they point, measured side by side.

(a) cost per clip, on the same clips in one run, interleaved: plain prediction (whatever runtime it uses,
    ONNX Runtime when available), prediction with Grad-CAM heat maps (torch module, backward stopped at the
    hooked stage), and Grad-CAM with the backward pass taken down to the input frames (the textbook way);
    medians over repeats, and ratios to plain;
(b) the pointing game (arlib/pointing.py) for small models trained with several seeds.
Real clips from ../shared/ucf101-mini with the shipped UCF checkpoint when present, else synthetic clips.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from . import pointing
from .cli import DEMO_CHECKPOINT, UCF_CHECKPOINT, _set_threads
from .explain import grad_cam
from .predict import Predictor
from .transforms import TEST_VIEW, apply_view

UCF_MINI = Path(__file__).resolve().parent.parent.parent / "shared" / "ucf101-mini" / "UCF-101"


def _clips(count: int, tmp: Path) -> tuple[list[Path], Path]:
    if UCF_MINI.is_dir() and UCF_CHECKPOINT.is_file():
        classes = sorted(p for p in UCF_MINI.iterdir() if p.is_dir())
        return [sorted(c.iterdir())[0] for c in classes][:count], UCF_CHECKPOINT
    from .demo import make_demo_dataset

    data = make_demo_dataset(tmp / "demo") / "UCF-101"
    return sorted(data.rglob("*.avi"))[:count], DEMO_CHECKPOINT


def _timed(times: list, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    times.append(time.perf_counter() - t0)
    return out


def measure_cost(clips: list[Path], checkpoint: Path, repeats: int) -> dict:
    predictor = Predictor(checkpoint)
    pre = predictor.backbone.spec.preprocessing
    predictor.predict(clips[0], heatmaps=True)  # warm-up: backbone, ONNX session, allocator
    times = {"plain": [], "heatmaps": [], "stopped": [], "to_input": []}
    json_kb = []
    for _ in range(repeats):
        for clip in clips:
            _timed(times["plain"], predictor.predict, clip)
            pred = _timed(times["heatmaps"], predictor.predict, clip, heatmaps=True)
            json_kb.append(len(json.dumps(pred.to_json()["heatmaps"])) / 1024)
            # Grad-CAM alone on the same sampled frames, both ways
            crops = apply_view(pred.frames, pre.input_size, TEST_VIEW)
            for key, to_input in (("stopped", False), ("to_input", True)):
                _timed(times[key], grad_cam, predictor.backbone, predictor.model, crops, np.arange(len(crops)), 1,
                       backprop_to_input=to_input)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "clips": [str(c) for c in clips], "checkpoint": str(checkpoint), "repeats": repeats,
        "frames_per_clip": predictor.seq_len, "runtime_plain": getattr(predictor.backbone, "runtime", "torch"),
        "seconds_plain": round(med["plain"], 3), "seconds_heatmaps": round(med["heatmaps"], 3),
        "heatmaps_over_plain": round(med["heatmaps"] / med["plain"], 2),
        "seconds_gradcam_stopped_at_stage": round(med["stopped"], 3),
        "seconds_gradcam_backprop_to_input": round(med["to_input"], 3),
        "backprop_to_input_over_stopped": round(med["to_input"] / med["stopped"], 2),
        "heatmaps_json_kb": round(statistics.median(json_kb), 1),
    }


def measure_pointing(seeds: list[int], test_clips: int, workdir: Path) -> dict:
    rows = []
    for seed in seeds:
        root = workdir / f"pointing-{seed}"
        predictor = Predictor(pointing.train_model(root, seed=seed))
        rows.append({"seed": seed, **pointing.pointing_score(predictor, pointing.test_clips(root / "test", test_clips))})
    return {"pointing": rows,
            "pointing_quadrant_mean": round(float(np.mean([r["quadrant"] for r in rows])), 3),
            "pointing_object_mean": round(float(np.mean([r["object"] for r in rows])), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m arlib.explain_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=3, help="clips for the cost measurement")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3, help="pointing-game models to train (seeds 0..N-1); 0 skips")
    p.add_argument("--test-clips", type=int, default=16, help="fresh pointing-game clips per model")
    a = p.parse_args(argv)
    _set_threads()
    with tempfile.TemporaryDirectory(prefix="arlib-explain-bench-") as tmp:
        clips, checkpoint = _clips(a.clips, Path(tmp))
        result = measure_cost(clips, checkpoint, a.repeats)
        print(f"(a) per clip ({result['frames_per_clip']} frames, {len(clips)} clips x {a.repeats}): plain "
              f"{result['seconds_plain']:.2f} s ({result['runtime_plain']}), with heat maps "
              f"{result['seconds_heatmaps']:.2f} s = {result['heatmaps_over_plain']:.2f}x plain; Grad-CAM alone "
              f"{result['seconds_gradcam_stopped_at_stage']:.2f} s stopped at the hooked stage vs "
              f"{result['seconds_gradcam_backprop_to_input']:.2f} s back to the input "
              f"({result['backprop_to_input_over_stopped']:.2f}x); heatmaps JSON {result['heatmaps_json_kb']:.0f} kB",
              flush=True)
        if a.seeds:
            result.update(measure_pointing(list(range(a.seeds)), a.test_clips, Path(tmp)))
            for row in result["pointing"]:
                print(f"(b) seed {row['seed']}: heat peak in the object's quadrant in {row['quadrant']:.0%} of "
                      f"{row['frames']} frames, on the object itself in {row['object']:.0%}", flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
