"""Metrics: per-epoch curves of one or several runs, the epoch table, the confusion matrix and per-class
recall of any epoch, and the misclassified clips with their attention."""

from pathlib import Path

import streamlit as st

from arlib import metrics, places, viz
from arlib.runs import list_runs
from studio import charts, formatting, playback, prediction, resources
from studio.errors import guard

st.title("Metrics")
st.caption("Pick runs to compare their curves; pick one run and an epoch for the confusion matrix, recall and the "
           "clips it got wrong.")

with guard("the run list"):
    runs = {r.name: r for r in list_runs(places.runs_dir()) if resources.run_metrics(r)}
if not runs:
    st.info("No run has finished an epoch yet. Train one on the Train page (the demo preset takes "
            f"{formatting.DEMO_TIME}).")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

names = list(runs)
chosen = st.multiselect("Runs", names, default=names[:1], key="metrics_runs")
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
rows = {name: resources.run_metrics(runs[name]) for name in chosen}

with guard("the curves"):
    left, right = st.columns(2, gap="large")
    several = len(chosen) > 1  # one line per run and metric: the legend goes under the plot, not beside it
    loss_fig = charts.epoch_axis(viz.metric_curves(rows, ["train_loss", "val_loss"], "Loss"), rows)
    acc_fig = charts.epoch_axis(viz.metric_curves(
        rows, ["train_top1", "val_top1", "val_top5", "val_mean_class_accuracy", "test_top1", "val_attention_on_action"],
        "Accuracy"), rows)
    with left:
        st.plotly_chart(charts.legend_below(loss_fig, 420) if several else loss_fig, key="metrics_loss")
    with right:
        st.plotly_chart(charts.legend_below(acc_fig, 420) if several else acc_fig, key="metrics_acc")
        note = charts.localisation_note([r for name in chosen for r in rows[name]])
        if note:
            st.caption(note)
    table = [row for name in chosen for row in charts.epoch_table(rows[name], name if several else None)]
    fmt = {k: st.column_config.NumberColumn(format="percent") for k in
           ("train_top1", "val_top1", "val_top5", "val_mean_class_accuracy", "test_top1", "val_attention_on_action")}
    fmt.update({k: st.column_config.NumberColumn(format="%.4f") for k in ("train_loss", "val_loss")})
    fmt["lr"] = st.column_config.NumberColumn(format="%.0e")
    st.dataframe(table, hide_index=True, width="stretch", column_config=fmt,
                 height=min(400, 38 + 35 * len(table)))

st.subheader("One epoch in detail")
with guard("the epoch details"):
    c1, c2 = st.columns([1, 2])
    focus = c1.selectbox("Run", chosen, key="metrics_focus") if several else chosen[0]
    epochs = [int(r["epoch"]) for r in rows[focus]]
    best = charts.best_epoch(runs[focus], rows[focus])
    with c2:
        epoch = (st.select_slider("Epoch", epochs, value=best if best in epochs else epochs[-1],
                                  key=f"metrics_epoch_{focus}",
                                  help="Opens on the epoch that checkpoints/best holds.")
                 if len(epochs) > 1 else epochs[0])
    if best is not None:
        best_meta = resources.checkpoint_meta(runs[focus].checkpoint("best")) if runs[focus].checkpoint("best").exists() else {}
        chosen_by = {"val_loss": "the lowest validation loss", "val_top1": "the highest validation top-1"}.get(
            best_meta.get("selected_by"), "the highest validation top-1, ties going to the lower validation loss")
        st.caption(f"`best` holds epoch {best}, chosen on {chosen_by} (validation = whole groups of the training "
                   "clips; the test list never chooses)" + (" · this is it" if epoch == best else "") + ".")
    row = next(r for r in rows[focus] if int(r["epoch"]) == epoch)
    classes = row.get("classes") or []
    large = len(classes) > viz.LARGE_CLASS_COUNT
    left, right = st.columns(2, gap="large")
    with left:
        if row.get("confusion"):
            st.plotly_chart(viz.confusion_heatmap(row["confusion"], classes,
                                                  title=f"Confusion matrix · {focus} · epoch {epoch}"),
                            key="metrics_cm")
            if large:
                st.caption(f"{len(classes)} classes: zoom (drag a box) and hover to read cells; the tables "
                           "beside it list the mistakes.")
        else:
            st.caption("This epoch has no confusion matrix (no validation clips).")
    with right:
        if large and row.get("confusion"):
            st.markdown("**Most frequent mistakes**")
            st.dataframe(metrics.top_confusions(row["confusion"], classes), hide_index=True, width="stretch",
                         column_config={"share of true class": st.column_config.NumberColumn(format="percent")},
                         height=300, key="metrics_top_confusions")
            st.markdown("**Per class** (click a column to sort)")
            st.dataframe(metrics.per_class_table(row["confusion"], classes), hide_index=True, width="stretch",
                         column_config={"clips": st.column_config.NumberColumn(width="small"),
                                        "recall": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                  max_value=1, width="small"),
                                        "precision": st.column_config.NumberColumn(format="percent", width="small")},
                         height=320, key="metrics_per_class")
        else:
            recalls, other_classes = {}, []
            for name in chosen:
                match = [r for r in rows[name] if int(r["epoch"]) == epoch] or rows[name][-1:]
                if not match or not match[0].get("per_class_recall"):
                    continue
                if name != focus and match[0].get("classes") != classes:
                    other_classes.append(name)  # other classes: side by side bars would not line up
                    continue
                recalls[f"{name} · epoch {match[0]['epoch']}"] = match[0]["per_class_recall"]
            if recalls:
                st.plotly_chart(viz.recall_bars(recalls), key="metrics_recall")
            if other_classes:
                st.caption(f"Not in the recall chart: {', '.join(other_classes)} (trained on other classes than "
                           f"{focus}).")
        st.caption(f"Validation: top-1 {metrics.format_accuracy(row.get('val_top1'), int(row.get('num_val_clips') or 0))} · "
                   f"top-5 {formatting.pct(row.get('val_top5'))} · mean-class {formatting.pct(row.get('val_mean_class_accuracy'))}"
                   + (f" · test list (reported, never chooses): top-1 "
                      f"{metrics.format_accuracy(row.get('test_top1'), int(row['num_test_clips']))}"
                      if row.get("num_test_clips") else "")
                   + (f" · {row['clips_skipped']} clips skipped (unreadable)" if row.get("clips_skipped") else ""))

st.subheader("Calibration")
with guard("the calibration"):
    best_path = runs[focus].checkpoint("best")
    calibration = (resources.checkpoint_meta(best_path).get("calibration") if best_path.exists() else None) or {}
    if not calibration:
        st.caption("This run's `best` has no fitted temperature yet (it is still training, or was made before "
                   "calibration existed).")
    else:
        on_test = bool(calibration.get("test_clips"))
        bins = calibration.get("test_reliability" if on_test else "val_reliability") or []
        n = calibration.get("test_clips" if on_test else "val_clips")
        ece = calibration.get("test_ece" if on_test else "val_ece_after")
        left, right = st.columns([3, 2], gap="large")
        refit = bool(calibration.get("refit"))  # `best` retrained on train + validation after the choice
        # Without test clips the diagram shows validation, where a refit `best` has trained: show the weights
        # validation chose (`selected`), and say so.
        whose = "`best`" if on_test or not refit else "`selected`"
        with left:
            st.plotly_chart(viz.reliability_diagram(bins, f"Reliability of {whose} on the {'test list' if on_test else 'validation clips'}",
                                                    ece=ece, clips=n), key="metrics_reliability")
        with right:
            fitted = (f"{calibration['oof_clips']} training clips, each predicted by a model that did not train on it "
                      "(out-of-fold)" if calibration.get("oof_clips") else f"{calibration['val_clips']} validation clips")
            st.markdown(f"Temperature **{calibration['temperature']:.3g}**, fitted on {fitted} after training; "
                        "every probability the studio shows is divided by it.")
            if refit:
                st.caption("`best` is a refit: once validation chose the epoch, the same initial weights were trained "
                           "that many epochs on train + validation together; `selected` keeps the weights validation "
                           "chose.")
            st.caption(f"Validation ECE {calibration['val_ece_before']:.3f} before, {calibration['val_ece_after']:.3f} "
                       "after (15 bins; fitted there, so optimistic" + (", weights validation chose" if refit else "") + ")"
                       + (f" · test ECE {calibration['test_ece']:.3f} on {calibration['test_clips']} clips"
                          if on_test else " · no test clips on disk to check it on") + ".")
            floor = metrics.ece_if_calibrated_from_bins(bins)
            if floor["median"] is not None:
                st.caption(f"ECE is never 0 on few clips: a perfectly calibrated model with these confidences would "
                           f"show about {floor['median']:.2f} on {n} clips (95 % of the time up to {floor['p95']:.2f}), "
                           + ("so this ECE is within what calibration alone explains." if ece is not None and ece <= floor["p95"]
                              else "so this ECE is more than calibration alone explains."))

st.subheader("Misclassified clips")
with guard("the misclassified clips"):
    wrong = row.get("misclassified") or []
    if not wrong:
        st.success(f"No validation clip was misclassified at epoch {epoch}.", icon=":material/check_circle:")
        st.stop()
    st.dataframe([{"clip": Path(w["clip"]).name, "true": w["label"], "predicted": w["predicted"],
                   "confidence": w["probability"]} for w in wrong], hide_index=True, width="stretch",
                 column_config={"confidence": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                              max_value=1)},
                 height=min(300, 38 + 35 * len(wrong)))
    pick = st.selectbox("Inspect", range(len(wrong)), key=f"metrics_wrong_{focus}_{epoch}",
                        format_func=lambda i: f"{Path(wrong[i]['clip']).name}: {wrong[i]['label']} taken for "
                                              f"{wrong[i]['predicted']} ({wrong[i]['probability']:.0%})")
    item = wrong[pick]
    clip = Path(item["clip"])
    if not clip.exists():
        st.warning(f"{clip} is not on disk any more, so it cannot be played; the attention is shown below.")
    fps = float(item.get("fps") or 25.0)
    # Presentation times (variable-rate clips too); runs from before they were recorded: frame number / fps.
    times = item.get("timestamps_s") or [round(i / fps, 3) for i in item["frame_indices"]]
    left, right = st.columns([2, 3], gap="large")
    with left:
        if clip.exists():
            playback.show_video(f"wrong:{clip}:{clip.stat().st_mtime_ns}", clip)
    with right:
        st.plotly_chart(viz.attention_curve({f"{item['predicted']} (true {item['label']})":
                                             prediction.attention_by_time(times, item["attention"])}),
                        key="metrics_wrong_attn")
    if clip.exists():
        frames = resources.frames_at(str(clip), clip.stat().st_mtime_ns, tuple(item["frame_indices"]))
        st.caption("The frames the model saw, each with its attention weight beneath it")
        pred_like = {"attention": item["attention"], "timestamps_s": times}
        prediction.show_strip(f"wrong:{clip}", pred_like, frames, budget_px=1150, thumb_h=96)
