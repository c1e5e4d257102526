"""The studio in a real browser: `streamlit run` in a subprocess, headless Debian chromium via playwright.

Visits every page, uploads a real UCF-101 clip on Predict (skipped when ../shared/ucf101-mini is absent),
launches a 1-epoch demo training on Train and watches it finish, and opens Compare with two checkpoints.
Every page is also photographed at 1400x1000 into .screens/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed; the browser test needs Debian's chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

from arlib import jobs  # noqa: E402
from arlib.cli import DEMO_CHECKPOINT  # noqa: E402
from arlib.runs import RunDir  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCREENS = REPO / ".screens"
UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = {"home": "", "data": "data", "train": "train", "metrics": "metrics", "predict": "predict", "compare": "compare"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_checkpoint(folder: Path) -> Path:
    """The shipped demo checkpoint (assets/demo.safetensors); `folder` is unused, kept for the callers."""
    assert DEMO_CHECKPOINT.is_file(), f"{DEMO_CHECKPOINT} ships with the repository"
    return DEMO_CHECKPOINT


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    runs, data = root / "runs", root / "data"
    env = dict(os.environ, ARLIB_RUNS_DIR=str(runs), ARLIB_DATA_DIR=str(data),
               ARLIB_DEMO_CHECKPOINT=str(_demo_checkpoint(root)), PYTHONUNBUFFERED="1")
    port = _free_port()
    log = open(root / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.close()
            pytest.fail("streamlit did not start:\n" + (root / "streamlit.log").read_text()[-3000:])
        time.sleep(0.5)
    yield {"url": url, "runs": runs, "data": data, "log": root / "streamlit.log"}
    busy = jobs.active_job(runs)  # a trainer the app launched: stop it gracefully, it is ours
    if busy is not None:
        try:
            jobs.stop(busy)
            jobs.wait_until_done(busy, 30)
        except Exception:
            pass
    os.killpg(proc.pid, signal.SIGTERM)  # the process group this fixture started
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    SCREENS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
        context.close()
        browser.close()


def wait_idle(pg, timeout_s: float = 120) -> None:
    """Until the script has finished running: no spinner and no 'running' status for ~2 s."""
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline:
        busy = pg.locator('[data-testid="stSpinner"]').count() + pg.locator('[data-testid="stStatusWidget"]').count()
        quiet = quiet + 1 if busy == 0 else 0
        if quiet >= 4:
            return
        time.sleep(0.5)


def no_errors(pg, where: str) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0, f"exception box on {where}"
    errors = pg.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"error on {where}: {errors.first.inner_text()}"


def shoot(pg, name: str) -> None:
    """The page at 1400x1000: the top, then each further screenful of the scrolled main area."""
    main = '[data-testid="stMain"]'
    pg.evaluate(f"document.querySelector('{main}').scrollTo(0, 0)")
    time.sleep(0.5)
    pg.screenshot(path=str(SCREENS / f"{name}.png"))
    height = pg.evaluate(f"document.querySelector('{main}').scrollHeight")
    for i, y in enumerate(range(900, height, 900), start=2):
        pg.evaluate(f"document.querySelector('{main}').scrollTo(0, {y})")
        time.sleep(0.5)
        pg.screenshot(path=str(SCREENS / f"{name}-{i}.png"))
    pg.evaluate(f"document.querySelector('{main}').scrollTo(0, 0)")


def visit(pg, server, name: str) -> None:
    pg.goto(f"{server['url']}/{PAGES[name]}")
    pg.wait_for_selector("h1", timeout=60_000)
    wait_idle(pg)


def test_every_page(page, server):
    # A deep link first, on a server that has not run the entry script yet: it must still get the app's
    # navigation (Streamlit would otherwise run pages/data.py on its own, the old pages/ way).
    order = ["data"] + [name for name in PAGES if name != "data"]
    titles = {"home": "Action Recognition Studio"}
    for name in order:
        visit(page, server, name)
        assert page.locator("h1").first.inner_text() == titles.get(name, name.capitalize())
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Home" in nav and "streamlit app" not in nav, nav
        no_errors(page, name)
        shoot(page, name)


def test_predict_upload_real_clip(page, server):
    clips = sorted(UCF.glob("*/*.mp4")) if UCF.is_dir() else []
    if not clips:
        pytest.skip(f"{UCF} is absent: no real UCF-101 clip to upload")
    visit(page, server, "predict")
    page.locator('input[type="file"]').set_input_files(str(clips[0]))
    page.get_by_text("Sampled frames and their attention").wait_for(timeout=120_000)
    page.locator(".js-plotly-plot", has_text="Attention over time").wait_for(timeout=60_000)
    wait_idle(page)
    no_errors(page, "predict (upload)")
    assert page.locator('[data-testid="stImage"]').count() >= 2  # frame/attention strip + annotated GIF
    shoot(page, "predict-upload")


def test_train_demo_one_epoch(page, server):
    visit(page, server, "train")
    page.get_by_role("spinbutton", name="Epochs").fill("1")
    page.get_by_role("textbox", name="Run name").fill("browser-demo")
    page.get_by_role("button", name="Launch training").click()
    run = RunDir(server["runs"] / "browser-demo")
    deadline = time.time() + 240
    shot_live = False
    while time.time() < deadline:
        state = jobs.job_state(run)["state"] if run.path.exists() else "unknown"
        if state in ("training", "evaluating", "features") and not shot_live:
            time.sleep(1)
            page.screenshot(path=str(SCREENS / "train-live.png"))
            shot_live = True
        if state in jobs.TERMINAL_STATES:
            break
        time.sleep(0.5)
    assert jobs.job_state(run)["state"] == "finished", run.log_tail()
    # The page notices by itself (the live panel polls the run directory).
    page.locator('[data-testid="stMarkdownContainer"]', has_text="finished").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot", has_text="Loss").wait_for(timeout=30_000)
    wait_idle(page)
    no_errors(page, "train")
    shoot(page, "train-finished")


def test_compare_two_checkpoints(page, server):
    visit(page, server, "compare")
    page.locator(".js-plotly-plot", has_text="Attention over time (one axis)").wait_for(timeout=120_000)
    wait_idle(page)
    no_errors(page, "compare")
    assert page.locator(".js-plotly-plot", has_text="Top predictions").count() >= 2  # one column per checkpoint
    shoot(page, "compare-two")


def test_metrics_after_training(page, server):
    visit(page, server, "metrics")
    page.locator(".js-plotly-plot", has_text="Confusion matrix").wait_for(timeout=60_000)
    wait_idle(page)
    no_errors(page, "metrics")
    shoot(page, "metrics-run")
