"""Predict: a clip (upload or example) + a checkpoint -> top-k, attention over the sampled frames, GIF, JSON."""

import streamlit as st

from arlib.evaluate import checkpoint_accuracy

from studio import clips, prediction, resources, uploads
from studio.checkpoint_picker import checkpoint_for_examples, checkpoint_picker
from studio.errors import guard

st.title("Predict")
st.caption("Upload a clip or pick an example, choose a checkpoint, and see what the model predicts and which "
           "frames it attended to.")

up, ex, right = st.columns([3, 4, 4], gap="medium")  # the checkpoint names need the room
source = clips.clip_picker("predict_clip", up, ex, checkpoint_for=checkpoint_for_examples("predict_checkpoint"))
with right:
    checkpoint = checkpoint_picker("predict_checkpoint", source=source)
    if checkpoint is not None:
        with guard("the checkpoint"):
            meta = resources.checkpoint_meta(checkpoint)
            streams = " + motion stream" if int(meta["model"].get("streams", 1)) == 2 else ""
            st.caption(f"{len(meta['classes'])} classes · {meta['model']['kind']} model{streams} · backbone "
                       f"{meta.get('backbone')} · {meta['seq_len']} frames · epoch {meta.get('epoch')} · "
                       f"{checkpoint_accuracy(meta)}")
            classes = meta["classes"]
            st.caption("Knows: " + ", ".join(classes[:12]) + (f", … ({len(classes)} in all)" if len(classes) > 12
                                                              else ""))
            seen = resources.clips_seen(checkpoint).get(source.path.stem) if source and source.path else None
            if seen:
                st.warning("This checkpoint " + ("trained on this clip" if seen == "train" else
                                                 "chose its best epoch on this clip") +
                           ", so its confidence is optimistic; pick an unmarked clip to see how it does on "
                           "unseen video.", icon=":material/visibility:")

if source is not None and checkpoint is not None:
    with guard("the prediction"):
        with st.spinner("Predicting…"):
            with uploads.materialised(source) as path:  # an upload lives in a temp folder only this long
                result = prediction.predict_clip(source, path, checkpoint, heatmaps=False)
                st.divider()
                prediction.show_prediction("predict", source, path, result["json"], result["frames"],
                                           explain=lambda: prediction.predict_clip(source, path, checkpoint))
