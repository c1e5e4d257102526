"""The attention display does not lie: fixed scale relative to uniform, one honest sentence, same scale in the GIF."""

import numpy as np

from arlib import viz
from arlib.attention_scale import attention_summary, ratio_to_uniform, scale_position


def test_scale_is_fixed_relative_to_uniform_never_min_max_per_clip():
    flat = np.array([0.021, 0.030, 0.025, 0.024] + [0.025] * 36)  # the averaging model: all within 1.2x
    flat = flat / flat.sum()
    positions = scale_position(flat)
    assert np.all(np.abs(positions - 0.5) < 0.1)  # min-max would stretch these to 0 .. 1
    peaked = np.full(40, 0.5 / 38)
    peaked[10:12] = 0.25
    assert scale_position(peaked)[10] == 1.0 and scale_position(peaked)[0] < 0.3
    # the same ratio to uniform gets the same place whatever the clip and however the weights were scaled
    assert np.isclose(scale_position([0.5, 0.25, 0.125, 0.125])[1], scale_position(np.full(8, 0.125))[0])
    assert np.allclose(ratio_to_uniform(peaked * 3), ratio_to_uniform(peaked))


def test_summary_sentence_says_how_peaked_the_attention_is():
    times = np.round(np.arange(40) * 0.1, 2)
    near = np.full(40, 1 / 40) * (1 + 0.1 * np.sin(np.arange(40)))
    assert attention_summary(near / near.sum(), times).startswith("Attention is close to uniform")
    peaked = np.full(40, 0.38 / 32)
    peaked[20:28] = 0.62 / 8
    sentence = attention_summary(peaked, times)
    assert sentence.startswith("62 % of the attention falls on 2.0-2.7 s (8 of 40 frames"), sentence
    assert "frames 21-28" in attention_summary(peaked)


def _cell_colour(strip, index, per_row, thumb_w, thumb_h=40):
    gap, cell_h = 4, 22
    x = gap + (index % per_row) * (thumb_w + gap) + thumb_w - 3
    y = gap + thumb_h + 2 + cell_h - 2
    return strip.getpixel((x, y))


def test_strip_and_gif_bar_colour_the_same_ratio_alike_in_different_clips():
    frames = np.full((4, 40, 40, 3), 128, np.uint8)
    calm = np.array([0.25, 0.25, 0.24, 0.26])  # frame 0 exactly uniform
    busy = np.array([0.25, 0.05, 0.05, 0.65])  # frame 0 exactly uniform again
    a = viz.attention_strip(frames, calm, per_row=4, thumb_h=40)
    b = viz.attention_strip(frames, busy, per_row=4, thumb_h=40)
    assert _cell_colour(a, 0, 4, 40) == _cell_colour(b, 0, 4, 40) == viz.scale_colour(0.5)
    assert _cell_colour(b, 3, 4, 40) != _cell_colour(a, 3, 4, 40)
    # GIF: the bar of a uniform frame ends at the uniform tick (the middle), in both clips
    for attention in (calm, busy):
        img = viz.annotated_frames(frames, "x", 0.5, attention, height=112)[0]
        row = img[-9]  # inside the bar
        filled = np.where(np.all(np.abs(row.astype(int) - viz.scale_colour(0.5)) <= 2, axis=1))[0]
        end = filled.max() if filled.size else -1  # no pixel of the uniform colour: the bar is on another scale
        assert abs(end - img.shape[1] / 2) <= 4, end


def test_heat_overlay_modes():
    frame = np.full((30, 40, 3), 100, np.uint8)
    heat = np.zeros((6, 8))
    heat[0, 0] = 1.0
    both = viz.heat_overlay(frame, heat, "both")
    assert np.array_equal(both[-5:, -5:], frame[-5:, -5:])  # cold areas keep the frame as it is
    assert not np.array_equal(both[:3, :3], frame[:3, :3])
    assert viz.heat_overlay(frame, heat, "heat")[-5:, -5:].max() == 0
    assert viz.heat_overlay(frame, heat, "frames") is frame
