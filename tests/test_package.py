"""arlib as an installed package: `pip install .` into a fresh venv, then the `arlib` command from anywhere."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from arlib.shipped import SHIPPED, shipped_checkpoint, shipped_checkpoints

REPO = Path(__file__).resolve().parents[1]
UCF = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"


def test_shipped_checkpoints_live_inside_the_package():
    assert set(shipped_checkpoints()) == set(SHIPPED)
    for name, path in shipped_checkpoints().items():
        assert path.parent == REPO / "arlib" / "assets" and path.name == SHIPPED[name][0]
    with pytest.raises(KeyError, match="no shipped checkpoint"):
        shipped_checkpoint("nope")


def test_pip_install_into_a_fresh_venv_then_arlib_from_another_directory(tmp_path):
    # A copy of the sources, so building never writes into the checkout (build/, *.egg-info).
    src = tmp_path / "src"
    src.mkdir()
    subprocess.run(["cp", "-r", str(REPO / "arlib"), str(REPO / "pyproject.toml"), str(REPO / "README.md"), str(src)],
                   check=True)
    venv = tmp_path / "venv"
    # --system-site-packages: torch & co. come from this machine instead of being downloaded again.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", str(src)],
                             capture_output=True, text=True, timeout=300)
    if install.returncode and "No matching distribution found for setuptools" in install.stderr:
        pytest.skip("pip could not fetch setuptools for the isolated build (no package index reachable)")
    assert install.returncode == 0, install.stderr[-2000:]
    site = subprocess.run([py, "-c", "import arlib.shipped as s; print(s.shipped_checkpoint('ucf9-mini'))"],
                          capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert Path(site).is_file() and str(venv) in site  # the installed copy, with its package data
    runs = subprocess.run([py, "-c", "import arlib.places as p; print(p.runs_dir())"], capture_output=True, text=True,
                          cwd=tmp_path, check=True, env={k: v for k, v in os.environ.items() if k != "ARLIB_RUNS_DIR"})
    assert Path(runs.stdout.strip()) == tmp_path / "runs"  # the user's directory, never site-packages

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "ARLIB_CACHE_DIR": str(tmp_path / "cache" / "features")}
    env.pop("PYTHONPATH", None)
    arlib = venv / "bin" / "arlib"
    helped = subprocess.run([arlib, "--help"], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert helped.returncode == 0 and "usage: arlib" in helped.stdout
    clips = sorted(UCF.glob("Archery/*.mp4"))[:1] if UCF.is_dir() else []
    if not clips:
        pytest.skip(f"{UCF} is missing: the installed command was checked with --help only")
    out = subprocess.run([arlib, "predict", str(clips[0]), "--top-k", "1", "--device", "cpu"], capture_output=True,
                         text=True, cwd=elsewhere, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Archery" in out.stdout  # the shipped 9-class UCF checkpoint, found without a path
