"""The frozen backbone in ONNX Runtime on the CPU: exported once, cached on disk, verified before use.

Eager PyTorch runs EfficientNet-Lite0 at ~57-66 frames/s on this 2-core CPU; the same graph in ONNX Runtime
runs ~200 (about 3-3.5x; BatchNorm, padding and ReLU6 folded into the convolutions) with features equal
to ~1e-5 (`arlib bench`; where the time goes: benchmarks/ort_tuning.py --profile). The exported graph takes
the same uint8 [N, H, W, 3] frames as FrozenBackbone.forward (normalisation included), so its features
are the torch features, and existing feature caches stay valid.

The .onnx file is keyed by backbone name, a digest of the weights, the preprocessing and the export
recipe, so new weights or a new recipe export a new file and never reuse a stale one. Before first use a
fresh export is compared with PyTorch on fixed frames; the result is kept next to the file, so later
processes (with the same onnxruntime) skip the check. Anything wrong -> the caller falls back to PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fileio import atomic_write_json

log = logging.getLogger("arlib")

EXPORT_RECIPE = 1  # bump when the export changes (opset, wrapper): old files are then ignored
OPSET = 17
# Features are stored as float16 (relative step ~1e-3); the export must agree far below that.
VERIFY_ATOL = 1e-4
VERIFY_RTOL = 1e-4
# Frames per session.run. Lite0, 2 concurrent single-threaded runs (benchmarks/ort_tuning.py): batch 1, 2
# and 4 within noise of each other (199-201 frames/s), batch 8 a little behind (186).
ORT_BATCH = 4


def onnx_dir() -> Path:
    """$ARLIB_ONNX_DIR, else an `onnx/` folder beside the feature cache ($ARLIB_CACHE_DIR's parent)."""
    if os.environ.get("ARLIB_ONNX_DIR"):
        return Path(os.environ["ARLIB_ONNX_DIR"])
    if os.environ.get("ARLIB_CACHE_DIR"):
        return Path(os.environ["ARLIB_CACHE_DIR"]).parent / "onnx"
    return Path.home() / ".cache" / "arlib" / "onnx"


def weights_digest(module: nn.Module) -> str:
    """sha1 over every parameter and buffer (names, shapes, bytes): the identity of the weights."""
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def verification_frames(size: int) -> np.ndarray:
    """Fixed uint8 frames: noise, a gradient and flat grey, so a wrong graph cannot pass by luck."""
    rng = np.random.default_rng(1234)
    noise = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    ramp = np.broadcast_to(np.linspace(0, 255, size, dtype=np.float32)[None, :, None], (size, size, 3))
    gradient = ramp.astype(np.uint8)[None]
    grey = np.full((1, size, size, 3), 128, np.uint8)
    return np.concatenate([noise, gradient, grey])


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Shared 2-core machine: spinning worker threads steal the core a decoder or the app needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """uint8 [N, S, S, 3] -> float32 [N, D] through ONNX Runtime, batches run data-parallel.

    Several batches: `threads` concurrent session.run calls on one single-threaded session, each running the
    whole graph on its own batch (ORT releases the GIL), so no core waits for another between operators.
    One batch cannot be split that way (a live frame): it runs on a second session that splits every
    operator over `threads` threads. Both give the same features (benchmarks/ort_tuning.py).
    """

    def __init__(self, path: Path, threads: int, max_abs_diff: float):
        self.path = path
        self.max_abs_diff = max_abs_diff  # against PyTorch on the verification frames
        self.threads = max(1, threads)
        self._session = _session(path, 1)
        self._input = self._session.get_inputs()[0].name
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="arlib-onnx") if self.threads > 1 else None
        self._split_ops = None  # the operator-parallel session, opened on the first single-batch call
        self._lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]

    def _run_split_ops(self, batch: np.ndarray) -> np.ndarray:
        if self.threads == 1:
            return self._run(batch)
        with self._lock:
            if self._split_ops is None:
                self._split_ops = _session(self.path, self.threads)
        return self._split_ops.run(None, {self._input: batch})[0]

    def __call__(self, frames: np.ndarray, batch_size: int = ORT_BATCH) -> np.ndarray:
        frames = np.ascontiguousarray(frames)
        # Fewer frames than threads x batch: smaller batches, so that every thread still gets one.
        batch_size = max(1, min(batch_size, -(-len(frames) // self.threads)))
        batches = [frames[i : i + batch_size] for i in range(0, len(frames), batch_size)]
        if len(batches) == 1:
            out = [self._run_split_ops(batches[0])]
        else:
            out = list(self._pool.map(self._run, batches)) if self._pool else [self._run(b) for b in batches]
        return np.concatenate(out).astype(np.float32, copy=False)


def _export(module: nn.Module, size: int, target: Path) -> None:
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (torchrun ranks, the app and a trainer) may want the same file: one exports.
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation chatter
                # dynamo=False: the TorchScript exporter needs no onnxscript and handles these CNNs.
                torch.onnx.export(module, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                                  input_names=["frames"], output_names=["features"],
                                  dynamic_axes={"frames": {0: "n"}, "features": {0: "n"}})
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def onnx_path(backbone) -> tuple[Path, dict]:
    """(the .onnx file for this backbone and its weights, the identity it is keyed by)."""
    spec = backbone.spec
    identity = {"backbone": spec.name, "weights": weights_digest(backbone.net),
                "preprocessing": spec.preprocessing.to_dict(), "recipe": EXPORT_RECIPE, "opset": OPSET}
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return onnx_dir() / f"{spec.name}-{key}.onnx", identity


def load_onnx_encoder(backbone, threads: int | None = None) -> OnnxEncoder:
    """Export (once), verify (once per onnxruntime version) and open the ONNX twin of a FrozenBackbone.

    Raises on any problem (onnxruntime missing, export or check failed); the caller falls back to torch.
    """
    import onnxruntime as ort

    spec = backbone.spec
    path, identity = onnx_path(backbone)
    record_path = path.with_suffix(".verified.json")
    size = spec.preprocessing.input_size
    threads = threads or torch.get_num_threads()
    if not path.is_file():
        _export(backbone.cpu_module(), size, path)
    record = _read_record(record_path)
    if record.get("onnxruntime") == ort.__version__:  # checked before with this onnxruntime
        if not record.get("passed"):
            raise RuntimeError(f"ONNX features differed from PyTorch by {record.get('max_abs_diff')} ({record_path})")
        return OnnxEncoder(path, threads, float(record["max_abs_diff"]))
    encoder = OnnxEncoder(path, threads, float("nan"))
    frames = verification_frames(size)
    reference = backbone.encode_torch(frames)
    got = encoder(frames)
    diff = float(np.abs(got - reference).max()) if got.shape == reference.shape else float("inf")
    passed = got.shape == reference.shape and bool(
        np.allclose(got, reference, atol=VERIFY_ATOL, rtol=VERIFY_RTOL))
    atomic_write_json(record_path, {"onnxruntime": ort.__version__, "torch": torch.__version__,
                                    "passed": passed, "max_abs_diff": diff, **identity})
    if not passed:
        raise RuntimeError(f"ONNX features differ from PyTorch by up to {diff:.2e} (allowed {VERIFY_ATOL:.0e})")
    encoder.max_abs_diff = diff
    return encoder


def _read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
