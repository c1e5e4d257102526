"""Why the browser's camera could not be opened, told to Python so the Live page can say it in one sentence.

streamlit-webrtc asks for the camera inside its own iframe and, when the browser refuses, only draws the raw
DOMException there ("NotAllowedError: Permission denied"): the value it sends back to Python stays
{playing: false} and its `translations` do not reach that message. So an invisible st.components.v2
component (its JavaScript runs in the page itself) watches two things:

- the camera permission as the browser holds it (`navigator.permissions`): "denied" is known before anyone
  presses Start when the user blocked the camera earlier, and a later "granted" clears it;
- every getUserMedia call the WebRTC iframe makes (same origin as the page, so its `mediaDevices` can be
  wrapped): a rejection reports the DOMException's name (NotAllowedError, NotFoundError, NotReadableError,
  ...), a success clears it. The exception still reaches streamlit-webrtc unchanged.

This covers denial, a missing camera and a camera in use, whichever way the browser reports them; the
permission query alone would miss the last two.
"""

from __future__ import annotations

import re

import streamlit as st
from streamlit.components.v2 import component

_JS = r"""
export default function (component) {
  const { setStateValue, data } = component;
  let permissionDenied = false;
  let callFailure = null;  // the DOMException name of the newest failed getUserMedia call
  let sent = (data && data.shown) || null;  // what Python shows now: report only changes (each one reruns)
  const report = () => {
    const failure = !navigator.mediaDevices ? "NoMediaDevices"
      : callFailure || (permissionDenied ? "NotAllowedError" : null);
    if (failure !== sent) { sent = failure; setStateValue("failure", failure); }
  };
  let permission = null;
  const onPermission = () => {
    permissionDenied = permission.state === "denied";
    if (permission.state === "granted" && callFailure === "NotAllowedError") callFailure = null;
    report();
  };
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: "camera" }).then((status) => {
      permission = status;
      status.addEventListener("change", onPermission);
      onPermission();
    }).catch(() => {});  // a browser that cannot query the camera permission: the calls below still tell
  }
  const wrap = () => {
    for (const frame of document.querySelectorAll('iframe[title^="streamlit_webrtc"]')) {
      let devices = null;
      try { devices = frame.contentWindow && frame.contentWindow.navigator.mediaDevices; } catch (e) { continue; }
      if (!devices || devices.__arlibProbe || !devices.getUserMedia) continue;
      const original = devices.getUserMedia.bind(devices);
      devices.getUserMedia = async (constraints) => {
        try {
          const stream = await original(constraints);
          callFailure = null;
          report();
          return stream;
        } catch (error) {
          callFailure = (error && error.name) || "Error";
          report();
          throw error;
        }
      };
      devices.__arlibProbe = true;
    }
  };
  wrap();
  report();
  // The WebRTC iframe loads after this component and is rebuilt on some reruns: wrap each new one.
  const timer = setInterval(wrap, 300);
  return () => {
    clearInterval(timer);
    if (permission) permission.removeEventListener("change", onPermission);
  };
}
"""

_ASK_AGAIN = "press Start again, or play a video file or stream URL instead."
SENTENCES = {
    "NotAllowedError": "The browser refused the camera: allow it in the address bar's site settings and "
                       + _ASK_AGAIN,
    "SecurityError": "The browser refused the camera: allow it in the address bar's site settings and "
                     + _ASK_AGAIN,
    "NotFoundError": "No camera was found: connect one and " + _ASK_AGAIN,
    "OverconstrainedError": "No camera here can deliver video: connect another one and " + _ASK_AGAIN,
    "NotReadableError": "The camera is in use by another program or failed to start: close that program and "
                        + _ASK_AGAIN,
    "AbortError": "The camera is in use by another program or failed to start: close that program and "
                  + _ASK_AGAIN,
    "NoMediaDevices": "This browser offers no camera on this address (cameras need https or localhost): play a "
                      "video file or stream URL instead.",
}


def sentence(failure: str | None) -> str | None:
    """One sentence for a failure the probe reported (a DOMException name from the browser), None when fine."""
    if not failure:
        return None
    if failure in SENTENCES:
        return SENTENCES[failure]
    name = re.sub(r"[^A-Za-z]", "", str(failure))[:40] or "an unknown error"
    return f"The camera could not be opened ({name}): {_ASK_AGAIN}"


_probe = None


def camera_failure(key: str) -> str | None:
    """Mount the (invisible) probe and return the sentence for the camera's newest failure, if any."""
    global _probe
    if _probe is None:  # registered once per process: re-registering the same name only logs a warning
        _probe = component("arlib_camera_probe", js=_JS)
    shown = st.session_state.get(f"{key}_shown")
    result = _probe(key=key, data={"shown": shown}, default={"failure": None}, height=0,
                    on_failure_change=lambda: None)
    failure = result.get("failure") if hasattr(result, "get") else getattr(result, "failure", None)
    st.session_state[f"{key}_shown"] = failure
    return sentence(failure)
