"""Temperature scaling, ECE, reliability bins and accuracy intervals (arlib.calibration, arlib.metrics)."""

import numpy as np
import pytest

from arlib.calibration import checkpoint_temperature, fit_temperature, probabilities_from_logits
from arlib.metrics import (
    accuracy_summary,
    ece_if_calibrated,
    ece_if_calibrated_from_bins,
    expected_calibration_error,
    format_accuracy,
    reliability_bins,
    wilson_interval,
)


def overconfident(n: int, seed: int, scale: float = 6.0):
    """Logits of a 70 %-accurate 5-class model whose scores are `scale` times too large."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    logits = rng.normal(size=(n, 5))
    right = rng.random(n) < 0.7
    logits[np.arange(n), np.where(right, labels, (labels + 1) % 5)] += 1.5
    return logits * scale, labels


def test_temperature_fitted_on_validation_lowers_ece_on_held_out_clips():
    val_logits, val_labels = overconfident(300, seed=0)
    test_logits, test_labels = overconfident(300, seed=1)
    before = expected_calibration_error(probabilities_from_logits(test_logits), test_labels)
    t = fit_temperature(val_logits, val_labels)
    after = expected_calibration_error(probabilities_from_logits(test_logits, t), test_labels)
    assert t > 2  # overconfident: softened
    assert after < 0.4 * before
    # top-1 never changes
    assert (probabilities_from_logits(test_logits, t).argmax(1) == test_logits.argmax(1)).all()


def test_temperature_prior_shrinks_a_dozen_clips_towards_one_but_not_hundreds():
    few_logits, few_labels = overconfident(12, seed=2, scale=3.0)
    many_logits, many_labels = overconfident(600, seed=3, scale=3.0)
    few_mle, few_map = fit_temperature(few_logits, few_labels, None), fit_temperature(few_logits, few_labels)
    many_mle, many_map = fit_temperature(many_logits, many_labels, None), fit_temperature(many_logits, many_labels)
    assert abs(np.log(few_map)) < 0.6 * abs(np.log(few_mle))  # a dozen clips: pulled well towards T = 1
    assert many_map == pytest.approx(many_mle, rel=0.1) and many_map > 2  # hundreds: the data decide
    assert fit_temperature(few_logits[:0], few_labels[:0]) == 1.0


def test_ece_a_calibrated_model_would_show_grows_when_repeats_share_their_clip():
    # 100 predictions at confidence 0.8: ECE = |hits/100 - 0.8|, hits ~ Binomial(100, 0.8): median 0.6745 * 0.04
    probs = np.tile([0.8, 0.2], (100, 1))
    alone = ece_if_calibrated(probs, draws=4000)
    assert alone["median"] == pytest.approx(0.027, abs=0.006) and alone["p95"] == pytest.approx(1.96 * 0.04, abs=0.012)
    # 25 clips seen 4 times each (CV repeats): 25 independent draws, twice the spread
    shared = ece_if_calibrated(probs, groups=np.repeat(np.arange(25), 4), draws=4000)
    assert shared["p95"] == pytest.approx(1.96 * 0.08, abs=0.02) and shared["median"] > alone["median"]
    assert ece_if_calibrated(probs[:0])["median"] is None
    # what the studio computes from a checkpoint's stored bins: the same floor
    from_bins = ece_if_calibrated_from_bins(reliability_bins(probs, np.zeros(100, int), 15), draws=4000)
    assert from_bins["median"] == pytest.approx(alone["median"], abs=0.005)


def test_reliability_bins_and_ece_agree():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    rows = reliability_bins(probs, labels, bins=15)
    assert len(rows) == 15 and sum(r["count"] for r in rows) == 4
    top = [r for r in rows if r["count"] == 2][0]
    assert top["lower"] < 0.95 <= top["upper"] and top["accuracy"] == 0.5 and top["confidence"] == pytest.approx(0.95)
    # |0.5 - 0.95| * 2/4 + |1 - 0.6| * 1/4 + |1 - 0.7| * 1/4
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(0.225 + 0.1 + 0.075)


def test_accuracy_always_carries_its_clips_and_a_wilson_interval():
    assert format_accuracy(17 / 24, 24) == "71 % ± 17 (24 clips)"
    low, high = wilson_interval(17, 24)
    assert low == pytest.approx(0.508, abs=1e-3) and high == pytest.approx(0.851, abs=1e-3)
    assert wilson_interval(5, 5)[1] == pytest.approx(1.0) and wilson_interval(5, 5)[0] < 0.6
    assert accuracy_summary(0.5, 0)["value"] is None and format_accuracy(None, 0) == "n/a (0 clips)"


def test_checkpoint_temperature_defaults_to_one_and_ignores_nonsense():
    assert checkpoint_temperature({}) == 1.0
    assert checkpoint_temperature({"calibration": {"temperature": 1.7}}) == 1.7
    assert checkpoint_temperature({"calibration": {"temperature": "x"}}) == 1.0
    assert checkpoint_temperature({"calibration": {"temperature": -3}}) == 1.0


def test_reliability_diagram_draws_every_clip_once():
    from arlib.viz import reliability_diagram

    logits, labels = overconfident(60, seed=2)
    bins = reliability_bins(probabilities_from_logits(logits), labels)
    fig = reliability_diagram(bins, ece=0.2, clips=60)
    bars = [t for t in fig.data if t.type == "bar"][0]
    assert sum(int(n) for n in bars.text) == 60 and "60 clips" in fig.layout.title.text
