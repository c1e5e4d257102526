"""Sequence models over per-frame features. Every model returns (logits, attention).

logits are raw scores for CrossEntropyLoss (the thesis applied softmax inside the model and then
CrossEntropyLoss, a double softmax); attention is [B, T] with rows summing to 1 (uniform for the
models that do not attend).

`lengths` [B] (optional) says how many leading steps of each sequence are real: short clips are padded
to the sequence length, and padded steps are ignored everywhere (BatchNorm statistics, the LSTM via
packed sequences, the attention softmax and mean pooling), so their content cannot change any output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

MODEL_KINDS = ("attention", "lstm", "frame_avg")
# What the attention scores each step from: the BiLSTM output there (the thesis code), or the projected
# frame feature together with it (the thesis text). Trained against background footage, the latter put
# more attention on the action (README, "Attention that finds the action"): the LSTM state mixes in
# neighbouring frames, the frame feature says what this very frame shows.
ATTENTION_INPUTS = ("state", "frame+state")


@dataclass
class ModelConfig:
    kind: str = "attention"
    feature_dim: int = 1280
    num_classes: int = 9
    latent_dim: int = 512  # thesis: Linear(2048, 512) + BatchNorm1d
    hidden_dim: int = 1024  # thesis: BiLSTM hidden 1024
    num_layers: int = 1
    bidirectional: bool = True
    head_dim: int = 1024  # thesis: Linear(2H, 1024) + BN + ReLU -> Linear(1024, C)
    dropout: float = 0.0
    attention_input: str = "state"  # one of ATTENTION_INPUTS; older checkpoints are "state"
    # 2: feature_dim holds [appearance | motion] halves, each read by its own model (TwoStreamClassifier).
    streams: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that trains on a batch of one row by using its running statistics for that batch
    (torch refuses batch statistics of a single value); `--batch-size 1` works."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def step_mask(lengths: torch.Tensor | None, b: int, t: int, device=None) -> torch.Tensor:
    """[B, T] True on real steps (all of them when lengths is None)."""
    if lengths is None:
        return torch.ones(b, t, dtype=torch.bool, device=device)
    return torch.arange(t, device=device)[None, :] < lengths.to(device).clamp(1, t)[:, None]


class FrameProjection(nn.Module):
    """Linear + BatchNorm1d applied to every real frame (BN statistics pooled over batch and time,
    padded steps left out of them and set to zero)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        if mask is None or bool(mask.all()):
            return self.norm(self.linear(x).reshape(b * t, -1)).reshape(b, t, -1)
        out = x.new_zeros(b, t, self.linear.out_features)
        out[mask] = self.norm(self.linear(x[mask]))
        return out


class TemporalAttention(nn.Module):
    """One score per time step, softmax over the real time steps, weighted sum of the inputs."""

    def __init__(self, dim: int, score_dim: int | None = None):
        super().__init__()
        self.score = nn.Linear(score_dim or dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights scored from `query` (default: h itself), applied to h."""
        scores = self.score(h if query is None else query).squeeze(-1)  # [B, T]
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))  # padded steps get weight exactly 0
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1), weights


def _classifier(in_dim: int, head_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(in_dim, head_dim),
        BatchNorm1d(head_dim),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(head_dim, num_classes),
    )


def _uniform(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Equal weight on every real step, 0 on padding."""
    m = mask.to(dtype)
    return m / m.sum(dim=1, keepdim=True)


class RecurrentClassifier(nn.Module):
    """The thesis model: projection -> BiLSTM -> attention (or mean over time) -> head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.project = FrameProjection(cfg.feature_dim, cfg.latent_dim)
        self.lstm = nn.LSTM(
            cfg.latent_dim,
            cfg.hidden_dim,
            num_layers=cfg.num_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        out_dim = cfg.hidden_dim * (2 if cfg.bidirectional else 1)
        if cfg.attention_input not in ATTENTION_INPUTS:
            raise ValueError(f"unknown attention input '{cfg.attention_input}'; choose one of {', '.join(ATTENTION_INPUTS)}")
        score_dim = out_dim + (cfg.latent_dim if cfg.attention_input == "frame+state" else 0)
        self.attention = TemporalAttention(out_dim, score_dim) if cfg.kind == "attention" else None
        self.head = _classifier(out_dim, cfg.head_dim, cfg.num_classes, cfg.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        mask = step_mask(lengths, b, t, x.device)
        z = self.project(x, mask)
        if lengths is None or bool(mask.all()):
            h, _ = self.lstm(z)
        else:  # packed: the backward direction starts at each clip's last real frame, not at the padding
            packed = pack_padded_sequence(z, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=t)
        if self.attention is not None:
            query = torch.cat([z, h], dim=-1) if self.cfg.attention_input == "frame+state" else None
            pooled, weights = self.attention(h, mask, query)
        else:
            weights = _uniform(mask, h.dtype)
            pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # mean over real steps
        return self.head(pooled), weights


class FrameAverageClassifier(nn.Module):
    """The thesis's per-frame baseline: classify every frame on its own, average logits over time.

    It cannot see frame order, which is what the time-reversed demo twins are built to expose.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.project = FrameProjection(cfg.feature_dim, cfg.latent_dim)
        self.head = _classifier(cfg.latent_dim, cfg.head_dim, cfg.num_classes, cfg.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        mask = step_mask(lengths, b, t, x.device)
        weights = _uniform(mask, x.dtype)
        z = torch.relu(self.project(x, mask))
        if bool(mask.all()):
            per_frame = self.head(z.reshape(b * t, -1)).reshape(b, t, -1)
        else:  # the head's BatchNorm sees real frames only
            per_frame = z.new_zeros(b, t, self.head[-1].out_features)
            per_frame[mask] = self.head(z[mask])
        return torch.bmm(weights.unsqueeze(1), per_frame).squeeze(1), weights


class TwoStreamClassifier(nn.Module):
    """Late fusion of an appearance and a motion stream (TSN): each half of the features has its own model
    of the configured kind; logits are averaged, which multiplies the two streams' probabilities.

    attention: the mean of the two streams' weights (still sums to 1 over the real steps).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.feature_dim % 2:
            raise ValueError(f"a two-stream model needs an even feature_dim (two equal halves), got {cfg.feature_dim}")
        half = ModelConfig.from_dict({**cfg.to_dict(), "feature_dim": cfg.feature_dim // 2, "streams": 1})
        self.appearance = _single_stream(half)
        self.motion = _single_stream(half)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        half = x.shape[-1] // 2
        logits_a, weights_a = self.appearance(x[..., :half], lengths)
        logits_m, weights_m = self.motion(x[..., half:], lengths)
        self.stream_logits = (logits_a, logits_m)  # for training_loss
        return (logits_a + logits_m) / 2, (weights_a + weights_m) / 2

    def training_loss(self, criterion: nn.Module, targets: torch.Tensor) -> torch.Tensor:
        """Each stream learns from the labels on its own, as separately trained streams do (TSN), so neither
        leans on the other; the fused logits are what predictions use. Call right after forward."""
        logits_a, logits_m = self.stream_logits
        return (criterion(logits_a, targets) + criterion(logits_m, targets)) / 2


def _single_stream(cfg: ModelConfig) -> nn.Module:
    return FrameAverageClassifier(cfg) if cfg.kind == "frame_avg" else RecurrentClassifier(cfg)


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind '{cfg.kind}'; choose one of {', '.join(MODEL_KINDS)}")
    if cfg.streams not in (1, 2):
        raise ValueError(f"streams must be 1 (appearance) or 2 (appearance + motion), got {cfg.streams}")
    return TwoStreamClassifier(cfg) if cfg.streams == 2 else _single_stream(cfg)
