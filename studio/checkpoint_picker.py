"""Choosing a checkpoint: the library's default for the clip preselected, runs and shipped ones listed."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from arlib import places

from .uploads import ClipSource


def default_for(source: ClipSource | None) -> Path:
    """The library's default checkpoint for this clip (an upload counts as a real clip)."""
    if source is None:
        return places.default_checkpoint()
    return places.default_checkpoint(source.path, uploaded=source.data is not None)


def kind_of(source_path: Path | None) -> str:
    return "demo" if source_path is not None and places.is_demo_clip(source_path) else "real"


def checkpoint_for_examples(key: str):
    """path -> the checkpoint the picker `key` would use for that example clip (the user's pick for that
    kind of clip, else the default), for marking the examples a checkpoint has seen."""
    memo: dict[str, Path] = {}

    def checkpoint_for(path: Path) -> Path:
        kind = kind_of(path)
        if kind not in memo:
            chosen = st.session_state.get(f"{key}_{kind}")
            memo[kind] = Path(chosen) if chosen else places.default_checkpoint(path)
        return memo[kind]
    return checkpoint_for


def checkpoint_picker(key: str, label: str = "Checkpoint", source: ClipSource | None = None) -> Path | None:
    choices = places.checkpoint_choices()
    if not choices:
        st.warning("No checkpoint yet: the shipped demo checkpoint (arlib/assets/demo.safetensors) is missing and no run has "
                   "saved one. Train the demo on the Train page, then come back.")
        return None
    default = default_for(source)
    # Grouped by run (newest first; best, then last): the epoch_NNN snapshots only on request.
    kind = kind_of(source.path) if source is not None else "real"
    every = st.session_state.get(f"{key}_every", False) or str(st.session_state.get(f"{key}_{kind}", "")).find(
        "epoch_") >= 0
    choices = [c for c in choices if every or not c.path.stem.startswith("epoch_")]
    paths = [c.path for c in choices]
    index = next((i for i, p in enumerate(paths) if p.resolve() == default.resolve()), 0)
    label_of = {str(c.path): c.label for c in choices}
    # One widget per kind of clip, so switching from a demo example to an upload brings its own default.
    chosen = st.selectbox(label, [str(p) for p in paths], index=index, key=f"{key}_{kind}", format_func=label_of.get,
                          help="Default: the best checkpoint of the newest finished run trained on the same kind of "
                               "data (demo or real); else the shipped demo checkpoint for demo clips and the "
                               "shipped UCF-101 (9 classes) one for real clips.")
    st.toggle("Show every saved epoch", key=f"{key}_every",
              help="Runs keep checkpoints/epoch_NNN snapshots (the newest few, see --keep) besides best and last.")
    return Path(chosen)
