"""Where a page's clip comes from: the demo dataset (generated on first use), the example list, the picker."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from arlib.errors import ArlibError
from arlib.places import demo_data_path, demo_root, recordings_dir, ucf_mini_root

from .uploads import UPLOAD_TYPES, ClipSource

log = logging.getLogger("studio")


def ensure_demo_dataset() -> Path:
    """The demo dataset's UCF-101 folder, generated on first use (~2 s) into data/demo."""
    from arlib.demo import MANIFEST, make_demo_dataset

    root = demo_root()
    if (root / MANIFEST).exists():
        return demo_data_path()
    with st.spinner("Generating the demo dataset (first use, a few seconds)…"):
        make_demo_dataset(root)
    return demo_data_path()


def example_clips() -> list[tuple[str, Path]]:
    """(label, path): the demo dataset's test clips, the real UCF-101 clips when present, then Live recordings."""
    try:
        demo = str(ensure_demo_dataset())
    except ArlibError as exc:
        log.warning("demo dataset unavailable: %s", exc)
        demo = None
    ucf = ucf_mini_root()
    # Live recordings are listed fresh (not cached), so one shows up the moment it is saved.
    recordings = [(recording_label(path), path) for path in sorted(recordings_dir().glob("*.mp4"), reverse=True)]
    return _examples(demo, None if ucf is None else str(ucf)) + recordings


def recording_label(path: Path) -> str:
    return f"recording · {path.name}"


@st.cache_data(show_spinner=False, ttl=30)  # every rerun of every page lists them: read the folders twice a minute
def _examples(demo: str | None, ucf: str | None) -> list[tuple[str, Path]]:
    from arlib.datasets import load_dataset

    out: list[tuple[str, Path]] = []
    if demo is not None:
        try:
            ds = load_dataset(data=demo)
            out += [(f"demo · {c.class_name} · {Path(c.path).name}", Path(c.path)) for c in ds.test]
        except ArlibError as exc:
            log.warning("demo dataset unavailable: %s", exc)
    if ucf is not None:
        from arlib.video import VIDEO_EXTENSIONS

        for path in sorted(Path(ucf).glob("*/*")):
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                out.append((f"UCF-101 · {path.parent.name} · {path.name}", path))
    return out


SEEN_MARK = {"train": " · ● trained on", "validation": " · ◐ its validation clip"}


def clip_picker(key: str, upload_area=None, example_area=None, checkpoint_for=None) -> ClipSource | None:
    """An upload box next to an example list; an uploaded clip takes precedence. Returns the clip or None.

    checkpoint_for(path) -> the checkpoint this example would be predicted with: examples it was trained on
    (or validated on) are marked, since their scores are optimistic."""
    upload_area = upload_area or st.container()
    example_area = example_area or st.container()
    with upload_area:
        limit = st.get_option("server.maxUploadSize")  # .streamlit/config.toml, or --server.maxUploadSize
        up = st.file_uploader("Upload a clip", type=UPLOAD_TYPES, key=f"{key}_upload",
                              help=f"mp4, avi, mov, mkv, webm or gif, up to {limit} MB; it is deleted after "
                                   "prediction.")
    examples = example_clips()
    with example_area:
        if not examples:
            st.caption("No example clips found; upload a clip.")
        else:
            label_of = {str(path): label for label, path in examples}
            marks: dict[str, str] = {}
            if checkpoint_for is not None:
                from .resources import clips_seen

                seen_by: dict[str, dict] = {}
                for _, path in examples:
                    checkpoint = checkpoint_for(path)
                    if checkpoint is None:
                        continue
                    if str(checkpoint) not in seen_by:
                        seen_by[str(checkpoint)] = clips_seen(checkpoint)
                    kind = seen_by[str(checkpoint)].get(path.stem)
                    if kind:
                        marks[str(path)] = SEEN_MARK[kind]
            choice = st.selectbox("…or pick an example clip", list(label_of), key=f"{key}_example",
                                  disabled=up is not None, format_func=lambda p: label_of[p] + marks.get(p, ""),
                                  help="The demo dataset's test clips, real UCF-101 clips when "
                                       "../shared/ucf101-mini exists, and clips recorded on the Live page. ● = the checkpoint trained on it, ◐ = it "
                                       "chose its best epoch on it: both score higher than unseen clips.")
            if up is not None:
                st.caption("Using the uploaded clip; remove it to use an example.")
    if up is not None:
        return ClipSource(name=up.name, data=up.getvalue())
    if not examples:
        return None
    path = Path(choice)
    return ClipSource(name=path.name, path=path)
