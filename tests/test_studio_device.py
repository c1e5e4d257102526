"""The studio's device choice (sidebar): it reaches the trainer the Train page launches, only usable devices
are offered, and one asked for that is not usable here is refused in one sentence."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from arlib import devices, jobs  # noqa: E402
from arlib.runs import RunDir  # noqa: E402
from studio import device_choice  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60


@pytest.fixture
def studio(tmp_path, monkeypatch, demo_data_dir):
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ARLIB_DATA_DIR", str(demo_data_dir))  # the session's demo dataset (conftest)
    monkeypatch.delenv("ARLIB_DEVICE", raising=False)
    monkeypatch.chdir(REPO)
    yield tmp_path
    devices.set_device(None)  # the choice is process-wide: never leak it into other tests


def open_app(page: str = "app_pages/home.py", query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.switch_page(page).run()


def test_chosen_device_reaches_the_launched_trainer(studio):
    at = open_app("app_pages/train.py")
    picker = at.selectbox(key="studio_device")
    assert picker.value == "auto" and "cpu" in picker.options
    if not torch.cuda.is_available():
        assert picker.options[0] == "auto (CPU + ONNX Runtime)" and "cuda" not in picker.options
    picker.set_value("cpu").run()
    assert devices.current_device().type == "cpu" and devices.chosen_name() == "cpu"  # prediction's device too
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Trains on cpu" in c.value for c in at.caption)
    at.form_submit_button[0].click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    (run,) = jobs.list_jobs(studio / "runs")
    launch = jobs.read_launch(RunDir(run.path))
    try:
        command = launch["command"]
        assert command[command.index("--device") + 1] == "cpu", command
    finally:  # the trainer this test started: it has done its part
        proc = psutil.Process(launch["pid"])
        if proc.create_time() == launch["pid_started"]:
            os.kill(launch["pid"], signal.SIGKILL)


@pytest.mark.parametrize("asked", ["cuda", "tpu"])
def test_unusable_device_is_refused_in_one_sentence(studio, asked):
    if asked == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    at = open_app(query={"device": asked})
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith(f"Device '{asked}' was asked for, but ") and error.value.count(".") == 1
    assert error.value.endswith(f"the studio keeps {device_choice.label('auto')}.")
    assert at.selectbox(key="studio_device").value == "auto" and devices.chosen_name() is None
    if not torch.cuda.is_available():
        assert "cuda" not in at.selectbox(key="studio_device").options
        assert any(c.value.startswith("Not usable here: cuda (no usable CUDA GPU)") for c in at.sidebar.caption)
    at.run()  # said once, not on every rerun
    assert not at.error
