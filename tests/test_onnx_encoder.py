"""The frozen backbone in ONNX Runtime: same features as PyTorch, cached export, safe fallback."""

import logging
import sys

import numpy as np
import pytest
import torch

from arlib.backbones import DEFAULT_BACKBONE, FrozenBackbone, attach_onnx, get_spec, load_backbone
from arlib.onnx_encoder import onnx_path, verification_frames

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(7).integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)


def test_default_backbone_runs_in_onnx_runtime_with_the_torch_features(frames):
    bb = load_backbone(DEFAULT_BACKBONE, device="cpu")
    assert bb.runtime == "onnxruntime"
    fast, eager = bb.encode(frames), bb.encode_torch(frames)
    assert fast.shape == eager.shape == (6, 1280) and fast.dtype == np.float32
    # Cache-compatible: far below the float16 step the cache stores features with.
    assert np.abs(fast - eager).max() < 1e-4
    np.testing.assert_array_equal(fast[2:3], bb.encode(frames[2:3]))  # batching does not change a frame's features
    path, identity = onnx_path(bb)
    assert path.is_file() and path.with_suffix(".verified.json").is_file()
    assert identity["backbone"] == DEFAULT_BACKBONE and len(identity["weights"]) == 16


def test_a_wrong_export_is_caught_and_pytorch_is_used(tmp_path, monkeypatch, caplog, frames):
    monkeypatch.setenv("ARLIB_ONNX_DIR", str(tmp_path))
    bb = FrozenBackbone(get_spec(DEFAULT_BACKBONE))
    path, _ = onnx_path(bb)

    class Wrong(torch.nn.Module):  # right inputs and shapes, wrong numbers
        def forward(self, x):
            return x.float().mean(dim=(1, 2, 3))[:, None].expand(-1, 1280) / 255

    torch.onnx.export(Wrong(), (torch.zeros(2, 224, 224, 3, dtype=torch.uint8),), str(path), dynamo=False,
                      input_names=["frames"], output_names=["features"],
                      dynamic_axes={"frames": {0: "n"}, "features": {0: "n"}})
    with caplog.at_level(logging.WARNING, logger="arlib"):
        attach_onnx(bb)
    assert bb.onnx is None and bb.runtime == "torch-cpu"
    assert len(caplog.records) == 1 and "ONNX Runtime not used" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(bb.encode(frames[:2]), bb.encode_torch(frames[:2]))
    # the failed check is remembered: a later process does not trust the file either
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="arlib"):
        attach_onnx(bb)
    assert bb.onnx is None and "differed" in caplog.records[0].getMessage()


def test_without_onnxruntime_pytorch_is_used(monkeypatch, caplog, frames):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    bb = FrozenBackbone(get_spec(DEFAULT_BACKBONE))
    with caplog.at_level(logging.WARNING, logger="arlib"):
        attach_onnx(bb)
    assert bb.onnx is None and bb.runtime == "torch-cpu"
    assert "ONNX Runtime not used" in caplog.text
    assert bb.encode(frames[:1]).shape == (1, 1280)


def test_gradcam_path_keeps_a_differentiable_torch_module(frames):
    """Explanations need gradients: net(normalise(frames)) is plain torch with hookable layers."""
    bb = load_backbone(DEFAULT_BACKBONE, device="cpu")
    assert bb.runtime == "onnxruntime"
    layer = bb.net.module._conv_head  # the last conv stage of EfficientNet-Lite
    grads = []
    handle = layer.register_full_backward_hook(lambda m, gin, gout: grads.append(gout[0]))
    try:
        x = bb.normalise(torch.from_numpy(frames[:2])).requires_grad_(True)
        bb.net(x).sum().backward()
    finally:
        handle.remove()
    assert grads and grads[0].abs().sum() > 0 and x.grad is not None
    assert not any(p.requires_grad for p in bb.parameters())  # still frozen


def test_verification_frames_are_fixed_and_varied():
    a, b = verification_frames(32), verification_frames(32)
    np.testing.assert_array_equal(a, b)
    assert len({f.tobytes() for f in a}) == len(a)
