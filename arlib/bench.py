"""`python -m arlib bench`: the cached pipeline against the thesis loop, measured side by side in one run.

(a) the thesis loop: every epoch decodes each clip's sampled frames again and re-runs the backbone on
    them; one epoch is timed and multiplied by the epoch count. Timed twice: with eager PyTorch, as the
    thesis ran it (-> train_speedup_*), and with the same ONNX Runtime backbone as ours, so that only
    caching differs (-> caching_speedup_*);
(b) this project: feature-cache build plus the same epochs on cached features, end to end through
    the real trainer (dataset listing, evaluation and checkpoints included);
(c) the same training run again, reusing the cache;
(d) one clip's prediction, end to end (probe, decode, backbone, head) with a loaded model of the default
    recipe (appearance + motion streams, 20 frames; trained one epoch here: latency does not depend on it);
(e) backbone throughput: the runtime prediction and caching use (ONNX Runtime on the CPU, or --device's
    GPU) against eager PyTorch fp32 on the CPU, same frames -> backbone_speedup and backbone_max_abs_diff; (f) peak resident memory.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import video
from .backbones import DEFAULT_BACKBONE, load_backbone
from .datasets import load_dataset
from .devices import current_device, describe
from .model import build_model
from .predict import Predictor
from .sampling import train_positions
from .train import TrainConfig, train
from .transforms import apply_view, training_views

CLASSES = ("Spin", "Slide", "Pulse")


def _write_synthetic_clip(path: Path, label: int, seed: int, n: int, fps: float) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320]
    base = rng.integers(0, 255, size=3)
    t = np.arange(n)[:, None, None] / n
    cx = 160 + 120 * np.sin(2 * np.pi * (t * (label + 1) + rng.random()))
    disc = ((xx[None] - cx) ** 2 + (yy[None] - 120) ** 2) < (30 + 20 * label) ** 2
    frames = np.empty((n, 240, 320, 3), np.uint8)
    frames[:] = (base * 0.5).astype(np.uint8)
    frames[disc] = base[::-1]
    frames = np.clip(frames.astype(np.int16) + rng.integers(-12, 12, frames.shape, dtype=np.int16), 0, 255)
    video.write_clip(path, frames.astype(np.uint8), fps=fps)


def make_clips(root: Path, count: int, seconds: float = 7.0, fps: float = 25.0, seed: int = 0) -> Path:
    """UCF-sized synthetic clips (320x240, 7 s, 25 fps, H.264) in UCF-101 layout with split files.

    Written by one process per core: H.264 encoding took a GPU machine's bench 1 s per clip on one core.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    data = root / "UCF-101"
    n = int(round(seconds * fps))
    jobs, train_lines = [], []
    for i in range(count):
        label = i % len(CLASSES)
        name = CLASSES[label]
        stem = f"v_{name}_g{i // len(CLASSES) + 1:02d}_c01"
        jobs.append((data / name / f"{stem}.mp4", label, seed * 100_003 + i, n, fps))
        train_lines.append(f"{name}/{stem}.avi {label + 1}")
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers > 2:  # spawn: never fork a process that may hold CUDA
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_write_synthetic_clip, *zip(*jobs)))
    else:
        for job in jobs:
            _write_synthetic_clip(*job)
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(CLASSES)))
    (splits / "trainlist01.txt").write_text("".join(line + "\r\n" for line in train_lines))
    (splits / "testlist01.txt").write_text("")
    return data


def thesis_epoch(cfg: TrainConfig, clips, model: nn.Module, optimizer, seed: int, backbone) -> float:
    """One epoch as the thesis ran it: decode + backbone on every sampled frame, then the model step."""
    pre = backbone.spec.preprocessing
    views = training_views(cfg.crops, cfg.flip)
    rng = np.random.default_rng(seed)
    criterion = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    order = rng.permutation(len(clips))
    model.train()
    for start in range(0, len(order), cfg.batch_size):
        batch = [clips[i] for i in order[start : start + cfg.batch_size]]
        xs = []
        for clip in batch:
            info = video.probe(clip.path)
            frames = video.read_frames(clip.path, train_positions(info.num_frames, cfg.seq_len, rng),
                                       short_side=pre.resize_short_side)
            view = views[rng.integers(len(views))]
            xs.append(backbone.encode(apply_view(frames, pre.input_size, view)))
        logits, _ = model(torch.from_numpy(np.stack(xs)))
        loss = criterion(logits, torch.tensor([c.label for c in batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def _peak_rss_mb() -> float:
    """Peak resident memory of this process: getrusage on POSIX (KiB on Linux), psutil's peak working set on Windows."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_average() -> float | None:
    """1-minute load average: how busy the (shared) machine was; ratios are measured side by side anyway."""
    try:
        return round(os.getloadavg()[0], 1)
    except (AttributeError, OSError):  # not on Windows
        return None


def run_bench(clips: int = 24, as_json: bool = False, workdir: str | None = None, epochs: int = 10) -> dict:
    tmp = Path(workdir or tempfile.mkdtemp(prefix="arlib-bench-"))
    say = print
    try:
        say(f"bench: {clips} synthetic clips, 320x240, 7 s, 25 fps, backbone {DEFAULT_BACKBONE}, {epochs} epochs")
        t = time.perf_counter()
        data = make_clips(tmp / "data", clips)
        say(f"  clips written in {time.perf_counter() - t:.1f} s")
        # The same training work on both sides, shaped like the thesis (40 appearance frames a clip, an 80-frame
        # grid for strides 1-2), so the ratios isolate caching and the backbone runtime. Refit off: the thesis
        # loop trains its epochs once, so ours does too; refit's cost: benchmarks/refit_cost.py.
        cfg = TrainConfig(data=str(data), backbone=DEFAULT_BACKBONE, cache_dir=str(tmp / "cache"), epochs=epochs,
                          val_fraction=0.2, checkpoint_every=0, refit=False, motion=False, seq_len=40, cache_frames=80)
        ds = load_dataset(data=cfg.data, val_fraction=cfg.val_fraction)
        backbone = load_backbone(cfg.backbone)  # loaded once, outside every timing

        # (e) backbone throughput: the runtime encode() uses (ONNX Runtime on the CPU, or the GPU) against
        # eager PyTorch fp32 on the CPU, same frames, same process, interleaved so both see the same load
        eager = load_backbone(cfg.backbone, device="cpu", runtime="torch")
        size = backbone.spec.preprocessing.input_size
        frames = np.random.default_rng(0).integers(0, 255, (64, size, size, 3), dtype=np.uint8)
        fast_out, eager_out = backbone.encode(frames[:16]), eager.encode_torch(frames[:8])  # warm-up
        fast_s, eager_s = [], []
        for _ in range(5):  # best of 5, interleaved: single runs vary by 20 % on 2 cores
            t = time.perf_counter()
            fast_out = backbone.encode(frames)
            fast_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            eager_out = eager.encode_torch(frames)
            eager_s.append(time.perf_counter() - t)
        backbone_fps = len(frames) / min(fast_s)
        eager_fps = len(frames) / min(eager_s)
        backbone_diff = float(np.abs(fast_out - eager_out).max())
        say(f"(e) backbone: {backbone_fps:.1f} frames/s with {backbone.runtime}, {eager_fps:.1f} eager PyTorch CPU "
            f"({backbone_fps / eager_fps:.2f}x), features differ by at most {backbone_diff:.1e}")

        # (a) thesis loop: one epoch timed, times the epoch count; with eager PyTorch as the thesis ran it,
        # and with our fast backbone (caching is then the only difference)
        thesis = {}
        for name, encoder in (("eager", eager), ("same_backbone", backbone)):
            torch.manual_seed(0)
            model = build_model(cfg.model_config(backbone.spec.feature_dim, len(ds.classes)))
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            thesis[name] = thesis_epoch(cfg, ds.train, model, optimizer, seed=0, backbone=encoder) * epochs
        thesis_total, same_total = thesis["eager"], thesis["same_backbone"]
        say(f"(a) thesis loop, {epochs} epochs: {thesis_total:.1f} s with eager PyTorch (as the thesis ran it), "
            f"{same_total:.1f} s with our {backbone.runtime} backbone")

        # (b) this project end to end, then (c) again on the warm cache
        t = time.perf_counter()
        train(cfg, tmp / "runs" / "cold", progress=False)
        ours_cold = time.perf_counter() - t
        say(f"(b) cache build + {epochs} epochs: {ours_cold:.1f} s")
        t = time.perf_counter()
        train(cfg, tmp / "runs" / "warm", progress=False)
        ours_warm = time.perf_counter() - t
        say(f"(c) second run reusing the cache: {ours_warm:.1f} s")

        # (d) one clip, end to end, model loaded: a checkpoint of the default recipe (two streams, 20 frames)
        default_cfg = TrainConfig(data=str(data), backbone=DEFAULT_BACKBONE, cache_dir=str(tmp / "cache"), epochs=1,
                                  val_fraction=0.2, checkpoint_every=0, refit=False)
        train(default_cfg, tmp / "runs" / "default", progress=False)
        predictor = Predictor(tmp / "runs" / "default" / "checkpoints" / "last.safetensors")
        clip = ds.train[0].path
        predictor.predict(clip)  # warm-up
        latencies = []
        for _ in range(3):
            t = time.perf_counter()
            predictor.predict(clip)
            latencies.append(time.perf_counter() - t)
        latency = statistics.median(latencies)
        say(f"(d) one clip predicted in {latency:.2f} s (median of 3)")

        peak_mb = _peak_rss_mb()
        say(f"(f) peak RSS {peak_mb:.0f} MB")
        result = {
            "train_speedup_end_to_end": round(thesis_total / ours_cold, 2),
            "train_speedup_cached_rerun": round(thesis_total / ours_warm, 2),
            "caching_speedup_end_to_end": round(same_total / ours_cold, 2),
            "caching_speedup_cached_rerun": round(same_total / ours_warm, 2),
            "clip_latency_s": round(latency, 3),
            "backbone_frames_per_s": round(backbone_fps, 1),
            "backbone_runtime": backbone.runtime,
            "backbone_speedup": round(backbone_fps / eager_fps, 2),
            "backbone_max_abs_diff": float(f"{backbone_diff:.3g}"),
            "backbone_eager_frames_per_s": round(eager_fps, 1),
            "peak_rss_mb": round(peak_mb, 1),
            "timings_s": {"thesis_total_eager": round(thesis_total, 3), "thesis_total_same_backbone": round(same_total, 3),
                          "ours_cache_build_and_train": round(ours_cold, 3), "ours_cached_rerun": round(ours_warm, 3),
                          "clip_latencies": [round(x, 3) for x in latencies]},
            "setup": {"clips": clips, "epochs": epochs, "refit": cfg.refit, "frames_per_clip": 175, "backbone": cfg.backbone,
                      "seq_len": cfg.seq_len, "cache_frames": cfg.cache_frames,
                      "clip_latency_model": {"streams": predictor.streams, "seq_len": predictor.seq_len},
                      "views": training_views(cfg.crops, cfg.flip), "threads": torch.get_num_threads(),
                      "device": describe(current_device()), "load_average": _load_average()},
        }
        say(f"speed-up vs the thesis loop: end to end {result['train_speedup_end_to_end']}x, cached re-run "
            f"{result['train_speedup_cached_rerun']}x; caching alone (same backbone both sides): "
            f"{result['caching_speedup_end_to_end']}x, {result['caching_speedup_cached_rerun']}x")
        if as_json:
            print(json.dumps(result))
        return result
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)
