"""What the default refit costs in training time: the same warm-cache run with and without it, side by side.

The `bench` data (synthetic UCF-sized clips, default backbone and settings, 10 epochs): the cache is built once,
then runs alternate --no-refit / --refit on the warm cache; the median of each and their ratio are printed.
    PYTHONPATH=. python benchmarks/refit_cost.py --clips 24 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arlib.backbones import DEFAULT_BACKBONE
from arlib.bench import make_clips
from arlib.config import TrainConfig
from arlib.train import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="arlib-refit-cost-") as tmp:
        tmp = Path(tmp)
        data = make_clips(tmp / "data", a.clips)
        base = TrainConfig(data=str(data), backbone=DEFAULT_BACKBONE, cache_dir=str(tmp / "cache"), epochs=a.epochs,
                           checkpoint_every=0)
        train(replace(base, refit=False), tmp / "runs" / "cold", progress=False)  # fills the cache
        seconds, refit_epochs = {False: [], True: []}, None
        for r in range(a.rounds):
            for refit in (False, True):
                t = time.perf_counter()
                result = train(replace(base, refit=refit), tmp / "runs" / f"{r}-{refit}", progress=False)
                seconds[refit].append(time.perf_counter() - t)
                refit_epochs = (result.get("refit") or {}).get("epochs", refit_epochs)
        off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
        print(json.dumps({"warm_run_s_without_refit": round(off, 2), "warm_run_s_with_refit": round(on, 2),
                          "ratio": round(on / off, 2), "refit_epochs": refit_epochs, "epochs": a.epochs,
                          "clips": a.clips, "rounds": a.rounds}))


if __name__ == "__main__":
    main()
