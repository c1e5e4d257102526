"""Where things live and which checkpoint a clip gets by default: the one place both the CLI and the
studio ask, so they always agree.

Paths: runs go to $ARLIB_RUNS_DIR (default runs/), the demo dataset to $ARLIB_DATA_DIR/demo (default
data/demo), Live recordings to $ARLIB_RECORDINGS_DIR (default recordings/), all relative to the repository root
(or, for an installed package, to the current directory);
$ARLIB_DEMO_CHECKPOINT overrides the shipped demo checkpoint (arlib/assets/demo.safetensors);
$ARLIB_UCF_MINI overrides ../shared/ucf101-mini.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .shipped import shipped_checkpoint

ROOT = Path(__file__).resolve().parent.parent
DEMO_CHECKPOINT = shipped_checkpoint("demo")  # the synthetic demo twins
UCF_CHECKPOINT = shipped_checkpoint("ucf9-mini")  # the thesis's 9 UCF-101 classes, trained on ucf101-mini


def _dir(env: str, default: str) -> Path:
    """Relative paths count from the checkout when arlib runs from one, else (an installed package) from the
    current directory, never from site-packages."""
    path = Path(os.environ.get(env) or default).expanduser()
    base = ROOT if (ROOT / "streamlit_app.py").is_file() else Path.cwd()
    return path if path.is_absolute() else base / path


def runs_dir() -> Path:
    return _dir("ARLIB_RUNS_DIR", "runs")


def data_dir() -> Path:
    return _dir("ARLIB_DATA_DIR", "data")


def recordings_dir() -> Path:
    """Where the Live page's Record button saves clips (outside data/, so they count as real clips)."""
    return _dir("ARLIB_RECORDINGS_DIR", "recordings")


def demo_root() -> Path:
    return data_dir() / "demo"


def demo_data_path() -> Path:
    return demo_root() / "UCF-101"


def demo_checkpoint() -> Path:
    return Path(os.environ.get("ARLIB_DEMO_CHECKPOINT") or DEMO_CHECKPOINT)


def ucf_mini_root() -> Path | None:
    """The real UCF-101 clips next to the repo (../shared/ucf101-mini/UCF-101), when present."""
    root = Path(os.environ.get("ARLIB_UCF_MINI") or ROOT.parent / "shared" / "ucf101-mini")
    return root / "UCF-101" if (root / "UCF-101").is_dir() else None


def short_path(path) -> str:
    """A path relative to the repo when inside it (readable), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def user_path(text: str) -> Path:
    """A folder typed by the user: ~ expanded, relative paths taken from the repository folder."""
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else ROOT / path


def inside(path: Path, folder: Path) -> bool:
    try:
        return folder.resolve() in Path(path).resolve().parents
    except OSError:
        return False


def is_demo_clip(path: Path | None) -> bool:
    """A clip of the generated demo dataset (anything under the data folder)."""
    return path is not None and inside(path, data_dir())


# ------------------------------------------------------------------------------------------ checkpoints


@dataclass
class CheckpointChoice:
    path: Path
    label: str
    group: str  # the run it belongs to, or "shipped"


def checkpoint_choices(runs: Path | None = None) -> list[CheckpointChoice]:
    """Every run's checkpoints (newest run first; best, last, then epochs), then the shipped ones in assets/."""
    from .runs import list_runs

    order = {"best": 0, "last": 1}
    out = []
    for run in list_runs(runs or runs_dir()):
        for ck in sorted(run.checkpoints(), key=lambda p: (order.get(p.stem, 2), p.stem)):
            out.append(CheckpointChoice(ck, f"{run.name} · {ck.stem}", run.name))
    demo = demo_checkpoint()
    if demo.is_file():
        out.append(CheckpointChoice(demo, "shipped · demo twins, 8 classes", "shipped"))  # short: fits a picker
    for sibling in sorted(demo.parent.glob("*.safetensors")):
        if sibling.resolve() != demo.resolve():
            what = "UCF-101, 9 classes" if sibling.name == UCF_CHECKPOINT.name else sibling.stem
            out.append(CheckpointChoice(sibling, f"shipped · {what}", "shipped"))
    return out


def default_checkpoint(clip: Path | None = None, uploaded: bool = False, runs: Path | None = None) -> Path:
    """The checkpoint a clip gets unless the user picks one (the studio and `arlib predict` alike).

    The best checkpoint of the newest finished run trained on the same kind of data as the clip (the demo
    data for demo clips and when no clip is given, anything else for real clips); without one, the shipped
    checkpoint of that kind: the demo twins, or the 9 UCF-101 classes. An upload counts as a real clip.
    """
    from .runs import list_runs

    demo_wanted = not uploaded and (clip is None or is_demo_clip(Path(clip)))
    for run in list_runs(runs or runs_dir()):
        if run.read_status().get("state") != "finished" or not run.checkpoint("best").exists():
            continue
        config = run.read_config()
        data = config.get("data") or config.get("features") or ""
        if inside(Path(data), data_dir()) == demo_wanted:
            return run.checkpoint("best")
    if not demo_wanted and UCF_CHECKPOINT.is_file():
        return UCF_CHECKPOINT
    return demo_checkpoint()


def clip_class(clip: Path | None) -> str | None:
    """The class a clip shows when it sits in a dataset's class folder (<Class>/<clip>), else None."""
    if clip is None:
        return None
    clip = Path(clip)
    for root in (data_dir(), ucf_mini_root()):
        if root is not None and inside(clip, root) and clip.parent.name not in ("", root.name):
            return clip.parent.name
    return None


def default_pair(choices: list[CheckpointChoice], classes_of, clip: Path | None = None,
                 uploaded: bool = False, count: int = 2) -> list[Path]:
    """Checkpoints to compare on a clip by default: runs' `best` and the shipped ones, those that know the
    clip's class first, then those trained on the same kind of data (demo or real), newest first.
    `classes_of(path)` gives a checkpoint's class names (the caller caches the metadata)."""
    wanted_class = None if uploaded else clip_class(clip)
    demo_wanted = not uploaded and (clip is None or is_demo_clip(Path(clip)))
    demo = demo_checkpoint().resolve()

    def is_demo_model(choice: CheckpointChoice) -> bool:
        if choice.group == "shipped":
            return choice.path.resolve() == demo
        run = run_of_checkpoint(choice.path)
        data = (run.read_config().get("data") or "") if run else ""
        return inside(Path(data), data_dir())

    candidates = [c for c in choices if c.path.stem == "best" or c.group == "shipped"] or list(choices)

    def rank(item):
        index, choice = item
        try:
            knows = wanted_class is not None and wanted_class in classes_of(choice.path)
        except Exception:  # an unreadable checkpoint goes last; the page shows its error
            return (2, 2, index)
        return (0 if knows else 1, 0 if is_demo_model(choice) == demo_wanted else 1, index)

    ordered = [c.path for _, c in sorted(enumerate(candidates), key=rank)]
    rest = [c.path for c in choices if c.path not in ordered]
    return (ordered + rest)[:count]


def clips_seen(meta: dict) -> dict[str, str]:
    """{clip stem: 'train' or 'validation'} for the clips a checkpoint was trained or validated on, rebuilt
    from its training configuration (the split is seeded); empty when that dataset is not here."""
    from .errors import ArlibError
    from .train import TrainConfig, training_split

    config = meta.get("train_config") or {}
    if not config.get("data") or config.get("features"):
        return {}
    data = user_path(str(config["data"]))
    if not data.is_dir():
        return {}
    try:
        _, train, val = training_split(TrainConfig.from_dict(config), data=str(data))
    except ArlibError:
        return {}
    return {Path(c.path).stem: "train" for c in train} | {Path(c.path).stem: "validation" for c in val}


def run_of_checkpoint(path, run_name: str | None = None):
    """The run directory a checkpoint belongs to: its parent run folder, else runs/<run_name> (from its meta)."""
    from .runs import RunDir

    path = Path(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.json").exists():
        return RunDir(path.parent.parent)
    if run_name and (runs_dir() / run_name / "config.json").exists():
        return RunDir(runs_dir() / run_name)
    return None
