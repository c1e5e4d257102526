"""Grad-CAM heat maps (arlib/explain.py): sanity checks that can fail, the full-frame mapping, the CLI.

One small model is trained once per session on pointing-game clips (arlib/pointing.py: the only evidence of
the class is a coloured disc moving in one quadrant)."""

import json

import numpy as np
import pytest
import torch

from arlib import pointing
from arlib.cli import main
from arlib.explain import grad_cam, normalise_clip, on_full_frame
from arlib.predict import Predictor
from arlib.transforms import TEST_VIEW, apply_view
from arlib.video import read_frames


@pytest.fixture(scope="session")
def quadrant(tmp_path_factory):
    root = tmp_path_factory.mktemp("pointing")
    checkpoint = pointing.train_model(root)
    return Predictor(checkpoint), checkpoint, pointing.test_clips(root / "test", 8)


def _crops(predictor, clip):
    pre = predictor.backbone.spec.preprocessing
    frames = read_frames(clip, range(8), short_side=pre.resize_short_side)
    return apply_view(frames, pre.input_size, TEST_VIEW)


def test_pointing_game_heat_peak_lies_on_the_moving_object(quadrant):
    predictor, _, clips = quadrant
    score = pointing.pointing_score(predictor, clips)
    assert score["frames"] == 64
    # the game the issue names: the peak in the object's quadrant (chance 25 %) ...
    assert score["quadrant"] >= 0.8, score
    # ... and a stricter one: on the disc itself, within 15 px at the network's input scale
    assert score["object"] >= 0.6, score


def test_maps_change_when_the_head_is_randomised(quadrant):
    """Adebayo et al. 2018: a saliency map that survives randomising the model explains nothing about it."""
    predictor, _, clips = quadrant
    clip = clips[0][0]
    trained = predictor.predict(clip, heatmaps=True, heatmap_class=0).heat
    original = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    try:
        torch.manual_seed(0)
        for module in predictor.model.modules():
            if hasattr(module, "reset_parameters") and module is not predictor.model:
                module.reset_parameters()
        randomised = predictor.predict(clip, heatmaps=True, heatmap_class=0).heat
    finally:
        predictor.model.load_state_dict(original)
    correlation = np.corrcoef(trained.ravel(), randomised.ravel())[0, 1]
    assert correlation < 0.5, f"maps of the trained and the randomised head correlate at {correlation:.2f}"


def test_stopping_the_backward_pass_at_the_hooked_stage_gives_the_full_backprop_maps(quadrant):
    predictor, _, clips = quadrant
    crops = _crops(predictor, clips[1][0])
    positions = np.arange(len(crops))
    fast = grad_cam(predictor.backbone, predictor.model, crops, positions, 1, class_index=1)
    full = grad_cam(predictor.backbone, predictor.model, crops, positions, 1, class_index=1, backprop_to_input=True)
    assert fast.cams.max() > 0
    np.testing.assert_allclose(fast.cams, full.cams, rtol=1e-3, atol=1e-5 * full.cams.max())
    # frozen stays frozen: no parameter got a gradient, and nothing left eval mode
    params = list(predictor.backbone.parameters()) + list(predictor.model.parameters())
    assert all(p.grad is None for p in params)
    assert not predictor.backbone.net.training and not predictor.model.training


def test_chosen_class_changes_the_maps_and_features_match_plain_encoding(quadrant):
    predictor, _, clips = quadrant
    crops = _crops(predictor, clips[2][0])
    positions = np.arange(len(crops))
    red = grad_cam(predictor.backbone, predictor.model, crops, positions, 1, class_index=0)
    blue = grad_cam(predictor.backbone, predictor.model, crops, positions, 1, class_index=1)
    assert not np.allclose(red.cams, blue.cams)
    # the features the heat-map path feeds the model are the ones plain prediction uses (ONNX Runtime or torch)
    np.testing.assert_allclose(red.features, predictor.backbone.encode(crops), rtol=1e-3, atol=1e-3)


def test_full_frame_mapping_leaves_what_the_crop_never_saw_at_zero():
    # A 4:3 frame resized to short side 256 (256 x 341), centre crop 224: 58 px each side and 16 px above and
    # below were never seen.
    cams = np.ones((2, 7, 7), np.float32)
    cams[1, 0, 0] = 5.0  # a hot corner must stay in the corner of the crop, not stretch over the frame
    maps = on_full_frame(cams, (256, 341), 224)
    rows, cols = maps.shape[1:]
    assert (rows, cols) == (16, 21)
    seen_cols = slice(int(np.ceil(58 / 341 * cols)), int(283 / 341 * cols))
    assert np.all(maps[:, :, : int(58 / 341 * cols)] == 0) and np.all(maps[:, :, int(np.ceil(283 / 341 * cols)):] == 0)
    assert np.all(maps[:, 2:-2, seen_cols] > 0)
    peak = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert peak[0] <= 3 and abs(peak[1] - 58 / 341 * cols) <= 2


def test_heat_is_normalised_over_the_clip_not_per_frame():
    maps = np.stack([np.full((7, 7), 2.0), np.full((7, 7), 1.0)])
    heat = normalise_clip(maps)
    assert heat.max() == 1.0 and np.allclose(heat[1], 0.5)  # the weaker frame stays weaker
    weighted = normalise_clip(maps, attention=[0.1, 0.9])
    assert np.allclose(weighted[1], 1.0) and np.allclose(weighted[0], 0.2 / 0.9)
    assert normalise_clip(np.zeros((2, 7, 7))).max() == 0  # nothing to show is not divided by zero


def test_cli_predict_json_heatmaps_class_choice_and_gif(quadrant, tmp_path, capsys):
    import imageio.v3 as iio

    _, checkpoint, clips = quadrant
    clip = str(clips[3][0])
    assert main(["predict", clip, "--checkpoint", str(checkpoint), "--json", "--heatmaps", "--gif", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    heat = np.asarray(out["heatmaps"])
    assert heat.shape[0] == len(out["attention"]) == 8 and heat.shape[1] >= 7 and heat.shape[2] >= 7
    assert heat.min() >= 0 and heat.max() == 1.0
    assert out["heatmap_label"] == out["top_k"][0]["label"]
    assert iio.imread(tmp_path / f"{clips[3][0].stem}.gif").shape[0] == 8

    other = "Blue" if out["heatmap_label"] != "Blue" else "Red"
    assert main(["predict", clip, "--checkpoint", str(checkpoint), "--json", "--heatmap-class", other.lower()]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["heatmap_label"] == other and not np.allclose(chosen["heatmaps"], out["heatmaps"])

    assert main(["predict", clip, "--checkpoint", str(checkpoint), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "heatmaps" not in plain
    # the same prediction either way (plain prediction may run the backbone in ONNX Runtime: same numbers to ~1e-6)
    assert [r["label"] for r in plain["top_k"]] == [r["label"] for r in out["top_k"]]
    np.testing.assert_allclose([r["probability"] for r in plain["top_k"]], [r["probability"] for r in out["top_k"]],
                               atol=1e-4)
    np.testing.assert_allclose(plain["attention"], out["attention"], atol=1e-4)

    assert main(["predict", clip, "--checkpoint", str(checkpoint), "--heatmap-class", "Green"]) == 2
    assert "no class 'Green'" in capsys.readouterr().err
