import numpy as np
import pytest

from arlib.sampling import cache_grid, train_positions, window_positions
from arlib.sampling import test_positions as uniform_positions
from arlib.transforms import apply_view, training_views


def test_short_clip_is_padded_with_its_last_frame():
    assert uniform_positions(5, 8).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert train_positions(5, 8, np.random.default_rng(0)).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]


def test_test_positions_cover_the_whole_clip_uniformly():
    pos = uniform_positions(175, 40)
    assert pos[0] == 0 and pos[-1] == 174 and len(pos) == 40
    assert np.all(np.diff(pos) > 0)  # time order, no repeats when the clip is long enough


@pytest.mark.parametrize("n", [40, 41, 79, 80, 175, 1000])
def test_train_positions_follow_the_thesis_rule(n):
    rng = np.random.default_rng(1)
    strides = set()
    for _ in range(200):
        pos = train_positions(n, 40, rng)
        assert len(pos) == 40 and pos[0] >= 0 and pos[-1] < n
        diffs = np.diff(pos)
        assert np.all(diffs == diffs[0]) and diffs[0] >= 1  # one stride, increasing
        assert diffs[0] <= max(1, n // 40)
        strides.add(int(diffs[0]))
    assert strides == set(range(1, max(1, n // 40) + 1))  # every allowed stride is drawn


def test_cache_grid_keeps_short_clips_whole_and_spreads_long_ones():
    assert cache_grid(30, 48).tolist() == list(range(30))
    grid = cache_grid(175, 48)
    assert len(grid) == 48 and grid[0] == 0 and grid[-1] == 174 and np.all(np.diff(grid) > 0)


def test_windows_are_consecutive_and_each_in_order():
    wins = window_positions(100, 10, 4)
    assert len(wins) == 4
    flat = np.concatenate(wins)
    assert np.all(np.diff(flat) >= 0) and flat[0] == 0 and flat[-1] == 99


def test_views_crop_and_flip_the_whole_sequence():
    frames = np.zeros((3, 256, 300, 3), np.uint8)
    frames[:, :, :150] = 255  # left half white
    centre = apply_view(frames, 224, "center")
    flipped = apply_view(frames, 224, "center+flip")
    assert centre.shape == (3, 224, 224, 3)
    assert np.array_equal(flipped, centre[:, :, ::-1])
    assert apply_view(frames, 224, "tl")[0, 0, 0, 0] == 255 and apply_view(frames, 224, "tr")[0, 0, -1, 0] == 0
    assert training_views(["center"], True) == ["center", "center+flip"]
    with pytest.raises(ValueError):
        training_views(["middle"], False)


def test_training_draws_real_strides_over_the_default_cache():
    """The default cache keeps enough frames of a typical (118-frame) clip that training draws strides > 1,
    with random starts, and positions always increase."""
    from arlib.config import TrainConfig
    from arlib.sampling import cache_grid

    cfg = TrainConfig()
    n = len(cache_grid(118, cfg.cache_frames))
    rng = np.random.default_rng(0)
    draws = [train_positions(n, cfg.seq_len, rng) for _ in range(200)]
    strides = {int(np.diff(p)[0]) for p in draws}
    assert max(strides) > 1 and 1 in strides
    assert len({int(p[0]) for p in draws}) > 3  # random starts
    assert all((np.diff(p) > 0).all() and p[-1] < n for p in draws)
