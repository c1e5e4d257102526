"""Home: what the studio does, the state of things, and one-click paths."""

import streamlit as st

from arlib import jobs, places
from arlib.backbones import REGISTRY, availability
from arlib.runs import list_runs
from studio import clips, formatting, job_view
from studio.errors import guard

st.title("Action Recognition Studio")
st.markdown(
    "Recognise human actions in video clips with a frozen image backbone, a bidirectional LSTM and temporal "
    "attention.  \nPoint it at a dataset, train a model as a background job and watch it learn, then predict "
    "on any clip and see **which frames the model looked at**.  \nEverything works offline: a synthetic demo "
    "dataset and a demo checkpoint are built in."
)

st.subheader("Start here")
c1, c2, c3 = st.columns(3)
with c1, st.container(border=True):
    st.markdown("**Try the demo**  \nPredict a demo clip with the shipped demo checkpoint.")
    if st.button("Try the demo", type="primary", icon=":material/play_arrow:", key="try_demo", width="stretch"):
        clips.ensure_demo_dataset()
        if places.demo_checkpoint().is_file():
            st.session_state["predict_checkpoint"] = str(places.demo_checkpoint())
        st.switch_page("app_pages/predict.py")
with c2, st.container(border=True):
    st.markdown(f"**Train**  \nLaunch a run; the demo preset takes {formatting.DEMO_TIME}.")
    if st.button("Train a model", icon=":material/model_training:", key="go_train", width="stretch"):
        st.switch_page("app_pages/train.py")
with c3, st.container(border=True):
    st.markdown("**Predict**  \nUpload a clip and see the top-5 and the attention.")
    if st.button("Predict a clip", icon=":material/movie:", key="go_predict", width="stretch"):
        st.switch_page("app_pages/predict.py")

st.subheader("The state of things")
with guard("the state of things"):
    runs = list_runs(places.runs_dir())
    finished = [r for r in runs if r.read_status().get("state") == "finished"]
    active = jobs.active_job(places.runs_dir())
    demo_ready = (places.demo_root() / "demo.json").exists()
    ucf = places.ucf_mini_root()
    ckpt = places.default_checkpoint()

    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Datasets", 1 + (ucf is not None), help="The built-in demo dataset, plus real UCF-101 clips when found")
    m2.metric("Runs", len(runs), help=f"{len(finished)} finished; stored in {places.short_path(places.runs_dir())}")
    m3.metric("Training job", active.name if active else "none")
    avail = availability()
    m4.metric("Backbones available", f"{sum(v is None for v in avail.values())} of {len(avail)}")

    left, right = st.columns(2, gap="large")
    with left, st.container(border=True):
        st.markdown("**Datasets**")
        st.markdown(
            f"- Demo dataset: {'ready at `' + places.short_path(places.demo_root()) + '`' if demo_ready else 'generated on first use into `' + places.short_path(places.demo_root()) + '`'}\n"
            f"- Real UCF-101 clips: {'`' + str(ucf) + '` (' + str(sum(1 for _ in ucf.glob('*/*'))) + ' clips)' if ucf else 'not found (../shared/ucf101-mini)'}"
        )
        st.markdown("**Checkpoints**")
        st.markdown(f"- Default for prediction: `{places.short_path(ckpt)}`"
                    + ("" if ckpt.exists() else " — missing: train the demo on the Train page"))
        if active:
            fraction, line = job_view.progress(jobs.job_state(active))
            st.markdown(f"**Running:** `{active.name}` · {line}")
            st.progress(fraction)
            st.page_link("app_pages/train.py", label="Watch it on Train", icon=":material/visibility:")
        elif runs:
            newest = runs[0]
            st.markdown(f"**Newest run:** `{newest.name}` · {newest.read_status().get('state', 'unknown')}")
    with right, st.container(border=True):
        st.markdown("**Backbones** (frozen per-frame encoders)")
        rows = [{"backbone": name, "features": f"{REGISTRY[name].feature_dim}-d",
                 "input": f"{REGISTRY[name].preprocessing.input_size}px"}
                for name, reason in avail.items() if reason is None]
        st.dataframe(rows, hide_index=True, width="stretch")
        notes = formatting.unavailable_backbones()
        if notes:
            st.markdown("Not available here:\n" + "\n".join(f"- {n}" for n in notes))
