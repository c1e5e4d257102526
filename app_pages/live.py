"""Live: the browser's camera, or a clip / stream URL played as if live, recognised as it plays."""

import logging

import streamlit as st

from arlib import places
from studio import clips, live_panel, resources
from studio.camera_probe import camera_failure
from studio.checkpoint_picker import checkpoint_picker
from studio.errors import guard
from studio.live_session import session_for
from studio.uploads import ClipSource

log = logging.getLogger("studio")
CAMERA = "Camera"
CLIP = "Video file or stream URL"
# One sentence each for what can go wrong with the camera, shown by the WebRTC component itself.
CAMERA_TEXTS = {
    "media_api_not_available": "This browser offers no camera here (it needs https or localhost); play a video "
                               "file or stream URL instead.",
    "device_not_available": "No camera was found; connect one, or play a video file or stream URL instead.",
    "device_access_denied": "Camera access was denied; allow it in the browser's site settings and press Start "
                            "again, or play a video file or stream URL instead.",
    "device_ask_permission": "Allow the browser to use the camera.",
}

st.title("Live")
st.caption("Recognise actions as they happen: every new frame goes through the backbone once (twice with a motion "
           "stream), and every half second the model classifies the last few seconds. Frames are dropped rather "
           "than queued when the CPU falls behind, so the label never lags.")

left, right = st.columns([3, 2], gap="large")
with right:
    kind = st.radio("Source", [CAMERA, CLIP], horizontal=True, key="live_source")
    target, example_path = "", None
    if kind == CLIP:
        examples = dict(clips.example_clips())
        typed = st.text_input("Path or URL", key="live_url",
                              placeholder="/path/clip.mp4, rtsp://camera/stream, http://host/live.m3u8").strip()
        example = None
        if examples:
            example = st.selectbox("…or an example clip", list(examples), key="live_example", disabled=bool(typed))
        example_path = None if typed or example is None else examples[example]
        target = typed or (str(example_path) if example_path else "")
    # A camera or a stream is real footage: it gets the default checkpoint of an uploaded clip.
    source = ClipSource(name="live", path=example_path) if example_path else ClipSource(name="live", data=b"")
    checkpoint = checkpoint_picker("live_checkpoint", source=source)
    window_s = st.slider("Seconds per prediction", 2.0, 8.0, 4.0, 0.5, key="live_window",
                         help="Each update classifies this much of the most recent video, sampled the way "
                              "Predict samples a whole clip.")
    show_heat = st.toggle("Heat map on the newest frame", key="live_heat",
                          help="Grad-CAM of the label on the newest frame at every update: one extra backbone "
                               "pass with gradients, so fewer frames per second.")

session = None
if checkpoint is not None:
    with guard("the model"):
        predictor = resources.predictor(checkpoint)
        session = session_for(predictor, resources.checkpoint_key(checkpoint), window_s)
        session.recognizer.heat_map = show_heat  # read by the worker at its next update

with left:
    if session is not None and kind == CAMERA:
        session.stop_source()
        try:
            from streamlit_webrtc import WebRtcMode, webrtc_streamer
        except ImportError:
            st.warning("The camera needs the Python package streamlit-webrtc (pip install streamlit-webrtc); "
                       "a video file or stream URL works without it.", icon=":material/videocam_off:")
        else:
            notice = st.empty()  # above the camera: filled once the probe below has reported
            try:
                webrtc_streamer(
                    key="live_camera", mode=WebRtcMode.SENDRECV, video_frame_callback=session.submit,
                    media_stream_constraints={"audio": False, "video": {"width": {"ideal": 640},
                                                                        "height": {"ideal": 480}}},
                    rtc_configuration={"iceServers": []},  # served locally: no STUN server is needed
                    translations=CAMERA_TEXTS)
            except Exception as exc:  # noqa: BLE001 - e.g. a script run without a browser session behind it
                log.warning("camera component unavailable: %r", exc)
                st.warning("The camera cannot be offered in this session; play a video file or stream URL "
                           "instead.", icon=":material/videocam_off:")
            st.caption("Press Start and allow the camera. The label appears on the right within about a second.")
            # streamlit-webrtc tells Python nothing when the browser refuses the camera: the probe does.
            with guard("the camera check"):
                problem = camera_failure("live_camera_probe")
                if problem:
                    notice.warning(problem, icon=":material/videocam_off:")
    elif session is not None:
        start, stop, _ = st.columns([1, 1, 3])
        if start.button("Start", key="live_play", type="primary", disabled=not target,
                        icon=":material/play_arrow:"):
            with guard("the source"):
                session.play(target)
        if stop.button("Stop", key="live_stop", icon=":material/stop:"):
            session.stop_source()
        live_panel.picture(session)
    if session is not None:
        live_panel.heat_map(session)

if session is not None:
    with right:
        # Record sits above the live panel: the panel reruns on its own twice a second and grows as labels
        # arrive, and nothing of the full script run should come after it in the same column.
        record, open_predict = st.columns(2)
        if record.button("Record", key="live_record", icon=":material/fiber_manual_record:",
                         help="Saves the frames in the window as an MP4 clip plus the live prediction as JSON, in "
                              f"{places.short_path(places.recordings_dir())}/; the clip then opens in Predict."):
            with guard("the recording"):
                clip, meta = session.record(places.recordings_dir())
                st.session_state["live_recording"] = str(clip)
        recorded = st.session_state.get("live_recording")
        if recorded:
            if open_predict.button("Open in Predict", key="live_open_predict", icon=":material/movie:"):
                st.session_state["predict_clip_example"] = recorded  # Predict's example list holds paths
                st.switch_page("app_pages/predict.py")
            st.caption(f"Saved {places.short_path(recorded)} and its prediction JSON.")
        live_panel.predictions(session)
    live_panel.attention(session)
