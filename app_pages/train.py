"""Train: a form that launches `python -m arlib train` as its own process, and a live view of any run
rebuilt from its run directory (progress, curves, log tail, stop, resume)."""

from pathlib import Path

import streamlit as st

from arlib import jobs, metrics, places, viz
from arlib.backbones import DEFAULT_BACKBONE, REGISTRY, availability
from arlib.background import UNSELECTED, find_clips
from arlib.datasets import load_dataset
from arlib.errors import ArlibError
from arlib.model import MODEL_KINDS
from arlib.runs import RunDir, suggested_run_name, validate_run_name
from arlib.train import PRESETS, TrainConfig
from studio import charts, clips, device_choice, formatting, job_view, resources
from studio.errors import guard

st.title("Train")
st.caption("Training runs as its own process and writes runs/<name>/; this page only reads that folder, so a "
           "reload or a closed browser loses nothing. One job at a time on this machine.")

root = places.runs_dir()


def check_background(text: str, classes_all: list[str], picked: list[str]) -> str | None:
    """The form's background source as the trainer takes it; one clear sentence when it cannot work."""
    text = text.strip()
    if not text:
        return None
    if text.lower() == UNSELECTED:
        if not classes_all or set(picked) >= set(classes_all):
            raise ArlibError("'unselected' uses the clips of the classes you did not choose, but every class is "
                             "chosen: choose fewer classes or give a folder of background clips.")
        return UNSELECTED
    folder = places.user_path(text)
    if not find_clips(folder):  # a missing folder raises its own sentence
        raise ArlibError(f"No clips found in {folder} or its subfolders: give a folder of videos without the "
                         "chosen actions, or 'unselected'.")
    return str(folder)
MODEL_HELP = {"attention": "BiLSTM + attention (thesis)", "lstm": "BiLSTM, no attention",
              "frame_avg": "per-frame baseline"}
form_col, watch_col = st.columns([2, 3], gap="large")

# ------------------------------------------------------------------------------------------------ new run
with form_col:
    st.subheader("New run")
    with guard("the training form"):
        busy = jobs.active_job(root)
        if busy is not None:
            st.info(f"Run '{busy.name}' is training; a new run can start when it finishes or is stopped "
                    "(one job at a time on this machine).", icon=":material/hourglass_top:")
        st.session_state.setdefault("train_data", str(places.demo_data_path()))
        data_text = st.text_input("Dataset folder", key="train_data",
                                  help="As on the Data page: one subfolder per class, split files found nearby.")
        data_path = places.user_path(data_text) if data_text.strip() else None
        info = None
        if data_path is not None:
            if data_path == places.demo_data_path():
                clips.ensure_demo_dataset()
            try:
                info = resources.dataset_info(str(data_path), 1)
                st.caption(info["description"])
            except ArlibError as exc:
                st.error(str(exc), icon=":material/error:")
        preset = st.segmented_control("Preset", ["demo", "thesis", "custom"], default="demo", key="train_preset",
                                      help=f"demo: a tiny model, {formatting.DEMO_TIME} on the demo data; thesis: the "
                                           "thesis recipe exactly; custom: the trainer's defaults.") or "custom"
        base = TrainConfig().to_dict() | PRESETS.get(preset, {})
        avail = availability()
        usable = [name for name, reason in avail.items() if reason is None]
        classes_all = info["summary"]["classes"] if info else []
        per_class = info["summary"]["per_class"] if info else {}
        with_clips = [c for c in classes_all if per_class.get(c, {}).get("train", 0) + per_class.get(c, {}).get("test", 0)]

        # Which classes: by default those with clips on disk (a partial UCF-101 copy lists 101, has a few).
        picked: list[str] = []
        if classes_all:
            modes = {"with_clips": f"The {len(with_clips)} with clips on disk", "first": "The first N",
                     "pick": "Pick (type to search)"}
            mode = st.radio("Classes", list(modes), format_func=modes.get, horizontal=True,
                            key=f"train_class_mode_{data_text}",
                            help="'The first N' follows the class list (classInd.txt): the thesis trained on the "
                                 "first 9 of UCF-101.")
            if mode == "with_clips":
                picked = with_clips
            elif mode == "first":
                count = st.number_input("N", 1, len(classes_all), min(9, len(classes_all)),
                                        key=f"train_first_n_{data_text}")
                picked = classes_all[:int(count)]
                st.caption(f"{picked[0]} … {picked[-1]}" if len(picked) > 1 else picked[0])
            else:
                picked = st.multiselect("Classes to train", classes_all, default=with_clips,
                                        key=f"train_classes_{data_text}", placeholder="type a class name")
            empty = [c for c in picked if c not in with_clips]
            if empty:
                st.warning(f"{len(empty)} of the {len(picked)} chosen classes have no clips on disk "
                           f"({', '.join(empty[:5])}{', …' if len(empty) > 5 else ''}); the model could never "
                           "predict them. Choose classes with clips.", icon=":material/warning:")

        # The run name (pre-filled, unique by its timestamp) follows the dataset and preset until a name of the
        # user's own was submitted; a name that is taken gets jobs.launch's sentence on Launch.
        n = st.session_state.setdefault("train_launches", 0)
        name_key = f"train_name_{n}"
        wanted = (data_text, preset, n)
        if st.session_state.get("train_name_for") != wanted:
            suggestion = suggested_run_name(data_path, preset, info["layout"] if info else None)
            if st.session_state.get(name_key) in (None, st.session_state.get("train_name_suggested")):
                st.session_state[name_key] = suggestion
            st.session_state["train_name_suggested"] = suggestion
            st.session_state["train_name_for"] = wanted

        with st.form("train_form", border=True):
            # Inside the form: the name is sent with the Launch click itself. Outside it, typing a name and
            # clicking Launch at once raced the name's own rerun, which could swallow the click.
            name = st.text_input("Run name", key=name_key,
                                 help="A unique suggestion that follows the dataset and preset until you launch "
                                      "with a name of your own. Letters, digits, '.', '_' or '-'; the run is "
                                      "written to runs/<name>/.")
            model = st.selectbox("Model", MODEL_KINDS, key="train_model", format_func=lambda k: f"{k}: {MODEL_HELP[k]}")
            backbone = st.selectbox("Backbone", usable, index=usable.index(DEFAULT_BACKBONE) if DEFAULT_BACKBONE in
                                    usable else 0, key="train_backbone",
                                    format_func=lambda k: f"{k} ({REGISTRY[k].feature_dim}-d, "
                                                          f"{REGISTRY[k].preprocessing.input_size}px)")
            notes = formatting.unavailable_backbones()
            if notes:
                st.caption("Not available here: " + "; ".join(notes))
            a, b, c = st.columns(3)
            epochs = a.number_input("Epochs", 1, 500, int(base["epochs"]), key=f"train_epochs_{preset}")
            batch = b.number_input("Batch size", 2, 256, int(base["batch_size"]), key=f"train_batch_{preset}")
            seq_len = c.number_input("Frames", 2, 128, int(base["seq_len"]), key=f"train_seq_{preset}",
                                     help="Sequence length: frames per clip the model sees.")
            d, e = st.columns(2)
            lr = d.number_input("Learning rate", 1e-7, 1.0, float(base["lr"]), format="%.0e", step=1e-5,
                                key=f"train_lr_{preset}")
            split = e.selectbox("Split", [1, 2, 3], key="train_split",
                                disabled=bool(info) and info["layout"] != "ucf101",
                                help="UCF-101 split; folder-per-class datasets get a seeded group split.")
            motion = st.checkbox("Motion stream: the backbone also reads differences of nearby frames",
                                 bool(base["motion"]), key=f"train_motion_{preset}",
                                 help="A second stream that sees what moved; +4.6 points of top-1 on held-out groups of "
                                      "the real UCF clips. Doubles the backbone work per frame (the default 20 frames "
                                      "cost what 40 did without it). Background footage trains appearance alone.")
            background_text = st.text_input(
                "Background footage (optional)", key="train_background", placeholder="a folder of clips, or: unselected",
                help="Teaches the attention to find the action: every training clip is spliced between frames of "
                     "footage that shows none of the chosen actions. Give a folder of such clips (searched in every "
                     "subfolder), or 'unselected' for the clips of this dataset's classes you did not choose. "
                     "Empty: train on the clips alone (the attention then has no reason to prefer any frame).")
            st.caption(f"Trains on {device_choice.label(device_choice.current())}: the device chosen in the sidebar.")
            submitted = st.form_submit_button("Launch training", type="primary", icon=":material/rocket_launch:")

        if submitted:
            validate_run_name(name.strip())
            if data_path is None:
                raise ArlibError("Type a dataset folder first (the demo dataset is the default).")
            if classes_all and not picked:
                raise ArlibError("Choose at least one class to train.")
            empty = [c for c in picked if c not in with_clips]
            if empty:
                raise ArlibError(f"{len(empty)} chosen classes have no clips on disk ({', '.join(empty[:5])}); "
                                 "choose classes with clips.")
            classes = None if picked == classes_all else ",".join(picked)
            background = check_background(background_text, classes_all, picked)
            load_dataset(data=str(data_path), split=split, classes=classes)  # one clear sentence if unusable
            options = jobs.TrainOptions(data=str(data_path), split=split, classes=classes, backbone=backbone,
                                        model=model, epochs=int(epochs), batch_size=int(batch), seq_len=int(seq_len),
                                        lr=float(lr), preset=None if preset == "custom" else preset,
                                        background=background, motion=bool(motion) and not background)
            with st.spinner("Starting the trainer…"):
                jobs.launch(root, name.strip(), options, device=device_choice.current())
            st.session_state["train_launches"] = n + 1
            st.session_state["train_watch"] = name.strip()
            st.rerun()


# ------------------------------------------------------------------------------------------------ watch
def curves(run: RunDir, rows: list[dict]) -> None:
    if not rows:
        st.caption("Curves appear after the first epoch.")
        return
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.legend_below(charts.epoch_axis(viz.metric_curves(
            {run.name: rows}, ["train_loss", "val_loss"], "Loss"), {run.name: rows})), key="train_loss_fig")
    with right:
        st.plotly_chart(charts.legend_below(charts.epoch_axis(viz.metric_curves(
            {run.name: rows}, ["train_top1", "val_top1", "val_mean_class_accuracy", "val_attention_on_action"],
            "Accuracy"), {run.name: rows})), key="train_acc_fig")
        note = charts.localisation_note(rows)
        if note:
            st.caption(note)


def panel(name: str) -> None:
    with guard("the run"):
        run = RunDir(root / name)
        s = jobs.job_state(run)
        state = s["state"]
        was_active = st.session_state.get("train_was_active")
        st.session_state["train_was_active"] = (name, s["active"])
        if was_active and was_active[0] == name and was_active[1] and not s["active"]:
            st.rerun()  # the job just ended: refresh the whole page (run list, form, sidebar)

        config = run.read_config()
        st.markdown(f"#### {name} &nbsp; {formatting.state_badge(state)}")
        if config:
            lr = config.get("lr")
            st.caption(f"{'/'.join(Path(str(config.get('data'))).parts[-2:])} · classes {config.get('classes') or 'all'}"
                       f" · {config.get('model')}{' + motion stream' if config.get('motion') else ''} · {config.get('backbone')}"
                       f" · {config.get('epochs')} epochs · batch "
                       f"{config.get('batch_size')} · {config.get('seq_len')} frames · lr "
                       f"{lr if lr is None else format(lr, 'g')} · preset {config.get('preset') or 'none'}"
                       + (f" · background {Path(str(config['background'])).name}" if config.get("background") else ""))
        if state in ("failed", "died") and s.get("error"):
            st.error(s["error"], icon=":material/error:")
        fraction, line = job_view.progress(s)
        st.progress(fraction, text=line)
        last = s.get("last_metrics") or {}
        m = st.columns([2, 2, 2, 3])  # the last tile holds an accuracy with its interval
        m[0].metric("Epoch", f"{s.get('epoch') or 0}/{s.get('epochs') or config.get('epochs') or '?'}")
        if s["active"]:
            eta = s.get("eta_s") if s.get("phase") in ("features", "training", "evaluating") else None
            m[1].metric("Time left", "–" if eta is None else formatting.format_seconds(eta))
        else:
            m[1].metric("Time taken", formatting.format_seconds(s.get("elapsed_s") or 0))
        loss = s.get("train_loss") if s["active"] else last.get("train_loss", s.get("train_loss"))
        m[2].metric("Train loss", f"{loss:.3f}" if loss is not None else "–")
        rows = run.read_metrics()  # read once a rerun: the tile's clip count and the curves below
        val_clips = int((s.get("best_val") or {}).get("n") or next(
            (r.get("num_val_clips") for r in reversed(rows) if r.get("num_val_clips")), 0))
        m[3].metric(f"Best val top-1 ({val_clips} clips)", metrics.format_accuracy(s.get("best_val_top1"), val_clips, False),
                    help=f"± half the 95 % interval on {val_clips} validation clips; these clips chose the epoch, so the "
                         f"number is optimistic. Last epoch: {metrics.format_accuracy(last.get('val_top1'), val_clips)}.")

        if s["active"]:
            if st.button("Stop", icon=":material/stop:", key="train_stop",
                         help="Graceful: the trainer finishes the step, saves checkpoints/last and stops."):
                st.toast(jobs.stop(run))
        elif state in ("stopped", "failed", "died"):
            if st.button("Resume", type="primary", icon=":material/play_arrow:", key="train_resume",
                         help="Continue from checkpoints/last (or restart, if it never saved one)."):
                with st.spinner("Starting the trainer…"):
                    jobs.resume(root, name, device=device_choice.current())
                st.session_state["train_was_active"] = (name, True)
                st.rerun()
        elif state == "finished":
            b = st.columns([2, 2, 3], vertical_alignment="bottom")
            done = int(config.get("epochs") or 1)
            more = b[0].number_input("Train on to epoch", done + 1, 1000, done + 5, key="train_more")
            if b[1].button("Train more", icon=":material/add:", key="train_extend",
                           help="Resume the finished run from its last checkpoint up to this epoch."):
                with st.spinner("Starting the trainer…"):
                    jobs.resume(root, name, epochs=int(more), device=device_choice.current())
                st.session_state["train_was_active"] = (name, True)
                st.rerun()
        curves(run, rows)
        with st.expander("Log (last 25 lines)", expanded=state in ("failed", "died")):
            st.code(run.log_tail(25) or "(empty)", language=None, wrap_lines=True)


with watch_col:
    st.subheader("Runs")
    with guard("the run list"):
        runs = jobs.list_jobs(root)
        if not runs:
            st.info("No runs yet: launch one with the form (the demo preset on the demo data takes "
                    f"{formatting.DEMO_TIME}).")
        else:
            names = [r.name for r in runs]
            busy = jobs.active_job(root)
            if st.session_state.get("train_watch") not in names:
                st.session_state["train_watch"] = busy.name if busy else names[0]

            watched = st.selectbox("Watch run", names, key="train_watch",
                                   help="Default: the running job, else the newest run.")
            live = jobs.job_state(RunDir(root / watched))["active"]
            st.fragment(run_every=2 if live else None)(panel)(watched)
