"""The studio's explanation display (issue 7): Predict shows Grad-CAM heat maps over the frames (frames / heat /
both), a frame-by-frame view and the sentence on how peaked the attention is; Compare shows each checkpoint's
heat maps on the same frames. Through streamlit.testing.v1.AppTest on a small synthetic clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from arlib.video import write_clip  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    # A bright square moving over a dark textured field: 24 frames, 128 x 96.
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(20, 80, (1, 96, 128, 3), dtype=np.uint8), 24, axis=0)
    for t in range(24):
        frames[t, 30:60, 10 + 3 * t : 40 + 3 * t] = (230, 200, 40)
    return write_clip(tmp_path_factory.mktemp("studio_explain") / "square.mp4", frames, fps=12)


@pytest.fixture
def at(tmp_path, monkeypatch, demo_data_dir):
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ARLIB_DATA_DIR", str(demo_data_dir))  # the session's demo dataset (conftest)
    monkeypatch.chdir(REPO)
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    app.run()
    return app


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _texts(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_predict_shows_heat_maps_frame_steps_and_the_attention_sentence(at, clip):
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="predict_clip_upload").set_value((clip.name, clip.read_bytes(), "video/mp4"))
    at.run(timeout=TIMEOUT)
    _ok(at)
    text = _texts(at)
    assert "Heat maps (Grad-CAM for" in text
    assert "Attention is close to uniform" in text or "of the attention falls on" in text
    assert at.slider(key="predict_step_None").max > 1  # the frame-by-frame view
    images = len(at.image)  # strip, frame view, GIF
    assert images >= 3
    at.session_state["predict_view"] = "heat"  # the heat-only view of the strip, frame view and GIF renders too
    at.run(timeout=TIMEOUT)
    _ok(at)
    assert len(at.image) == images


def test_compare_shows_each_checkpoints_heat_maps_on_the_same_frames(at, clip):
    at.switch_page("app_pages/compare.py").run()
    at.file_uploader(key="compare_clip_upload").set_value((clip.name, clip.read_bytes(), "video/mp4"))
    at.run(timeout=TIMEOUT)
    _ok(at)
    assert len(at.multiselect[0].value) >= 2  # the shipped demo and UCF-101 checkpoints
    text = _texts(at)
    assert "heat maps on the same frames" in text
    assert text.count("· heat for ") >= 2
