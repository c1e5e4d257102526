"""Action Recognition Studio: `streamlit run streamlit_app.py`.

The entry point only sets up navigation and the shared sidebar; each page lives in pages/ and the work
is done by arlib (process management in arlib/jobs.py, shared page pieces in arlib/app_support.py).
"""

import logging

import streamlit as st

from arlib import app_support as app
from arlib import jobs

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

st.set_page_config(page_title="Action Recognition Studio", page_icon=":material/movie:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/folder_open:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/movie:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
]
page = st.navigation(PAGES)


@st.fragment(run_every=5)
def job_status() -> None:
    with app.guard("the job status"):
        run = jobs.active_job(app.runs_dir())
        if run is None:
            st.caption("No training job running.")
            return
        state = jobs.job_state(run)
        st.caption(f"Training **{run.name}** · {state['state']}")
        st.progress(state["fraction"], text=state["line"])


with st.sidebar:
    st.markdown("**Training job**")
    job_status()

with app.guard(page.title):
    page.run()
