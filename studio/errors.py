"""One sentence for the user, never a traceback."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import streamlit as st

from arlib.errors import ArlibError

log = logging.getLogger("studio")


@contextmanager
def guard(what: str = "this page"):
    """ArlibError as is, anything else generic + logged.

    Streamlit's own control flow (st.stop, st.rerun, st.switch_page) derives from BaseException and passes.
    """
    try:
        yield
    except ArlibError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # last resort: keep serving, log the traceback for the developer
        log.exception("error while showing %s", what)
        st.error(f"Something went wrong while showing {what} ({type(exc).__name__}); the details are in the "
                 "server log. Try another input or reload the page.", icon=":material/error:")
