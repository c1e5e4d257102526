"""Which ONNX Runtime setup runs the frozen backbone fastest on this CPU, against eager PyTorch in the same run.

    python benchmarks/ort_tuning.py [--frames 64] [--rounds 5] [--only "base|2 x 1 thread"] [--profile]

Every variant encodes the same uint8 frames; rounds are interleaved (eager, variant 1, variant 2, ...,
eager, ...) so all see the same load, and the table reports each variant's median frames/s, its ratio to
eager PyTorch's median (model.eval(), torch.inference_mode, default threads, batch 4 channels-last: what
`arlib bench` calls eager), and its largest feature difference from eager. Variants:

- session options: threads, spinning, optimisation level, denormals, memory arena;
- export: static batch dimension, opsets;
- batch size; and data-parallel runs: N concurrent `session.run` calls on one session, each with its own
  batch and 1 intra-op thread (ORT releases the GIL), instead of one call splitting every operator over
  2 threads (which wakes and joins the worker thread around each of the graph's ~50 fused convolutions).

--profile adds where each side spends its time on one thread: ONNX Runtime's profiler and torch.profiler,
milliseconds per frame by kind of operator (1x1 convolutions, depthwise, the 3x3 stem, the rest).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arlib.backbones import DEFAULT_BACKBONE, load_backbone  # noqa: E402
from arlib.onnx_encoder import load_onnx_encoder, onnx_path  # noqa: E402


def session(path: Path, threads: int = 2, spin: bool = False, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            denormal_zero: bool = False, arena: bool = True, inter: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = inter
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = level
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if denormal_zero:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sequential(sess: ort.InferenceSession, batch: int):
    name = sess.get_inputs()[0].name

    def encode(frames: np.ndarray) -> np.ndarray:
        return np.concatenate([sess.run(None, {name: frames[i : i + batch]})[0] for i in range(0, len(frames), batch)])

    return encode


def concurrent(sess: ort.InferenceSession, batch: int, workers: int):
    """Batches spread over `workers` threads, each running the whole graph on its batch (GIL released)."""
    name = sess.get_inputs()[0].name
    pool = ThreadPoolExecutor(workers)

    def encode(frames: np.ndarray) -> np.ndarray:
        chunks = [frames[i : i + batch] for i in range(0, len(frames), batch)]
        return np.concatenate(list(pool.map(lambda c: sess.run(None, {name: c})[0], chunks)))

    return encode


def export_static(backbone, batch: int, opset: int, target: Path) -> Path:
    size = backbone.spec.preprocessing.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(backbone, (torch.zeros(batch, size, size, 3, dtype=torch.uint8),), str(target),
                          dynamo=False, opset_version=opset, input_names=["frames"], output_names=["features"])
    return target


def export_dynamic(backbone, opset: int, target: Path) -> Path:
    size = backbone.spec.preprocessing.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(backbone, (torch.zeros(2, size, size, 3, dtype=torch.uint8),), str(target),
                          dynamo=False, opset_version=opset, input_names=["frames"], output_names=["features"],
                          dynamic_axes={"frames": {0: "n"}, "features": {0: "n"}})
    return target


def conv_kind(weight_shape, groups: int) -> str:
    if groups > 1:
        return "depthwise conv"
    return "1x1 conv" if weight_shape[-1] == 1 else f"{weight_shape[-1]}x{weight_shape[-1]} conv"


def profile_onnxruntime(path: Path, frames: np.ndarray, batch: int = 4) -> dict[str, float]:
    """ms per frame by operator kind, one intra-op thread, ONNX Runtime's own profiler (first run dropped)."""
    tmp = Path(tempfile.mkdtemp(prefix="ort-profile-"))
    try:
        return _profile_onnxruntime(path, frames, batch, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _profile_onnxruntime(path: Path, frames: np.ndarray, batch: int, tmp: Path) -> dict[str, float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.optimized_model_filepath = str(tmp / "optimized.onnx")  # node name -> its group attribute
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp / "ort")
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    sequential(sess, batch)(frames[:batch])  # warm-up
    sequential(sess, batch)(frames)
    events = json.load(open(sess.end_profiling()))
    groups = {n.name: next((a.i for a in n.attribute if a.name == "group"), 1)
              for n in onnx.load(str(tmp / "optimized.onnx")).graph.node}
    first = next(e for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    totals = {"(whole runs)": 0.0}
    for e in events:
        if e["ts"] < first["ts"] + first["dur"]:  # the warm-up run
            continue
        if e.get("cat") == "Session" and e["name"] == "model_run":
            totals["(whole runs)"] += e["dur"] / 1000 / len(frames)
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        kind = e["args"]["op_name"]
        if kind == "Conv":
            weight = list(e["args"]["input_type_shape"][1].values())[0]
            kind = conv_kind(weight, groups.get(e["name"][: -len("_kernel_time")], 1))
        totals[kind] = totals.get(kind, 0.0) + e["dur"] / 1000 / len(frames)
    return totals


TORCH_TOP_LEVEL = ("aten::batch_norm", "aten::pad", "aten::hardtanh",
                   "aten::add", "aten::sub", "aten::div", "aten::mean", "aten::to", "aten::contiguous")


def profile_torch(backbone, frames: np.ndarray, batch: int = 4) -> dict[str, float]:
    """ms per frame by operator kind, one thread, torch.profiler over the eager encode."""
    from torch.profiler import ProfilerActivity, profile

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        backbone.encode_torch(frames[:batch])  # warm-up
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            t = time.perf_counter()
            backbone.encode_torch(frames, batch)
            whole = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
    totals = {"(whole runs)": whole * 1000 / len(frames)}
    for ev in prof.key_averages(group_by_input_shape=True):
        if ev.key == "aten::convolution":
            x_shape, weight = ev.input_shapes[0], ev.input_shapes[1]
            kind = conv_kind(weight, x_shape[1] // weight[1])
        elif ev.key in TORCH_TOP_LEVEL:  # what ONNX Runtime folds or fuses into the convolutions
            kind = ev.key
        else:
            continue
        totals[kind] = totals.get(kind, 0.0) + ev.cpu_time_total / 1000 / len(frames)
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="also profile both sides by operator kind")
    ap.add_argument("--only", default="", help="|-separated parts of variant names (eager always runs)")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)  # not the "optimized model is hardware specific" warning

    eager = load_backbone(DEFAULT_BACKBONE, device="cpu", runtime="torch")
    product = load_onnx_encoder(eager)  # the product's cached, verified export
    path, _ = onnx_path(eager)
    tmp = Path(tempfile.mkdtemp(prefix="ort-tuning-"))  # variant exports; removed at exit
    atexit.register(shutil.rmtree, tmp, True)
    size = eager.spec.preprocessing.input_size
    frames = np.random.default_rng(0).integers(0, 255, (args.frames, size, size, 3), dtype=np.uint8)
    A = ort.GraphOptimizationLevel

    builders = {
        "product (OnnxEncoder as shipped)": lambda: product,
        "base: 2 threads, batch 4": lambda: sequential(session(path), 4),
        "2 threads, batch 8": lambda: sequential(session(path), 8),
        "2 threads, batch 16": lambda: sequential(session(path), 16),
        "2 threads, batch 4, spinning": lambda: sequential(session(path, spin=True), 4),
        "2 threads, batch 4, EXTENDED": lambda: sequential(session(path, level=A.ORT_ENABLE_EXTENDED), 4),
        "2 threads, batch 4, denormal=0": lambda: sequential(session(path, denormal_zero=True), 4),
        "2 threads, batch 4, no arena": lambda: sequential(session(path, arena=False), 4),
        "2 threads, batch 4, static shape": lambda: sequential(
            session(export_static(eager, 4, 17, tmp / "static4.onnx")), 4),
        "2 threads, batch 4, opset 20": lambda: sequential(session(export_dynamic(eager, 20, tmp / "op20.onnx")), 4),
        "1 thread, batch 4": lambda: sequential(session(path, threads=1), 4),
        "2 x 1 thread, batch 1": lambda: concurrent(session(path, threads=1), 1, 2),
        "2 x 1 thread, batch 2": lambda: concurrent(session(path, threads=1), 2, 2),
        "2 x 1 thread, batch 4": lambda: concurrent(session(path, threads=1), 4, 2),
        "2 x 1 thread, batch 8": lambda: concurrent(session(path, threads=1), 8, 2),
        "2 x 1 thread, batch 4, static": lambda: concurrent(
            session(export_static(eager, 4, 17, tmp / "static4.onnx"), threads=1), 4, 2),
    }
    wanted = [w.strip() for w in args.only.split("|") if w.strip()]
    variants = {k: b() for k, b in builders.items() if not wanted or any(w in k for w in wanted)}

    def run_eager(x):
        return eager.encode_torch(x)

    runners = {"eager PyTorch fp32 (baseline)": run_eager, **variants}
    outputs = {k: f(frames[:8]) for k, f in runners.items()}  # warm-up
    seconds = {k: [] for k in runners}
    for _ in range(args.rounds):
        for k, f in runners.items():
            t = time.perf_counter()
            outputs[k] = f(frames)
            seconds[k].append(time.perf_counter() - t)
    reference = outputs["eager PyTorch fp32 (baseline)"]
    eager_fps = len(frames) / statistics.median(seconds["eager PyTorch fp32 (baseline)"])
    load = os.getloadavg()[0]
    print(f"EfficientNet-Lite0, {len(frames)} frames, median of {args.rounds} interleaved rounds, "
          f"load average {load:.1f}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime {ort.__version__}")
    print(f"{'variant':40s} {'frames/s':>9s} {'min..max':>13s} {'vs eager':>9s} {'max |diff|':>11s}")
    for k in runners:
        fps = [len(frames) / s for s in seconds[k]]
        med = len(frames) / statistics.median(seconds[k])
        diff = float(np.abs(outputs[k] - reference).max())
        print(f"{k:40s} {med:9.1f} {min(fps):6.0f}..{max(fps):<6.0f} {med / eager_fps:8.2f}x {diff:11.1e}")

    if args.profile:
        ort_ms = profile_onnxruntime(path, frames)
        torch_ms = profile_torch(eager, frames)
        print("\nms per frame on one thread, by operator kind (profilers add some overhead)")
        print(f"{'operator kind':24s} {'eager':>8s} {'onnxrt':>8s} {'ratio':>7s}")
        for kind in sorted(set(ort_ms) | set(torch_ms), key=lambda k: -torch_ms.get(k, ort_ms.get(k, 0))):
            e, o = torch_ms.get(kind, 0.0), ort_ms.get(kind, 0.0)
            ratio = f"{e / o:6.1f}x" if e and o else "      -"
            print(f"{kind:24s} {e:8.2f} {o:8.2f} {ratio}")


if __name__ == "__main__":
    main()
