"""Action Recognition Studio: `streamlit run streamlit_app.py`.

The entry point only sets up navigation (st.navigation over the page files in app_pages/) and the shared
sidebar; the pages share Streamlit pieces from studio/, and the work is done by arlib.
"""

import logging

import streamlit as st

from studio import device_choice, preload
from studio.errors import guard
from studio.job_view import sidebar_job_status

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

st.set_page_config(page_title="Action Recognition Studio", page_icon=":material/movie:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/folder_open:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/movie:"),
    st.Page("app_pages/live.py", title="Live", icon=":material/videocam:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
]
page = st.navigation(PAGES)
preload.start()  # models load in the background while the visitor looks at the first page

with st.sidebar:
    st.markdown("**Training job**")
    sidebar_job_status()
    st.markdown("**Compute**")  # a heading of its own: the device is not the training job's alone
    with guard("the device choice"):
        device_choice.sidebar_picker()

with guard(page.title):
    page.run()
