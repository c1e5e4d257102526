"""The studio as a real browser meets it: `streamlit run` on localhost and headless Debian chromium.

Shared by the browser tests; they skip when chromium or playwright is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from arlib import jobs

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# As root in a sandbox without network: no sandbox, no GPU, no background calls home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
BUSY = '[data-testid="stSpinner"], [data-testid="stStatusWidget"]'


def browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def studio(root: Path, env: dict, extra_args: tuple[str, ...] = ()):
    """A `streamlit run streamlit_app.py` server on a free localhost port; yields its URL. On exit, a
    training job the app launched is stopped gracefully and the server's process group is ended."""
    port, log_path = free_port(), root / "streamlit.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", *extra_args],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail("streamlit did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        busy = jobs.active_job(env["ARLIB_RUNS_DIR"]) if "ARLIB_RUNS_DIR" in env else None
        if busy is not None:
            try:
                jobs.stop(busy)
                jobs.wait_until_done(busy, 30)
            except Exception:
                pass
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this server started
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextmanager
def chromium_page(extra_args: tuple[str, ...] = ()):
    """One page of a fresh headless chromium at 1400x1000 (sync playwright API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def wait_idle(pg, timeout_s: float = 120) -> None:
    """Until the script has finished running: no spinner and no 'running' status for ~2 s."""
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline:
        quiet = quiet + 1 if pg.locator(BUSY).count() == 0 else 0
        if quiet >= 4:
            return
        pg.wait_for_timeout(500)


def no_errors(pg, where: str) -> None:
    assert pg.locator(EXCEPTION).count() == 0, f"exception box on {where}"
    errors = pg.locator(ERROR)
    assert errors.count() == 0, f"error on {where}: {errors.first.inner_text()}"
