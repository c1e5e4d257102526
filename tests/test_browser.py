"""The studio in a real browser: `streamlit run` in a subprocess, headless Debian chromium via playwright.

Visits every page, uploads a real UCF-101 clip on Predict (skipped when ../shared/ucf101-mini is absent),
launches a 1-epoch demo training on Train and watches it finish, and opens Compare with two checkpoints.
Every page is also photographed at 1400x1000 into .screens/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from studio_server import CHROMIUM, REPO, browser_available, chromium_page, no_errors, studio, wait_idle

if not browser_available():
    pytest.skip(f"needs playwright (Python) and {CHROMIUM} (Debian's chromium)", allow_module_level=True)

from arlib import jobs  # noqa: E402
from arlib.cli import DEMO_CHECKPOINT  # noqa: E402
from arlib.runs import RunDir  # noqa: E402

SCREENS = REPO / ".screens"
UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"
PAGES = {"home": "", "data": "data", "train": "train", "metrics": "metrics", "predict": "predict", "compare": "compare"}


def _demo_checkpoint(folder: Path) -> Path:
    """The shipped demo checkpoint (arlib/assets/demo.safetensors); `folder` is unused, kept for the callers."""
    assert DEMO_CHECKPOINT.is_file(), f"{DEMO_CHECKPOINT} ships with the repository"
    return DEMO_CHECKPOINT


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_data_dir, feature_cache_dir):
    root = tmp_path_factory.mktemp("browser")
    runs, data = root / "runs", demo_data_dir  # the session's demo dataset and features (conftest)
    env = dict(ARLIB_RUNS_DIR=str(runs), ARLIB_DATA_DIR=str(data), ARLIB_CACHE_DIR=str(feature_cache_dir),
               ARLIB_DEMO_CHECKPOINT=str(_demo_checkpoint(root)))
    with studio(root, env) as url:
        yield {"url": url, "runs": runs, "data": data, "log": root / "streamlit.log"}


@pytest.fixture(scope="module")
def page(server):
    SCREENS.mkdir(exist_ok=True)
    with chromium_page() as pg:
        yield pg


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


def upload_to_result(pg, clip: Path) -> float:
    """Seconds from choosing the file until its top-k is on screen (the clip's own caption and the Top chart)."""
    from arlib.video import probe

    frames = probe(clip).num_frames
    t0 = time.perf_counter()
    pg.locator('input[type="file"]').set_input_files(str(clip))
    pg.get_by_text(f"{frames} frames ·").first.wait_for(timeout=120_000)
    pg.locator(".js-plotly-plot", has_text="Top 5").first.wait_for(timeout=60_000)
    return time.perf_counter() - t0


def test_predict_upload_real_clip_first_visit_then_warm(page, server):
    """Upload-to-result as a person feels it, printed (no wall-clock assert: the machine is shared): first on
    a server that was just started (the first page view starts loading the models in the background), then
    a second clip on the warm server. The README states the figures."""
    clips = sorted(UCF.glob("*/*.mp4")) if UCF.is_dir() else []
    if len(clips) < 2:
        pytest.skip(f"{UCF} is absent: no real UCF-101 clip to upload")
    from arlib.video import probe

    first = clips[0]
    second = next(c for c in clips[1:] if probe(c).num_frames != probe(first).num_frames)
    visit(page, server, "predict")
    cold = upload_to_result(page, first)
    wait_idle(page)
    warm = upload_to_result(page, second)
    print(f"\nupload-to-result (top-k on screen): first visit {cold:.2f} s, warm {warm:.2f} s")
    page.get_by_text("Sampled frames and their attention").wait_for(timeout=120_000)
    # .first: while the page reruns for the second clip, the first clip's chart can still be on screen beside
    # the new one (seen once in a full CI run: a strict-mode error over two matching charts)
    page.locator(".js-plotly-plot", has_text="Attention over time").first.wait_for(timeout=60_000)
    wait_idle(page)
    no_errors(page, "predict (upload)")
    assert page.locator('[data-testid="stImage"]').count() >= 2  # frame/attention strip + annotated GIF
    shoot(page, "predict-upload")


def test_every_page(page, server):
    titles = {"home": "Action Recognition Studio"}
    for name in PAGES:
        visit(page, server, name)
        assert page.locator("h1").first.inner_text() == titles.get(name, name.capitalize())
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Home" in nav and "streamlit app" not in nav, nav
        no_errors(page, name)
        shoot(page, name)


def test_train_demo_one_epoch(page, server):
    visit(page, server, "train")
    page.get_by_role("spinbutton", name="Epochs").fill("1")
    # Typed and clicked at once, as a person does: the name travels with the click (it is in the form).
    page.get_by_role("textbox", name="Run name").fill("browser-demo")
    page.get_by_role("button", name="Launch training").click()
    run = RunDir(server["runs"] / "browser-demo")
    for _ in range(60):  # the launch writes the run folder within seconds, or the page says why not
        if run.path.exists():
            break
        page.wait_for_timeout(500)
    assert run.path.exists(), "no run folder after Launch; the page says: " + page.locator("main").inner_text()[-1500:]
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
    page.locator('[data-testid="stMarkdownContainer"]', has_text="finished").first.wait_for(timeout=60_000)
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
