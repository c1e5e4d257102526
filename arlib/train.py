"""The training loop: cached features -> sequence model, with validation, checkpoints, resume, progress.

Epochs read only cached features; temporal sampling and the choice of view (crop/flip) still happen
per epoch, on them. Everything random in an epoch is drawn up front from a generator seeded by
(seed, epoch), so a run resumed from any checkpoint (even one saved mid-epoch by a graceful stop)
continues exactly as the uninterrupted run would have.

Honest selection: `best` is chosen on validation clips carved from the training clips (whole groups);
the split's test list is evaluated and logged every epoch but never chooses anything. After the last
epoch a softmax temperature is fitted on validation and stored with `best` (arlib.calibration).
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import get_spec
from .checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from .devices import cuda_rng_state, current_device, restore_cuda_rng_state
from .config import PRESETS, SELECT_BY, TrainConfig, make_config  # noqa: F401  (re-exported: arlib.train.make_config)
from .errors import ArlibError
from .calibration import fit_temperature, probabilities_from_logits
from .datasets import group_kfold
from .evaluate import evaluation_report, infer, report_from_probabilities
from .background import attention_span_loss, load_background, localisation_report, splice_seed, spliced_batch, spliced_set
from .examples import (
    Example,
    RunData,
    batch_tensors,
    load_examples,
    load_split,
    run_views,
)
from .metrics import format_accuracy
from .model import TwoStreamClassifier, build_model
from .runs import JobLock, RunDir, process_identity
from .sampling import real_steps, train_positions
from .transforms import TEST_VIEW

# ---------------------------------------------------------------------------------------------
# Data


def training_split(cfg: TrainConfig, data: str | None = None):
    """(dataset, clips trained on, validation clips) of a configuration: validation is whole groups carved
    from the training clips (seeded, so it is repeatable). `data` overrides cfg.data (the dataset found at
    another path)."""
    split = load_split(replace(cfg, data=data) if data else cfg)
    return split.dataset, split.train, split.val


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


def prepare_data(cfg: TrainConfig, progress: bool = False, on_status: Callable[[dict], None] | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> RunData:
    """The run's split (validation carved from training groups) and the cached features of every clip."""
    split = load_split(cfg)
    log(split.dataset.description)
    log(f"validation: {len(split.val)} of the training clips (whole groups, val_fraction={cfg.val_fraction}, "
        f"seed={cfg.seed}); test: {len(split.test)} clips, reported only")
    views = run_views(cfg)
    total = len(split.train) + len(split.val) + len(split.test)
    train_frames = cfg.cache_frames * len(views) * len(split.train)  # each training view is encoded
    frames_total = train_frames + cfg.cache_frames * (len(split.val) + len(split.test))
    started = time.time()

    def offset_progress(offset):
        if not on_status:
            return None
        base, per_clip = (0, cfg.cache_frames * len(views)) if offset == 0 else (
            train_frames + cfg.cache_frames * (offset - len(split.train)), cfg.cache_frames)
        return lambda done, _total, _clip: on_status(feature_phase_status(
            offset + done, total, base + per_clip * done, frames_total, time.time() - started))

    train, failed = load_examples(cfg, split.train, views, progress, offset_progress(0))
    dim = train[0].feature_dim if train else None
    # A refit trains on the validation clips too, so they need the training views as well.
    val_views = list(dict.fromkeys([TEST_VIEW, *views])) if cfg.refit else [TEST_VIEW]
    val, failed_val = load_examples(cfg, split.val, val_views, progress, offset_progress(len(split.train)),
                                    feature_dim=dim)
    test, failed_test = load_examples(cfg, split.test, [TEST_VIEW], progress,
                                      offset_progress(len(split.train) + len(split.val)), feature_dim=dim)
    failed.update(failed_val)
    failed.update(failed_test)
    for path, reason in failed.items():
        log(f"skipped {path}: {reason}")
    if not train:
        raise ArlibError(f"None of the {len(split.train)} training clips could be read; first problem: "
                         f"{next(iter(failed.values()), 'none listed')}")
    summary = split.dataset.summary() | {"train_used": len(train), "val_used": len(val), "test_used": len(test)}
    dataset_clips = [c.path for c in split.train + split.val + split.test]
    background = load_background(cfg, split.dataset.classes, dataset_clips, progress, log=log)
    return RunData(split.dataset.classes, train, val, test, failed, split.record(), summary, split.dataset.description,
                   background)


# ---------------------------------------------------------------------------------------------
# One epoch's randomness


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
    if cfg.batch_size > 1 and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())  # BatchNorm statistics of one clip are noise: fold it into the previous batch
    return EpochPlan(batches)


def epoch_batch(examples: list[Example], batch, seq_len: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, lengths, labels) of one planned batch, on the model's device."""
    x, lengths = batch_tensors([examples[i].views[v].features[pos] for i, v, pos in batch],
                               [real_steps(examples[i].length, seq_len) for i, _, _ in batch])
    return x.to(device), lengths.to(device), torch.tensor([examples[i].clip.label for i, _, _ in batch]).to(device)


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


_TEST_KEYS = ("loss", "top1", "top5", "mean_class_accuracy", "ece", "top1_interval", "confusion")


class Trainer:
    """Trains into a run directory; with run=None (cross-validation) it writes nothing and keeps the
    per-epoch rows in `history` and the chosen weights in `best_state`."""

    def __init__(self, cfg: TrainConfig, run: RunDir | None, progress: bool = True,
                 on_progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 data: RunData | None = None):
        self.cfg, self.run, self.progress, self.on_progress = cfg, run, progress, on_progress
        self.data = data  # made by the caller (cross-validation), else prepared from cfg
        self.stop = StopRequested(should_stop)
        self._last_status = 0.0
        self._started = time.time()
        self.best_top1, self.best_loss, self.best_epoch = -math.inf, math.inf, 0
        self.best_state: dict | None = None
        self.history: list[dict] = []
        self.calibration: dict | None = None
        self.refit: dict | None = None  # what the refit on train + validation did (cfg.refit)
        self.test_reports: dict = {}  # the test clips at the best epoch, before and after calibration

    # -- run folder (nothing is written without one) -----------------------------------------
    def log(self, message: str) -> None:
        if self.run:
            self.run.log(message)

    def status(self, force: bool = False, **fields) -> None:
        now = time.time()
        fields.setdefault("elapsed_s", round(now - self._started, 1))
        if self.on_progress:
            self.on_progress(dict(fields))
        if self.run and (force or now - self._last_status >= 1.0):  # the app polls; once a second is plenty
            self.run.write_status(**fields)
            if not force:  # a forced phase write must not hold back the live numbers of epochs under a second
                self._last_status = now

    # -- data -------------------------------------------------------------------------------
    def load_data(self) -> RunData:
        if self.data is None:
            self.data = prepare_data(self.cfg, self.progress, lambda fields: self.status(**fields), self.log)
        return self.data

    # -- main -------------------------------------------------------------------------------
    def fit(self, resume: bool = False, take_lock: bool = True) -> dict:
        if self.run is None:
            return self._fit(resume=False)
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
            return self._fit(resume)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, ArlibError) else f"{type(exc).__name__}: {exc}"
            run.log("failed: " + message + "\n" + traceback.format_exc())
            run.write_status(state="failed", error=message)
            raise
        finally:
            self.stop.restore(previous_handlers)
            if take_lock:
                lock.release()

    def _improved(self, row: dict) -> bool:
        """Chosen on validation only. Ties in top-1 (common on small validation sets) go to the lower loss."""
        if not row["num_val_clips"]:
            return False
        if self.cfg.select_by == "val_loss":
            return row["val_loss"] < self.best_loss
        return row["val_top1"] > self.best_top1 or (row["val_top1"] == self.best_top1 and row["val_loss"] < self.best_loss)

    def _fit(self, resume: bool) -> dict:
        cfg = self.cfg
        data = self.load_data()
        train, val, test, classes = data.train, data.val, data.test, data.classes
        # Seeded after the features: a cold cache builds the backbone, and building it draws from torch's
        # global RNG, which would give a cold-cache run other initial weights than a warm-cache one.
        torch.manual_seed(cfg.seed)
        model_cfg = cfg.model_config(train[0].feature_dim, len(classes))
        device = current_device()  # --device / $ARLIB_DEVICE: the sequence model trains there
        model = build_model(model_cfg).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        views = run_views(cfg)

        start_epoch, start_step, carry, last_row = 1, 0, None, None
        if resume:
            start_epoch, start_step, carry, last_row = self._restore(model, optimizer, classes, train[0].feature_dim)
        if self.run:
            self.run.truncate_metrics(start_epoch - 1)
            self.history = self.run.read_metrics()

        meta_base = {
            "model": model_cfg.to_dict(),
            "backbone": None if cfg.features else cfg.backbone,
            "preprocessing": None if cfg.features else get_spec(cfg.backbone).preprocessing.to_dict(),
            "features_dir": cfg.features,
            "classes": classes,
            "seq_len": cfg.seq_len,
            "cache_frames": cfg.cache_frames,
            "train_config": cfg.to_dict(),
            "dataset": data.summary,
            "split": data.split,
            "run": self.run.name if self.run else None,
        }
        skipped = [{"clip": p, "reason": r} for p, r in data.failed.items()]
        steps_per_epoch = len(plan_epoch(train, cfg, views, 1).batches)
        total_steps = steps_per_epoch * cfg.epochs
        t_train = time.time()
        steps_done_here = 0
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        stopped_early = None

        for epoch in range(start_epoch, cfg.epochs + 1):
            plan = plan_epoch(train, cfg, views, epoch)
            if carry is None:
                torch.manual_seed(cfg.seed * 100003 + epoch)  # dropout noise is per epoch too
                carry = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            epoch_t0 = time.time() - carry["seconds"]
            bar = self._bar(epoch, len(plan.batches), start_step)
            model.train()
            for step in range(start_step, len(plan.batches)):
                logits, y, loss = self._step(model, optimizer, criterion, train, plan.batches[step], epoch, step,
                                             device)
                carry["loss_sum"] += loss.item() * len(y)
                carry["correct"] += int((logits.argmax(1) == y).sum())
                carry["seen"] += len(y)
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
                if self.run and self.stop() and step + 1 < len(plan.batches):
                    carry["seconds"] = time.time() - epoch_t0
                    self._save("last", model, optimizer, meta_base, epoch - 1, step + 1, carry, last_row)
                    return self._stopped(epoch - 1, step + 1, bar)
            if bar:
                bar.close()
            start_step = 0

            self.status(force=True, state="evaluating", phase="evaluating", epoch=epoch,
                        message=f"evaluating epoch {epoch} on {len(val)} validation and {len(test)} test clips")
            row = self._epoch_row(epoch, model, optimizer, carry, epoch_t0, skipped)
            self.history.append(row)
            if self.run:
                self.run.append_metrics(row)
            last_row = {k: row[k] for k in ("epoch", "train_loss", "train_top1", "val_loss", "val_top1",
                                             "val_top5", "val_mean_class_accuracy", "test_top1")}
            self.log("epoch %d: train loss %.4f top1 %.3f | val loss %s top1 %s | test top1 %s (reported only)" % (
                epoch, row["train_loss"], row["train_top1"], _fmt(row["val_loss"]), _fmt(row["val_top1"]),
                _fmt(row["test_top1"])))
            carry = None
            improved = self._improved(row)
            if improved:
                self.best_top1, self.best_loss, self.best_epoch = row["val_top1"], row["val_loss"], epoch
                self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            no_val = not val and epoch == cfg.epochs  # nothing to choose with: the last epoch is `best`
            if no_val:
                self.best_epoch = epoch
                self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            # `last` goes last: it commits the epoch. Killed before it, a resume redoes this epoch exactly and
            # rewrites its metrics row, `best` and `epoch_NNN`; nothing is skipped or duplicated.
            if improved or no_val:
                self._save("best", model, optimizer, meta_base, epoch, 0, None, last_row)
                if self.run:  # a refit run extended by a resume: its old selection is no longer the best
                    self.run.checkpoint("selected").unlink(missing_ok=True)
            if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
                self._save(f"epoch_{epoch:03d}", model, optimizer, meta_base, epoch, 0, None, last_row)
                if self.run:
                    prune_epoch_checkpoints(self.run, cfg.keep)
            self._save("last", model, optimizer, meta_base, epoch, 0, None, last_row)
            self.status(force=True, state="training", epoch=epoch, last_metrics=last_row,
                        best_val_top1=_none_if_inf(self.best_top1), best_epoch=self.best_epoch)
            if cfg.patience and val and epoch - self.best_epoch >= cfg.patience and epoch < cfg.epochs:
                stopped_early = epoch
                self.log(f"early stop after epoch {epoch}: no better {cfg.select_by} for {cfg.patience} epochs")
                break
            if self.run and self.stop() and epoch < cfg.epochs:
                return self._stopped(epoch, 0, None)

        self.calibration = self._calibrate(model, meta_base)
        if cfg.refit and val and self.best_state is not None:
            self.refit = self._refit(model_cfg, device, views, criterion)
        best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        final = {"state": "finished", "epoch": last_row["epoch"], "epochs": cfg.epochs,
                 "best_epoch": self.best_epoch, "selected_by": cfg.select_by, "stopped_early_at": stopped_early,
                 "best_val_top1": _none_if_inf(self.best_top1), "last_metrics": last_row,
                 "calibration": self.calibration, "refit": self.refit,
                 "best_val": best_row and {k: best_row.get("val_" + k, best_row.get(k)) for k in _TEST_KEYS}
                 | {"n": len(val)},
                 "best_test": best_row and {k: best_row.get("test_" + k) for k in _TEST_KEYS} | {"n": len(test)}}
        if self.run:
            self.run.write_status(**final, phase="finished", message="finished", eta_s=0, step=steps_per_epoch,
                                  global_step=total_steps, total_steps=total_steps, train_loss=last_row["train_loss"])
        held_out = f"; test list top-1 {format_accuracy(best_row['test_top1'], len(test))}" if best_row and test else ""
        self.log(f"finished: best epoch {self.best_epoch} (chosen on {cfg.select_by}), validation top-1 "
                 f"{format_accuracy(best_row and best_row['val_top1'], len(val))}{held_out}; temperature "
                 f"{self.calibration and self.calibration['temperature']}"
                 + (f"; refit on {self.refit['clips']} clips (train + validation) for {self.refit['epochs']} epochs, "
                    f"test list top-1 {format_accuracy(self.refit['test_top1'], len(test))}" if self.refit and test
                    else "; refit on train + validation" if self.refit else ""))
        return final

    def _step(self, model, optimizer, criterion, examples: list[Example], batch, epoch: int, step: int, device):
        """One optimisation step on one planned batch: (logits, labels, loss)."""
        data, cfg = self.data, self.cfg
        if data.background:  # each clip spliced between background frames, the same on a resume
            items, span, spliced = spliced_batch(
                [examples[i].views[v].features for i, v, _ in batch], [pos for _, _, pos in batch],
                data.background.train, cfg.seq_len, cfg.splice_settings(),
                [splice_seed(cfg.seed, epoch, step, j) for j in range(len(batch))])
            x, lengths = batch_tensors(items, [cfg.seq_len if s else real_steps(examples[i].length, cfg.seq_len)
                                               for s, (i, _, _) in zip(spliced, batch)])
            x, lengths = x.to(device), lengths.to(device)
            y = torch.tensor([examples[i].clip.label for i, _, _ in batch], device=device)
        else:
            x, lengths, y = epoch_batch(examples, batch, cfg.seq_len, device)
        logits, attention = model(x, lengths)
        # logits, not probabilities: no double softmax; appearance + motion: a loss for each stream
        loss = model.training_loss(criterion, y) if isinstance(model, TwoStreamClassifier) else criterion(logits, y)
        if data.background and cfg.attention_loss:
            loss = loss + cfg.attention_loss * attention_span_loss(attention, torch.from_numpy(span).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return logits, y, loss

    def _epoch_row(self, epoch, model, optimizer, carry, epoch_t0, skipped) -> dict:
        data, cfg = self.data, self.cfg
        report = evaluation_report(model, data.val, data.classes, cfg.seq_len)
        test = evaluation_report(model, data.test, data.classes, cfg.seq_len)
        localisation = {}
        if data.background and data.val:  # the same spliced validation set every epoch
            x, mask = spliced_set([ex.views[TEST_VIEW].features for ex in data.val], data.background.val, cfg.seq_len,
                                  cfg.seed)
            localisation = localisation_report(model, x, mask, np.array([ex.clip.label for ex in data.val]))
        return {
            "epoch": epoch,
            "train_loss": carry["loss_sum"] / max(1, carry["seen"]),
            "train_top1": carry["correct"] / max(1, carry["seen"]),
            "val_loss": report.get("loss"),
            "val_top1": report.get("top1"),
            "val_top5": report.get("top5"),
            "val_mean_class_accuracy": report.get("mean_class_accuracy"),
            "val_ece": report.get("ece"),
            "val_top1_interval": report.get("top1_interval"),
            "per_class_recall": report.get("per_class_recall"),
            "confusion": report.get("confusion"),
            "classes": data.classes,
            "num_val_clips": len(data.val),
            # Localisation (with background footage): attention mass inside the action's span on validation
            # clips spliced between held-out background (the action a third of the sequence), top-1 there.
            **localisation,
            "misclassified": report.get("misclassified", []),
            # The split's test list: logged every epoch (the thesis's curve), never used to choose.
            **{f"test_{k}": test.get(k) for k in _TEST_KEYS},
            "num_test_clips": len(data.test),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.time() - epoch_t0, 3),
            "clips_skipped": len(skipped),
            "skipped": skipped,
        }

    def _calibrate(self, model, meta_base: dict) -> dict | None:
        """Fit the temperature on validation with the best weights; store it with `best`."""
        if self.best_state is None:
            return None
        data, cfg = self.data, self.cfg
        model.load_state_dict(self.best_state)
        logits = infer(model, data.val, cfg.seq_len)
        labels = np.array([ex.clip.label for ex in data.val], dtype=int)
        temperature = fit_temperature(logits[0], labels) if (cfg.calibrate and len(data.val)) else 1.0
        before = evaluation_report(model, data.val, data.classes, cfg.seq_len, 1.0, logits=logits)
        after = evaluation_report(model, data.val, data.classes, cfg.seq_len, temperature, logits=logits)
        test_logits = infer(model, data.test, cfg.seq_len)
        test = evaluation_report(model, data.test, data.classes, cfg.seq_len, temperature, logits=test_logits)
        self.test_reports = {"uncalibrated": evaluation_report(model, data.test, data.classes, cfg.seq_len, 1.0,
                                                               logits=test_logits), "calibrated": test}
        calibration = {
            "temperature": round(temperature, 6), "fitted_on": "val", "val_clips": len(data.val),
            "val_ece_before": before.get("ece"), "val_ece_after": after.get("ece"),
            "val_loss_before": before.get("loss"), "val_loss_after": after.get("loss"),
            "test_clips": len(data.test), "test_ece": test.get("ece"), "test_loss": test.get("loss"),
            "test_reliability": test.get("reliability"), "val_reliability": after.get("reliability"),
        }
        if self.run and self._selected_path().exists():
            ckpt = load_checkpoint(self._selected_path())
            save_checkpoint(Checkpoint(dict(ckpt.meta, calibration=calibration), ckpt.model_state), self._selected_path())
        return calibration

    def _selected_path(self) -> Path:
        """The checkpoint holding the weights validation chose: `best`, or `selected` once a refit replaced `best`."""
        selected = self.run.checkpoint("selected")
        return selected if selected.exists() else self.run.checkpoint("best")

    def _train_for(self, examples: list[Example], epochs: int, model_cfg, device, views: list[str], criterion,
                   what: str):
        """A model trained from the run's initial weights on `examples` for `epochs` epochs, with the run's
        per-epoch randomness (plan and dropout seeds)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)  # the very initial weights of the run (see _fit)
        model = build_model(model_cfg).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for epoch in range(1, epochs + 1):
            plan = plan_epoch(examples, cfg, views, epoch)
            torch.manual_seed(cfg.seed * 100003 + epoch)
            self.status(force=True, state="training", phase="refit",
                        message=f"{what}: epoch {epoch}/{epochs} on {len(examples)} clips")
            model.train()
            for step, batch in enumerate(plan.batches):
                self._step(model, optimizer, criterion, examples, batch, epoch, step, device)
        return model

    def _cross_fitted_temperature(self, examples: list[Example], epochs: int, model_cfg, device, views, criterion):
        """(T, out-of-fold report before/after): K group folds of all training clips, each predicted by a model
        trained on the others exactly as the refit is trained; T is fitted on the pooled out-of-fold logits, so
        every training clip counts once (validation alone holds a dozen clips on small data) and the test list
        never does."""
        cfg, data = self.cfg, self.data
        by_path = {ex.clip.path: ex for ex in examples}
        logits, labels = [], []
        folds = group_kfold([ex.clip for ex in examples], cfg.temperature_folds, cfg.seed)
        for k, (fit, held) in enumerate(folds):
            model = self._train_for([by_path[c.path] for c in fit], epochs, model_cfg, device, views, criterion,
                                    f"temperature fold {k + 1}/{len(folds)}")
            logits.append(infer(model, [by_path[c.path] for c in held], cfg.seq_len)[0])
            labels.extend(c.label for c in held)
        z, y = np.concatenate(logits), np.array(labels, dtype=int)
        temperature = fit_temperature(z, y)
        before = report_from_probabilities(probabilities_from_logits(z), y, data.classes)
        after = report_from_probabilities(probabilities_from_logits(z, temperature), y, data.classes)
        return temperature, {"oof_clips": len(y), "oof_ece_before": before["ece"], "oof_ece_after": after["ece"],
                             "oof_top1": after["top1"]}

    def _refit(self, model_cfg, device, views: list[str], criterion) -> dict:
        """Retrain from the same initial weights on ALL training clips (train + validation) for exactly the
        number of epochs validation chose; the refit weights become `best`, the weights validation chose are
        kept as `selected`. The temperature is the one fitted on validation (the refit has trained on those
        clips), or with temperature_folds K >= 2 one fitted on out-of-fold predictions of all training clips.
        The test list still chooses nothing."""
        cfg, data = self.cfg, self.data
        # In path order, as the dataset lists them: the refit is exactly a run on all training clips without
        # validation (val_fraction 0) stopped at the chosen epoch (tests/test_train.py checks byte for byte).
        examples, epochs = sorted(data.train + data.val, key=lambda ex: ex.clip.path), self.best_epoch
        if cfg.calibrate and cfg.temperature_folds >= 2 and self.calibration:
            temperature, oof = self._cross_fitted_temperature(examples, epochs, model_cfg, device, views, criterion)
            self.calibration = dict(self.calibration, temperature=round(temperature, 6), **oof,
                                    fitted_on=f"out-of-fold predictions of {cfg.temperature_folds} group folds of "
                                              "all training clips")
        model = self._train_for(examples, epochs, model_cfg, device, views, criterion,
                                "refit on train + validation")
        self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        temperature = self.calibration["temperature"] if self.calibration else 1.0
        test_logits = infer(model, data.test, cfg.seq_len)
        test = evaluation_report(model, data.test, data.classes, cfg.seq_len, temperature, logits=test_logits)
        self.test_reports = {"uncalibrated": evaluation_report(model, data.test, data.classes, cfg.seq_len, 1.0,
                                                               logits=test_logits), "calibrated": test}
        refit = {"epochs": epochs, "clips": len(examples), "train_clips": len(data.train), "val_clips": len(data.val),
                 "temperature": self.calibration and ("validation, with the weights it chose (before the refit)"
                                                      if self.calibration["fitted_on"] == "val"
                                                      else self.calibration["fitted_on"]),
                 "test_top1": test.get("top1")}
        if self.calibration:
            self.calibration = dict(self.calibration, test_ece=test.get("ece"), test_loss=test.get("loss"),
                                    test_reliability=test.get("reliability"), refit=True)
        if self.run:
            best, selected = self.run.checkpoint("best"), self.run.checkpoint("selected")
            if not selected.exists():  # the validation-chosen weights stay, under their own name; written before
                save_checkpoint(load_checkpoint(best), selected)  # `best` is replaced, so a kill never loses either
            chosen = load_checkpoint(selected).meta
            metrics = dict(chosen.get("metrics") or {}, test_top1=test.get("top1"))
            save_checkpoint(Checkpoint(dict(chosen, calibration=self.calibration, metrics=metrics, refit=refit,
                                            saved_at=time.time()), model.state_dict()), best)
        self.log(f"refit: {epochs} epochs on {len(examples)} clips (train + validation) from the run's initial "
                 "weights; `best` holds the refit, `selected` the weights validation chose")
        return refit

    def _stopped(self, epoch: int, step: int, bar) -> dict:
        if bar:
            bar.close()
        self.run.write_status(state="stopped", phase="stopped", epoch=epoch, step=step,
                              message="stopped; resume to continue")
        self.log(f"stopped after epoch {epoch} step {step}; `last` saved")
        return {"state": "stopped", "epoch": epoch, "step": step}

    def _bar(self, epoch: int, steps: int, initial: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=steps, initial=initial, desc=f"epoch {epoch}/{self.cfg.epochs}", unit="step",
                    dynamic_ncols=True)

    def _save(self, name: str, model, optimizer, meta_base: dict, epoch: int, step: int, carry: dict | None,
              metrics: dict | None) -> None:
        if not self.run:
            return  # cross-validation keeps only the history and the best weights in memory
        meta = dict(meta_base, epoch=epoch, step_in_epoch=step, partial_epoch=carry,
                    best_val_top1=_none_if_inf(self.best_top1), best_val_loss=_none_if_inf(self.best_loss),
                    best_epoch=self.best_epoch, selected_by=self.cfg.select_by, metrics=metrics, saved_at=time.time())
        resumable = name == "last"  # only `last` needs optimizer + RNG state; it triples the size
        save_checkpoint(Checkpoint(meta, model.state_dict(), optimizer.state_dict() if resumable else None,
                                   torch.get_rng_state() if resumable else None,
                                   cuda_rng_state() if resumable else None), self.run.checkpoint(name))

    def _restore(self, model, optimizer, classes: list[str], feature_dim: int):
        path = self.run.checkpoint("last")
        if not path.exists():  # stopped or killed before its first epoch ended: start it again, same config
            self.log(f"no {path.name} to resume from; starting again at epoch 1")
            return 1, 0, None, None
        ckpt = load_checkpoint(path)
        if ckpt.classes != classes or ckpt.meta["model"]["feature_dim"] != feature_dim:
            raise ArlibError(f"Run {self.run.name} was trained on other classes or features than this dataset gives; "
                             "resume it with its original data.")
        model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state:
            optimizer.load_state_dict(ckpt.optimizer_state)
        epoch, step = int(ckpt.meta["epoch"]), int(ckpt.meta.get("step_in_epoch", 0))
        best = ckpt.meta.get("best_val_top1")
        self.best_top1 = -math.inf if best is None else best
        self.best_loss = ckpt.meta.get("best_val_loss") or math.inf
        self.best_epoch = int(ckpt.meta.get("best_epoch") or 0)
        if self._selected_path().exists():  # the weights validation chose, not a refit of them
            self.best_state = load_checkpoint(self._selected_path()).model_state
        carry = ckpt.meta.get("partial_epoch") if step else None
        if carry is not None and ckpt.rng_state is not None:
            torch.set_rng_state(ckpt.rng_state)  # mid-epoch: continue the same dropout stream
            restore_cuda_rng_state(ckpt.cuda_rng_state)  # ... on the GPU too
        self.log(f"resumed from {path.name}: epoch {epoch}, step {step}")
        return epoch + 1, step, carry, ckpt.meta.get("metrics")


def _none_if_inf(x):
    return None if x is None or (isinstance(x, float) and math.isinf(x)) else x


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
            load_split(cfg.check())
            run.write_config(cfg.to_dict())
        return Trainer(cfg, run, progress, on_progress, should_stop).fit(resume=resume, take_lock=False)
    finally:
        lock.release()
