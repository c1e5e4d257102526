"""The Live page through AppTest: camera mode renders, bad sources are one sentence, a clip played as if live
gets a label, and Record saves a clip that opens in Predict."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from arlib.cli import DEMO_CHECKPOINT

REPO = Path(__file__).resolve().parent.parent
PAGE = "app_pages/live.py"
TIMEOUT = 60


@pytest.fixture
def live_app(demo_data_dir, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ARLIB_DATA_DIR", str(demo_data_dir))  # the session's demo dataset (conftest)
    monkeypatch.setenv("ARLIB_RECORDINGS_DIR", str(tmp_path / "recordings"))
    monkeypatch.setenv("ARLIB_DEMO_CHECKPOINT", str(DEMO_CHECKPOINT))
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    yield at
    if "live_session" in at.session_state:
        at.session_state["live_session"].close()  # the page's threads end with the test


def errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.message for e in at.exception]
    return [e.value for e in at.error]


def use_clip_source(at: AppTest, path_or_url: str = "") -> None:
    at.radio(key="live_source").set_value("Video file or stream URL").run()
    if path_or_url:
        at.text_input(key="live_url").input(path_or_url).run()


def test_camera_mode_renders_and_waits_for_frames(live_app):
    assert errors(live_app) == []
    assert live_app.title[0].value == "Live"
    # AppTest has no browser session behind it, so the WebRTC component cannot start: one sentence instead.
    assert [w.value for w in live_app.warning] == [
        "The camera cannot be offered in this session; play a video file or stream URL instead."]
    assert any("No label yet" in i.value for i in live_app.info)
    assert live_app.session_state["live_session"].latest is None


def test_unusable_sources_are_one_sentence_and_the_page_keeps_working(live_app, tmp_path):
    use_clip_source(live_app, str(tmp_path / "missing.mp4"))
    live_app.button(key="live_play").click().run()
    assert errors(live_app) == [f"{tmp_path / 'missing.mp4'} does not exist; check the path."]

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/live.mp4"
    live_app.text_input(key="live_url").input(url).run()
    live_app.button(key="live_play").click().run()
    (message,) = errors(live_app)
    assert message.startswith(f"The stream {url} could not be opened") and "\n" not in message

    live_app.button(key="live_record").click().run()  # nothing played: one sentence, no traceback
    assert errors(live_app) == ["Nothing to record yet: start the camera or a stream and wait for the first label."]


def test_a_clip_played_as_if_live_gets_a_label_and_its_recording_opens_in_predict(live_app, tmp_path):
    use_clip_source(live_app)  # the first example: a demo clip, with the demo checkpoint preselected
    example = live_app.selectbox(key="live_example").value
    assert example.startswith("demo · ")
    live_app.toggle(key="live_heat").set_value(True).run()
    live_app.button(key="live_play").click().run()
    session = live_app.session_state["live_session"]
    assert session.recognizer.heat_map  # the toggle reaches the worker
    deadline = time.time() + 60
    while (session.latest is None or session.latest.heat_map is None) and session.error is None \
            and time.time() < deadline:
        time.sleep(0.2)
    assert session.error is None and session.latest is not None and session.latest.heat_map is not None
    live_app.run()
    assert errors(live_app) == []
    shown = [m.value[3:] for m in live_app.markdown if m.value.startswith("## ")]  # the label in large type
    assert len(shown) == 1 and shown[0] in session.recognizer.classes, shown

    live_app.button(key="live_record").click().run()
    assert errors(live_app) == []
    recorded = Path(live_app.session_state["live_recording"])
    assert recorded.parent == tmp_path / "recordings" and recorded.is_file()
    saved = json.loads(recorded.with_suffix(".json").read_text())
    assert saved["clip"] == recorded.name and saved["live"]["label"] in session.recognizer.classes

    live_app.button(key="live_open_predict").click().run()
    assert errors(live_app) == []
    assert live_app.selectbox(key="predict_clip_example").value == str(recorded)
    headers = [h.value for h in live_app.subheader]
    assert "The clip" in headers and any(h.endswith("%") for h in headers), headers  # Predict predicted it


def test_a_clip_shorter_than_the_update_period_still_ends_with_a_label(tmp_path):
    """Played as if live, a clip that ends before its first update (here 0.4 s against updates every 0.5 s; on a
    busy machine, one that ends while the worker still warms up) gets one final update for what was seen."""
    from synthetic import index_clip

    from arlib.predict import Predictor
    from studio.live_session import LiveSession

    clip = index_clip(tmp_path / "short.mp4", frames=4, size=96, fps=10.0)  # frames at 0.0-0.3 s
    session = LiveSession(Predictor(DEMO_CHECKPOINT), window_s=4.0)
    try:
        session.play(str(clip))
        deadline = time.time() + 60
        while not session.ended and time.time() < deadline:
            time.sleep(0.1)
        assert session.ended and session.error is None
        latest = session.latest
        assert latest is not None and latest.label in session.recognizer.classes
        assert 1 <= latest.buffered_frames <= 4  # what was seen (a frame may be dropped on a busy machine)
    finally:
        session.close()
