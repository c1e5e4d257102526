"""Background footage: finding background clips, splicing features and real video files."""

import os

import numpy as np
import pytest
import torch

from arlib import video
from arlib.background import (
    UNSELECTED,
    SpliceSettings,
    attention_on_action,
    background_clips,
    find_clips,
    random_splice,
    splice_features,
    splice_videos,
    unselected_clips,
)
from arlib.errors import DatasetError
from tests.synthetic import index_clip


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_find_clips_searches_any_layout_follows_symlinks_once_and_keeps_frame_folders_whole(tmp_path):
    root = tmp_path / "bg"
    deep = _touch(root / "a" / "b" / "c" / "deep.MP4")
    top = _touch(root / "top.avi")
    _touch(root / "notes.txt")
    _touch(root / ".hidden" / "secret.mp4")
    frames = root / "frames_clip"
    for i in (1, 2, 10):
        _touch(frames / f"{i}.jpg")
    elsewhere = _touch(tmp_path / "elsewhere" / "linked.mkv")
    os.symlink(tmp_path / "elsewhere", root / "link")
    os.symlink(root, root / "a" / "loop")  # a cycle must not loop forever or list clips twice
    found = find_clips(root)
    names = sorted(os.path.basename(p) for p in found)
    assert names == sorted([deep.name, top.name, "frames_clip", elsewhere.name])
    assert len(found) == len(set(map(os.path.realpath, found)))


def test_find_clips_explains_a_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        find_clips(tmp_path / "nope")
    with pytest.raises(DatasetError, match="No background clips"):
        background_clips(str(tmp_path), {}, [], None, 0)


def test_unselected_means_the_other_class_folders_on_disk(tmp_path):
    for cls in ("Alpha", "Beta", "Gamma"):
        for g in (1, 2):
            _touch(tmp_path / "data" / cls / f"v_{cls}_g0{g}_c01.mp4")
    kwargs = {"data": tmp_path / "data", "classes": "Alpha,Beta"}
    clips = unselected_clips(kwargs, ["Alpha", "Beta"])
    assert sorted(os.path.basename(c) for c in clips) == ["v_Gamma_g01_c01.mp4", "v_Gamma_g02_c01.mp4"]
    assert len(background_clips(UNSELECTED, kwargs, ["Alpha", "Beta"], limit=1, seed=0)) == 1


def test_splice_puts_the_action_between_background_in_time_order():
    before = np.full((30, 2), -1.0) + np.arange(30)[:, None] / 100
    action = np.full((44, 2), 5.0) + np.arange(44)[:, None] / 100
    after = np.full((20, 2), 9.0) + np.arange(20)[:, None] / 100
    x, mask = splice_features(action, before, after, seq_len=40, share=0.25, start=7)
    assert x.shape == (40, 2) and mask.sum() == 10 and mask[7:17].all()
    assert (x[:7, 0] < 0).all() and (x[mask, 0] >= 5).all() and (x[17:, 0] >= 9).all()
    assert (np.diff(x[:, 0]) >= 0).all()  # every piece in time order, pieces in order
    assert len(np.unique(x[17:, 0])) == 20  # a short background piece is stretched, not frozen at its end
    rng = np.random.default_rng(0)
    for _ in range(20):  # training splices: random share and place, the mask always marks action frames
        x, mask = random_splice(action, [before, after], 40, SpliceSettings(0.2, 0.8), rng)
        assert 8 <= mask.sum() <= 32 and ((x[:, 0] >= 5) & (x[:, 0] < 9) == mask).all()
        assert np.ptp(np.flatnonzero(mask)) == mask.sum() - 1  # one contiguous span
    assert random_splice(action, [before], 40, SpliceSettings(probability=0.0), rng) is None


def test_attention_on_action_is_the_mass_inside_the_span():
    mask = np.zeros(10, bool)
    mask[2:5] = True
    assert attention_on_action(np.full((1, 10), 0.1), mask[None]) == pytest.approx([0.3])
    peaked = np.zeros(10)
    peaked[3] = 1.0
    assert attention_on_action(peaked, mask) == pytest.approx(1.0)


def test_splice_videos_writes_background_action_background(tmp_path):
    action = index_clip(tmp_path / "action.mp4", frames=6, size=64, fps=10)
    bg = video.write_clip(tmp_path / "bg.mp4", np.full((15, 48, 48, 3), 250, np.uint8), fps=10)
    out = tmp_path / "spliced.mp4"
    span = splice_videos(action, bg, bg, out, max_before_s=0.5, max_after_s=None)
    assert span == (5, 11)
    info = video.probe(out)
    assert info.num_frames == 5 + 6 + 15 and (info.width, info.height) == (64, 64)
    frames = video.read_frames(out, range(info.num_frames)).mean(axis=(1, 2, 3))
    assert (frames[:5] > 200).all() and (frames[11:] > 200).all()
    assert (np.diff(frames[5:11]) > 0).all()  # the action's frames, in order
    span = splice_videos(action, [bg, bg], [], out, max_before_s=2.0)  # several clips on one side, none on the other
    assert span == (20, 26) and video.probe(out).num_frames == 26


def test_old_checkpoints_score_attention_from_the_lstm_state_new_ones_may_add_the_frame():
    from arlib.model import ModelConfig, build_model

    old = ModelConfig.from_dict({"kind": "attention", "feature_dim": 8, "num_classes": 2, "latent_dim": 4,
                                 "hidden_dim": 3, "head_dim": 5})
    assert old.attention_input == "state"
    assert build_model(old).attention.score.in_features == 6
    new = build_model(ModelConfig(**{**old.to_dict(), "attention_input": "frame+state"}))
    assert new.attention.score.in_features == 6 + 4
    _, weights = new.eval()(torch.randn(2, 7, 8))
    assert weights.shape == (2, 7) and torch.allclose(weights.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="attention input"):
        build_model(ModelConfig(**{**old.to_dict(), "attention_input": "nonsense"}))


def test_training_on_splices_teaches_attention_where_the_action_is():
    """Synthetic grids: each class is a direction in feature space, background is noise around another.
    After a short training on splices the attention mass on unseen spliced actions is far above their share."""
    from arlib.background import attention_span_loss, localisation_report, spliced_set
    from arlib.model import ModelConfig, build_model

    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 16)) * 2

    def grids(n, label=None):
        centre = directions[label] if label is not None else np.zeros(16)
        return [(centre + rng.normal(size=(24, 16))).astype(np.float32) for _ in range(n)]

    train = [(g, y) for y in range(2) for g in grids(12, y)]
    val = [(g, y) for y in range(2) for g in grids(6, y)]
    backgrounds, val_backgrounds = grids(10, 2), grids(5, 2)
    torch.manual_seed(0)
    model = build_model(ModelConfig(feature_dim=16, num_classes=2, latent_dim=16, hidden_dim=16, head_dim=16,
                                    attention_input="frame+state"))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        batch = [train[i] for i in rng.choice(len(train), 12, replace=False)]
        pieces = [random_splice(g, backgrounds, 16, SpliceSettings(), rng) for g, _ in batch]
        x = torch.from_numpy(np.stack([p[0] for p in pieces]))
        mask = torch.from_numpy(np.stack([p[1] for p in pieces]))
        logits, attention = model.train()(x)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([y for _, y in batch]))
        loss = loss + attention_span_loss(attention, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, mask = spliced_set([g for g, _ in val], val_backgrounds, 16, seed=1)
    report = localisation_report(model, x, mask, np.array([y for _, y in val]))
    assert report["val_action_share"] == pytest.approx(5 / 16)
    assert report["val_attention_on_action"] > 0.8 and report["val_spliced_top1"] > 0.9


def test_the_studio_launches_training_with_the_background_option():
    from arlib.jobs import TrainOptions

    assert TrainOptions(data="d", background="unselected").to_config().background == "unselected"
    assert TrainOptions(data="d").to_config().background is None
