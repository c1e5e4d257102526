"""arlib is a library: it imports and runs with Streamlit absent (the studio/ package is the only UI code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

IMPORT_ALL = """
import importlib, pkgutil, sys
import arlib
for module in pkgutil.iter_modules(arlib.__path__):
    if module.name == "__main__":  # runs the CLI; exercised below
        continue
    importlib.import_module("arlib." + module.name)
assert "streamlit" not in sys.modules, "arlib imported streamlit"
print("imported", len(list(pkgutil.iter_modules(arlib.__path__))), "modules")
"""


def _without_streamlit(tmp_path: Path) -> dict:
    """An environment where `import streamlit` fails, as on a machine without it installed."""
    blocker = tmp_path / "blocker" / "streamlit"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('streamlit is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker.parent), str(REPO)]), OMP_NUM_THREADS="1")
    check = subprocess.run([sys.executable, "-c", "import streamlit"], env=env, capture_output=True, text=True)
    assert check.returncode != 0, "the blocker did not hide streamlit"
    return env


def test_arlib_imports_and_predicts_without_streamlit(tmp_path):
    env = _without_streamlit(tmp_path)
    run = subprocess.run([sys.executable, "-c", IMPORT_ALL], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr

    # A CLI command end to end: predict a real (non-demo) clip with no --checkpoint and no runs yet.
    sys.path.insert(0, str(REPO / "tests"))
    from synthetic import index_clip

    clip = index_clip(tmp_path / "clip.mp4", frames=24)
    env["ARLIB_RUNS_DIR"] = str(tmp_path / "runs")
    predicted = subprocess.run([sys.executable, "-m", "arlib", "predict", str(clip), "--json"],
                               env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert row["top_k"] and row["checkpoint"] == "arlib/assets/ucf9-mini.safetensors"
