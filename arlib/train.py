"""The trainer: cached features -> sequence model, with evaluation, checkpoints, resume and progress.

Epochs read only cached features; temporal sampling and the choice of view (crop/flip) still happen
per epoch, on them. Everything random in an epoch is drawn up front from a generator seeded by
(seed, epoch), so a run resumed from any checkpoint (even one saved mid-epoch by a graceful stop)
continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import datasets
from .backbones import DEFAULT_BACKBONE, get_spec
from .checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from .devices import cuda_rng_state, current_device, restore_cuda_rng_state
from .datasets import Clip, DatasetSplit
from .errors import ArlibError
from .features import ClipFeatures, FeatureCache, load_precomputed
from .metrics import classification_report
from .model import ModelConfig, build_model
from .runs import JobLock, RunDir, process_identity
from .sampling import DEFAULT_CACHE_FRAMES, DEFAULT_SEQ_LEN, test_positions, train_positions
from .transforms import CROPS, TEST_VIEW, training_views


@dataclass
class TrainConfig:
    """Defaults were chosen by 4-fold group-aware cross-validation on the real 9-class UCF-101 training
    clips (README, "Results"): thesis-size layers (512/1024/1024) and horizontal flips did not beat this
    smaller model there, and it trains ~10x faster; `--preset thesis` restores the thesis recipe."""

    # data
    data: str | None = None
    splits: str | None = None
    split: int = 1
    classes: str | None = None
    features: str | None = None
    val_fraction: float = 0.2
    # features
    backbone: str = DEFAULT_BACKBONE
    cache_dir: str | None = None
    cache_frames: int = DEFAULT_CACHE_FRAMES
    crops: list[str] = field(default_factory=lambda: ["center"])
    flip: bool = False
    # model
    model: str = "attention"
    latent_dim: int = 256
    hidden_dim: int = 256
    head_dim: int = 256
    num_layers: int = 1
    dropout: float = 0.5
    # optimisation
    epochs: int = 15
    batch_size: int = 16
    seq_len: int = DEFAULT_SEQ_LEN
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 5
    keep: int = 3  # epoch_NNN checkpoints kept (the newest); best and last are always kept; 0 = keep all
    preset: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_config(self, feature_dim: int, num_classes: int) -> ModelConfig:
        return ModelConfig(kind=self.model, feature_dim=feature_dim, num_classes=num_classes,
                           latent_dim=self.latent_dim, hidden_dim=self.hidden_dim, head_dim=self.head_dim,
                           num_layers=self.num_layers, dropout=self.dropout)


# Presets fill in values the user did not set explicitly.
PRESETS: dict[str, dict] = {
    # The thesis recipe exactly: Adam 1e-5, batch 16, 10 epochs, 40 frames, random crops + flips,
    # thesis layer sizes, no dropout, a checkpoint every 5 epochs.
    "thesis": dict(lr=1e-5, batch_size=16, epochs=10, seq_len=40, latent_dim=512, hidden_dim=1024,
                   head_dim=1024, num_layers=1, dropout=0.0, weight_decay=0.0, crops=list(CROPS), flip=True,
                   checkpoint_every=5),
    # Small enough for a checkpoint under 5 MB; on 2 cores the demo data trains in about 2 minutes from a cold
    # feature cache (mostly encoding frames) and in well under a minute once the features are cached.
    # lr and epochs picked on the demo's own training/test split (seeds 0-3: 97-100 % top-1).
    "demo": dict(latent_dim=128, hidden_dim=128, head_dim=128, epochs=40, lr=3e-3, dropout=0.2, seq_len=16,
                 cache_frames=24, checkpoint_every=10),
}


def make_config(preset: str | None = None, **explicit) -> TrainConfig:
    """Defaults <- preset <- values given explicitly (None means 'not given')."""
    values = {}
    if preset:
        if preset not in PRESETS:
            raise ArlibError(f"Unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}.")
        values.update(PRESETS[preset])
    values.update({k: v for k, v in explicit.items() if v is not None})
    return TrainConfig(preset=preset, **values)


# ---------------------------------------------------------------------------------------------
# Features in memory


def run_views(cfg: TrainConfig) -> list[str]:
    """The cached views training draws from; precomputed features have only the one they came with."""
    return [TEST_VIEW] if cfg.features else training_views(cfg.crops, cfg.flip)


@dataclass
class Example:
    clip: Clip
    views: dict[str, ClipFeatures]

    @property
    def length(self) -> int:
        return len(next(iter(self.views.values())).features)


def load_examples(cfg: TrainConfig, clips: list[Clip], views: list[str], progress: bool,
                  on_progress: Callable[[int, int, str], None] | None = None,
                  feature_dim: int | None = None) -> tuple[list[Example], dict[str, str]]:
    """Cached (or precomputed) features for every clip; unreadable clips are returned with a reason.

    Precomputed files whose width is not feature_dim (default: the most common width) are skipped too."""
    examples, failed = [], {}
    if cfg.features or any(c.kind == "features" for c in clips):
        for i, clip in enumerate(clips):
            try:
                examples.append(Example(clip, {TEST_VIEW: load_precomputed(clip.path)}))
            except ArlibError as exc:
                failed[clip.path] = str(exc)
            if on_progress:
                on_progress(i + 1, len(clips), clip.path)
        dims = [ex.views[TEST_VIEW].features.shape[1] for ex in examples]
        if dims and (feature_dim or min(dims) != max(dims)):  # one odd file would crash every batch holding it
            common = feature_dim or max(set(dims), key=dims.count)
            for ex, d in zip(examples, dims):
                if d != common:
                    failed[ex.clip.path] = f"Feature file {Path(ex.clip.path).name} has {d}-d features, not {common}-d."
            examples = [ex for ex, d in zip(examples, dims) if d == common]
        return examples, failed
    cache = FeatureCache(cfg.backbone, cfg.cache_dir, cfg.cache_frames)
    done, failed = cache.ensure([c.path for c in clips], views, progress=progress, on_progress=on_progress)
    examples = [Example(c, done[c.path]) for c in clips if c.path in done]
    return examples, failed


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def batch_tensor(items: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(items).astype(np.float32))


@torch.inference_mode()
def predict_examples(model: nn.Module, examples: list[Example], seq_len: int, batch_size: int = 64):
    """Centre view, uniform positions: (probabilities [N, C], attention [N, T], positions [N, T])."""
    model.eval()
    probs, attn, positions = [], [], []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        pos = [test_positions(ex.length, seq_len) for ex in chunk]
        x = batch_tensor([ex.views[TEST_VIEW].features[p] for ex, p in zip(chunk, pos)])
        logits, weights = model(x.to(_device_of(model)))
        probs.append(torch.softmax(logits, dim=1).cpu().numpy())
        attn.append(weights.cpu().numpy())
        positions.extend(pos)
    if not probs:
        return np.zeros((0, 0)), np.zeros((0, seq_len)), []
    return np.concatenate(probs), np.concatenate(attn), positions


def evaluation_report(model, examples: list[Example], classes: list[str], seq_len: int) -> dict:
    """Clip-level metrics plus the misclassified clips with their attention."""
    if not examples:
        return {"num_clips": 0}
    probs, attn, positions = predict_examples(model, examples, seq_len)
    labels = np.array([ex.clip.label for ex in examples])
    report = classification_report(probs, labels, classes)
    report["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    wrong = []
    for i, ex in enumerate(examples):
        pred = int(probs[i].argmax())
        if pred != ex.clip.label:
            frames = ex.views[TEST_VIEW]
            wrong.append({
                "clip": ex.clip.path, "label": ex.clip.class_name, "predicted": classes[pred],
                "probability": float(probs[i, pred]), "attention": attn[i].round(5).tolist(),
                "frame_indices": frames.frame_indices[positions[i]].tolist(), "fps": frames.fps,
                "timestamps_s": [round(float(t), 3) for t in frames.frame_times()[positions[i]]],  # presentation times
            })
    report["misclassified"] = wrong
    return report


# ---------------------------------------------------------------------------------------------
# The training loop


@dataclass
class EpochPlan:
    """Every random choice of one epoch, drawn up front so a resumed epoch replays it exactly."""

    batches: list[list[tuple[int, str, np.ndarray]]]  # (example index, view, positions)


def plan_epoch(examples: list[Example], cfg: TrainConfig, views: list[str], epoch: int) -> EpochPlan:
    rng = np.random.default_rng([cfg.seed, epoch])
    order = rng.permutation(len(examples))
    items = [(int(i), str(views[rng.integers(len(views))]), train_positions(examples[i].length, cfg.seq_len, rng))
             for i in order]
    batches = [items[s : s + cfg.batch_size] for s in range(0, len(items), cfg.batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())  # BatchNorm cannot train on a batch of one clip
    return EpochPlan(batches)


class StopRequested:
    """SIGTERM/SIGINT (or a caller) asks the trainer to finish the step, save `last` and stop."""

    def __init__(self, extra: Callable[[], bool] | None = None):
        self.flag = threading.Event()
        self.extra = extra

    def __call__(self) -> bool:
        return self.flag.is_set() or bool(self.extra and self.extra())

    def install(self) -> dict:
        """Catch SIGTERM/SIGINT; returns the previous handlers for restore()."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, lambda *_: self.flag.set()) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def restore(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def training_split(cfg: TrainConfig, data: str | None = None) -> tuple[DatasetSplit, list[Clip], list[Clip]]:
    """(dataset, clips trained on, validation clips) of a configuration: the split's test clips validate,
    and without any on disk whole groups of the training clips are held out (seeded, so it is repeatable).
    `data` overrides cfg.data (a checkpoint's dataset found at another path)."""
    ds = datasets.load_dataset(data=data or cfg.data, splits=cfg.splits, split=cfg.split, classes=cfg.classes,
                               features=cfg.features, val_fraction=cfg.val_fraction, seed=cfg.seed)
    train_clips, val_clips = ds.train, ds.test
    if not val_clips and cfg.val_fraction > 0:  # a partial copy with no test clips: hold out whole groups
        train_clips, val_clips = datasets.group_split(ds.train, cfg.val_fraction, cfg.seed)
    return ds, train_clips, val_clips


def prune_epoch_checkpoints(run: RunDir, keep: int) -> list[Path]:
    """Delete all but the newest `keep` epoch_NNN checkpoints (best and last are never touched)."""
    if not keep or keep < 0:
        return []
    epochs = sorted(p for p in run.checkpoints() if p.stem.startswith("epoch_"))
    old = epochs[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def feature_phase_status(clips_done: int, clips_total: int, frames_done: int, frames_total: int,
                         seconds: float) -> dict:
    """The status fields of the feature-cache phase: clips and frames done of total, rate and time left
    (the rate counts clips found in the cache too, so it settles after the first uncached clips)."""
    rate = frames_done / seconds if seconds > 0 and frames_done else None
    eta = round((frames_total - frames_done) / rate, 1) if rate else None
    message = f"encoding frames: {frames_done:,}/{frames_total:,} (clip {clips_done}/{clips_total})"
    if rate:
        message += f" · {rate:.0f} frames/s"
    return {"state": "features", "phase": "features", "step": clips_done, "total_steps": clips_total,
            "frames_done": frames_done, "frames_total": frames_total, "frames_per_s": rate and round(rate, 1),
            "eta_s": eta, "message": message}


class Trainer:
    def __init__(self, cfg: TrainConfig, run: RunDir, progress: bool = True,
                 on_progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 prepared: tuple | None = None, save_checkpoints: bool = True):
        self.cfg, self.run, self.progress, self.on_progress = cfg, run, progress, on_progress
        self.prepared = prepared  # (dataset, train examples, val examples, failures) made by the caller
        self.save_checkpoints = save_checkpoints  # cross-validation only needs the metrics
        self.stop = StopRequested(should_stop)
        self._last_status = 0.0
        self._started = time.time()
        self.best_loss = math.inf  # validation loss of the best epoch: breaks ties in top-1

    # -- status -----------------------------------------------------------------------------
    def status(self, force: bool = False, **fields) -> None:
        now = time.time()
        fields.setdefault("elapsed_s", round(now - self._started, 1))
        if self.on_progress:
            self.on_progress(dict(fields))
        if force or now - self._last_status >= 1.0:  # the app polls; once a second is plenty
            self.run.write_status(**fields)
            if not force:  # a forced phase write must not hold back the live numbers of epochs under a second
                self._last_status = now

    # -- data -------------------------------------------------------------------------------
    def load_data(self) -> tuple[DatasetSplit, list[Example], list[Example], dict[str, str]]:
        if self.prepared:
            return self.prepared
        cfg = self.cfg
        ds, train_clips, val_clips = training_split(cfg)
        if not ds.test and val_clips:
            self.run.log(f"No test clips on disk for this split; holding out {len(val_clips)} training clips "
                         f"(whole groups, val_fraction={cfg.val_fraction}) for validation.")
        self.run.log(ds.description)
        views = run_views(cfg)

        total = len(train_clips) + len(val_clips)
        train_frames = cfg.cache_frames * len(views) * len(train_clips)  # each training view is encoded
        frames_total = train_frames + cfg.cache_frames * len(val_clips)
        started = time.time()

        def feature_progress(offset):
            base, per_clip = (0, cfg.cache_frames * len(views)) if offset == 0 else (train_frames, cfg.cache_frames)

            def report(done, _total, clip):
                self.status(**feature_phase_status(offset + done, total, base + per_clip * done, frames_total,
                                                   time.time() - started))
            return report

        train, failed = load_examples(cfg, train_clips, views, self.progress, feature_progress(0))
        dim = train[0].views[next(iter(train[0].views))].features.shape[1] if train else None
        val, failed_val = load_examples(cfg, val_clips, [TEST_VIEW], self.progress, feature_progress(len(train_clips)),
                                        feature_dim=dim)
        failed.update(failed_val)
        for path, reason in failed.items():
            self.run.log(f"skipped {path}: {reason}")
        if not train:
            raise ArlibError(f"None of the {len(train_clips)} training clips could be read; see {self.run.log_path}.")
        return ds, train, val, failed

    # -- main -------------------------------------------------------------------------------
    def fit(self, resume: bool = False, take_lock: bool = True) -> dict:
        cfg, run = self.cfg, self.run
        lock = JobLock(run.path.parent)
        if take_lock:
            lock.acquire(run.name)
        previous_handlers = self.stop.install()
        try:
            run.remove_stale_temp_files()
            run.write_status(state="starting", phase="starting", error=None, **process_identity(),
                             epoch=0, epochs=cfg.epochs, started_at=time.time())
            run.log(f"{'resuming' if resume else 'starting'} run {run.name} (pid {process_identity()['pid']})")
            result = self._fit(resume)
            return result
        except BaseException as exc:
            message = str(exc) if isinstance(exc, ArlibError) else f"{type(exc).__name__}: {exc}"
            run.log("failed: " + message + "\n" + traceback.format_exc())
            run.write_status(state="failed", error=message)
            raise
        finally:
            self.stop.restore(previous_handlers)
            if take_lock:
                lock.release()

    def _fit(self, resume: bool) -> dict:
        cfg, run = self.cfg, self.run
        torch.manual_seed(cfg.seed)
        ds, train, val, failed = self.load_data()
        classes = ds.classes
        feature_dim = int(train[0].views[next(iter(train[0].views))].features.shape[1])
        model_cfg = cfg.model_config(feature_dim, len(classes))
        device = current_device()  # --device / $ARLIB_DEVICE: the sequence model trains there
        model = build_model(model_cfg).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        views = run_views(cfg)

        start_epoch, start_step, best_top1, carry = 1, 0, -math.inf, None
        if resume:
            start_epoch, start_step, best_top1, carry = self._restore(model, optimizer, classes, feature_dim)
        run.truncate_metrics(start_epoch - 1)

        meta_base = {
            "model": model_cfg.to_dict(),
            "backbone": None if cfg.features else cfg.backbone,
            "preprocessing": None if cfg.features else get_spec(cfg.backbone).preprocessing.to_dict(),
            "features_dir": cfg.features,
            "classes": classes,
            "seq_len": cfg.seq_len,
            "cache_frames": cfg.cache_frames,
            "train_config": cfg.to_dict(),
            "dataset": ds.summary() | {"train_used": len(train), "val_used": len(val)},
            "run": run.name,
        }
        skipped = [{"clip": p, "reason": r} for p, r in failed.items()]
        steps_per_epoch = len(plan_epoch(train, cfg, views, 1).batches)
        total_steps = steps_per_epoch * cfg.epochs
        t_train = time.time()
        steps_done_here = 0
        criterion = nn.CrossEntropyLoss()
        last_row = None

        for epoch in range(start_epoch, cfg.epochs + 1):
            plan = plan_epoch(train, cfg, views, epoch)
            if carry is None:
                torch.manual_seed(cfg.seed * 100003 + epoch)  # dropout noise is per epoch too
                carry = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            epoch_t0 = time.time() - carry["seconds"]
            bar = self._bar(epoch, len(plan.batches), start_step)
            model.train()
            for step in range(start_step, len(plan.batches)):
                batch = plan.batches[step]
                x = batch_tensor([train[i].views[v].features[pos] for i, v, pos in batch]).to(device)
                y = torch.tensor([train[i].clip.label for i, _, _ in batch]).to(device)
                logits, _ = model(x)
                loss = criterion(logits, y)  # logits, not probabilities: no double softmax
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                carry["loss_sum"] += loss.item() * len(batch)
                carry["correct"] += int((logits.argmax(1) == y).sum())
                carry["seen"] += len(batch)
                steps_done_here += 1
                global_step = (epoch - 1) * steps_per_epoch + step + 1
                rate = (time.time() - t_train) / steps_done_here
                if bar:
                    bar.update(1)
                    bar.set_postfix(loss=f"{carry['loss_sum'] / carry['seen']:.3f}")
                self.status(state="training", phase="training", epoch=epoch, epochs=cfg.epochs, step=step + 1,
                            steps_per_epoch=steps_per_epoch, global_step=global_step, total_steps=total_steps,
                            train_loss=carry["loss_sum"] / carry["seen"],
                            eta_s=round(rate * (total_steps - global_step) + 2.0 * (cfg.epochs - epoch + 1), 1),
                            message=f"epoch {epoch}/{cfg.epochs}, step {step + 1}/{steps_per_epoch}")
                if self.stop() and step + 1 < len(plan.batches):
                    carry["seconds"] = time.time() - epoch_t0
                    self._save(run.checkpoint("last"), model, optimizer, meta_base, epoch - 1, step + 1,
                               best_top1, carry, last_row)
                    return self._stopped(epoch - 1, step + 1, bar)
            if bar:
                bar.close()
            start_step = 0

            self.status(force=True, state="evaluating", phase="evaluating", epoch=epoch,
                        message=f"evaluating epoch {epoch} on {len(val)} clips")
            report = evaluation_report(model, val, classes, cfg.seq_len)
            row = {
                "epoch": epoch,
                "train_loss": carry["loss_sum"] / max(1, carry["seen"]),
                "train_top1": carry["correct"] / max(1, carry["seen"]),
                "val_loss": report.get("loss"),
                "val_top1": report.get("top1"),
                "val_top5": report.get("top5"),
                "val_mean_class_accuracy": report.get("mean_class_accuracy"),
                "per_class_recall": report.get("per_class_recall"),
                "confusion": report.get("confusion"),
                "classes": classes,
                "num_val_clips": len(val),
                "misclassified": report.get("misclassified", []),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.time() - epoch_t0, 3),
                "clips_skipped": len(skipped),
                "skipped": skipped,
            }
            run.append_metrics(row)
            last_row = {k: row[k] for k in ("epoch", "train_loss", "train_top1", "val_loss", "val_top1",
                                             "val_top5", "val_mean_class_accuracy")}
            run.log("epoch %d: train loss %.4f top1 %.3f | val loss %s top1 %s" % (
                epoch, row["train_loss"], row["train_top1"], _fmt(row["val_loss"]), _fmt(row["val_top1"])))
            carry = None
            # Ties in top-1 are common on small validation sets: the lower validation loss wins them, so
            # `best` is not merely the first (least trained) epoch to reach the maximum.
            improved = val and row["val_top1"] is not None and (
                row["val_top1"] > best_top1 or (row["val_top1"] == best_top1 and row["val_loss"] < self.best_loss))
            if improved:
                best_top1, self.best_loss = row["val_top1"], row["val_loss"]
            # `last` goes last: it commits the epoch. Killed before it, a resume redoes this epoch exactly and
            # rewrites its metrics row, `best` and `epoch_NNN`; nothing is skipped or duplicated.
            if improved or (not val and epoch == cfg.epochs):
                self._save(run.checkpoint("best"), model, optimizer, meta_base, epoch, 0, best_top1, None, last_row)
            if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
                self._save(run.checkpoint(f"epoch_{epoch:03d}"), model, optimizer, meta_base, epoch, 0, best_top1,
                           None, last_row)
                prune_epoch_checkpoints(run, cfg.keep)
            self._save(run.checkpoint("last"), model, optimizer, meta_base, epoch, 0, best_top1, None, last_row)
            self.status(force=True, state="training", epoch=epoch, last_metrics=last_row, best_val_top1=best_top1)
            if self.stop() and epoch < cfg.epochs:
                return self._stopped(epoch, 0, None)

        final = {"state": "finished", "epoch": cfg.epochs, "best_val_top1": None if best_top1 == -math.inf else best_top1,
                 "last_metrics": last_row}
        run.write_status(**final, phase="finished", message="finished", eta_s=0, step=steps_per_epoch,
                         global_step=total_steps, total_steps=total_steps, train_loss=last_row["train_loss"])
        run.log(f"finished: best val top-1 {_fmt(final['best_val_top1'])}")
        return final

    def _stopped(self, epoch: int, step: int, bar) -> dict:
        if bar:
            bar.close()
        self.run.write_status(state="stopped", phase="stopped", epoch=epoch, step=step,
                              message="stopped; resume to continue")
        self.run.log(f"stopped after epoch {epoch} step {step}; `last` saved")
        return {"state": "stopped", "epoch": epoch, "step": step}

    def _bar(self, epoch: int, steps: int, initial: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=steps, initial=initial, desc=f"epoch {epoch}/{self.cfg.epochs}", unit="step",
                    dynamic_ncols=True)

    def _save(self, path: Path, model, optimizer, meta_base: dict, epoch: int, step: int, best_top1: float,
              carry: dict | None, metrics: dict | None) -> None:
        meta = dict(meta_base, epoch=epoch, step_in_epoch=step, partial_epoch=carry,
                    best_val_top1=None if best_top1 == -math.inf else best_top1,
                    best_val_loss=None if self.best_loss == math.inf else self.best_loss, metrics=metrics,
                    saved_at=time.time())
        if not self.save_checkpoints:
            return
        resumable = path.stem == "last"  # only `last` needs optimizer + RNG state; it triples the size
        save_checkpoint(Checkpoint(meta, model.state_dict(), optimizer.state_dict() if resumable else None,
                                   torch.get_rng_state() if resumable else None,
                                   cuda_rng_state() if resumable else None), path)

    def _restore(self, model, optimizer, classes: list[str], feature_dim: int):
        path = self.run.checkpoint("last")
        if not path.exists():  # stopped or killed before its first epoch ended: start it again, same config
            self.run.log(f"no {path.name} to resume from; starting again at epoch 1")
            return 1, 0, -math.inf, None
        ckpt = load_checkpoint(path)
        if ckpt.classes != classes or ckpt.meta["model"]["feature_dim"] != feature_dim:
            raise ArlibError(f"Run {self.run.name} was trained on other classes or features than this dataset gives; "
                             "resume it with its original data.")
        model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state:
            optimizer.load_state_dict(ckpt.optimizer_state)
        epoch, step = int(ckpt.meta["epoch"]), int(ckpt.meta.get("step_in_epoch", 0))
        best = ckpt.meta.get("best_val_top1")
        self.best_loss = ckpt.meta.get("best_val_loss") or math.inf
        carry = ckpt.meta.get("partial_epoch") if step else None
        if carry is not None and ckpt.rng_state is not None:
            torch.set_rng_state(ckpt.rng_state)  # mid-epoch: continue the same dropout stream
            restore_cuda_rng_state(ckpt.cuda_rng_state)  # ... on the GPU too
        self.run.log(f"resumed from {path.name}: epoch {epoch}, step {step}")
        return epoch + 1, step, (-math.inf if best is None else best), carry


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def train(cfg: TrainConfig | None, out: str | Path, resume: bool = False, epochs: int | None = None,
          progress: bool = True, on_progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> dict:
    """Train into run directory `out`; with resume=True continue it from checkpoints/last.

    A resumed run keeps its saved configuration; `epochs` may extend it.
    """
    run = RunDir(out)
    lock = JobLock(run.path.parent)  # before anything is written: a refused job leaves no trace
    lock.acquire(run.name)
    try:
        if resume:
            if not run.exists():
                raise ArlibError(f"There is no run to resume at {run.path} (no config.json); start it without --resume.")
            cfg = TrainConfig.from_dict(run.read_config())
            if epochs and epochs != cfg.epochs:
                cfg.epochs = epochs
                run.write_config(cfg.to_dict())
        else:
            if cfg is None:
                raise ValueError("a new run needs a TrainConfig")
            if epochs:
                cfg.epochs = epochs
            if run.exists():
                raise ArlibError(f"Run folder {run.path} already holds a run; pass --resume to continue it or choose another --out.")
            # Only names are listed (no clip is opened): a dataset error leaves no run folder behind to block a retry.
            datasets.load_dataset(data=cfg.data, splits=cfg.splits, split=cfg.split, classes=cfg.classes,
                                  features=cfg.features, val_fraction=cfg.val_fraction, seed=cfg.seed)
            run.write_config(cfg.to_dict())
        return Trainer(cfg, run, progress, on_progress, should_stop).fit(resume=resume, take_lock=False)
    finally:
        lock.release()
