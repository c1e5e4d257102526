"""Data: point at a dataset, see its classes and clip counts, missing and unreadable clips, play a clip
beside its sampled frames, and build the feature cache."""

from pathlib import Path

import streamlit as st

from arlib import jobs, places
from arlib.backbones import availability
from arlib.features import DEFAULT_CACHE_DIR
from arlib.sampling import cache_grid, test_positions
from arlib.examples import cached_views
from arlib.train import TrainConfig, make_config
from arlib.video import probe, read_frames
from studio import clips, device_choice, formatting, job_view, playback, prediction, resources
from studio.errors import guard

st.title("Data")
st.caption("A UCF-101 folder with its split files, a folder of frame folders, or simply one folder per class. "
           "The demo dataset is generated on first use.")


@st.cache_data(show_spinner=False, max_entries=4096)
def open_problem(path: str, mtime_ns: int) -> str | None:
    try:
        probe(path)
        return None
    except Exception as exc:  # VideoError, or anything else a broken file throws
        return str(exc)


def unreadable(paths: tuple) -> dict:
    bar = st.progress(0.0, text="Opening every clip…")
    bad = {}
    for i, p in enumerate(paths):
        try:
            reason = open_problem(p, Path(p).stat().st_mtime_ns)
        except OSError as exc:
            reason = f"{Path(p).name} cannot be read ({exc.strerror})."
        if reason:
            bad[p] = reason
        if i % 8 == 0 or i + 1 == len(paths):
            bar.progress((i + 1) / len(paths), text=f"Opening every clip… {i + 1}/{len(paths)}")
    bar.empty()
    return bad


@st.cache_data(show_spinner=False, max_entries=32)
def sampled_frames(path: str, mtime_ns: int, count: int, cache_frames: int) -> dict:
    info = probe(path)
    times = info.frame_times()  # presentation times: even-in-time sampling, true times on variable-rate clips
    grid = cache_grid(times, cache_frames)
    indices = grid[test_positions(len(grid), count)]
    frames = read_frames(path, indices, short_side=112, info=info)
    return {"frames": frames, "times": [round(float(times[i]), 2) for i in indices], "info": dict(info.__dict__)}


demo_default = str(places.demo_data_path())
ucf = places.ucf_mini_root()


def use(folder: str) -> None:
    st.session_state["data_path"] = folder


c1, c2, c3 = st.columns([5, 1, 3], vertical_alignment="bottom")
st.session_state.setdefault("data_path", demo_default)
path = c1.text_input("Dataset folder", key="data_path",
                     help="The folder holding one subfolder per class; split files (ucfTrainTestlist) are found "
                          "inside it or next to it. Relative paths start at the repository folder.").strip()
with c3:
    b1, b2, b3 = st.columns(3)
    if b3.button("Rescan", key="rescan", width="stretch", help="Read the folder again (it is cached for 30 s)"):
        resources.dataset_info.clear()
    b1.button("Demo", on_click=use, args=(demo_default,), key="use_demo", help="The synthetic demo dataset",
              width="stretch")
    b2.button("UCF-101", on_click=use, args=(str(ucf),), key="use_ucf", disabled=ucf is None, width="stretch",
              help="The real UCF-101 clips in ../shared/ucf101-mini" if ucf else "../shared/ucf101-mini is not here")
split = c2.selectbox("Split", [1, 2, 3], key="data_split", help="UCF-101's official splits; other layouts get a "
                                                                  "seeded group split instead.")

info = None
with guard("the dataset"):
    if not path:
        st.info("Type the path of a dataset folder above.")
        st.stop()
    path = str(places.user_path(path))
    if Path(path) == Path(demo_default):
        clips.ensure_demo_dataset()
    info = resources.dataset_info(path, split)
if info is None:
    st.stop()
summary = info["summary"]
with guard("the dataset"):
    with_clips = [c for c, n in summary["per_class"].items() if n["train"] + n["test"]]
    st.info(info["description"], icon=":material/dataset:")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Classes with clips", f"{len(with_clips)} of {len(summary['classes'])}")
    m2.metric("Train clips", summary["train"])
    m3.metric("Test / val clips", summary["test"],
              help="Training validates on the split's test clips; with none on disk it holds out whole groups "
                   "of the training clips instead.")
    m4.metric("Listed but missing", summary["missing"], help="Clips named in the split files but not on disk.")
    if summary["test"] == 0 and summary["train"]:
        held = int(round(100 * TrainConfig().val_fraction))
        st.caption(f"No test clips on disk for this split: training holds out about {held} % of the training "
                   "clips (whole groups, so no group is on both sides) for validation and trains on the rest.")
    if summary["missing"]:
        st.warning(f"{summary['missing']} clips listed in the split files are not on disk; training uses the "
                   f"{summary['train'] + summary['test']} that are.", icon=":material/warning:")

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Clips per class")
        st.dataframe([{"class": name, "train": n["train"], "test": n["test"]}
                      for name, n in summary["per_class"].items()], hide_index=True, width="stretch",
                     height=min(420, 38 + 35 * len(summary["per_class"])))
    with right:
        st.subheader("Missing and unreadable clips")
        missing = info["missing"]
        if missing:
            with st.expander(f"{len(missing)} clips listed in the split files but absent on disk"):
                st.caption("Normal for a partial copy of UCF-101; training uses the clips that exist.")
                st.dataframe([{"listed clip": m} for m in missing[:2000]], hide_index=True, width="stretch", height=240)
        else:
            st.caption("Every clip listed in the split files is on disk.")
        paths = tuple(p for p, _, _ in info["clips"])
        if len(paths) <= 400 or st.button(f"Check that all {len(paths)} clips open", key="check_clips"):
            bad = unreadable(paths)
            if bad:
                st.warning(f"{len(bad)} of {len(paths)} clips cannot be read; training skips them.")
                st.dataframe([{"clip": places.short_path(p), "reason": r} for p, r in bad.items()], hide_index=True,
                             width="stretch")
            else:
                st.caption(f"All {len(paths)} clips on disk open and decode.")

with guard("the clip viewer"):
    st.subheader("Look at a clip")
    classes = summary["classes"]
    v1, v2, v3 = st.columns([2, 3, 1])
    cls = v1.selectbox("Class", classes, key="data_class")
    clips = [(p, part) for p, c, part in info["clips"] if c == cls]
    if not clips:
        st.info(f"No clips of {cls} on disk.")
    else:
        chosen = v2.selectbox("Clip", [p for p, _ in clips], key="data_clip",
                              format_func=lambda p: f"{Path(p).name} ({dict(clips)[p]})")
        count = v3.number_input("Frames", 4, 40, 16, key="data_frames", help="How many frames to sample, as a "
                                "model with this sequence length sees them (uniformly over the clip).")
        sample = sampled_frames(chosen, Path(chosen).stat().st_mtime_ns, int(count), TrainConfig().cache_frames)
        clip_info = sample["info"]
        a, b = st.columns([2, 3], gap="large")
        with a:
            playback.show_video(f"data:{chosen}:{Path(chosen).stat().st_mtime_ns}", chosen, info=clip_info)
            st.caption(f"{clip_info['num_frames']} frames · {clip_info['fps']:.3g} fps · "
                       f"{clip_info['width']}x{clip_info['height']} · {clip_info['duration_s']:.1f} s · "
                       f"{clip_info['codec']}")
            for warning in clip_info.get("warnings") or ():
                st.warning(warning)
        with b:
            st.caption("Sampled frames, uniformly over the clip (the test-time sampling), with their times")
            frames, times = list(sample["frames"]), sample["times"]
            per_row = prediction.per_row_for(len(frames), 8)  # balanced rows: no lone frame on the last one
            for start in range(0, len(frames), per_row):
                for col, frame, t in zip(st.columns(per_row), frames[start:start + per_row], times[start:]):
                    col.image(frame, caption=f"{t:.2f} s", width="stretch")

with guard("the feature cache"):
    st.subheader("Feature cache")
    st.caption("The frozen backbone encodes every frame training reads once; every epoch and every later run with "
               "the same backbone and preset reuses the features. Training fills the cache by itself: building it "
               "here only moves the wait to now, in the background.")
    usable = [name for name, reason in availability().items() if reason is None]
    f1, f2, f3 = st.columns([2, 2, 3])
    backbone = f1.selectbox("Backbone", usable, key="cache_backbone",
                            index=usable.index(TrainConfig().backbone) if TrainConfig().backbone in usable else 0)
    preset = f2.selectbox("For training with preset", ["demo", "thesis", "custom"], key="cache_preset",
                          help="The cache is built exactly as a run with this preset reads it: the same frames per "
                               "clip and the same views (the thesis preset also caches crops and flips; custom, the defaults, "
                               "the motion stream).")
    cache_cfg = make_config(None if preset == "custom" else preset, data=path, split=split, backbone=backbone)
    views = cached_views(cache_cfg)
    f3.caption(f"{cache_cfg.cache_frames} frames per clip · views {', '.join(views)} · cache folder "
               f"`{cache_cfg.cache_dir or DEFAULT_CACHE_DIR}`")
    busy = jobs.active_job(places.runs_dir())
    if busy is not None:
        st.info(f"Run '{busy.name}' is training now; building the cache at the same time slows both down.")
    if st.button("Build the feature cache", icon=":material/memory:", key="build_cache"):
        jobs.launch_cache(places.runs_dir(), cache_cfg, device=device_choice.current())
        st.toast("Building the feature cache in the background; you can leave this page.")

    @st.fragment(run_every=2)
    def cache_progress() -> None:
        with guard("the cache job"):
            state = jobs.cache_job_state(places.runs_dir())
            if not state:
                return
            fraction, line = job_view.progress(state)
            if state.get("active"):
                st.progress(fraction, text=line)
            elif state.get("state") == "finished":
                failed = state.get("failed") or {}
                st.caption(f"Last build: {state.get('clips')} clips, {state.get('frames_encoded', 0):,} frames "
                           f"encoded (the rest were cached already) in {formatting.format_seconds(state.get('seconds') or 0)}"
                           + (f"; {len(failed)} clips could not be read and training skips them." if failed else "."))
            elif state.get("state") in ("failed", "died"):
                st.warning(f"The last cache build stopped: {state.get('error')}")

    cache_progress()
