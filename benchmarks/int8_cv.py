"""int8 (ONNX Runtime static quantisation) against fp32 for the frozen backbone: speed, feature error, and
cross-validated accuracy on ucf101-mini with everything else equal.

    python benchmarks/int8_cv.py --out /tmp/int8 [--repeats 2]

Both backbones encode the same frames (each clip's 44-frame cache grid, centre crop) into precomputed
feature folders; `arlib cv` then runs the same folds and seeds on each. int8 calibration uses frames of
every 8th clip (about 5 % of the frames) -- calibration data is training data, not a held-out set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from arlib import video
from arlib.backbones import DEFAULT_BACKBONE, load_backbone
from arlib.onnx_encoder import OnnxEncoder, onnx_path
from arlib.sampling import DEFAULT_CACHE_FRAMES, cache_grid
from arlib.transforms import TEST_VIEW, apply_view

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini"


def quantise(fp32: Path, out: Path, calibration: np.ndarray) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"frames": calibration[i : i + 4]} for i in range(0, len(calibration), 4)])

        def get_next(self):
            return next(self.batches, None)

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(out), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    bb = load_backbone(DEFAULT_BACKBONE, device="cpu")
    pre = bb.spec.preprocessing
    clips = sorted(p for p in (MINI / "UCF-101").glob("*/*") if p.suffix in (".mp4", ".avi"))
    calibration = np.concatenate([apply_view(video.read_frames(c, [0, 20, 40, 60], short_side=pre.resize_short_side),
                                             pre.input_size, TEST_VIEW) for c in clips[::8]])
    fp32_path, _ = onnx_path(bb)
    int8 = OnnxEncoder(quantise(fp32_path, out / "int8.onnx", calibration), 2, float("nan"))
    encoders = {"fp32": bb.encode, "int8": int8}
    seconds = {k: 0.0 for k in encoders}
    diffs, frames_total = [], 0
    for clip in clips:
        info = video.probe(clip)
        grid = cache_grid(info.num_frames, DEFAULT_CACHE_FRAMES)
        frames = apply_view(video.read_frames(clip, grid, short_side=pre.resize_short_side), pre.input_size, TEST_VIEW)
        feats = {}
        for name, encode in encoders.items():  # interleaved per clip: both see the same machine load
            t = time.perf_counter()
            feats[name] = encode(frames)
            seconds[name] += time.perf_counter() - t
            target = out / name / clip.parent.name / f"{clip.stem}.npy"
            target.parent.mkdir(parents=True, exist_ok=True)
            np.save(target, feats[name].astype(np.float32))
        diffs.append(np.abs(feats["fp32"] - feats["int8"]).mean() / np.abs(feats["fp32"]).mean())
        frames_total += len(frames)
    report = {"clips": len(clips), "frames": frames_total,
              "frames_per_s": {k: round(frames_total / s, 1) for k, s in seconds.items()},
              "int8_speedup": round(seconds["fp32"] / seconds["int8"], 2),
              "mean_relative_feature_error": round(float(np.mean(diffs)), 4)}
    for name in encoders:
        cv = subprocess.run([sys.executable, "-m", "arlib", "cv", "--features", str(out / name), "--splits",
                             str(MINI / "ucfTrainTestlist"), "--classes", "9", "--folds", "4", "--repeats",
                             str(a.repeats), "--json"], capture_output=True, text=True, check=True)
        result = json.loads(cv.stdout.strip().splitlines()[-1])
        report[f"cv_top1_{name}"] = round(result["top1"], 4)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
