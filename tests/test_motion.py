"""The motion stream: RGB differences through the frozen CNN, cached as a view, fused late with appearance."""

import numpy as np
import pytest
import torch

from arlib.model import ModelConfig, TwoStreamClassifier, build_model
from arlib.motion import GAP, MOTION_VIEW, difference_crops, difference_images, partner_frames


def test_difference_images_are_grey_where_nothing_moved():
    frames = np.full((2, 32, 32, 3), 60, np.uint8)
    later = frames.copy()
    later[1, 8:16, 8:16] = 200  # something appeared in the second frame only
    diff = difference_images(frames, later)
    assert diff.dtype == np.uint8 and diff.shape == frames.shape
    assert (diff[0] == 128).all()  # still: flat grey
    assert (diff[1, 8:16, 8:16] == 255).all() and (diff[1, 20:] == 128).all()
    assert partner_frames(np.array([0, 5, 9]), 10).tolist() == [GAP, 5 + GAP, 9]  # clamped to the last frame


def _two_stream(kind="attention"):
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, feature_dim=12, num_classes=3, latent_dim=8, hidden_dim=8, head_dim=8, streams=2)
    return build_model(cfg).eval(), cfg


@pytest.mark.parametrize("kind", ["attention", "frame_avg"])
def test_two_stream_model_averages_one_model_per_half(kind):
    model, _ = _two_stream(kind)
    assert isinstance(model, TwoStreamClassifier)
    x = torch.randn(4, 5, 12)
    lengths = torch.tensor([5, 3, 5, 1])
    with torch.no_grad():
        logits, attention = model(x, lengths)
        la, _ = model.appearance(x[..., :6], lengths)
        lm, _ = model.motion(x[..., 6:], lengths)
        assert torch.allclose(logits, (la + lm) / 2, atol=1e-6)
        assert torch.allclose(attention.sum(1), torch.ones(4), atol=1e-6)
        assert (attention[1, 3:] == 0).all() and (attention[3, 1:] == 0).all()  # padding stays masked
        moved = x.clone()
        moved[..., 6:] += 1.0  # only the motion half changes
        assert not torch.allclose(model(moved, lengths)[0], logits)


def test_each_stream_learns_from_the_labels_on_its_own():
    # Trained on the fused logits, a stream's gradient would depend on what the other stream says (it could
    # lean on it); with a loss per stream the appearance stream's gradient ignores the motion input entirely.
    model, _ = _two_stream()
    model.train()
    x, y = torch.randn(6, 5, 12), torch.tensor([0, 1, 2, 0, 1, 2])
    criterion = torch.nn.CrossEntropyLoss()

    def appearance_grads(inputs):
        model.zero_grad()
        model(inputs)
        model.training_loss(criterion, y).backward()
        return [p.grad.clone() for p in model.appearance.parameters()]

    moved = x.clone()
    moved[..., 6:] = torch.randn(6, 5, 6) * 5
    for g1, g2 in zip(appearance_grads(x), appearance_grads(moved)):
        assert torch.allclose(g1, g2, atol=1e-6)


def test_a_two_stream_model_needs_two_equal_halves():
    with pytest.raises(ValueError, match="even feature_dim"):
        build_model(ModelConfig(feature_dim=7, streams=2))
    with pytest.raises(ValueError, match="streams"):
        build_model(ModelConfig(feature_dim=8, streams=3))


# motion_run (tests/conftest.py): a tiny two-class dataset, square moving vs standing still, trained with --motion.


def test_motion_view_is_cached_from_frame_differences(motion_run):
    from arlib import video
    from arlib.backbones import load_backbone
    from arlib.decoding import decode_grid
    from arlib.features import FeatureCache

    root, cfg = motion_run
    cache = FeatureCache(cfg.backbone, cfg.cache_dir, cfg.cache_frames)
    clip = root / "data" / "Moving" / "v_Moving_g01_c01.mp4"
    appearance, motion = cache.get(clip, "center"), cache.get(clip, MOTION_VIEW)
    assert motion is not None and motion.features.shape == appearance.features.shape
    assert (motion.frame_indices == appearance.frame_indices).all()
    # an independent reference: the grid decoded, then its partner frames in a second pass of their own
    pre = cache.spec.preprocessing
    info, grid, frames, _ = decode_grid(str(clip), cfg.cache_frames, pre.resize_short_side)
    later = video.read_frames(clip, partner_frames(grid, info.num_frames), short_side=pre.resize_short_side, info=info)
    expected = load_backbone(cfg.backbone).encode(difference_crops(frames, later, pre.input_size))
    assert np.allclose(motion.features.astype(np.float32), expected, atol=2e-2)
    assert not np.allclose(motion.features, appearance.features, atol=2e-2)


def test_a_motion_checkpoint_predicts_and_evaluates_with_both_streams(motion_run):
    from arlib.evaluate import evaluate_checkpoint
    from arlib.predict import Predictor

    root, cfg = motion_run
    best = root / "run" / "checkpoints" / "best.safetensors"
    predictor = Predictor(best)
    assert predictor.streams == 2 and predictor.ckpt.meta["model"]["feature_dim"] == 2 * 1280
    clip = root / "data" / "Moving" / "v_Moving_g04_c01.mp4"
    prediction = predictor.predict(clip)
    assert abs(sum(p["probability"] for p in predictor.predict(clip, top_k=2).top_k) - 1) < 1e-4
    assert len(prediction.attention) == cfg.seq_len
    explained = predictor.predict(clip, heatmaps=True)  # Grad-CAM through the appearance stream
    assert explained.heat is not None and explained.heat.shape[0] == cfg.seq_len
    assert np.allclose([p["probability"] for p in explained.top_k], [p["probability"] for p in prediction.top_k],
                       atol=1e-4)
    report = evaluate_checkpoint(best, data=str(root / "data"), cache_dir=cfg.cache_dir, subset="val", progress=False)
    assert report["num_clips"] >= 1
    # Prediction computes the motion stream from the clip itself; evaluation reads it from the cache: same numbers.
    row = report["clips"][0]
    predicted = {p["label"]: p["probability"] for p in predictor.predict(row["clip"], top_k=2).top_k}
    assert np.allclose([predicted[c] for c in predictor.classes], row["probabilities"], atol=1e-4)
