"""The Streamlit side of Action Recognition Studio: pieces the page files in app_pages/ share.

One file per concept: errors (the one-sentence guard), resources (cached models, metadata, datasets),
uploads (clips held in memory), clips (example list and the clip picker), playback (clips in the browser),
checkpoint_picker, prediction (the Predict panels), job_view (training progress), charts, formatting, and
live_session / live_panel (the Live page's threads and its panels).
Policies (paths, the default checkpoint of a clip) live in arlib.places; arlib never imports this package.
"""
