#!/usr/bin/env bash
# Issue 16's GPU check, prepared to fit in half of a 15-minute device lease: sequential vs
# populations of 32 and 128 for the MLP (goal >= 20x), the residual CNN and the gated model
# (goal >= 10x at K = 32 or 128), one bench/population.py run each, on one GPU.
#   OUT=/tmp/out bash bench/population_gpu.sh      # RESNET=... GATED=... to use other spaces
# Expected: about 4-6 minutes on an H100/H200 (the MLP's 128 x 5 epochs sequentially take
# about 30 s there; the factory models' epochs are shorter than the MLP's).
set -euo pipefail
out=${OUT:-bench/results/gpu-population}
python=${PYTHON:-python}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/device.txt" || true
run() {  # name, then bench/population.py's arguments
    local name=$1
    shift
    timeout 200 "$python" bench/population.py --device cuda --candidates 128 --sizes 32,128 \
        "$@" > "$out/$name.txt" 2>&1 || echo "$name: exit $?" >> "$out/failures.txt"
}
run mlp --epochs 5
run resnet --space "${RESNET:-examples/resnet_digits/space.yaml}" --epochs 3
run gated --space "${GATED:-examples/gated/space.yaml}" --epochs 3
tail -n 4 "$out"/*.txt
