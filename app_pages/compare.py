"""Compare: 2-4 checkpoints on the same clip side by side (top-k, attention on one time axis, frame strips),
then their validation metrics, confusion matrices, per-class recall and where they disagree."""

from pathlib import Path

import streamlit as st

from arlib import places, viz
from arlib.attention_scale import attention_summary
from arlib.errors import ArlibError
from studio import charts, clips, formatting, playback, prediction, resources, uploads
from studio.errors import guard

st.title("Compare")
st.caption("Run several checkpoints on the same clip and set their validation results side by side.")

choices = places.checkpoint_choices()
label_of = {str(c.path): c.label for c in choices}
if len(choices) < 2:
    if choices:
        st.info(f"Only one checkpoint exists ({choices[0].label}), and comparing needs two. Train the demo on the "
                f"Train page (preset demo, {formatting.DEMO_TIME}) to get a second one; every run saves best and last, so "
                "one run alone already gives two to compare.", icon=":material/info:")
    else:
        st.info("No checkpoint exists yet: the shipped demo checkpoint (arlib/assets/demo.safetensors) is missing and "
                f"no run has saved one. Train the demo on the Train page ({formatting.DEMO_TIME}).", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

# Grouped by run as in Predict's picker: the epoch_NNN snapshots only on request.
every = st.session_state.get("compare_every", False)
kept = {v for k, vals in st.session_state.items() if str(k).startswith("compare_ckpts_") for v in vals or []}
choices = [c for c in choices if every or not c.path.stem.startswith("epoch_") or str(c.path) in kept]
paths = [str(c.path) for c in choices]
up, ex, video_col = st.columns([4, 4, 3], gap="medium")
source = clips.clip_picker("compare_clip", up, ex)
uploaded = source is not None and source.data is not None
clip_class = None if source is None or uploaded else places.clip_class(source.path)


def classes_of(path) -> list[str]:
    return resources.checkpoint_meta(path)["classes"]


# Default: checkpoints that know the clip's class, then ones trained on the same kind of data (demo or real).
default = [str(p) for p in places.default_pair(choices, classes_of, None if source is None else source.path,
                                               uploaded=uploaded)]
kind = "upload" if uploaded else (clip_class or "none")
picked = st.multiselect("Checkpoints (2 to 4)", paths, default=default, max_selections=4,
                        key=f"compare_ckpts_{kind}", format_func=label_of.get,
                        help="Default: checkpoints whose classes include the clip's class, else ones trained on the "
                             "same kind of data as the clip.")
st.toggle("Show every saved epoch", key="compare_every",
          help="Runs keep checkpoints/epoch_NNN snapshots (the newest few, see --keep) besides best and last.")
if len(picked) < 2:
    st.info("Pick at least two checkpoints.")
    st.stop()


def short(path: str) -> str:
    return label_of.get(path, Path(path).name)


results: dict[str, dict] = {}
errors: dict[str, str] = {}
if source is not None:
    with guard("the predictions"):
        with st.spinner("Predicting with each checkpoint…"):
            with uploads.materialised(source) as clip_path:
                for ck in picked:
                    try:
                        results[ck] = prediction.predict_clip(source, clip_path, ck)
                    except ArlibError as exc:
                        errors[ck] = str(exc).replace(str(clip_path), source.name)
                if results:
                    with video_col:
                        playback.show_video(source.key, clip_path, data=source.data)

    for ck, msg in errors.items():
        st.error(f"{short(ck)}: {msg}", icon=":material/error:")

if results:
    with guard("the side-by-side view"):
        st.subheader(f"On {source.name}")
        cols = st.columns(len(results), gap="medium")
        for col, (ck, res) in zip(cols, results.items()):
            pred = res["json"]
            with col:
                best = pred["top_k"][0]
                st.markdown(f"**{short(ck)}**  \n{best['label']} · {formatting.probability(best['probability'])}")
                if clip_class is not None:
                    try:
                        known = classes_of(ck)
                    except ArlibError:
                        known = None
                    if known is not None and clip_class not in known:
                        st.warning(f"Not trained on {clip_class}: its answer can only be one of its "
                                   f"{len(known)} classes.", icon=":material/warning:")
                st.plotly_chart(viz.top_k_bars(pred["top_k"], title="Top predictions"), key=f"cmp_topk_{ck}")
        st.markdown("**The frames each model saw, placed at their time in the clip**")
        st.caption("One row per checkpoint on one time axis; the cell beneath each frame is its attention on the "
                   "fixed scale relative to uniform (red above, blue below).")
        for ck, res in results.items():
            pred = res["json"]
            st.caption(short(ck))
            duration = float(pred.get("duration_s") or max(pred["timestamps_s"] or [1.0]))
            strip = viz.time_aligned_strip(res["frames"], pred["attention"], pred["timestamps_s"], duration,
                                           uniform=1 / len(pred["attention"]))
            st.image(strip, width="stretch")
        prediction.show_heat_comparison(results, {ck: short(ck) for ck in results})
        curve = viz.attention_curve({short(ck): prediction.attention_by_time(r["json"]["timestamps_s"],
                                                                             r["json"]["attention"])
                                     for ck, r in results.items()}, title="Attention over time (one axis)",
                                    uniform={short(ck): 1 / len(r["json"]["attention"]) for ck, r in results.items()})
        st.plotly_chart(charts.legend_below(curve, 420), key="cmp_attention")  # long names: legend below
        for ck, r in results.items():
            st.caption(f"{short(ck)}: {attention_summary(r['json']['attention'], r['json']['timestamps_s'])}")
        labels = {short(ck): r["json"]["top_k"][0]["label"] for ck, r in results.items()}
        if len(set(labels.values())) > 1:
            st.warning("They disagree on this clip: " + "; ".join(f"{k} says **{v}**" for k, v in labels.items()),
                       icon=":material/call_split:")
        else:
            st.success(f"All agree on this clip: **{next(iter(labels.values()))}**.", icon=":material/check_circle:")

st.subheader("Validation results")
with guard("the validation results"):
    metas, rows_of = {}, {}
    for ck in picked:
        try:
            metas[ck] = resources.checkpoint_meta(ck)
        except ArlibError as exc:
            st.error(f"{short(ck)}: {exc}", icon=":material/error:")
            continue
        run = places.run_of_checkpoint(ck, metas[ck].get("run"))
        epoch = metas[ck].get("epoch")
        row = None
        if run is not None:
            row = next((r for r in resources.run_metrics(run) if r.get("epoch") == epoch), None)
        rows_of[ck] = row
    table = []
    for ck, meta in metas.items():
        m = meta.get("metrics") or rows_of.get(ck) or {}
        table.append({"checkpoint": short(ck), "epoch": meta.get("epoch"), "model": meta["model"]["kind"],
                      "backbone": meta.get("backbone"), "classes": len(meta["classes"]),
                      "val top-1": m.get("val_top1"), "val top-5": m.get("val_top5"),
                      "mean-class": m.get("val_mean_class_accuracy"), "val loss": m.get("val_loss")})
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, width="stretch", height=38 + 35 * len(table),
                 column_config={"checkpoint": st.column_config.TextColumn(width="medium"),
                                "epoch": st.column_config.NumberColumn(width="small"),
                                "model": st.column_config.TextColumn(width="small"),
                                "classes": st.column_config.NumberColumn(width="small"),
                                "val top-1": pct, "val top-5": pct, "mean-class": pct,
                                "val loss": st.column_config.NumberColumn(format="%.4f")})

    with_rows = {ck: r for ck, r in rows_of.items() if r}
    if not with_rows:
        st.caption("Confusion matrices and per-class recall come from a run's metrics.jsonl; none of these "
                   "checkpoints has its run folder here (the demo checkpoint ships without one).")
    else:
        cols = st.columns(2, gap="medium")
        recalls = {short(ck): row["per_class_recall"] for ck, row in with_rows.items() if row.get("per_class_recall")}
        for i, (ck, row) in enumerate(with_rows.items()):
            with cols[i % 2]:
                if row.get("confusion"):
                    st.plotly_chart(viz.confusion_heatmap(row["confusion"], row.get("classes") or [],
                                                          title=f"{short(ck)} · epoch {row['epoch']}"),
                                    key=f"cmp_cm_{ck}")
        missing_rows = [short(ck) for ck in metas if not rows_of.get(ck)]
        if missing_rows:
            st.caption(f"No confusion matrix or recall for {', '.join(missing_rows)}: they come from a run's "
                       "metrics.jsonl, and that run folder is not here (the demo checkpoint ships without one).")
        if recalls:
            with cols[1] if len(with_rows) == 1 else st.container():  # beside a lone confusion matrix
                st.plotly_chart(viz.recall_bars(recalls, title="Per-class recall"), key="cmp_recall")
            names = list(recalls)
            if len(names) >= 2:
                a, b = names[0], names[1]
                diff = [{"class": c, a: recalls[a].get(c), b: recalls[b].get(c),
                         "difference": None if recalls[a].get(c) is None or recalls[b].get(c) is None
                         else recalls[b][c] - recalls[a][c]}
                        for c in recalls[a] if c in recalls[b]]
                if diff:
                    st.caption(f"Per-class recall difference ({b} minus {a})")
                    st.dataframe(diff, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(diff)),
                                 column_config={a: pct, b: pct, "difference": st.column_config.NumberColumn(format="%+.0%")})

        st.markdown("**Clips misclassified by one but not the other**")
        pairs = [(x, y) for i, x in enumerate(with_rows) for y in list(with_rows)[i + 1:]]
        shown = False
        for x, y in pairs:
            rx, ry = with_rows[x], with_rows[y]
            if rx.get("classes") != ry.get("classes") or rx.get("num_val_clips") != ry.get("num_val_clips"):
                st.caption(f"{short(x)} and {short(y)} were validated on different classes or clips: not compared.")
                continue
            wx = {w["clip"]: w for w in rx.get("misclassified") or []}
            wy = {w["clip"]: w for w in ry.get("misclassified") or []}
            only = [{"clip": Path(c).name, "true": w["label"], "wrong only in": short(x), "predicted": w["predicted"]}
                    for c, w in wx.items() if c not in wy]
            only += [{"clip": Path(c).name, "true": w["label"], "wrong only in": short(y), "predicted": w["predicted"]}
                     for c, w in wy.items() if c not in wx]
            shown = True
            if only:
                st.dataframe(only, hide_index=True, width="stretch", height=min(600, 38 + 35 * len(only)))
            else:
                st.caption(f"{short(x)} and {short(y)} get the same validation clips wrong.")
        if not shown and not pairs:
            st.caption("Pick two checkpoints that have run folders here to compare their mistakes.")
