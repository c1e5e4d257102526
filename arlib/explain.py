"""Grad-CAM heat maps per sampled frame, through the frozen backbone, for any class of the sequence model.

Grad-CAM (Selvaraju et al. 2017), hand-written with hooks: a forward hook on the backbone's last conv stage
keeps its feature maps A [N, K, h, w]; a backward hook on them keeps dScore/dA. Each frame's map is
ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of dScore/dA_k. The score is the chosen class's logit
(before softmax) summed over the clip's windows, so ONE backward pass gives every sampled frame its map:
the sequence model mixes frames, and each frame's map says what in it pushed the clip's score up.

The weights stay frozen, and this always runs the torch module (`backbone.net`), never the ONNX Runtime
encoder that plain prediction may use. The forward hook hands the rest of the network a detached copy of A
that requires grad, so the backward pass stops at the hooked stage: nothing below it is kept for backward or
recomputed, and a heat-map prediction costs one ordinary backbone pass plus a backward through pooling and the small
sequence model. The gradient at the hooked stage is exactly what a backward from an input that requires grad
would give there (`backprop_to_input=True` does that, for checking; tests/test_explain.py compares them).

Maps are normalised over the whole clip (max = 1 in the clip, not per frame) so intensity compares across
time, and are placed on the FULL frame: the backbone saw a resized centre crop, and whatever lay outside it
gets 0, not stretched heat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import FRAMES_PER_BATCH, FrozenBackbone

# Heat maps leave the library on a grid whose short side has this many cells (the 7x7 map of a 224 px
# crop covers about 7/8 of the short side, so ~2 cells per map cell): enough for an overlay, small in JSON.
GRID_SHORT_SIDE = 16


def feature_map_layer(backbone: FrozenBackbone) -> nn.Module:
    """The module whose output is the last conv stage's feature map, the one global pooling reduces."""
    net = backbone.net
    for name in ("feature_map", "layer4", "features"):  # arlib's pooled trunks, torchvision resnets, mobilenet_v2
        layer = getattr(net, name, None)
        if isinstance(layer, nn.Module):
            return layer
    raise ValueError(f"no known last conv stage in backbone {backbone.spec.name}")


class _CamHooks:
    """Forward + backward hooks on one layer: its outputs per forward call and their gradients."""

    def __init__(self, layer: nn.Module, detach: bool):
        self.detach = detach
        self.outputs: list[torch.Tensor] = []  # what the rest of the network computed from
        self.grads: dict[int, torch.Tensor] = {}
        # The backbone is shared (one per process, used by every app session): only this thread's passes count.
        self._thread = threading.get_ident()
        self._handle = layer.register_forward_hook(self._forward)

    def _forward(self, _module, _inputs, output):
        if threading.get_ident() != self._thread:
            return None
        if self.detach:  # the backward pass ends here: the frozen layers below need no graph
            output = output.detach().requires_grad_(True)
        index = len(self.outputs)
        self.outputs.append(output)
        output.register_hook(lambda grad: self.grads.__setitem__(index, grad.detach()))  # the backward hook
        return output if self.detach else None

    def remove(self) -> None:
        self._handle.remove()


@dataclass
class CamResult:
    features: np.ndarray  # float32 [W*T, D]: backbone features per position (the same as encode() gives)
    cams: np.ndarray  # float32 [N, h, w] >= 0, one per crop given, unnormalised, over that crop
    logits: torch.Tensor  # [W, C]
    attention: torch.Tensor  # [W, T]
    class_index: int


def grad_cam(backbone: FrozenBackbone, model: nn.Module, crops: np.ndarray, positions: np.ndarray, windows: int,
             class_index: int | Callable[[torch.Tensor], int] | None = None, backprop_to_input: bool = False,
             batch_size: int = FRAMES_PER_BATCH) -> CamResult:
    """crops: uint8 [N, S, S, 3], each distinct sampled frame once; positions [W*T] index crops, window after
    window, each in time order (a padded clip repeats its last frame). class_index: a class, a function of the
    logits [W, C] choosing one, or None for the argmax of the mean softmax over windows."""
    model.eval()  # BatchNorm statistics of the head and the frozen backbone never move
    device = next(model.parameters()).device
    hooks = _CamHooks(feature_map_layer(backbone), detach=not backprop_to_input)
    try:
        with torch.enable_grad():
            feats, inputs = [], []
            for start in range(0, len(crops), batch_size):
                x = backbone.normalise(torch.from_numpy(np.ascontiguousarray(crops[start : start + batch_size])))
                if backprop_to_input:
                    inputs.append(x.requires_grad_(True))  # weights are frozen: gradients flow because the input asks
                feats.append(backbone.net(x).float().to(device))  # to wherever the sequence model lives
            features = torch.cat(feats)[torch.as_tensor(positions, device=device)]
            logits, attention = model(features.reshape(windows, len(positions) // windows, -1))
            if class_index is None:
                class_index = int(torch.softmax(logits.detach(), dim=1).mean(0).argmax())
            elif callable(class_index):
                class_index = int(class_index(logits.detach()))
            # One backward pass for every frame: a repeated (padding) frame collects the gradient of each copy.
            # inputs=: no parameter of the model or backbone gets a .grad; without backprop_to_input the pass
            # stops at the hooked maps, with it it runs down through the whole backbone to the frames.
            logits[:, class_index].sum().backward(inputs=inputs if backprop_to_input else hooks.outputs)
    finally:
        hooks.remove()
    maps = torch.cat([o.detach() for o in hooks.outputs]).float().cpu()
    grads = torch.cat([hooks.grads[i] for i in range(len(hooks.outputs))]).float().cpu()
    alpha = grads.mean(dim=(2, 3), keepdim=True)  # one weight per channel and frame
    cams = torch.relu((alpha * maps).sum(dim=1))
    return CamResult(features.detach().cpu().numpy(), cams.numpy(), logits.detach().cpu(), attention.detach().cpu(),
                     int(class_index))


def grid_shape(height: int, width: int, short_side: int = GRID_SHORT_SIDE) -> tuple[int, int]:
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def on_full_frame(cams: np.ndarray, frame_hw: tuple[int, int], crop_size: int,
                  short_side: int = GRID_SHORT_SIDE) -> np.ndarray:
    """Maps over the centre crop [N, h, w] -> maps over the whole frame [N, rows, cols], 0 outside the crop.

    frame_hw is the size of the frames the crop was cut from (transforms.apply_view's centre crop)."""
    h, w = frame_hw
    top, left = (h - crop_size) // 2, (w - crop_size) // 2
    x = torch.from_numpy(np.asarray(cams, np.float32))[:, None]
    inside = F.interpolate(x, size=(crop_size, crop_size), mode="bilinear", align_corners=False)
    canvas = torch.zeros((len(cams), 1, h, w))
    canvas[:, :, top : top + crop_size, left : left + crop_size] = inside.clamp(min=0)
    # Area averaging: a cell's value is the mean heat over the pixels it covers.
    return F.interpolate(canvas, size=grid_shape(h, w, short_side), mode="area")[:, 0].numpy()


def normalise_clip(maps: np.ndarray, attention: np.ndarray | None = None) -> np.ndarray:
    """Max = 1 over the whole clip (not per frame); with attention [N], each frame is weighted by it first
    (the spatio-temporal view: frames the model hardly attended to fade out)."""
    maps = np.asarray(maps, np.float32)
    if attention is not None:
        maps = maps * np.asarray(attention, np.float32).reshape(-1, 1, 1)
    peak = float(maps.max()) if maps.size else 0.0
    return np.clip(maps / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(maps)


def upsample(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """One map [rows, cols] in [0, 1] -> [height, width], bilinear (for drawing over a frame)."""
    x = torch.from_numpy(np.asarray(heat, np.float32))[None, None]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
