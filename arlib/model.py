"""Sequence models over per-frame features. Every model returns (logits, attention).

logits are raw scores for CrossEntropyLoss (the thesis applied softmax inside the model and then
CrossEntropyLoss, a double softmax); attention is [B, T] with rows summing to 1 (uniform for the
models that do not attend).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

MODEL_KINDS = ("attention", "lstm", "frame_avg")


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class FrameProjection(nn.Module):
    """Linear + BatchNorm1d applied to every frame (BN statistics pooled over batch and time)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return self.norm(self.linear(x).reshape(b * t, -1)).reshape(b, t, -1)


class TemporalAttention(nn.Module):
    """One score per time step, softmax over time, weighted sum of the inputs."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.score(h).squeeze(-1), dim=1)  # [B, T]
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1), weights


def _classifier(in_dim: int, head_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(in_dim, head_dim),
        nn.BatchNorm1d(head_dim),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(head_dim, num_classes),
    )


def _uniform(x: torch.Tensor) -> torch.Tensor:
    b, t = x.shape[:2]
    return torch.full((b, t), 1.0 / t, dtype=x.dtype, device=x.device)


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
        self.attention = TemporalAttention(out_dim) if cfg.kind == "attention" else None
        self.head = _classifier(out_dim, cfg.head_dim, cfg.num_classes, cfg.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.lstm(self.project(x))
        if self.attention is not None:
            pooled, weights = self.attention(h)
        else:
            pooled, weights = h.mean(dim=1), _uniform(h)
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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        per_frame = self.head(torch.relu(self.project(x)).reshape(b * t, -1)).reshape(b, t, -1)
        return per_frame.mean(dim=1), _uniform(x)


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind '{cfg.kind}'; choose one of {', '.join(MODEL_KINDS)}")
    return FrameAverageClassifier(cfg) if cfg.kind == "frame_avg" else RecurrentClassifier(cfg)
