#!/usr/bin/env bash
# The prepared GPU check of issue 10, for a machine with a CUDA card (NOT run yet: no GPU was lent to the
# session that wrote it). From the repository root:  bash benchmarks/gpu_check.sh [OUT_DIR]
# Installs the package, then `arlib bench` on cuda: 240 generated UCF-sized clips (the cache fill on the GPU,
# the thesis loop, training), backbone frames/s on the card against eager PyTorch on the CPU and the
# largest feature difference between them; then the bf16 feature comparison on the card.
set -euo pipefail
out="${1:-${OUT:-/tmp/arlib-gpu-check}}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python -m pip install -q --disable-pip-version-check .
export ARLIB_CACHE_DIR="$out/cache/features"
arlib bench --device cuda --clips 240 --workdir "$out/bench" --json | tee "$out/bench_cuda.txt"
ARLIB_BF16=1 arlib bench --device cuda --clips 48 --workdir "$out/bench_bf16" --json | tail -1 > "$out/bench_cuda_bf16.json"
python benchmarks/bf16_features.py --device cuda | tee "$out/bf16_features.json"
