"""How far bfloat16 autocast moves the backbone's features from fp32, on real frames (ucf101-mini).

    python benchmarks/bf16_features.py [--device cuda]

bf16 numerics are the same on any device, so the CPU gives the figure when no GPU is at hand (slowly).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from arlib import video
from arlib.backbones import DEFAULT_BACKBONE, load_backbone
from arlib.transforms import TEST_VIEW, apply_view

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini" / "UCF-101"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    a = ap.parse_args()
    bb = load_backbone(a.backbone, device=a.device, runtime="torch", bf16=False)
    pre = bb.spec.preprocessing
    clips = sorted(p for p in MINI.glob("*/*") if p.suffix in (".mp4", ".avi"))[::9]
    frames = np.concatenate([apply_view(video.read_frames(c, [10, 50], short_side=pre.resize_short_side),
                                        pre.input_size, TEST_VIEW) for c in clips])
    x = torch.from_numpy(frames)
    with torch.inference_mode():
        fp32 = bb(x).float().cpu()
        with torch.autocast(bb.device.type, dtype=torch.bfloat16):
            bf16 = bb(x).float().cpu()
    diff = (fp32 - bf16).abs()
    cos = torch.nn.functional.cosine_similarity(fp32, bf16, dim=1)
    print(json.dumps({"backbone": a.backbone, "device": str(bb.device), "frames": len(frames),
                      "max_abs_diff": round(float(diff.max()), 4), "mean_abs_diff": round(float(diff.mean()), 5),
                      "mean_abs_feature": round(float(fp32.abs().mean()), 4),
                      "min_cosine": round(float(cos.min()), 5)}))


if __name__ == "__main__":
    main()
