"""arlib (or python -m arlib) {train,evaluate,predict,live,cv,cache,extract-frames,demo-data,export,backbones,bench}"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import ArlibError

from .places import DEMO_CHECKPOINT, UCF_CHECKPOINT  # noqa: F401  (kept importable from here)


def _set_threads() -> None:
    import torch

    # Deliberate: one intra-op thread per core; inter-op parallelism only adds contention on 2 cores. An explicit
    # OMP_NUM_THREADS (jobs sharing the cores on purpose) is the user's choice, which torch already follows.
    if not os.environ.get("OMP_NUM_THREADS", "").strip():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed by an earlier main() in this process (tests, the app)


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", help="dataset root: <Class>/<clip>.<ext> videos, or <Class>/<clip>/<N>.jpg frame folders")
    g.add_argument("--splits", help="folder with classInd.txt, trainlist0N.txt, testlist0N.txt (default: found next to --data)")
    g.add_argument("--split", type=int, default=1, choices=[1, 2, 3], help="official split number (default 1)")
    g.add_argument("--classes", help="'9' = the first 9 classes of classInd (the thesis), or names 'A,B,C' (default: all)")
    g.add_argument("--features", help="folder of precomputed <clip_stem>.npy (T x D) features replacing video + backbone")
    g.add_argument("--val-fraction", type=float, default=None,
                   help="validation fraction carved from the TRAINING clips by whole groups, seeded (default 0.2); "
                        "it chooses `best` and fits the temperature; the test list never chooses anything")
    g.add_argument("--cache-dir", help="feature cache folder (default ~/.cache/arlib/features or $ARLIB_CACHE_DIR)")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", metavar="{auto,cpu,cuda,mps}",
                   help="where models run: auto (default, $ARLIB_DEVICE) = CUDA, then Apple MPS, then the CPU with "
                        "the backbone in ONNX Runtime; cuda:N picks a GPU")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from .model import MODEL_KINDS
    from .config import PRESETS, SELECT_BY

    g = p.add_argument_group("model and training (unset values come from --preset, else the defaults)")
    g.add_argument("--backbone", help="frozen per-frame encoder (default efficientnet_lite0; see `python -m arlib backbones`)")
    g.add_argument("--model", choices=MODEL_KINDS, help="attention (thesis), lstm (no attention) or frame_avg (baseline)")
    g.add_argument("--epochs", type=int, help="default 15")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--seq-len", type=int, help="frames per sequence (default 20; thesis preset 40)")
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing in [0, 1) (default 0)")
    g.add_argument("--select-by", choices=SELECT_BY, help="validation number that picks `best` (default val_loss)")
    g.add_argument("--patience", type=int, help="stop after this many epochs without a better validation number (default 0: off)")
    g.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=None,
                   help="fit a softmax temperature on validation after training (default on)")
    g.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="after validation chose the epoch, retrain from the same initial weights on train + "
                        "validation for that many epochs; the refit is `best`, the temperature stays validation's")
    g.add_argument("--temperature-folds", type=int, metavar="K",
                   help="with --refit: fit the temperature on out-of-fold predictions of K group folds of all "
                        "training clips instead of on validation (K more trainings; default 0 = validation)")
    g.add_argument("--dropout", type=float)
    g.add_argument("--latent-dim", type=int)
    g.add_argument("--hidden-dim", type=int)
    g.add_argument("--head-dim", type=int)
    g.add_argument("--num-layers", type=int)
    g.add_argument("--crops", help="training crops, comma separated from center,tl,tr,bl,br (default center; each is a cached view)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="horizontal flip of whole training sequences with p = 0.5 (its features are cached as a view)")
    g.add_argument("--motion", action=argparse.BooleanOptionalAction, default=None,
                   help="the motion stream: the backbone on RGB differences of nearby frames, fused late with "
                        "appearance (default on; --no-motion trains appearance alone; README, Accuracy on real clips)")
    g.add_argument("--cache-frames", type=int, help="frames per clip whose features are cached (default 40: "
                                                      "room for temporal strides of 1-2 at 20 frames)")
    g.add_argument("--preset", choices=sorted(PRESETS), help="thesis = the thesis recipe exactly; demo = tiny model")
    g.add_argument("--seed", type=int)
    g.add_argument("--checkpoint-every", type=int, help="also keep checkpoints/epoch_NNN every N epochs (default 5)")
    g.add_argument("--keep", type=int, help="epoch_NNN checkpoints kept, the newest (default 3; 0 keeps all; "
                                            "best and last are always kept)")
    b = p.add_argument_group("background footage (teaches the attention to find the action)")
    b.add_argument("--background", metavar="SOURCE",
                   help="a folder of clips showing none of the target actions (searched recursively, symlinks "
                        "followed), or 'unselected' = the clips on disk of the dataset's classes not selected; "
                        "training splices each clip between background frames, keeping its label")
    b.add_argument("--background-clips", type=int, help="use at most this many background clips (seeded sample; default 100)")
    b.add_argument("--splice-share", help="range of the action's share of a spliced sequence, 'MIN,MAX' (default 0.2,0.8)")
    b.add_argument("--attention-loss", type=float,
                   help="weight of -log(attention mass on the spliced action) added to the loss (default 3)")
    b.add_argument("--attention-input", choices=["state", "frame+state"],
                   help="what attention scores each step from: the BiLSTM state, or the frame feature with it "
                        "(default: frame+state with --background, else state)")


def config_from_args(a: argparse.Namespace):
    from .config import make_config

    return make_config(
        a.preset, data=a.data, splits=a.splits, split=a.split, classes=a.classes, features=a.features,
        val_fraction=a.val_fraction, cache_dir=a.cache_dir, backbone=a.backbone, model=a.model, epochs=a.epochs,
        batch_size=a.batch_size, seq_len=a.seq_len, lr=a.lr, weight_decay=a.weight_decay, dropout=a.dropout,
        latent_dim=a.latent_dim, hidden_dim=a.hidden_dim, head_dim=a.head_dim, num_layers=a.num_layers,
        crops=a.crops.split(",") if a.crops else None, flip=a.flip, cache_frames=a.cache_frames, seed=a.seed,
        checkpoint_every=a.checkpoint_every, keep=a.keep, label_smoothing=a.label_smoothing, select_by=a.select_by,
        patience=a.patience, calibrate=a.calibrate, motion=a.motion, refit=a.refit,
        temperature_folds=a.temperature_folds,
        background=a.background, background_clips=a.background_clips,
        splice_share=_pair(a.splice_share, "--splice-share"), attention_loss=a.attention_loss,
        attention_input=a.attention_input,
    )


def _pair(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ArlibError(f"{flag} takes two numbers 'MIN,MAX' such as 0.2,0.8 (got '{text}').") from None
    return [low, high]


# ---------------------------------------------------------------------------------------------


def cmd_train(a) -> int:
    from .distributed import launched_rank
    from .runs import validate_run_path
    from .train import train

    if launched_rank().world_size > 1:  # N ranks would each train the same run into one folder
        raise ArlibError("arlib train runs as one process; use torchrun for `arlib cache` (the heavy part), "
                         "then train once on the filled cache.")
    if a.resume:
        cfg = None
    elif a.config:  # written once by the library (arlib.jobs.launch): the whole TrainConfig as JSON
        from .fileio import read_json
        from .train import TrainConfig

        saved = read_json(a.config, None)
        if not isinstance(saved, dict):
            raise ArlibError(f"Training configuration {a.config} is missing or not a JSON object.")
        cfg = TrainConfig.from_dict(saved)
    else:
        cfg = config_from_args(a)
    out = Path(a.out or f"runs/{(cfg.model if cfg else 'run')}-{time.strftime('%Y%m%d-%H%M%S')}")
    validate_run_path(a.out or out)
    a.log_path = out / "train.log"  # named by main() if something unexpected happens
    result = train(cfg, out, resume=a.resume, epochs=a.epochs if a.resume else None, progress=not a.quiet)
    print(json.dumps({"run": str(out), **result}, default=str))
    return 0


def cmd_evaluate(a) -> int:
    from .evaluate import evaluate_checkpoint
    from .metrics import format_accuracy

    report = evaluate_checkpoint(a.checkpoint, data=a.data, splits=a.splits, split=a.split, classes=a.classes,
                                 features=a.features, subset=a.subset, cache_dir=a.cache_dir,
                                 val_fraction=a.val_fraction, progress=not a.json)
    if a.json:
        print(json.dumps(report))
    else:
        print(f"{report['subset']}: top-1 {format_accuracy(report['top1'], report['num_clips'])}, 95 % Wilson interval "
              f"{report['top1_interval']['low']:.2f}-{report['top1_interval']['high']:.2f}  ({report['skipped']} skipped)  "
              f"top-5 {report['top5']:.4f}  mean-class {report['mean_class_accuracy']:.4f}  "
              f"ECE {report['ece']:.3f} (temperature {report['temperature']:.3g})")
        for row in report["misclassified"]:
            print(f"  wrong: {row['clip']}  true {row['label']}  predicted {row['predicted']} ({row['probability']:.2f})")
    return 0


def cmd_predict(a) -> int:
    from . import viz
    from .places import default_checkpoint, short_path
    from .predict import Predictor

    # Without --checkpoint: the same default the studio gives the first clip (a real clip gets a real model).
    checkpoint = Path(a.checkpoint) if a.checkpoint else default_checkpoint(Path(a.clips[0]))
    predictor = Predictor(checkpoint)
    used = short_path(checkpoint)
    if not a.json:
        print(f"checkpoint: {used}{'' if a.checkpoint else ' (default; choose with --checkpoint)'}", flush=True)
    want_heat = a.heatmaps or a.heatmap_class is not None or a.heatmap_attention
    if a.heatmap_class is not None:
        predictor.class_index(a.heatmap_class)  # an unknown class is one sentence before any clip is read
    failures = 0
    gif_dir = Path(a.gif) if a.gif and (len(a.clips) > 1 or not a.gif.endswith(".gif")) else None
    for clip in a.clips:
        result = predictor.predict_or_error(clip, top_k=a.top_k, windows=a.windows, heatmaps=want_heat,
                                            heatmap_class=a.heatmap_class, heatmap_attention=a.heatmap_attention)
        if isinstance(result, dict):
            failures += 1
            print(json.dumps(dict(result, checkpoint=used)) if a.json else f"{clip}: error: {result['error']}",
                  flush=True)
            continue
        gif_note = ""
        if a.gif:
            target = gif_dir / f"{Path(clip).stem}.gif" if gif_dir else Path(a.gif)
            target.parent.mkdir(parents=True, exist_ok=True)
            best = result.top_k[0]
            target.write_bytes(viz.annotated_gif(result.frames, best["label"], best["probability"], result.attention,
                                                 heat=result.heat))
            gif_note = f"  GIF: {target}"
        if a.json:
            row = dict(result.to_json(), checkpoint=used)
            if a.gif:
                row["gif"] = str(target)
            print(json.dumps(row), flush=True)
        else:
            best = result.top_k[0]
            others = ", ".join(f"{r['label']} {r['probability']:.1%}" for r in result.top_k[1:])
            print(f"{clip}: {best['label']} {best['probability']:.1%}  (then {others})  "
                  f"[{sum(result.seconds.values()):.2f} s]{gif_note}\n  {result.attention_summary}", flush=True)
            for warning in result.warnings:
                print(f"  warning: {warning}", flush=True)
    return 1 if failures else 0


def cmd_demo_data(a) -> int:
    from .demo import make_demo_dataset

    out = make_demo_dataset(a.out, clips_per_class=a.clips_per_class, seed=a.seed)
    print(f"demo dataset ready: {out}  (train with: python -m arlib train --data {Path(out) / 'UCF-101'})")
    return 0


def cmd_extract_frames(a) -> int:
    from .video import extract_frames_tree

    if not Path(a.data).is_dir():
        raise ArlibError(f"Dataset folder {a.data} does not exist; pass the root that holds <Class>/<clip> videos.")
    result = extract_frames_tree(a.data, a.out, max_side=a.max_side, progress=True)
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


def cmd_cache(a) -> int:
    """Fill the feature cache with exactly what `train` with the same data, split, preset and flags reads."""
    import torch

    from . import distributed
    from .devices import current_device, set_device
    from .features import FeatureCache
    from .fileio import atomic_write_json
    from .examples import cached_views
    from .motion import MOTION_VIEW
    from .train import feature_phase_status, make_config, training_split

    rank = distributed.launched_rank()  # under torchrun: this process's share of the clips
    device = current_device()
    if rank.world_size > 1 and device.type == "cuda":  # one GPU per local rank
        device = set_device(f"cuda:{rank.local_rank % max(1, torch.cuda.device_count())}")
    distributed.init(rank)
    cfg = make_config(a.preset, data=a.data, splits=a.splits, split=a.split, classes=a.classes,
                      val_fraction=a.val_fraction, cache_dir=a.cache_dir, backbone=a.backbone,
                      cache_frames=a.cache_frames, crops=a.crops.split(",") if a.crops else None, flip=a.flip,
                      motion=a.motion)
    status_file = a.status if rank.is_main else None
    started, last_write = time.time(), [0.0]

    def write_status(**fields) -> None:
        if status_file:
            atomic_write_json(status_file, {"pid": os.getpid(), "updated_at": time.time(), **fields})

    try:
        ds, train_all, val_all = training_split(cfg)
        val_all = val_all + list(ds.test)  # the test list is evaluated every epoch too (centre view)
        cache = FeatureCache(cfg.backbone, cfg.cache_dir, cfg.cache_frames)
        views = cached_views(cfg)
        val_views = [v for v in ["center", *views] if v == "center" or v == MOTION_VIEW]
        train_clips, val_clips = rank.share([c.path for c in train_all]), rank.share([c.path for c in val_all])
        total = len(train_clips) + len(val_clips)
        train_frames = cfg.cache_frames * len(views) * len(train_clips)
        frames_total = train_frames + cfg.cache_frames * len(val_views) * len(val_clips)

        def progress(offset: int, base: int, per_clip: int):
            def report(done, _n, _clip):
                now = time.time()
                if now - last_write[0] >= 1.0 or offset + done == total:
                    last_write[0] = now
                    write_status(**feature_phase_status(offset + done, total, base + per_clip * done, frames_total,
                                                        now - started))
            return report

        write_status(**feature_phase_status(0, total, 0, frames_total, 0.0))
        show_bars = rank.is_main and not status_file
        _, failed = cache.ensure(train_clips, views, progress=show_bars,
                                 on_progress=progress(0, 0, cfg.cache_frames * len(views)))
        _, failed_val = cache.ensure(val_clips, val_views, progress=show_bars,
                                     on_progress=progress(len(train_clips), train_frames, cfg.cache_frames * len(val_views)))
        failed.update(failed_val)
        mine = {"rank": rank.rank, "clips": total, "failed": failed, "frames_encoded": cache.backbone_frames,
                "device": str(device)}
        everyone = distributed.gather(rank, mine)
    except BaseException as exc:
        write_status(state="failed", phase="failed", error=str(exc) or type(exc).__name__)
        raise
    finally:
        distributed.finish(rank)
    if rank.is_main:
        all_failed = {clip: why for r in everyone for clip, why in r["failed"].items()}
        summary = {"cache": str(cache.dir), "clips": len(train_all) + len(val_all), "failed": all_failed,
                   "frames_encoded": sum(r["frames_encoded"] for r in everyone), "views": views,
                   "cache_frames": cfg.cache_frames}
        if rank.world_size > 1:
            summary["ranks"] = [{k: r[k] for k in ("rank", "clips", "frames_encoded", "device")} for r in everyone]
        write_status(state="finished", phase="finished", step=total, total_steps=total, frames_done=frames_total,
                     frames_total=frames_total, eta_s=0, seconds=round(time.time() - started, 1), **summary)
        print(json.dumps(summary))
    return 0


def cmd_backbones(a) -> int:
    from .backbones import REGISTRY, availability

    for name, reason in availability().items():
        spec = REGISTRY[name]
        state = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:20s} {spec.feature_dim:5d}-d  {spec.preprocessing.input_size}px  {state}")
    return 0


def cmd_cv(a) -> int:
    from .crossval import cross_validate_repeated

    result = cross_validate_repeated(config_from_args(a), folds=a.folds, repeats=a.repeats, progress=not a.json)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))
    return 0


def cmd_export(a) -> int:
    from .checkpoints import export_checkpoint

    out = export_checkpoint(a.checkpoint, a.out, half=a.half)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_live(a) -> int:
    from .live import run_live, summarize
    from .places import default_checkpoint

    updates = []
    for update in run_live(a.source, a.checkpoint or default_checkpoint(uploaded=True), realtime=not a.fast, window_s=a.window,
                           update_every_s=a.every, smoothing=a.smoothing, top_k=a.top_k, max_seconds=a.seconds,
                           heat_map=a.heatmap):
        if a.summary:
            updates.append(update)
        else:
            print(json.dumps(update.to_json()), flush=True)
    if a.summary:
        print(json.dumps(summarize(updates)))
    return 0


def cmd_bench(a) -> int:
    from .bench import run_bench

    run_bench(clips=a.clips, as_json=a.json, workdir=a.workdir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model into a run directory")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--out", help="run directory (default runs/<model>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last")
    p.add_argument("--config", help="a TrainConfig JSON file (what the studio writes); other model/data flags are ignored")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True)
    add_data_args(p)
    p.add_argument("--subset", choices=["test", "val", "train"], default="test",
                   help="the checkpoint's own split: test list (never seen), val (chose `best`), train")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict the action in clips or frame folders")
    p.add_argument("clips", nargs="+")
    p.add_argument("--checkpoint", help="default: as in the studio, the best of the newest finished run trained on the same "
                                        "kind of data as the first clip (demo or real), else the shipped checkpoint of "
                                        "that kind; the one used is always printed")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--windows", type=int, default=1, help="average N consecutive temporal windows")
    p.add_argument("--gif", help="write the annotated GIF here (a folder when several clips are given)")
    p.add_argument("--json", action="store_true", help="one JSON object per clip per line")
    p.add_argument("--heatmaps", action="store_true",
                   help="Grad-CAM heat map per sampled frame: 'heatmaps' in --json (T grids of rows over the whole "
                        "frame, values 0-1, max 1 in the clip), overlaid on the --gif frames")
    p.add_argument("--heatmap-class", help="explain this class (name or index) instead of the top-1 (implies --heatmaps)")
    p.add_argument("--heatmap-attention", action="store_true",
                   help="weight each frame's heat map by its temporal attention (implies --heatmaps)")
    add_device_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("live", help="recognise actions live from a camera, a stream URL or a file played as if live")
    p.add_argument("source", help="camera index (0 = /dev/video0), stream URL (rtsp://, http://...) or video file")
    p.add_argument("--checkpoint", help="default: as for predict")
    p.add_argument("--window", type=float, default=4.0, help="seconds of video each update classifies (default 4)")
    p.add_argument("--every", type=float, default=0.5, help="seconds of video between updates (default 0.5)")
    p.add_argument("--smoothing", type=int, default=3, help="updates averaged for the steady label (default 3)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--fast", action="store_true",
                   help="play a file as fast as it can be processed, every frame (default: at its own rate, dropping frames to keep up)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds of video")
    p.add_argument("--heatmap", action="store_true",
                   help="add a Grad-CAM heat map of the label on the newest frame to every update (slower)")
    p.add_argument("--summary", action="store_true",
                   help="print only one JSON summary at the end: time to first label, processed fps, delay, drops")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("cv", help="group-aware k-fold cross-validation on the training clips")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=1, help="repeat with seeds seed..seed+N-1 and average")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("cache", help="compute the feature cache for a dataset ahead of training")
    add_data_args(p)
    p.add_argument("--backbone")
    p.add_argument("--cache-frames", type=int)
    p.add_argument("--crops")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--motion", action=argparse.BooleanOptionalAction, default=None,
                   help="also cache the motion stream, as default training reads it (default on; --no-motion: appearance only)")
    add_device_arg(p)
    from .train import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS), help="cache what training with this preset reads")
    p.add_argument("--status", help="write progress (frames done, rate, time left) to this JSON file")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("extract-frames", help="decode clips to <out>/<Class>/<clip>/<00001>.jpg folders")
    p.add_argument("--data", required=True, help="root with <Class>/<clip>.<ext>")
    p.add_argument("--out", required=True)
    p.add_argument("--max-side", type=int, help="downscale so the longer side is at most this")
    p.set_defaults(func=cmd_extract_frames)

    p = sub.add_parser("demo-data", help="write the synthetic time-reversed-twins dataset")
    p.add_argument("--out", required=True)
    p.add_argument("--clips-per-class", type=int, default=12,
                   help="at least 2; from 5 up, groups of 2 clips with the last 2 groups as the test list, "
                        "below that one clip a group and one test group")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("export", help="a slim copy of a checkpoint for prediction (no optimizer state)")
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--half", action="store_true", help="store float weights as float16 (half the size)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("backbones", help="list backbones and whether they are available here")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("bench", help="measure the cached pipeline against the thesis loop")
    p.add_argument("--clips", type=int, default=24, help="synthetic UCF-sized clips to use")
    p.add_argument("--workdir", help="where to write the clips and cache (default: a temp folder)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    add_device_arg(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _set_threads()
    debug = os.environ.get("ARLIB_DEBUG", "") not in ("", "0")
    try:
        from .devices import set_device

        set_device(getattr(args, "device", None))  # a bad --device fails here, before any work
        return args.func(args)
    except ArlibError as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the reader left: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except Exception as exc:  # a bug or an environment problem: still one line, never a traceback
        if debug:
            raise
        log = getattr(args, "log_path", None)
        where = f"see {log} or rerun" if log and Path(log).exists() else "rerun"
        print(f"error: unexpected {type(exc).__name__}: {_one_line(exc)[:300]}; "
              f"{where} with ARLIB_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return str(exc).replace("\r", " ").replace("\n", " ").strip() or "no details"
