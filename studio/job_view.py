"""How a training job looks: a progress fraction and one line from its status, and the sidebar panel."""

from __future__ import annotations

import streamlit as st

from arlib import jobs, places
from arlib.runs import ACTIVE_STATES

from .errors import guard
from .formatting import format_seconds


def progress(s: dict) -> tuple[float, str]:
    """(fraction done, one line) of a jobs.job_state() dict."""
    state = s.get("state")
    epochs = int(s.get("epochs") or 0)
    epoch = int(s.get("epoch") or 0)
    if state == "finished":
        n = epochs or epoch
        return 1.0, f"finished: {n} epoch{'s' if n != 1 else ''}"
    phase = s.get("phase") or state
    if phase == "features":
        done, total = int(s.get("frames_done") or s.get("step") or 0), int(s.get("frames_total") or s.get("total_steps") or 0)
        line = s.get("message") or "computing features"
        if s.get("eta_s") is not None and state in ACTIVE_STATES:
            line += f" · about {format_seconds(s['eta_s'])} left"
        return (min(1.0, done / total) if total else 0.0), line
    if not epochs:
        return 0.0, s.get("message") or str(state)
    steps = int(s.get("steps_per_epoch") or 0)
    step = int(s.get("step") or 0)
    if phase == "training" and steps and epoch >= 1:
        done = (epoch - 1) + min(step, steps) / steps
        line = f"epoch {epoch}/{epochs} · step {min(step, steps)}/{steps}"
    else:
        done = epoch
        line = s.get("message") or f"epoch {epoch}/{epochs}"
    eta = s.get("eta_s")
    if s.get("active") or state in ACTIVE_STATES:
        if eta is not None and phase == "training":
            line += f" · about {format_seconds(eta)} left"
    return max(0.0, min(1.0, done / epochs)), line


@st.fragment(run_every=5)
def sidebar_job_status() -> None:
    with guard("the job status"):
        run = jobs.active_job(places.runs_dir())
        if run is None:
            st.caption("No training job running.")
            return
        state = jobs.job_state(run)
        fraction, line = progress(state)
        st.caption(f"Training **{run.name}** · {state['state']}")
        st.progress(fraction, text=line)
