"""Cached resources shared by every session: models, checkpoint metadata, datasets, probes, metrics rows.

Keys include file modification times, so a retrained checkpoint or a rewritten metrics file is read again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from arlib.errors import CheckpointError
from arlib.places import short_path


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _predictor(path: str, mtime_ns: int, device: str):
    from arlib.predict import Predictor

    return Predictor(path)  # on the process-wide device, which is part of the key: a new choice loads anew


def checkpoint_key(path) -> tuple[str, int]:
    path = Path(path)
    return str(path.resolve()), path.stat().st_mtime_ns


def predictor(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {short_path(path)} does not exist; pick another checkpoint or train one.")
    from arlib.devices import current_device

    return _predictor(*checkpoint_key(path), str(current_device()))


@st.cache_data(show_spinner=False, max_entries=64)
def _checkpoint_meta(path: str, mtime_ns: int) -> dict:
    from arlib.checkpoints import load_checkpoint

    meta = dict(load_checkpoint(path).meta)
    meta.pop("optimizer", None)
    return meta


def checkpoint_meta(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {short_path(path)} does not exist; pick another checkpoint.")
    return _checkpoint_meta(*checkpoint_key(path))


@st.cache_data(show_spinner=False, ttl=30, max_entries=16)
def dataset_info(path: str, split: int = 1) -> dict:
    """load_dataset as plain data (cached 30 s): summary, description, missing, [(path, class, part)]."""
    from arlib.datasets import load_dataset

    ds = load_dataset(data=path, split=split)
    return {"summary": ds.summary(), "description": ds.description, "missing": ds.missing, "layout": ds.layout,
            "clips": [(c.path, c.class_name, part) for part, clips in (("train", ds.train), ("test", ds.test))
                      for c in clips]}


@st.cache_data(show_spinner=False, max_entries=1024)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path) -> str:
    stat = Path(path).stat()
    return _file_hash(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=64)
def _probe(key: str, _path: str) -> dict:
    from arlib.video import probe

    return dict(probe(_path).__dict__)


def probe_clip(key: str, path) -> dict:
    """probe() as a dict, cached by the clip's content key."""
    return _probe(key, str(path))


@st.cache_data(show_spinner=False, max_entries=32)
def _metrics(path: str, mtime_ns: int) -> list[dict]:
    from arlib.fileio import read_jsonl

    return read_jsonl(path)


def run_metrics(run) -> list[dict]:
    """metrics.jsonl rows of a run, cached until the file changes."""
    try:
        mtime = run.metrics_path.stat().st_mtime_ns
    except OSError:
        return []
    return _metrics(str(run.metrics_path), mtime)


@st.cache_data(show_spinner=False, max_entries=32)
def frames_at(path: str, mtime_ns: int, indices: tuple, short_side: int = 112) -> np.ndarray:
    """The frames of a clip at these frame numbers (repeats allowed), decoded once each."""
    from arlib.video import read_frames

    unique, inverse = np.unique(np.asarray(indices, int), return_inverse=True)
    return read_frames(path, unique, short_side=short_side)[inverse]


@st.cache_data(show_spinner=False, max_entries=16)
def _clips_seen(path: str, mtime_ns: int) -> dict[str, str]:
    from arlib.places import clips_seen

    return clips_seen(_checkpoint_meta(path, mtime_ns))


def clips_seen(checkpoint) -> dict[str, str]:
    """{clip stem: 'train' | 'validation'} of a checkpoint (see arlib.places.clips_seen); {} if it is gone."""
    path = Path(checkpoint)
    return _clips_seen(*checkpoint_key(path)) if path.is_file() else {}
