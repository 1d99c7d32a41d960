#!/usr/bin/env bash
# The decode engine's GPU figures, in one run on a machine with a GPU, from the repository root:
#   musicgen-small at batch 32 (x real time, speed over generate, greedy token equality),
#   musicgen-large at batch 16.
# Real-size architectures with random weights (bench/random_models.py); fp16. Each block names
# the device it ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" bench/musicgen_decode.py --size small --batch 32 --seconds 10 --repeats 2 --greedy-check
"$PY" bench/musicgen_decode.py --size large --batch 16 --seconds 10 --repeats 1
