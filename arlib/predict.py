"""Checkpoint + clip -> prediction: top-k, attention over the sampled frames, their times, timings.

Prediction needs nothing but the checkpoint file: classes, backbone, preprocessing, sequence length and
the frame grid all come from its metadata. Only the T sampled frames are decoded (not the whole clip),
and they are the same frames evaluation uses: uniform positions over the cached frame grid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import video
from .attention_scale import attention_summary
from .backbones import load_backbone
from .calibration import checkpoint_temperature, probabilities_from_logits
from .checkpoints import Checkpoint, load_checkpoint
from .devices import current_device
from .errors import ArlibError, CheckpointError
from .explain import grad_cam, normalise_clip, on_full_frame
from .features import as_stored
from .model import ModelConfig, build_model
from .motion import difference_crops, frames_and_partners, fuse_streams
from .sampling import DEFAULT_CACHE_FRAMES, cache_grid, real_steps, window_positions
from .transforms import TEST_VIEW, apply_view


@dataclass
class Prediction:
    clip: str
    top_k: list[dict]
    attention: list[float]
    frame_indices: list[int]
    timestamps_s: list[float]
    num_frames: int
    fps: float
    duration_s: float
    seconds: dict
    width: int = 0  # as displayed (after rotation)
    height: int = 0
    rotation: int = 0  # degrees turned clockwise to show the clip upright (after a mirror when mirrored)
    mirrored: bool = False
    stream: int = 0  # the container's index of the video stream used
    warnings: list[str] = field(default_factory=list)  # sentences about what is odd in the clip
    windows: list[dict] = field(default_factory=list)
    # With several windows, each window's attention is normalised within the window, so it cannot say which
    # window holds the action. whole_clip is one more pass of the model over seq_len of the same frames
    # spread over the whole clip: {"attention", "frame_indices", "timestamps_s", "label", "probability"}.
    whole_clip: dict = field(default_factory=dict)
    frames: np.ndarray | None = field(default=None, repr=False)  # uint8 [T,H,W,3] sampled frames, for display
    # Grad-CAM per sampled frame, float32 [T, rows, cols] in [0, 1] over the whole frame (explain.py); None
    # unless asked for. heatmap_label names the class they explain.
    heat: np.ndarray | None = field(default=None, repr=False)
    heatmap_label: str | None = None

    @property
    def attention_summary(self) -> str:
        """One sentence on how peaked the attention is (attention_scale.attention_summary)."""
        return attention_summary(self.attention, self.timestamps_s)

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("frames", "heat")}
        if not self.windows:
            out.pop("windows")
        if not self.whole_clip:
            out.pop("whole_clip")
        out["attention_summary"] = self.attention_summary
        if self.heat is None:
            out.pop("heatmap_label")
        else:
            out["heatmaps"] = np.round(self.heat, 3).tolist()  # T lists of rows, row-major, whole-frame coords
        return out


def model_from_checkpoint(ckpt: Checkpoint) -> torch.nn.Module:
    try:
        model = build_model(ModelConfig.from_dict(ckpt.meta["model"]))
        model.load_state_dict(ckpt.model_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{Path(ckpt.path or 'checkpoint').name} does not match its own model description ({str(exc)[:160]})."
        ) from None
    return model.to(current_device()).eval()  # --device / $ARLIB_DEVICE


class _WithMotion(torch.nn.Module):
    """A two-stream model seen from its appearance input, the motion features held fixed: Grad-CAM then
    explains the fused decision through the frames' appearance (motion images have no place on the frame)."""

    def __init__(self, model: torch.nn.Module, motion: torch.Tensor):
        super().__init__()
        self.model, self.motion = model, motion

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        return self.model(torch.cat([x, self.motion], dim=-1), lengths)


class Predictor:
    def __init__(self, checkpoint: str | Path | Checkpoint):
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        meta = self.ckpt.meta
        self.name = Path(self.ckpt.path or "checkpoint").name
        try:  # hand-edited or foreign metadata: explain, do not crash on a KeyError
            self.classes = [str(c) for c in self.ckpt.classes]
            self.seq_len = int(meta["seq_len"])
            self.cache_frames = int(meta.get("cache_frames") or DEFAULT_CACHE_FRAMES)
            feature_dim = int(meta["model"]["feature_dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.name} lacks usable metadata ({type(exc).__name__}: {exc}); "
                                  "use a checkpoint written by arlib train.") from None
        if not self.classes or self.seq_len < 1:
            raise CheckpointError(f"{self.name} names no classes or no sequence length; use a checkpoint written by arlib train.")
        if not meta.get("backbone"):
            raise CheckpointError(
                f"{self.name} was trained on precomputed features ({meta.get('features_dir')}); "
                "it can evaluate such features but cannot predict from video."
            )
        try:
            self.backbone = load_backbone(meta["backbone"])
        except ArlibError as exc:
            raise CheckpointError(f"{self.name} needs backbone '{meta['backbone']}', which cannot be used here: "
                                  f"{str(exc).rstrip('.')}.") from None
        self.streams = int(meta["model"].get("streams", 1))  # 2: appearance + motion (motion.py)
        if self.backbone.spec.feature_dim * self.streams != feature_dim:
            raise CheckpointError(
                f"{self.name} expects {meta['model']['feature_dim']}-d features but backbone "
                f"{meta['backbone']} gives {self.backbone.spec.feature_dim}-d."
            )
        self.model = model_from_checkpoint(self.ckpt)
        self.device = next(self.model.parameters()).device  # where inputs to self.model must go
        self.temperature = checkpoint_temperature(meta)  # fitted on validation after training (calibration)

    def class_index(self, label: str | int) -> int:
        """A class given by name (case-insensitive) or by index -> its index; one sentence when unknown."""
        names = [c.lower() for c in self.classes]
        if isinstance(label, str) and label.strip().lower() in names:
            return names.index(label.strip().lower())
        try:
            index = int(label)
        except (TypeError, ValueError):
            index = -1
        if 0 <= index < len(self.classes):
            return index
        raise ArlibError(f"{self.name} has no class '{label}'; choose one of: {', '.join(self.classes)}.")

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """[W, C] logits -> [W, C] probabilities, with the checkpoint's temperature (calibration)."""
        return probabilities_from_logits(logits.detach().cpu(), self.temperature)

    def predict(self, clip: str | Path, top_k: int = 5, windows: int = 1, heatmaps: bool = False,
                heatmap_class: str | int | None = None, heatmap_attention: bool = False) -> Prediction:
        """Raises ArlibError (one sentence) for a clip that cannot be used.

        heatmaps: also Grad-CAM per sampled frame, for the top-1 class or heatmap_class; heatmap_attention
        weights each frame's map by its temporal attention before the clip-wide normalisation."""
        chosen = None if heatmap_class is None else self.class_index(heatmap_class)
        heatmaps = heatmaps or chosen is not None or heatmap_attention
        t0 = time.perf_counter()
        info = video.probe(clip)
        times = info.frame_times()
        # One window is exactly what evaluation sees; each extra window gets a grid of its own, so a long
        # clip's timeline has as many distinct frames per window as a short clip has in total. Grids are even
        # in time, so windows are equal stretches of time even on a variable-frame-rate clip.
        grid = cache_grid(times, self.cache_frames * max(1, windows))
        positions = window_positions(len(grid), self.seq_len, windows)
        frame_numbers = np.concatenate([grid[p] for p in positions])
        unique, inverse = np.unique(frame_numbers, return_inverse=True)
        pre = self.backbone.spec.preprocessing
        warnings = list(info.warnings)
        if self.streams == 2:  # the motion stream: the same frames against the frames GAP later (motion.py)
            decoded, later = frames_and_partners(clip, unique, info, pre.resize_short_side, warnings)
        else:
            decoded = video.read_frames(clip, unique, short_side=pre.resize_short_side, info=info, warnings=warnings)
        t1 = time.perf_counter()
        crops = apply_view(decoded, pre.input_size, TEST_VIEW)
        motion = None
        if self.streams == 2:
            motion = as_stored(self.backbone.encode(difference_crops(decoded, later, pre.input_size)))[inverse]
        if heatmaps:  # one backbone pass that also keeps what Grad-CAM needs, and one backward pass
            cam_model = self.model if motion is None else _WithMotion(self.model, torch.from_numpy(
                motion.astype(np.float32)).reshape(len(positions), self.seq_len, -1).to(self.device))
            cam = grad_cam(self.backbone, cam_model, crops, inverse, len(positions),
                           class_index=chosen if chosen is not None
                           else (lambda logits: int(self.probabilities(logits).mean(0).argmax())))
            feats = cam.features
        else:
            feats = self.backbone.encode(crops)[inverse]
        # Rounded to the cache's precision: the same numbers evaluation reads from the cache.
        feats = as_stored(feats)
        if motion is not None:
            feats = fuse_streams(feats, motion)
        t2 = time.perf_counter()
        x = torch.from_numpy(feats.reshape(len(positions), self.seq_len, -1).astype(np.float32))
        # A window shorter than seq_len was padded by repeating its last frame: those steps are masked.
        lengths = torch.tensor([real_steps(len(np.unique(p)), self.seq_len) for p in positions])
        with torch.inference_mode():
            logits, attention = self.model(x.to(self.device), lengths.to(self.device))
            probs = self.probabilities(logits)
            attention = attention.cpu()
        whole_clip = self._whole_clip(feats, unique, inverse, times) if len(positions) > 1 else {}
        t3 = time.perf_counter()

        mean_probs = probs.mean(axis=0)
        order = np.argsort(-mean_probs)[: max(1, min(top_k, len(self.classes)))]
        # Each window's attention sums to 1; scaled by 1/windows the whole strip sums to 1.
        attn = (attention.numpy() / len(positions)).reshape(-1)
        # A frame is shown until the next one starts (the last until the clip ends).
        ends = np.append(times[1:], info.duration_s)
        heat = None
        if heatmaps:
            heat = normalise_clip(on_full_frame(cam.cams, decoded.shape[1:3], pre.input_size)[inverse],
                                  attn if heatmap_attention else None)
        t4 = time.perf_counter()
        window_rows = []
        if len(positions) > 1:
            for w, p in enumerate(positions):
                frames_w = grid[p]
                k = int(probs[w].argmax())
                window_rows.append({"start_s": round(float(times[frames_w[0]]), 3),
                                    "end_s": round(float(ends[frames_w[-1]]), 3),
                                    "label": self.classes[k], "probability": float(probs[w, k])})
        return Prediction(
            clip=str(clip),
            top_k=[{"label": self.classes[i], "probability": float(mean_probs[i])} for i in order],
            attention=[round(float(a), 6) for a in attn],
            frame_indices=[int(i) for i in frame_numbers],
            timestamps_s=[round(float(times[i]), 3) for i in frame_numbers],
            num_frames=info.num_frames,
            fps=round(info.fps, 3),
            duration_s=round(info.duration_s, 3),
            seconds={"decode": round(t1 - t0, 4), "backbone": round(t2 - t1, 4), "head": round(t3 - t2, 4),
                     **({"heatmaps": round(t4 - t3, 4)} if heatmaps else {})},
            width=info.width,
            height=info.height,
            rotation=info.rotation,
            mirrored=info.mirrored,
            stream=info.stream,
            warnings=warnings,
            windows=window_rows,
            whole_clip=whole_clip,
            frames=decoded[inverse],
            heat=heat,
            heatmap_label=self.classes[cam.class_index] if heatmaps else None,
        )

    def _whole_clip(self, feats: np.ndarray, unique: np.ndarray, inverse: np.ndarray, times: np.ndarray) -> dict:
        """The model over seq_len frames spread over the whole clip, picked from the frames the windows already
        encoded (no extra decoding or backbone work): where in a long clip the attention puts the action."""
        first = np.unique(inverse, return_index=True)[1]  # one row of feats per distinct frame, in time order
        pick = np.round(np.linspace(0, len(unique) - 1, self.seq_len)).astype(int)
        x = torch.from_numpy(np.ascontiguousarray(feats[first][pick], dtype=np.float32)[None])
        with torch.inference_mode():
            logits, attention = self.model(x.to(self.device))
        probs = self.probabilities(logits)[0]
        k = int(probs.argmax())
        return {"attention": [round(float(a), 6) for a in attention.cpu().numpy()[0]],
                "frame_indices": [int(i) for i in unique[pick]],
                "timestamps_s": [round(float(times[i]), 3) for i in unique[pick]],
                "label": self.classes[k], "probability": float(probs[k])}

    def predict_or_error(self, clip: str | Path, **kwargs) -> Prediction | dict:
        """For batch use: a Prediction, or {'clip', 'error'} with one sentence."""
        try:
            return self.predict(clip, **kwargs)
        except ArlibError as exc:
            return {"clip": str(clip), "error": str(exc)}
        except Exception as exc:  # anything else is still one sentence naming the clip, never a traceback
            reason = " ".join(str(exc).split())[:160] or "no details"
            return {"clip": str(clip),
                    "error": str(ArlibError(f"{clip} could not be processed ({type(exc).__name__}: {reason})."))}
