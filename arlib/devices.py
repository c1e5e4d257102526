"""Where the tensors live: `--device auto|cpu|cuda|mps` resolved once per process.

auto = CUDA, then Apple MPS, then the CPU (where the frozen backbone runs in ONNX Runtime). The choice is
process-wide (set by the CLI from --device, or by $ARLIB_DEVICE, which the studio passes on to the
trainer it launches), so library calls deep inside training or prediction agree on one device.
"""

from __future__ import annotations

import os

import torch

from .errors import ArlibError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

_chosen: str | None = None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str | None = None) -> torch.device:
    """'auto'/None -> the best device here; 'cuda', 'cuda:1', 'mps', 'cpu' -> checked, or one clear sentence."""
    name = (name or _chosen or os.environ.get("ARLIB_DEVICE") or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ArlibError(f"Unknown device '{name}'; choose one of: {', '.join(DEVICE_CHOICES)}.")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ArlibError("Device 'cuda' was asked for but no CUDA GPU is usable here; use --device cpu or auto.")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ArlibError(f"Device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    if kind == "mps" and not _mps_available():
        raise ArlibError("Device 'mps' was asked for but Apple's Metal backend is not usable here; use --device cpu or auto.")
    return torch.device(name)


def set_device(name: str | None) -> torch.device:
    """Fix the process-wide device (checked now, so a bad --device fails before any work).

    None clears an earlier choice: $ARLIB_DEVICE, else auto, decides again.
    """
    global _chosen
    _chosen = None
    device = resolve_device(name)
    if name is not None:
        _chosen = str(device)
    return device


def chosen_name() -> str | None:
    """The device asked for (set_device, else $ARLIB_DEVICE) as written, or None when it is auto."""
    name = (_chosen or os.environ.get("ARLIB_DEVICE") or "").strip().lower()
    return name if name and name != "auto" else None


def current_device() -> torch.device:
    return resolve_device(None)


def decode_workers() -> int:
    """How many clips are decoded at once, ahead of the backbone ($ARLIB_DECODE_WORKERS overrides).

    One on the CPU (two cores: one decodes, one encodes; a thread). On a GPU every core but one, up to 16,
    each a worker process (decoding.py): one core decodes ~5k UCF frames/s and the GPU encodes 4-35k, so
    decoding must fan out to keep up; the one core left feeds the GPU. Under torchrun the cores are shared
    by the ranks on this machine ($LOCAL_WORLD_SIZE).
    """
    if os.environ.get("ARLIB_DECODE_WORKERS"):
        return max(1, int(os.environ["ARLIB_DECODE_WORKERS"]))
    if current_device().type == "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ranks_here = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(16, cores // ranks_here - 1))


def cuda_rng_state() -> torch.Tensor | None:
    """Every CUDA device's generator state as one [devices, L] tensor (for checkpoints); None without CUDA."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.stack(torch.cuda.get_rng_state_all())


def restore_cuda_rng_state(state: torch.Tensor | None) -> None:
    if state is not None and torch.cuda.is_available() and len(state) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(list(state))


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
