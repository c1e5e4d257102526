"""The GPU check of issue 10: a feature-cache fill on cuda, fed by decode worker processes, against the CPU.

    python benchmarks/gpu_cache_fill.py --out DIR [--clips 240] [--workdir /tmp/arlib-gpu-work] [--device cuda]

Run by benchmarks/gpu_check.sh on a machine with a CUDA card. Writes DIR/gpu_check.json (rewritten after
every step, so a timeout still leaves the steps done) and prints one line per step:
  env       card, torch, cores, decode workers
  clips     UCF-sized synthetic clips (320x240, 7 s, 25 fps, H.264; arlib.bench.make_clips)
  decode    decode-only frames/s: in-line, worker threads, worker processes (benchmarks/decode_workers.py)
  backbone  frames/s on the card fp32 and bf16 against eager PyTorch on the CPU; feature differences on real
            decoded crops: card fp32 vs CPU, bf16 vs fp32 (max/mean abs, min cosine)
  fill      FeatureCache.ensure over every clip on cuda (one view): worker processes, then worker threads;
            frames/s end to end, and the stored features of a few clips against a CPU fill of the same clips
Module-level imports stay light: decode workers are spawned and re-import this script. `--device cpu` runs the
same steps on the CPU (a smoke test of the script itself; bf16 is then fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

RESULT: dict = {}


def _save(out: Path) -> None:
    tmp = out / "gpu_check.json.tmp"
    tmp.write_text(json.dumps(RESULT, indent=1))
    os.replace(tmp, out / "gpu_check.json")


def _step(out: Path, name: str, fields: dict) -> None:
    RESULT[name] = fields
    _save(out)
    print(f"{name}: {json.dumps(fields)}", flush=True)


def _rate(frames: int, seconds: float) -> float:
    return round(frames / seconds, 1)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def backbone_step(clips: list[str], device: str) -> dict:
    import numpy as np
    import torch

    from arlib.backbones import DEFAULT_BACKBONE, load_backbone
    from arlib.decoding import decode_grid
    from arlib.transforms import TEST_VIEW, apply_view

    card = load_backbone(DEFAULT_BACKBONE, device=device, runtime="torch", bf16=False)
    card_bf16 = load_backbone(DEFAULT_BACKBONE, device=device, runtime="torch", bf16=True)
    cpu = load_backbone(DEFAULT_BACKBONE, device="cpu", runtime="torch")
    pre = card.spec.preprocessing
    frames = np.random.default_rng(0).integers(0, 255, (2048, pre.input_size, pre.input_size, 3), dtype=np.uint8)

    def best_rate(encode, x, repeats: int) -> float:
        encode(x[:128])  # warm-up: cuDNN picks its kernels
        seconds = []
        for _ in range(repeats):
            _sync()
            t = time.perf_counter()
            encode(x)
            _sync()
            seconds.append(time.perf_counter() - t)
        return _rate(len(x), min(seconds))

    frames = frames if card.device.type != "cpu" else frames[:128]
    fp32_fps = best_rate(card.encode, frames, 3)
    bf16_fps = best_rate(card_bf16.encode, frames, 3)
    cpu_fps = best_rate(cpu.encode_torch, frames[:64], 2)
    # real frames: the centre crops of 8 clips' cache grids (a few hundred frames)
    crops = np.concatenate([apply_view(decode_grid(c, 40, pre.resize_short_side)[2], pre.input_size, TEST_VIEW)
                            for c in clips[:8]])
    f_cpu, f_card, f_bf16 = cpu.encode_torch(crops), card.encode(crops), card_bf16.encode(crops)
    t_card, t_bf16 = torch.from_numpy(f_card), torch.from_numpy(f_bf16)
    cos = torch.nn.functional.cosine_similarity(t_card, t_bf16, dim=1)
    return {"backbone": DEFAULT_BACKBONE, "device": str(card.device), "device_fp32_frames_per_s": fp32_fps,
            "device_bf16_frames_per_s": bf16_fps, "device_bf16_runtime": card_bf16.runtime,
            "cpu_eager_frames_per_s": cpu_fps, "cpu_threads": torch.get_num_threads(),
            "device_vs_cpu_speedup": round(fp32_fps / cpu_fps, 1), "real_frames_compared": len(crops),
            "device_vs_cpu_max_abs_diff": float(f"{np.abs(f_card - f_cpu).max():.3g}"),
            "bf16_vs_fp32_max_abs_diff": float(f"{np.abs(f_bf16 - f_card).max():.3g}"),
            "bf16_vs_fp32_mean_abs_diff": float(f"{np.abs(f_bf16 - f_card).mean():.3g}"),
            "mean_abs_feature": float(f"{np.abs(f_card).mean():.3g}"),
            "bf16_min_cosine": round(float(cos.min()), 5)}


def fill(clips: list[str], root: Path, processes: bool) -> dict:
    from arlib import devices
    from arlib.features import FeatureCache

    os.environ["ARLIB_DECODE_PROCESSES"] = "1" if processes else "0"
    cache = FeatureCache(root=root)
    t = time.perf_counter()
    done, failed = cache.ensure(clips, ["center"], progress=False)
    seconds = time.perf_counter() - t
    return {"decode": "processes" if processes else "threads", "decode_workers": devices.decode_workers(),
            "clips": len(done), "failed": len(failed), "frames_encoded": cache.backbone_frames,
            "seconds": round(seconds, 2), "frames_per_s": _rate(cache.backbone_frames, seconds),
            "clips_per_s": round(len(done) / seconds, 1)}


def cpu_agreement(clips: list[str], card_root: Path, cpu_root: Path, device: str) -> dict:
    """Stored (float16) features of the same clips filled on the card and on the CPU (eager PyTorch)."""
    import numpy as np

    from arlib import devices
    from arlib.features import FeatureCache

    os.environ["ARLIB_BACKBONE_RUNTIME"] = "torch"  # eager CPU: no ONNX export on this machine
    devices.set_device("cpu")
    try:
        on_cpu, _ = FeatureCache(root=cpu_root).ensure(clips, ["center"], progress=False)
    finally:
        devices.set_device(device)
    card = FeatureCache(root=card_root)
    diffs = [np.abs(card.get(c).features.astype(np.float32) - on_cpu[c]["center"].features.astype(np.float32)).max()
             for c in clips]
    return {"clips": len(clips), "stored_device_vs_cpu_max_abs_diff": float(f"{max(diffs):.3g}")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="where gpu_check.json goes")
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--workdir", default="/tmp/arlib-gpu-work", help="clips and caches (large: not under --out)")
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.workdir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()

    import torch

    import arlib
    from arlib import devices

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        _step(out, "env", {"error": "no CUDA device is usable here", "torch": torch.__version__})
        sys.exit(1)
    device = devices.set_device(a.device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _step(out, "env", {"device": devices.describe(device), "torch": torch.__version__,
                       "cuda": torch.version.cuda, "python": platform.python_version(), "cores": cores,
                       "decode_workers": devices.decode_workers(), "arlib_from": str(Path(arlib.__file__).parent)})

    t = time.perf_counter()
    from arlib.bench import make_clips  # one process per core

    clips = sorted(str(p) for p in make_clips(work / "clips", a.clips).rglob("*.mp4"))
    _step(out, "clips", {"clips": len(clips), "frames_each": 175, "seconds": round(time.perf_counter() - t, 1)})

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from decode_workers import compare

    _step(out, "decode", compare(clips[:96], devices.decode_workers(), rounds=1))
    _step(out, "backbone", backbone_step(clips, a.device))

    fill(clips[:16], work / "warmup", processes=True)  # CUDA context, kernels and the pool's first start
    _step(out, "fill_processes", fill(clips, work / "cache_processes", processes=True))
    _step(out, "fill_threads", fill(clips, work / "cache_threads", processes=False))
    _step(out, "cpu_agreement", cpu_agreement(clips[:4], work / "cache_processes", work / "cache_cpu",
                                                  a.device))
    RESULT["total_seconds"] = round(time.perf_counter() - started, 1)
    _save(out)
    print(f"done in {RESULT['total_seconds']} s; {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
