"""The studio's device (auto / cpu / cuda / mps): one choice for this server process, in the sidebar.

Prediction on the Predict, Compare and Live pages runs on the process-wide device (arlib.devices), and the
trainers and cache fills the Train and Data pages launch get it as `--device` in their command. Only devices
usable here are offered; one asked for otherwise (`?device=cuda` in the address, or a choice made before the
GPU went away) is refused with one sentence and the current choice is kept.
"""

from __future__ import annotations

import torch
import streamlit as st

from arlib import devices
from arlib.errors import ArlibError

KEY = "studio_device"


def _runtime_note(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return "CPU + ONNX Runtime"


def label(name: str) -> str:
    """'auto (CPU + ONNX Runtime)', 'auto (CUDA: NVIDIA H200)', 'cuda (NVIDIA H200)', 'cpu', 'mps'."""
    if name == "auto":
        return f"auto ({_runtime_note(devices.resolve_device('auto'))})"
    if name == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return name


def unusable() -> dict[str, str]:
    """Device name -> why it cannot be used here (auto and cpu always can)."""
    reasons = {}
    for name in devices.DEVICE_CHOICES:
        try:
            devices.resolve_device(name)
        except ArlibError:
            reasons[name] = _WHY.get(name, "not usable")
    return reasons


_WHY = {"cuda": "no usable CUDA GPU", "mps": "no usable Apple Metal (MPS)"}


def refusal(asked: str) -> str:
    """The one sentence for a device that was asked for but cannot be had; the current choice stays."""
    kind = asked.split(":")[0]
    if kind not in devices.DEVICE_CHOICES:
        why = f"it is not one of {', '.join(devices.DEVICE_CHOICES)}"
    else:
        why = f"this machine has {unusable().get(kind, 'no such device')}"
    return f"Device '{asked}' was asked for, but {why}; the studio keeps {label(current())}."


def current() -> str:
    """This process's device choice as one of DEVICE_CHOICES ('auto' unless one was set)."""
    chosen = devices.chosen_name()
    return chosen.split(":")[0] if chosen else "auto"


def apply(name: str) -> None:
    """Make `name` the process-wide device; ArlibError (one sentence) when it is unknown or not usable here."""
    devices.set_device(None if name == "auto" else name)


def _picked() -> None:
    try:
        apply(st.session_state[KEY])
    except ArlibError:  # the GPU went away since the list was made
        st.session_state["studio_device_error"] = refusal(st.session_state[KEY])


def sidebar_picker() -> None:
    """The Device selector (inside `with st.sidebar`); `?device=NAME` in the address asks for one on opening."""
    missing = unusable()
    usable = [name for name in devices.DEVICE_CHOICES if name not in missing]
    asked = st.query_params.get("device") if KEY not in st.session_state else None
    if asked:
        try:
            apply(asked.strip().lower())
        except ArlibError:
            st.session_state["studio_device_error"] = refusal(asked.strip()[:40])
    if st.session_state.get("studio_device_error"):
        st.error(st.session_state.pop("studio_device_error"), icon=":material/error:")
    # The choice is the server's, not the session's: every session shows (and changes) the same one.
    st.session_state[KEY] = current() if current() in usable else "auto"
    st.selectbox("Device", usable, key=KEY, format_func=label, on_change=_picked,
                 help="Where prediction runs on every page of this studio (for every visitor), and the device of a "
                      "training run launched from now on. auto: CUDA, then Apple MPS, then the CPU with ONNX Runtime.")
    if missing:
        st.caption("Not usable here: " + "; ".join(f"{name} ({why})" for name, why in missing.items()))
