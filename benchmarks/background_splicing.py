"""How training against background footage teaches temporal attention to find the action (issue 7, part 1).

On cached features of ../shared/ucf101-mini: 6 classes are the targets, the other 3 the background; per
seed, a seeded third of the UCF groups is held out (clips and background alike). Each variant trains the
project's sequence model (arlib.model) on the training groups and reports, on held-out clips spliced between
held-out background (the action a third of the sequence, at a random place), the attention mass on the
action, and top-1 there and on the same clips unspliced. Mean over seeds, the per-seed masses after it.

    python benchmarks/background_splicing.py --seeds 6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from arlib.background import SpliceSettings, attention_span_loss, localisation_report, random_splice, spliced_set
from arlib.datasets import group_of
from arlib.features import FeatureCache
from arlib.model import ModelConfig, build_model
from arlib.sampling import test_positions, train_positions

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "ucf101-mini" / "UCF-101"
BACKGROUND = ["BaseballPitch", "Basketball", "BasketballDunk"]
VARIANTS = {  # name -> (splice, attention input, attention-loss weight)
    "trimmed clips only (no background)": (False, "state", 0.0),
    "splices, attention from the LSTM state": (True, "state", 0.0),
    "splices, attention from frame + state": (True, "frame+state", 0.0),
    "splices, LSTM state, span loss 3": (True, "state", 3.0),
    "splices, frame + state, span loss 3 (the --background default)": (True, "frame+state", 3.0),
    "splices, frame + state, span loss 10": (True, "frame+state", 10.0),
}


def load_grids(cache_frames: int) -> dict[str, np.ndarray]:
    clips = sorted(str(p) for p in ROOT.glob("*/*"))
    done, failed = FeatureCache(cache_frames=cache_frames).ensure(clips, ["center"], progress=True)
    if failed:
        raise SystemExit(f"unreadable clips: {failed}")
    return {c: done[c]["center"].features.astype(np.float32) for c in clips}


def run(grids: dict[str, np.ndarray], seed: int, splice: bool, attention_input: str, span_weight: float,
        epochs: int, seq_len: int) -> dict:
    rng = np.random.default_rng(seed)
    groups = sorted({group_of(Path(p).stem) for p in grids})
    np.random.default_rng(1000 + seed).shuffle(groups)
    held = set(groups[: round(len(groups) * 0.3)])
    targets = sorted({Path(p).parent.name for p in grids} - set(BACKGROUND))
    train, test, bg_train, bg_test = [], [], [], []
    for path, grid in grids.items():
        cls, out = Path(path).parent.name, group_of(Path(path).stem) in held
        if cls in BACKGROUND:
            (bg_test if out else bg_train).append(grid)
        else:
            (test if out else train).append((grid, targets.index(cls)))
    torch.manual_seed(seed)
    model = build_model(ModelConfig(feature_dim=next(iter(grids.values())).shape[1], num_classes=len(targets),
                                    latent_dim=256, hidden_dim=256, head_dim=256, dropout=0.5,
                                    attention_input=attention_input))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    settings = SpliceSettings()
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order) - 1, 16):
            batch = [train[i] for i in order[start : start + 16]]
            if splice:
                pieces = [random_splice(g, bg_train, seq_len, settings, rng) for g, _ in batch]
            else:
                pieces = [(g[train_positions(len(g), seq_len, rng)], np.ones(seq_len, bool)) for g, _ in batch]
            x = torch.from_numpy(np.stack([p[0] for p in pieces]))
            mask = torch.from_numpy(np.stack([p[1] for p in pieces]))
            logits, attention = model(x)
            loss = nn.functional.cross_entropy(logits, torch.tensor([y for _, y in batch]))
            if span_weight:
                loss = loss + span_weight * attention_span_loss(attention, mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    labels = np.array([y for _, y in test])
    x, mask = spliced_set([g for g, _ in test], bg_test, seq_len, seed=7)
    spliced = localisation_report(model, x, mask, labels)
    plain = np.stack([g[test_positions(len(g), seq_len)] for g, _ in test])
    with torch.inference_mode():
        top1 = float((model.eval()(torch.from_numpy(plain))[0].argmax(1).numpy() == labels).mean())
    return {"mass": spliced["val_attention_on_action"], "uniform": spliced["val_action_share"],
            "top1_spliced": spliced["val_spliced_top1"], "top1_plain": top1, "held_out_clips": len(test)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seq-len", type=int, default=40)
    ap.add_argument("--cache-frames", type=int, default=44)
    args = ap.parse_args()
    torch.set_num_threads(1)
    grids = load_grids(args.cache_frames)
    for name, (splice, attention_input, span) in VARIANTS.items():
        rows = [run(grids, s, splice, attention_input, span, args.epochs, args.seq_len) for s in range(args.seeds)]
        mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
        print(json.dumps({"variant": name, **mean, "mass_per_seed": [round(r["mass"], 2) for r in rows]}), flush=True)


if __name__ == "__main__":
    main()
