#!/usr/bin/env bash
# The decode engine's device check (bench/gpu_check.py says what it prints), from any directory:
#   bench/gpu_check.sh          on a GPU machine with python3, torch and transformers: under 8 minutes
#   bench/gpu_check.sh --cpu    the same code paths on the CPU at toy size: under 3 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
