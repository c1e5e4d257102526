"""The Streamlit app through streamlit.testing.v1.AppTest: every page renders, Predict works on an uploaded
clip, errors are one sentence, and training jobs launch, stop, resume and refuse a second job.

runs/ go to a temporary folder (ARLIB_RUNS_DIR); data/ and the feature cache are the session's (conftest:
the demo dataset and its features are made once for every module that uses them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from arlib import jobs  # noqa: E402
from studio import job_view  # noqa: E402
from studio.uploads import ClipSource, materialised, safe_filename  # noqa: E402
from arlib.cli import DEMO_CHECKPOINT  # noqa: E402
from arlib.fileio import atomic_write_json  # noqa: E402
from arlib.runs import RunDir  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PAGES = ["app_pages/home.py", "app_pages/data.py", "app_pages/train.py", "app_pages/metrics.py", "app_pages/predict.py", "app_pages/compare.py"]
TIMEOUT = 60


def _demo_checkpoint(folder: Path) -> Path:
    """The shipped demo checkpoint (arlib/assets/demo.safetensors); `folder` is unused, kept for the callers."""
    assert DEMO_CHECKPOINT.is_file(), f"{DEMO_CHECKPOINT} ships with the repository"
    return DEMO_CHECKPOINT


@pytest.fixture(scope="module")
def base(tmp_path_factory, demo_data_dir, feature_cache_dir) -> dict:
    root = tmp_path_factory.mktemp("apptest")
    return {"root": root, "demo_ckpt": _demo_checkpoint(root), "data": demo_data_dir, "cache": feature_cache_dir}


@pytest.fixture
def env(base, tmp_path, monkeypatch) -> dict:
    runs, data = tmp_path / "runs", base["data"]  # the session's demo dataset (conftest), made once
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ARLIB_DATA_DIR", str(data))
    monkeypatch.setenv("ARLIB_CACHE_DIR", str(base["cache"]))
    monkeypatch.setenv("ARLIB_DEMO_CHECKPOINT", str(base["demo_ckpt"]))
    monkeypatch.chdir(REPO)
    return {"runs": runs, "data": data, "demo_ckpt": base["demo_ckpt"]}


def app() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    return at


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_titles(at: AppTest) -> list[str]:
    import json

    titles = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec.get("layout", {}).get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return titles


# ------------------------------------------------------------------------------------------- pages


def test_every_page_renders(env):
    at = app()
    no_problems(at)
    for page in PAGES:
        at.switch_page(page).run(timeout=TIMEOUT)
        no_problems(at)
        assert at.title, f"{page} shows no title"


@pytest.fixture(scope="module")
def trained_runs(demo_runs) -> Path:
    """A runs folder holding one finished 2-epoch demo run, 'demo2' (the session's, see conftest)."""
    return demo_runs


def test_pages_render_with_a_finished_run(env, trained_runs, monkeypatch):
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(trained_runs))
    at = app()
    for page in PAGES:
        at.switch_page(page).run(timeout=TIMEOUT)
        no_problems(at)
    at.switch_page("app_pages/metrics.py").run(timeout=TIMEOUT)
    titles = chart_titles(at)
    assert {"Loss", "Accuracy", "Per-class recall"} <= set(titles), titles
    assert any(t.startswith("Confusion matrix") for t in titles), titles
    # the ECE comes with what a calibrated model would show on as few clips (the floor), and a verdict
    assert any("a perfectly calibrated model with these confidences would show about" in c.value and "calibration alone"
               in c.value for c in at.caption), [c.value for c in at.caption]
    at.switch_page("app_pages/train.py").run(timeout=TIMEOUT)
    assert any("finished" in m.value for m in at.markdown)
    # the validation accuracy says on how many clips, with its interval (not a bare "85.0%")
    tile = [m for m in at.metric if m.label.startswith("Best val top-1")]
    assert tile and tile[0].label.endswith(" clips)") and " % ± " in tile[0].value, [(m.label, m.value) for m in at.metric]
    at.switch_page("app_pages/compare.py").run(timeout=TIMEOUT)
    no_problems(at)
    assert "Attention over time (one axis)" in chart_titles(at)


def test_default_checkpoint_follows_the_kind_of_clip(env, trained_runs, monkeypatch):
    """A finished demo run is the default for demo clips, never for a real clip: that gets the shipped
    UCF-101 checkpoint until a run on real data exists."""
    from studio.checkpoint_picker import default_for
    from arlib.cli import UCF_CHECKPOINT

    monkeypatch.setenv("ARLIB_RUNS_DIR", str(trained_runs))
    demo_clip = sorted((env["data"] / "demo" / "UCF-101" / "Grow").glob("*.avi"))[0]
    demo_best = trained_runs / "demo2" / "checkpoints" / "best.safetensors"
    assert default_for(ClipSource(demo_clip.name, path=demo_clip)) == demo_best
    assert default_for(None) == demo_best
    upload = ClipSource("mine.mp4", data=b"not needed to choose")
    assert default_for(upload) == (UCF_CHECKPOINT if UCF_CHECKPOINT.is_file() else env["demo_ckpt"])


def test_home_shows_state_of_things(env):
    at = app()
    text = " ".join(m.value for m in at.markdown)
    from arlib.backbones import availability

    assert "Backbones" in text
    if any(reason is not None for reason in availability().values()):  # unavailable backbones are explained
        assert "Not available here" in text
    assert {b.label for b in at.button} >= {"Try the demo", "Train a model", "Predict a clip"}
    at.button(key="try_demo").click().run(timeout=TIMEOUT)  # one click: Predict, demo checkpoint, an example
    no_problems(at)
    assert at.title[0].value == "Predict"
    assert at.selectbox(key="predict_checkpoint_demo").value == str(env["demo_ckpt"])
    assert "Attention over time" in chart_titles(at)


def test_predict_uploaded_clip_shows_prediction_and_attention(env):
    """Drives st.file_uploader directly (AppTest supports it in this Streamlit version)."""
    at = app()
    at.switch_page("app_pages/predict.py").run()
    clip = sorted((env["data"] / "demo" / "UCF-101" / "Grow").glob("*.avi"))[-1]
    at.file_uploader(key="predict_clip_upload").set_value(("../../evil name ü.avi", clip.read_bytes(),
                                                             "video/x-msvideo"))
    at.run(timeout=TIMEOUT)
    no_problems(at)
    headers = [s.value for s in at.subheader]
    assert "Sampled frames and their attention" in headers
    assert any("·" in h and "%" in h for h in headers), headers  # "<label> · NN%"
    titles = chart_titles(at)
    assert "Attention over time" in titles and any(t.startswith("Top") for t in titles), titles
    assert len(at.image) >= 2  # the frame/attention strip and the annotated GIF
    assert [d for d in at.get("download_button")]
    # an uploaded clip is taken for a real video: with no run of one's own, the shipped UCF-101 checkpoint
    from arlib.cli import UCF_CHECKPOINT

    if UCF_CHECKPOINT.is_file():
        assert at.selectbox(key="predict_checkpoint_real").value == str(UCF_CHECKPOINT)


def test_long_clip_gets_a_timeline(env, tmp_path):
    import numpy as np

    from arlib.demo import render_clip
    from arlib.video import write_clip

    frames = np.concatenate([render_clip("Grow", [1, 2], num_frames=150), render_clip("Shrink", [3, 4], num_frames=150)])
    clip = write_clip(tmp_path / "long.mp4", frames, fps=12)  # 25 s: longer than ~20 s
    at = app()
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="predict_clip_upload").set_value(("long.mp4", clip.read_bytes(), "video/mp4"))
    at.run(timeout=TIMEOUT)
    no_problems(at)
    titles = chart_titles(at)
    assert any(t.startswith("Prediction over time (4 windows") for t in titles), titles
    timeline = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "Prediction over time" in json.dumps(json.loads(c.proto.spec).get("layout", {}).get("title"))][0]
    starts = sorted(x for trace in timeline["data"] if trace["type"] == "bar" for x in trace["x"])
    assert starts[0] == 0 and len(starts) == 4 and starts[-1] > 15  # bars placed at their windows' start times
    # and where the action is: the attention of one pass over the whole clip, over the same time axis
    whole = [trace for trace in timeline["data"] if trace.get("name") == "attention, whole clip"]
    assert len(whole) == 1 and len(whole[0]["x"]) > 10 and 0 <= whole[0]["x"][0] < whole[0]["x"][-1] <= 25
    window = at.selectbox(key="predict_window")
    assert len(window.options) == 4
    window.set_value(3).run(timeout=TIMEOUT)
    no_problems(at)


def test_predict_shows_the_clips_warnings_next_to_the_answer(env, tmp_path):
    import av
    import numpy as np

    from arlib.demo import render_clip

    clip = tmp_path / "two streams.mp4"  # a black stream first, the picture second and marked default
    with av.open(str(clip), "w") as container:
        black, picture = container.add_stream("libx264", rate=25), container.add_stream("libx264", rate=25)
        for stream, side in ((black, 32), (picture, 96)):
            stream.width = stream.height = side
            stream.pix_fmt = "yuv420p"
        black.disposition, picture.disposition = av.stream.Disposition(0), av.stream.Disposition.default
        for frame in render_clip("Grow", 1, num_frames=20):
            container.mux(black.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
            container.mux(picture.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(black.encode())
        container.mux(picture.encode())
    at = app()
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="predict_clip_upload").set_value((clip.name, clip.read_bytes(), "video/mp4"))
    at.run(timeout=TIMEOUT)
    no_problems(at)
    assert [w.value for w in at.warning] == ["The file holds 2 video streams; stream 1 (96 x 96, marked default) "
                                             "is the one used."]


def test_predict_example_clip_path(env):
    at = app()
    at.switch_page("app_pages/predict.py").run(timeout=TIMEOUT)
    no_problems(at)
    assert "Attention over time" in chart_titles(at)


def test_bad_upload_is_one_sentence(env):
    at = app()
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="predict_clip_upload").set_value(("broken.mp4", b"this is not a video" * 50, "video/mp4"))
    at.run(timeout=TIMEOUT)
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("broken.mp4 ") and "\n" not in message and "Traceback" not in message


def test_missing_dataset_folder_is_one_sentence(env):
    at = app()
    at.switch_page("app_pages/data.py").run(timeout=TIMEOUT)
    no_problems(at)
    at.text_input(key="data_path").set_value("/nonexistent/dataset").run()
    assert not at.exception
    assert len(at.error) == 1 and "does not exist" in at.error[0].value


def test_data_page_lists_unreadable_clips(env, tmp_path):
    data = tmp_path / "clips"
    shutil.copytree(env["data"] / "demo" / "UCF-101", data)  # folder per class, no split files
    (data / "Grow" / "v_Grow_broken.mp4").write_bytes(b"not a video" * 100)
    at = app()
    at.switch_page("app_pages/data.py").run(timeout=TIMEOUT)
    at.text_input(key="data_path").set_value(str(data)).run(timeout=TIMEOUT)
    no_problems(at)
    assert any("Folder-per-class" in s.value for s in at.info)
    assert any("1 of 97 clips cannot be read" in w.value for w in at.warning)


def test_compare_with_one_checkpoint_explains(env, tmp_path, monkeypatch):
    only = tmp_path / "only" / "demo.safetensors"
    only.parent.mkdir()
    shutil.copy(env["demo_ckpt"], only)
    monkeypatch.setenv("ARLIB_DEMO_CHECKPOINT", str(only))
    at = app()
    at.switch_page("app_pages/compare.py").run(timeout=TIMEOUT)
    no_problems(at)
    assert any("Only one checkpoint" in i.value for i in at.info)


# ------------------------------------------------------------------------------------------- uploads


def test_upload_names_are_sanitised():
    assert safe_filename("../../x.mp4") == "x.mp4"
    assert safe_filename("..\\..\\evil.AVI") == "evil.avi"
    assert safe_filename("Übung straße 東京.mov") == "Übung_straße_東京.mov"
    assert safe_filename("....") == "clip"
    assert "/" not in safe_filename("a/b/../../c.webm")


def test_upload_lands_inside_a_temp_folder_removed_afterwards():
    with materialised(ClipSource(name="../../x.mp4", data=b"abc")) as path:
        folder = path.parent
        assert path.name == "x.mp4" and path.read_bytes() == b"abc"
        assert folder.name.startswith("arlib-upload-")
    assert not folder.exists()


# ------------------------------------------------------------------------------------------- jobs


def fake_active_run(runs: Path, name: str = "busy") -> RunDir:
    """A run whose status says 'training' under this (alive) process's pid."""
    run = RunDir(runs / name)
    run.write_config({"data": "x", "epochs": 3})
    me = psutil.Process(os.getpid())
    atomic_write_json(run.status_path, {"state": "training", "pid": me.pid, "pid_started": me.create_time(),
                                        "epoch": 1, "epochs": 3})
    return run


def test_second_launch_is_refused(env):
    fake_active_run(env["runs"])
    at = app()
    at.switch_page("app_pages/train.py").run(timeout=TIMEOUT)
    no_problems(at)
    assert any("busy" in i.value for i in at.info)
    at.form_submit_button[0].click().run(timeout=TIMEOUT)
    assert not at.exception
    assert len(at.error) == 1 and "one job at a time" in at.error[0].value
    assert len(jobs.list_jobs(env["runs"])) == 1  # nothing launched


def test_bad_run_name_is_refused(env):
    at = app()
    at.switch_page("app_pages/train.py").run(timeout=TIMEOUT)
    name_box = [t for t in at.text_input if t.label == "Run name"][0]
    name_box.set_value("../escape")
    at.form_submit_button[0].click().run(timeout=TIMEOUT)
    assert not at.exception
    assert len(at.error) == 1 and "not allowed" in at.error[0].value


def wait_for_state(run: RunDir, wanted: str, timeout_s: float = 120) -> dict:
    """Poll until the run reaches `wanted` (or ends some other way, so a failure shows at once)."""
    deadline = time.time() + timeout_s
    state = jobs.job_state(run)
    while time.time() < deadline and state["state"] != wanted and state["state"] not in jobs.TERMINAL_STATES:
        time.sleep(0.3)
        state = jobs.job_state(run)
    return state


def test_launch_stop_resume_die_resume(env):
    """A real trainer process: launched, stopped gracefully, resumed, killed (-9), and resumed from the Train
    page to the end; a second launch is refused meanwhile."""
    data = env["data"] / "demo" / "UCF-101"
    options = jobs.TrainOptions(data=str(data), preset="demo", epochs=200, batch_size=8)
    run = jobs.launch(env["runs"], "stopme", options)
    with pytest.raises(Exception, match="one job at a time"):
        jobs.launch(env["runs"], "second", options)

    assert wait_for_state(run, "training")["state"] == "training", run.log_tail()
    jobs.stop(run)
    state = jobs.wait_until_done(run, 60)
    assert state["state"] == "stopped", run.log_tail()
    assert run.checkpoint("last").exists()

    jobs.resume(env["runs"], "stopme")
    state = wait_for_state(run, "training")
    assert state["state"] == "training", run.log_tail()
    os.kill(state["pid"], 9)  # the trainer this test launched: it cannot say it died
    deadline = time.time() + 30
    while time.time() < deadline and jobs.job_state(run)["state"] != "died":
        time.sleep(0.2)
    state = jobs.job_state(run)
    assert state["state"] == "died" and "resume" in state["error"]

    at = app()  # the Train page shows the error sentence, the log, and offers Resume
    at.switch_page("app_pages/train.py").run(timeout=TIMEOUT)
    assert not at.exception
    assert any("stopped without saying why" in e.value for e in at.error)
    epoch = int(json.loads(run.status_path.read_text()).get("epoch") or 0)
    RunDir(run.path).write_config(dict(run.read_config(), epochs=epoch + 1))  # finish soon after resuming
    at.button(key="train_resume").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error
    state = jobs.wait_until_done(run, 120)
    assert state["state"] == "finished", run.log_tail()
    assert job_view.progress(state)[0] == 1.0


def test_trainer_lock_error_is_surfaced(env, tmp_path):
    """The app's check can be raced; the trainer's own lock then refuses, and that sentence reaches the user."""
    import fcntl

    env["runs"].mkdir(parents=True, exist_ok=True)
    with open(env["runs"] / ".train.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("run 'other', pid 1")
        handle.flush()
        with pytest.raises(Exception, match="Another training job is running"):
            jobs.launch(env["runs"], "racer", jobs.TrainOptions(data=str(tmp_path), preset="demo"))
    assert not (env["runs"] / "racer").exists()  # no half-made run left behind
