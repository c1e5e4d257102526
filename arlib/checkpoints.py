"""Self-describing, safe checkpoints in safetensors format.

A checkpoint holds the model weights, the optimizer state and RNG state (for --resume) as tensors, and
everything prediction needs as JSON metadata: model config, backbone and preprocessing, class names,
sequence length, epoch, metrics, dataset summary. Loading parses tensors and JSON only: it never
unpickles, so a hostile file cannot run code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError
from .fileio import atomic_write_bytes

FORMAT = "arlib-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


@dataclass
class Checkpoint:
    meta: dict  # JSON: model, backbone, preprocessing, classes, seq_len, epoch, metrics, ...
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict | None = None
    rng_state: torch.Tensor | None = None
    # one row per CUDA device (torch.cuda.get_rng_state_all), so a resumed GPU run replays its dropout
    cuda_rng_state: torch.Tensor | None = None
    path: str | None = field(default=None, compare=False)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{name}"] = value.detach().contiguous()
            else:
                scalars[f"{idx}/{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], spec: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, idx, name = key.split("/", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in spec.get("scalars", {}).items():
        idx, name = key.split("/", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = []
    for group in spec["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def to_bytes(ckpt: Checkpoint) -> bytes:
    # serialised as is (no copy for CPU tensors); a GPU run's tensors come to the CPU here
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in ckpt.model_state.items()}
    meta = dict(ckpt.meta, format=FORMAT, format_version=FORMAT_VERSION)
    if ckpt.optimizer_state is not None:
        optim_tensors, optim_spec = _flatten_optimizer(ckpt.optimizer_state)
        tensors.update({k: v.cpu() for k, v in optim_tensors.items()})
        meta["optimizer"] = optim_spec
    if ckpt.rng_state is not None:
        tensors["rng/torch"] = ckpt.rng_state
    if ckpt.cuda_rng_state is not None:
        tensors["rng/cuda"] = ckpt.cuda_rng_state
    return st_save(tensors, metadata={"arlib": json.dumps(meta)})


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    atomic_write_bytes(path, to_bytes(ckpt))
    return path


def _refuse_unsafe(path: Path, head: bytes) -> None:
    """Name pickle files (torch.save zips, raw pickles) before trying them as safetensors.

    A safetensors file starts with its header length (8 little-endian bytes) and then '{', and that
    length may itself begin with 0x80 or 'PK': only a file without the '{' is taken for a pickle.
    """
    if head[8:9] == b"{":
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path.name} is a pickle-based PyTorch file; arlib loads only .safetensors checkpoints, "
            "which cannot run code, so it was not opened."
        )


def _read_header(path: Path, data: bytes) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"{path.name} is empty or truncated; it is not a usable checkpoint.")
    (n,) = struct.unpack("<Q", data[:8])
    if n <= 0 or 8 + n > len(data):
        raise CheckpointError(f"{path.name} is truncated or is not a safetensors checkpoint.")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        raise CheckpointError(f"{path.name} is not a safetensors checkpoint (its header is not valid JSON).") from None
    return header


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file (for example {path}/best{SUFFIX}).")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist.") from None
    except OSError as exc:
        raise CheckpointError(f"Checkpoint {path} could not be read ({exc.strerror}).") from None
    _refuse_unsafe(path, data[:9])
    header = _read_header(path, data)
    try:
        meta = json.loads(header.get("__metadata__", {}).get("arlib", "null"))
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is a safetensors file but not an arlib checkpoint (no arlib metadata).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer arlib; upgrade arlib to read it.")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is corrupt ({exc}).") from None
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim/")}
    optimizer_state = _unflatten_optimizer(optim_tensors, meta["optimizer"]) if "optimizer" in meta else None
    return Checkpoint(meta=meta, model_state=model_state, optimizer_state=optimizer_state,
                      rng_state=tensors.get("rng/torch"), cuda_rng_state=tensors.get("rng/cuda"), path=str(path))


def checkpoint_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / f"{name}{SUFFIX}"


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """A copy for prediction only: no optimizer or RNG state, float weights optionally in float16.

    Loading converts float16 weights back to the model's float32 (load_state_dict copies by value).
    """
    ckpt = load_checkpoint(src)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt.model_state.items()}
    meta = dict(ckpt.meta, exported_from=Path(src).name, weights_dtype="float16" if half else "float32")
    return save_checkpoint(Checkpoint(meta, state), dst)
