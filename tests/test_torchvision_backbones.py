"""torchvision backbones for real: ImageNet weights through torchvision's weights API and cache.

No weights can be downloaded here, so each test makes a weights file itself (a seeded random init: the
loading path is what is under test, not ImageNet accuracy) and puts it where torchvision's cache looks.
"""

import urllib.error

import numpy as np
import pytest
import torch
import torchvision.models as tvm

from arlib import backbones
from arlib.backbones import REGISTRY, availability, TORCHVISION, load_backbone, torchvision_weights, torchvision_weights_file
from arlib.errors import BackboneError


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("ARLIB_ONNX_DIR", str(tmp_path / "onnx"))
    yield tmp_path / "torch"
    for key in [k for k in backbones._loaded if k[0] in {arch for arch, *_ in TORCHVISION}]:
        del backbones._loaded[key]  # these were made from test weights: no later test may get them


def test_registry_preprocessing_matches_the_weights_own_transforms():
    for arch, _dim, enum, _resize in TORCHVISION:
        spec, t = REGISTRY[arch].preprocessing, torchvision_weights(enum).transforms()
        assert (spec.input_size, spec.resize_short_side) == (t.crop_size[0], t.resize_size[0]), arch
        assert spec.mean == tuple(t.mean) and spec.std == tuple(t.std)


def test_resnet18_loads_a_local_weights_file_from_torchvisions_cache(torch_home):
    target = torchvision_weights_file("ResNet18_Weights")
    assert target.parent == torch_home / "hub" / "checkpoints" and target.name == "resnet18-f37072fd.pth"
    assert "resnet18-f37072fd.pth" in availability()["resnet18"]  # offline, the studio does not offer it yet
    torch.manual_seed(3)
    reference = tvm.resnet18(weights=None).eval()
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    assert availability()["resnet18"] is None

    bb = load_backbone("resnet18", device="cpu", runtime="torch")
    assert torch.equal(bb.net.conv1.weight, reference.conv1.weight)
    assert torch.equal(bb.net.layer4[1].bn2.running_mean, reference.layer4[1].bn2.running_mean)
    frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    feats = bb.encode(frames)
    assert feats.shape == (2, 512)
    # The features are the pooled trunk of the same network: fc removed, ImageNet normalisation.
    x = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]
         ) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    reference.fc = torch.nn.Identity()
    with torch.inference_mode():
        np.testing.assert_allclose(feats, reference(x).numpy(), atol=1e-4)
    # and the same backbone through ONNX Runtime (exported from these weights, verified) gives them too
    fast = load_backbone("resnet18", device="cpu")
    assert fast.runtime == "onnxruntime"
    np.testing.assert_allclose(fast.encode(frames), feats, atol=1e-4)


def test_missing_weights_without_network_is_one_clear_sentence(torch_home, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(BackboneError) as caught:
        load_backbone("mobilenet_v2", device="cpu", runtime="torch")
    message = str(caught.value)
    assert "mobilenet_v2-7ebf99e0.pth" in message and str(torch_home / "hub" / "checkpoints") in message
    assert "is not available" in message and "could not be downloaded" in message
    assert "\n" not in message and message.endswith(".")


def test_a_corrupt_weights_file_is_named(torch_home):
    target = torchvision_weights_file("ResNet50_Weights")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError, match="could not be read"):
        load_backbone("resnet50", device="cpu", runtime="torch")
