import numpy as np

from arlib.crossval import cross_validate_repeated
from arlib.train import make_config
from synthetic import feature_dataset


def test_cv_pools_calibration_over_every_held_out_prediction_of_every_repeat(tmp_path):
    features, splits = feature_dataset(tmp_path / "ds", groups=6, per_group=1, test_groups=0)
    cfg = make_config(None, features=str(features), splits=str(splits), latent_dim=8, hidden_dim=8, head_dim=8,
                      batch_size=4, seq_len=6, epochs=3, lr=3e-3, refit=True, val_fraction=0.3)
    result = cross_validate_repeated(cfg, folds=2, repeats=2, progress=False)
    assert result["clips"] == 18 and result["ece_clips"] == 36  # each clip held out once per repeat
    for key in ("reliability", "reliability_uncalibrated"):
        assert sum(b["count"] for b in result[key]) == 36
    # the pooled ECE is the ECE of those bins, not a mean of per-repeat ECEs
    bins = [b for b in result["reliability"] if b["count"]]
    assert np.isclose(result["ece"], sum(b["count"] / 36 * abs(b["accuracy"] - b["confidence"]) for b in bins))
    assert len(result["ece_per_repeat"]) == 2 and "_held_out" not in result
