"""Issue 9: every defect a first-time user hit in the studio, each with a test that fails if it comes back.

AppTest on small fabricated run folders and a tiny UCF-101-shaped dataset (a few 12-frame clips), so no
training and no backbone run here; the real-browser test (test_browser.py) covers upload-to-result.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from synthetic import index_clip  # noqa: E402

from arlib.runs import RunDir  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60


@pytest.fixture(scope="module")
def ucf_like(tmp_path_factory) -> Path:
    """UCF-101 layout: 10 classes listed, clips on disk for 3 of them, test list entirely absent."""
    root = tmp_path_factory.mktemp("ucf_like")
    data, splits = root / "UCF-101", root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    classes = [f"Class{i:02d}" for i in range(10)]
    train, test = [], []
    for label, name in enumerate(classes, start=1):
        for g in (1, 2, 3):
            stem = f"v_{name}_g{g:02d}_c01"
            (test if g == 3 else train).append((f"{name}/{stem}.avi", label))
            if name in classes[:3] and g < 3:
                (data / name).mkdir(parents=True, exist_ok=True)
                index_clip(data / name / f"{stem}.avi", frames=12, size=32)
    (splits / "classInd.txt").write_text("".join(f"{i} {n}\r\n" for i, n in enumerate(classes, start=1)))
    (splits / "trainlist01.txt").write_text("".join(f"{p} {lab}\r\n" for p, lab in train))
    (splits / "testlist01.txt").write_text("".join(f"{p}\r\n" for p, _ in test))
    return data


@pytest.fixture
def env(tmp_path, monkeypatch, demo_data_dir) -> dict:
    runs, data = tmp_path / "runs", demo_data_dir  # the session's demo dataset (conftest): Home and Train need it
    monkeypatch.setenv("ARLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ARLIB_DATA_DIR", str(data))
    monkeypatch.chdir(REPO)
    return {"runs": runs, "data": data}


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> dict[str, dict]:
    """plotly specs by title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec.get("layout", {}).get("title", {})
        out[title.get("text", "") if isinstance(title, dict) else str(title)] = spec
    return out


def fake_run(runs: Path, name: str, classes: list[str], val_top1: list[float], data: str = "/data/UCF-101") -> RunDir:
    """A finished run folder with one metrics row per epoch (no checkpoints: best comes from the rule)."""
    run = RunDir(runs / name)
    run.write_config({"data": data, "epochs": len(val_top1), "model": "attention", "preset": None})
    n = len(classes)
    for epoch, top1 in enumerate(val_top1, start=1):
        confusion = [[0] * n for _ in range(n)]
        for i in range(n):
            confusion[i][i] = 2 if i % 2 else 0  # every other class never right: 0 % recall bars
            confusion[i][(i + 1) % n] += 1
        recall = {c: (2 / 3 if i % 2 else 0.0) for i, c in enumerate(classes)}
        run.append_metrics({"epoch": epoch, "train_loss": 1.0 / epoch, "train_top1": 0.5, "val_loss": 2.0 - top1,
                            "val_top1": top1, "val_top5": 1.0, "val_mean_class_accuracy": top1,
                            "per_class_recall": recall, "confusion": confusion, "classes": classes,
                            "num_val_clips": 3 * n, "misclassified": [], "lr": 1e-3, "seconds": 1.0})
    run.write_status(state="finished", epoch=len(val_top1), epochs=len(val_top1))
    return run


# --------------------------------------------------------------------------------------- Train page


def test_train_defaults_to_classes_with_clips_offers_first_n_and_warns(env, ucf_like):
    """Defect 1: a partial UCF-101 copy defaults to the classes that have clips, not all listed."""
    at = app("train")
    at.text_input(key="train_data").set_value(str(ucf_like)).run()
    no_problems(at)
    mode = at.radio(key=f"train_class_mode_{ucf_like}")
    assert mode.value == "with_clips" and "The 3 with clips on disk" in mode.options
    assert not at.warning
    mode.set_value("first").run()
    at.number_input(key=f"train_first_n_{ucf_like}").set_value(5).run()
    warnings = [w.value for w in at.warning]
    assert any("2 of the 5 chosen classes have no clips on disk" in w for w in warnings), warnings


def test_run_name_follows_dataset_and_preset_until_one_of_ones_own_is_launched(env, ucf_like):
    """Defect 3: names come from dataset + preset + time and follow changes, unless the user launched with a
    name of their own. The name sits in the launch form, so it reaches the script with the Launch click itself
    (outside the form, typing a name and clicking Launch at once raced the name's own rerun and lost the click);
    a taken name gets one sentence on Launch and stays in the box to be edited."""
    at = app("train")
    name = at.text_input(key="train_name_0")
    assert name.value.startswith("demo-demo-")
    assert name.proto.form_id == "train_form"
    at.text_input(key="train_data").set_value(str(ucf_like)).run()
    assert at.text_input(key="train_name_0").value.startswith("ucf101-demo-")
    at.segmented_control(key="train_preset").set_value("thesis").run()
    assert at.text_input(key="train_name_0").value.startswith("ucf101-thesis-")
    at.text_input(key="train_data").set_value(str(env["data"] / "demo" / "UCF-101")).run()
    fake_run(env["runs"], "taken", ["A"], [0.5])
    at.text_input(key="train_name_0").set_value("taken")
    at.form_submit_button[0].click().run()  # typed and clicked in one go, as a person does
    assert not at.exception
    assert [e.value for e in at.error] == [f"A run named 'taken' already exists in {env['runs']}; choose another "
                                           "name, or resume that run."]
    at.segmented_control(key="train_preset").set_value("demo").run()
    assert at.text_input(key="train_name_0").value == "taken"


def test_log_lines_wrap(env):
    """Defect 15: the log tail wraps instead of clipping long lines."""
    run = fake_run(env["runs"], "logged", ["A", "B"], [0.5])
    run.log("x" * 400)
    at = app("train")
    no_problems(at)
    codes = at.get("code")
    assert codes and all(c.proto.wrap_lines for c in codes)


# --------------------------------------------------------------------------------------- Metrics page


def test_metrics_opens_on_the_best_epoch_and_says_how_it_was_chosen(env):
    """Defect 10: the slider starts on the epoch `best` holds, not the last one."""
    fake_run(env["runs"], "r1", ["A", "B", "C"], [0.4, 0.9, 0.6, 0.7])
    at = app("metrics")
    no_problems(at)
    assert at.select_slider(key="metrics_epoch_r1").value == 2
    assert any("`best` holds epoch 2" in c.value and "highest validation top-1" in c.value for c in at.caption)


def test_metrics_large_class_count_stays_readable(env):
    """Defect 2: 101 classes get a fixed-height zoomable matrix and sortable tables, not 6,000 px of bars."""
    classes = [f"C{i:03d}" for i in range(101)]
    fake_run(env["runs"], "big", classes, [0.3])
    at = app("metrics")
    no_problems(at)
    specs = charts(at)
    matrix = next(s for t, s in specs.items() if t.startswith("Confusion matrix"))
    assert matrix["layout"]["height"] <= 700
    assert "Per-class recall" not in specs
    frames = {d.proto.id: d for d in at.dataframe}
    assert len(at.dataframe) >= 3  # epoch table, most frequent mistakes, per class
    del frames


def test_metrics_several_runs_legends_below_and_class_sets_apart(env):
    """Defect 9: legends under the curves; runs with other classes are not overlaid; 0 % bars are labelled."""
    fake_run(env["runs"], "a", ["A", "B", "C"], [0.5, 0.6])
    fake_run(env["runs"], "b", ["X", "Y"], [0.4, 0.7])
    at = app("metrics")
    at.multiselect(key="metrics_runs").set_value(["a", "b"]).run()
    no_problems(at)
    specs = charts(at)
    for title in ("Loss", "Accuracy"):
        assert specs[title]["layout"]["legend"]["orientation"] == "h"
    recall = specs["Per-class recall"]
    assert len(recall["data"]) == 1  # run b has other classes
    assert "0%" in recall["data"][0]["text"]
    assert any("Not in the recall chart: b" in c.value for c in at.caption)


# --------------------------------------------------------------------------------------- Data page


def test_data_page_missing_clips_are_not_a_success_and_holdout_is_explained(env, ucf_like):
    """Defect 8: '... listed clips absent' is not a green box; 0 test clips says validation is held out."""
    at = app("data")
    at.text_input(key="data_path").set_value(str(ucf_like)).run()
    no_problems(at)
    assert not at.success
    assert any("not on disk" in w.value for w in at.warning)
    assert any("holds out about 20 %" in c.value for c in at.caption)


# --------------------------------------------------------------------------------------- texts and config


def test_demo_time_is_stated_honestly_everywhere():
    """Defect 6: 'about a minute' was wrong (1 m 46 s from a cold cache); one measured sentence instead."""
    sources = list((REPO / "app_pages").glob("*.py")) + list((REPO / "studio").glob("*.py"))
    stale = [p.name for p in sources if "about a minute" in p.read_text()]
    assert not stale, stale


def test_top_k_axis_reaches_100_percent_and_header_keeps_a_decimal():
    """Defect 15: the top-k axis ends at 100 %; 99.6 % is not rounded up to 100 % in the header."""
    from arlib import viz
    from studio.formatting import probability

    fig = viz.top_k_bars([{"label": "A", "probability": 0.996}, {"label": "B", "probability": 0.004}])
    assert fig.layout.xaxis.tickvals[-1] == 1.0 and fig.layout.xaxis.range[1] > 1.0  # an edge tick is not drawn
    assert probability(0.996) == "99.6%"


def test_file_watcher_ignores_data_and_runs():
    """Defect 15: Streamlit's watcher must not watch generated folders (warnings in the log)."""
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert {"data", "runs"} <= set(config["server"]["folderWatchBlacklist"])


def test_cli_help_lists_every_command():
    """Defect 14: `--help` names every command (export was missing from the description)."""
    from arlib.cli import build_parser

    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    text = subprocess.run([sys.executable, "-m", "arlib", "--help"], cwd=REPO, capture_output=True, text=True).stdout
    listed = {c for c in commands if re.search(rf"^\s+{re.escape(c)}\s", text, re.M)}
    assert listed == commands, commands - listed
    import arlib.cli

    described = set(re.search(r"\{([^}]*)\}", arlib.cli.__doc__).group(1).split(","))
    assert described == commands, commands ^ described


# --------------------------------------------------------------------------------------- Compare page

UCF_MINI = REPO.parent / "shared" / "ucf101-mini" / "UCF-101"


def test_compare_defaults_to_checkpoints_that_know_the_clip_and_flags_a_mismatch(env):
    """Defect 11: a real clip is compared by default with checkpoints that know its class, not the demo
    twins; a model picked that never saw the class is flagged."""
    import shutil

    from arlib.places import DEMO_CHECKPOINT, UCF_CHECKPOINT

    if not UCF_MINI.is_dir() or not UCF_CHECKPOINT.is_file():
        pytest.skip("needs ../shared/ucf101-mini and assets/ucf9-mini.safetensors")
    run = fake_run(env["runs"], "ucf-run", ["A"], [0.5], data=str(UCF_MINI))
    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(UCF_CHECKPOINT, run.checkpoint("best"))
    shutil.copy(UCF_CHECKPOINT, run.checkpoint("epoch_001"))
    at = app("compare")
    clip = sorted(UCF_MINI.glob("ApplyEyeMakeup/*.mp4"))[0]
    at.selectbox(key="compare_clip_example").set_value(str(clip)).run()
    no_problems(at)
    picked = at.multiselect(key="compare_ckpts_ApplyEyeMakeup").value
    assert str(DEMO_CHECKPOINT) not in picked and str(run.checkpoint("best")) in picked, picked
    assert not any("Not trained on" in w.value for w in at.warning)
    # Defect 12: epoch snapshots stay out of the picker until asked for, as in Predict.
    options = at.multiselect(key="compare_ckpts_ApplyEyeMakeup").options  # labels, grouped by run
    assert "ucf-run · best" in options and "ucf-run · epoch_001" not in options, options
    at.toggle(key="compare_every").set_value(True).run()
    assert "ucf-run · epoch_001" in at.multiselect(key="compare_ckpts_ApplyEyeMakeup").options
    at.multiselect(key="compare_ckpts_ApplyEyeMakeup").set_value([str(UCF_CHECKPOINT), str(DEMO_CHECKPOINT)]).run()
    no_problems(at)
    assert any("Not trained on ApplyEyeMakeup" in w.value for w in at.warning)


# --------------------------------------------------------------------------------------- Predict page


def test_predict_marks_examples_the_checkpoint_trained_on(env):
    """Defect 13: the shipped UCF-101 checkpoint's own training clips are marked, and predicting one says so."""
    from arlib.checkpoints import load_checkpoint
    from arlib.places import UCF_CHECKPOINT, clips_seen

    if not UCF_MINI.is_dir() or not UCF_CHECKPOINT.is_file():
        pytest.skip("needs ../shared/ucf101-mini and assets/ucf9-mini.safetensors")
    seen = clips_seen(load_checkpoint(UCF_CHECKPOINT).meta)
    assert "train" in seen.values() and "validation" in seen.values()
    trained = next(p for p in sorted(UCF_MINI.glob("*/*")) if seen.get(p.stem) == "train")
    unseen = next((p for p in sorted(UCF_MINI.glob("*/*")) if p.stem not in seen), None)
    at = app("predict")
    box = at.selectbox(key="predict_clip_example")
    assert "● trained on" in box.format_func(str(trained))
    if unseen is not None:
        assert "●" not in box.format_func(str(unseen)) and "◐" not in box.format_func(str(unseen))
    box.set_value(str(trained)).run()
    no_problems(at)
    assert at.selectbox(key="predict_checkpoint_real").value == str(UCF_CHECKPOINT)
    assert any("trained on this clip" in w.value for w in at.warning)


def test_data_page_builds_exactly_the_training_cache_in_the_background(env, ucf_like, tmp_path, monkeypatch):
    """Defect 7: the Data page's cache is what training reads (the preset's frames and views), built by a
    background job with progress, not 48 flipped frames in the page's own thread."""
    import time

    from arlib import jobs
    from arlib.examples import cached_views
    from arlib.train import make_config

    monkeypatch.setenv("ARLIB_CACHE_DIR", str(tmp_path / "cache"))
    at = app("data")
    at.text_input(key="data_path").set_value(str(ucf_like)).run()
    at.selectbox(key="cache_preset").set_value("demo").run()
    at.button(key="build_cache").click().run()
    no_problems(at)
    deadline = time.time() + 240
    while time.time() < deadline and jobs.cache_job_state(env["runs"]).get("state") not in ("finished", "failed",
                                                                                           "died"):
        time.sleep(0.5)
    state = jobs.cache_job_state(env["runs"])
    assert state["state"] == "finished", state
    demo = make_config("demo")
    assert state["cache_frames"] == demo.cache_frames and state["views"] == cached_views(demo)
    assert state["frames_done"] == state["frames_total"] > 0
    assert not jobs.list_jobs(env["runs"])  # the cache job is not a training run
    at.run()
    assert any("Last build" in c.value for c in at.caption)
