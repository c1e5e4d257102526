"""The studio under stress, as served: load, upload limits, hostile upload names, a crashed trainer, bad clips.

Browser tests (a real `streamlit run` server on localhost + headless Debian chromium via playwright):
  1. two browser sessions predict at the same time while a training job runs: both are served, and the
     training job finishes undisturbed;
  2. an upload over server.maxUploadSize is refused (on the widget, and with 413 by the upload endpoint),
     and the app keeps serving; the limit is the one in .streamlit/config.toml;
  3. upload names such as ../../x.mp4 cannot write outside the temporary upload folder;
  4. a run whose trainer was killed (-9) shows 'died', the error sentence and the log tail on the Train
     page, and Resume (clicked in the browser) finishes it.
AppTest (no browser):
  5. bad uploads (0 bytes, random bytes, text, audio only) give exactly one error sentence each, never an
     exception box, and the page keeps working.

The server runs with --server.maxUploadSize 1 (MB) so the limit can be exercised with a 2 MB file; every
clip the other tests upload is far below that. The browser may only reach 127.0.0.1 (all other host
names are unresolvable). runs/, data/, the feature cache and the server's TMPDIR live in a pytest tmp folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from arlib import jobs
from arlib.runs import RunDir
from studio_server import (BUSY, CHROMIUM, CHROMIUM_ARGS, ERROR, EXCEPTION, REPO, browser_available, chromium_page,
                           no_errors, studio, wait_idle)

UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"
LOCALHOST_ONLY = ("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",)
ARGS = [*CHROMIUM_ARGS, *LOCALHOST_ONLY]
UPLOAD_LIMIT_MB = 1  # the test server's --server.maxUploadSize
TIMEOUT_MS = 120_000

browser_test = pytest.mark.skipif(not browser_available(), reason=f"needs playwright (Python) and {CHROMIUM}")


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("robust")


@pytest.fixture(scope="module")
def demo_data(demo_data_dir) -> Path:
    """The session's demo dataset (conftest), where the app looks for it ($ARLIB_DATA_DIR/demo)."""
    return demo_data_dir / "demo" / "UCF-101"


@pytest.fixture(scope="module")
def server(root, demo_data):
    runs, srvtmp = root / "runs", root / "srvtmp"
    srvtmp.mkdir()
    env = dict(ARLIB_RUNS_DIR=str(runs), ARLIB_DATA_DIR=str(demo_data.parent.parent), ARLIB_CACHE_DIR=str(root / "cache"),
               TMPDIR=str(srvtmp))
    with studio(root, env, ("--server.maxUploadSize", str(UPLOAD_LIMIT_MB))) as url:
        yield {"url": url, "runs": runs, "data": demo_data, "env": {**os.environ, **env}, "tmp": srvtmp,
               "root": root, "log": root / "streamlit.log"}


@pytest.fixture(scope="module")
def page(server):
    """One chromium page (sync API) for the one-session tests; created after the async load test ran."""
    with chromium_page(LOCALHOST_ONLY) as pg:
        yield pg


# ------------------------------------------------------------------------------------------------ helpers

def visit(pg, server, path: str) -> None:
    pg.goto(f"{server['url']}/{path}")
    pg.wait_for_selector("h1", timeout=60_000)
    wait_idle(pg)


def prediction_json(pg):
    """The locator of the Prediction JSON expander (its text holds '"clip":"<upload name>"')."""
    return pg.locator('[data-testid="stExpander"]', has_text="Prediction JSON")


def wait_prediction_of(pg, name: str, timeout_s: float = 120) -> None:
    """Until the page shows the finished prediction of the clip uploaded as `name`."""
    deadline = time.time() + timeout_s
    wanted = json.dumps(name)
    while time.time() < deadline:
        box = prediction_json(pg)
        if pg.locator(BUSY).count() == 0 and box.count() == 1:
            if wanted not in box.inner_text():
                box.locator("summary").click()  # open it (a rerun may have closed it)
                pg.wait_for_timeout(300)
            if wanted in box.inner_text():
                return
        pg.wait_for_timeout(500)
    raise AssertionError(f"no prediction for {name!r} within {timeout_s} s; errors: "
                         f"{[pg.locator(ERROR).nth(i).inner_text() for i in range(pg.locator(ERROR).count())]}")


def small_ucf_clip(limit_bytes: int) -> Path | None:
    """A real UCF-101 .mp4 below the upload limit, when ../shared/ucf101-mini is present."""
    if not UCF.is_dir():
        return None
    for clip in sorted(UCF.glob("*/*.mp4")):
        if clip.stat().st_size < limit_bytes:
            return clip
    return None


# ------------------------------------------------------------------------------------------------ 1. load


async def _predict_session(browser, url: str, clip: Path, barrier: asyncio.Barrier, record: dict,
                           job_running) -> None:
    """One browser session: open Predict (which predicts its default example), then, in step with the other
    session, upload `clip` and wait for its prediction and attention chart."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(f"{url}/predict")
        await page.locator(".js-plotly-plot", has_text="Attention over time").first.wait_for()  # the example
        record["sidebar"] = await page.locator('[data-testid="stSidebar"]').inner_text()
        await barrier.wait()
        record["issued"] = time.time()
        record["job_running_at_upload"] = job_running()
        await page.locator('input[type="file"]').set_input_files(str(clip))
        await page.get_by_text("Using the uploaded clip").wait_for()
        wanted = json.dumps(clip.name)
        deadline = time.time() + TIMEOUT_MS / 1000
        while True:
            box = page.locator('[data-testid="stExpander"]', has_text="Prediction JSON")
            if await page.locator(BUSY).count() == 0 and await box.count() == 1:
                if wanted not in await box.inner_text():
                    await box.locator("summary").click()
                    await page.wait_for_timeout(300)
                if wanted in await box.inner_text():
                    break
            assert time.time() < deadline, f"session for {clip.name}: no prediction in time"
            assert await page.locator(EXCEPTION).count() == 0, f"exception box for {clip.name}"
            await page.wait_for_timeout(400)
        record["done"] = time.time()
        await page.locator(".js-plotly-plot", has_text="Attention over time").first.wait_for()
        record["exceptions"] = await page.locator(EXCEPTION).count()
        record["errors"] = [await e.inner_text() for e in await page.locator(ERROR).all()]
        record["images"] = await page.locator('[data-testid="stImage"]').count()
        record["headline"] = await page.locator("h3", has_text="%").first.inner_text()
    finally:
        await context.close()


async def _two_sessions(url: str, clips: list[Path], job_running) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            barrier = asyncio.Barrier(len(clips))
            records = [{"clip": c.name} for c in clips]
            await asyncio.wait_for(asyncio.gather(*(_predict_session(browser, url, c, barrier, r, job_running)
                                                    for c, r in zip(clips, records))), timeout=300)
            return records
        finally:
            await browser.close()


@browser_test
def test_two_sessions_predict_while_training(server):
    demo_clip = sorted((server["data"] / "Shrink").glob("*.avi"))[0]
    second = small_ucf_clip(UPLOAD_LIMIT_MB << 20) or sorted((server["data"] / "FillUp").glob("*.avi"))[0]
    run = RunDir(server["runs"] / "bg")
    log = open(server["root"] / "bg.out", "wb")
    # Cold feature cache: the trainer spends most of its ~1 min decoding clips through the backbone, on the
    # same 2 cores as the server; that is the load the sessions meet.
    bg = subprocess.Popen([sys.executable, "-m", "arlib", "train", "--data", str(server["data"]), "--preset", "demo",
                           "--epochs", "8", "--out", str(run.path), "--quiet"],
                          cwd=REPO, env=server["env"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not jobs.job_state(run)["active"]:
            assert bg.poll() is None and time.time() < deadline, f"trainer did not start: {run.log_tail()}"
            time.sleep(0.3)
        t0 = time.time()
        records = asyncio.run(_two_sessions(server["url"], [demo_clip, second],
                                            lambda: bg.poll() is None and jobs.job_state(run)["active"]))
        t_sessions = time.time() - t0
        running_after = bg.poll() is None
        print(f"sessions {t_sessions:.1f} s, training still running after them: {running_after}")
        bg.wait(timeout=300)
    finally:
        if bg.poll() is None:  # the trainer this test started
            bg.kill()
            bg.wait(10)
        log.close()

    for r in records:
        assert "Training bg" in r["sidebar"], r["sidebar"]  # the app saw the job while serving this session
        assert r["exceptions"] == 0 and not r["errors"], r
        assert r["images"] >= 2, r  # the frame/attention strip and the annotated GIF
        assert "·" in r["headline"], r  # "<label> · NN%"
        assert r["job_running_at_upload"], r
    # Both uploads were being predicted at the same time, and the job ran throughout.
    assert max(r["issued"] for r in records) < min(r["done"] for r in records), records
    assert running_after, f"the training ended before the predictions did ({t_sessions:.0f} s): not a test of load"
    assert "Traceback" not in server["log"].read_text(), server["log"].read_text()[-3000:]

    assert bg.returncode == 0, run.log_tail()
    status = run.read_status()
    assert status["state"] == "finished" and not status.get("error"), status
    assert [row["epoch"] for row in run.read_metrics()] == list(range(1, 9))
    text = run.log_path.read_text()
    assert "error:" not in text and "Traceback" not in text, text[-2000:]
    assert run.checkpoint("best").exists() and run.checkpoint("last").exists()


# ------------------------------------------------------------------------------------------------ 2. size limit


def test_upload_limit_comes_from_config(monkeypatch, demo_data, tmp_path):
    """.streamlit/config.toml's server.maxUploadSize is what Streamlit loads and what the upload widget
    enforces (its proto carries the limit to the browser), and the help text quotes it."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    limit = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    assert isinstance(limit, int) and 1 <= limit <= 2048, limit
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("ARLIB_DATA_DIR", str(demo_data.parent.parent))
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(tmp_path / "runs"))
    config.get_config_options(force_reparse=True)
    assert config.get_option("server.maxUploadSize") == limit
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    uploader = at.file_uploader(key="predict_clip_upload")
    assert uploader.proto.max_upload_size_mb == limit
    assert f"up to {limit} MB" in uploader.help


@browser_test
def test_oversized_upload_is_refused_and_app_keeps_serving(server, page):
    visit(page, server, "predict")
    no_errors(page, "predict")
    big = b"\0" * ((UPLOAD_LIMIT_MB << 20) * 2)
    page.locator('input[type="file"]').set_input_files({"name": "big.mp4", "mimeType": "video/mp4", "buffer": big})
    page.get_by_text(f"File must be {UPLOAD_LIMIT_MB:.1f}MB or smaller").wait_for(timeout=30_000)
    wait_idle(page)
    assert page.locator(EXCEPTION).count() == 0
    help_button = page.get_by_role("button", name="Help for Upload a clip")
    help_button.hover()
    page.get_by_text(f"up to {UPLOAD_LIMIT_MB} MB").wait_for(timeout=10_000)  # the help quotes the server's limit

    # The app keeps serving: a good clip uploaded next is predicted (and its request shows the endpoint).
    clip = sorted((server["data"] / "Grow").glob("*.avi"))[1]
    with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT") as sent:
        page.locator('input[type="file"]').set_input_files(str(clip))
    request = sent.value
    assert request.response().status == 204
    wait_prediction_of(page, clip.name)
    no_errors(page, "predict after an oversized upload")

    # The endpoint itself refuses what the widget would not send (a client that skips the widget's check).
    token = {k: v for k, v in request.all_headers().items() if k.lower() == "x-xsrftoken"}
    too_big = page.request.put(request.url, headers=token, timeout=60_000,
                               multipart={"file": {"name": "big.mp4", "mimeType": "video/mp4", "buffer": big}})
    assert too_big.status == 413, (too_big.status, too_big.text())
    small = page.request.put(request.url, headers=token, timeout=60_000,
                             multipart={"file": {"name": "ok.mp4", "mimeType": "video/mp4", "buffer": b"\0" * 1000}})
    assert small.status == 204, (small.status, small.text())  # same session and token: only the size differed


# ------------------------------------------------------------------------------------------------ 3. names


@browser_test
def test_upload_names_cannot_escape_the_upload_folder(server, page):
    token = uuid.uuid4().hex[:10]
    names = [f"../../escape-{token}-a.avi", f"..%2F..%2Fescape-{token}-b.avi", f"..\\..\\escape-{token}-c.avi",
             f"/tmp/escape-{token}-d.avi"]
    clip = sorted((server["data"] / "Grow").glob("*.avi"))[2].read_bytes()
    visit(page, server, "predict")
    for name in names:
        page.locator('input[type="file"]').set_input_files({"name": name, "mimeType": "video/x-msvideo",
                                                            "buffer": clip})
        wait_prediction_of(page, name)  # the hostile name reached the app as is, and the clip was predicted
        no_errors(page, f"upload named {name}")
    # Nothing named escape-<token>* anywhere the names point to (the server's TMPDIR is inside root).
    hits = [p for p in server["root"].rglob(f"*escape-{token}*")]
    for folder in {Path("/"), Path("/tmp"), server["tmp"].parent, server["tmp"].parent.parent, REPO, REPO.parent,
                   Path.cwd()}:
        hits += list(folder.glob(f"*escape-{token}*"))
    assert not hits, hits
    assert not list(server["tmp"].glob("arlib-upload-*")), "upload folders were not removed"


# ------------------------------------------------------------------------------------------------ 4. crash


@browser_test
def test_killed_trainer_shows_died_with_log_and_resumes(server, page):
    run = RunDir(server["runs"] / "crashed")
    log = open(server["root"] / "crashed.out", "wb")
    trainer = subprocess.Popen([sys.executable, "-m", "arlib", "train", "--data", str(server["data"]), "--preset",
                                "demo", "--epochs", "200", "--batch-size", "8",
                                "--checkpoint-every", "1", "--out", str(run.path), "--quiet"],
                               cwd=REPO, env=server["env"], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.time() + 120
        while not run.checkpoint("last").exists():
            assert trainer.poll() is None and time.time() < deadline, f"no checkpoint: {run.log_tail()}"
            time.sleep(0.2)
        trainer.kill()  # SIGKILL, to the trainer this test started: it cannot say it died
        trainer.wait(30)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait(10)
        log.close()
    status = run.read_status()
    assert status["state"] == "died", status
    epoch = int(run.read_raw_status().get("epoch") or 1)
    target = epoch + 1
    run.write_config(dict(run.read_config(), epochs=target))  # resume finishes soon; also makes it the newest run

    visit(page, server, "train")
    page.locator("h4", has_text="crashed").wait_for(timeout=30_000)  # the watched run (the newest)
    assert "died" in page.locator('[data-testid="stMarkdownContainer"]', has=page.locator("h4")).inner_text()
    error = page.locator(ERROR).first
    assert "stopped without saying why" in error.inner_text() and "resume" in error.inner_text()
    assert page.locator(EXCEPTION).count() == 0
    log_box = page.locator('[data-testid="stExpander"]', has_text="Log (last 25 lines)")
    log_box.get_by_text("starting run crashed").first.wait_for(timeout=30_000)  # the expander fills after its header
    log_text = log_box.inner_text()
    assert "starting run crashed" in log_text and "epoch 1:" in log_text, log_text  # expanded: the log tail

    page.get_by_role("button", name="Resume").click()
    deadline = time.time() + 180
    while time.time() < deadline and jobs.job_state(run)["state"] not in ("finished", "failed", "stopped"):
        time.sleep(0.5)
    state = jobs.job_state(run)
    assert state["state"] == "finished", run.log_tail()
    assert sorted({row["epoch"] for row in run.read_metrics()}) == list(range(1, target + 1))
    page.locator('[data-testid="stMarkdownContainer"]', has_text="finished").first.wait_for(timeout=30_000)
    wait_idle(page)
    no_errors(page, "train after resume")


# ------------------------------------------------------------------------------------------------ 5. bad clips


def _audio_only_mp4(path: Path) -> bytes:
    import av
    import numpy as np

    rate = 22050
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        tone = (np.sin(np.arange(rate) / 8) * 8000).astype(np.int16)
        for i in range(0, rate, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path.read_bytes()


def test_bad_uploads_are_one_sentence_and_the_page_keeps_working(monkeypatch, demo_data, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("ARLIB_DATA_DIR", str(demo_data.parent.parent))
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(tmp_path / "runs"))
    bad = [("empty.mp4", b"", "video/mp4"),
           ("random.mp4", os.urandom(64 * 1024), "video/mp4"),
           ("notes.avi", b"Just some notes, not a video.\n" * 200, "video/x-msvideo"),
           ("sound.mp4", _audio_only_mp4(tmp_path / "sound.mp4"), "video/mp4")]
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    assert not at.exception and not at.error
    for name, data, mime in bad:
        at.file_uploader(key="predict_clip_upload").set_value((name, data, mime))
        at.run()
        assert not at.exception, (name, [e.message for e in at.exception])
        assert len(at.error) == 1, (name, [e.value for e in at.error])
        message = at.error[0].value
        assert message.startswith(f"{name} ") and message.endswith("."), message
        assert "\n" not in message and "Traceback" not in message and "arlib-upload-" not in message, message
        assert at.selectbox(key="predict_checkpoint_real").value  # the rest of the page is still there
    clip = sorted((demo_data / "Grow").glob("*.avi"))[3]
    at.file_uploader(key="predict_clip_upload").set_value((clip.name, clip.read_bytes(), "video/x-msvideo"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Sampled frames and their attention" in [s.value for s in at.subheader]
    assert len(at.image) >= 2
