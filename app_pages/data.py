"""Data: point at a dataset, see its classes and clip counts, missing and unreadable clips, play a clip
beside its sampled frames, and build the feature cache."""

from pathlib import Path

import streamlit as st

from arlib import jobs, places
from arlib.backbones import availability
from arlib.datasets import load_dataset
from arlib.features import DEFAULT_CACHE_DIR, FeatureCache
from arlib.sampling import cache_grid, test_positions
from arlib.train import TrainConfig
from arlib.transforms import training_views
from arlib.video import probe, read_frames
from studio import clips, playback, resources
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
        sample = sampled_frames(chosen, Path(chosen).stat().st_mtime_ns, int(count), 48)
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
            st.image(list(sample["frames"]), caption=[f"{t:.2f} s" for t in sample["times"]], width=104)

with guard("the feature cache"):
    st.subheader("Feature cache")
    st.caption("The frozen backbone encodes every cached frame once; every epoch and every later run with the "
               "same backbone reuses the features. Training fills the cache by itself: building it here only "
               "moves the wait to now.")
    usable = [name for name, reason in availability().items() if reason is None]
    f1, f2, f3 = st.columns([2, 2, 3])
    backbone = f1.selectbox("Backbone", usable, key="cache_backbone")
    cache_frames = f2.selectbox("Frames cached per clip", [48, 24], key="cache_frames",
                                format_func=lambda n: f"{n}" + (" (default)" if n == 48 else " (demo preset)"))
    f3.caption(f"Cache folder: `{DEFAULT_CACHE_DIR}`")
    busy = jobs.active_job(places.runs_dir())
    if busy is not None:
        st.info(f"Run '{busy.name}' is training now; building the cache at the same time slows both down.")
    if st.button("Build the feature cache", icon=":material/memory:", key="build_cache"):
        ds = load_dataset(data=path, split=split)
        cache = FeatureCache(backbone, cache_frames=cache_frames)
        bar = st.progress(0.0, text="Starting…")
        total = len(ds.train) + len(ds.test)

        def report(offset):
            def on_progress(done, _n, clip):
                bar.progress((offset + done) / total, text=f"{offset + done}/{total} clips · {Path(clip).name}")
            return on_progress

        _, failed = cache.ensure([c.path for c in ds.train], training_views(["center"], True), progress=False,
                                 on_progress=report(0))
        _, failed_test = cache.ensure([c.path for c in ds.test], ["center"], progress=False,
                                      on_progress=report(len(ds.train)))
        failed.update(failed_test)
        bar.progress(1.0, text=f"Done: {total - len(failed)} of {total} clips cached; "
                               f"{cache.backbone_frames} frames encoded now (the rest were cached already).")
        if failed:
            st.warning(f"{len(failed)} clips could not be cached; training skips them.")
            st.dataframe([{"clip": places.short_path(p), "reason": r} for p, r in failed.items()], hide_index=True)
