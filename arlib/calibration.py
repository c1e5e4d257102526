"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits after training.

probabilities = softmax(logits / T). T > 1 softens an overconfident model; top-1 never changes.
Every probability arlib shows (predict, evaluate, GIF, studio) goes through `probabilities_from_logits`
with the checkpoint's stored temperature.
"""

from __future__ import annotations

import numpy as np
import torch

TEMPERATURE_RANGE = (0.25, 20.0)  # a perfectly separated validation set pulls T to 0: keep it sane


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the validation negative log-likelihood of softmax(logits / T); 1.0 without data."""
    if len(labels) == 0:
        return 1.0
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    # NLL is convex in 1/T: a bounded 1-d search on log T is exact enough and cannot diverge.
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    grid = torch.linspace(lo, hi, 401, dtype=torch.float64)
    with torch.no_grad():
        nll = torch.stack([torch.nn.functional.cross_entropy(z / torch.exp(t), y) for t in grid])
        best = int(nll.argmin())
        # refine between the neighbours of the best grid point
        fine = torch.linspace(grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)], 201, dtype=torch.float64)
        nll = torch.stack([torch.nn.functional.cross_entropy(z / torch.exp(t), y) for t in fine])
        return float(torch.exp(fine[int(nll.argmin())]))


def probabilities_from_logits(logits: torch.Tensor | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) over the last axis, as float32 numpy."""
    z = torch.as_tensor(logits, dtype=torch.float32)
    return torch.softmax(z / float(temperature or 1.0), dim=-1).numpy()


def checkpoint_temperature(meta: dict) -> float:
    """The temperature stored in a checkpoint's metadata (1.0 for checkpoints made before calibration)."""
    value = (meta.get("calibration") or {}).get("temperature", 1.0)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 1.0
    return value if TEMPERATURE_RANGE[0] <= value <= TEMPERATURE_RANGE[1] else 1.0
