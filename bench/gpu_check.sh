#!/usr/bin/env bash
# The decode engine's device check (bench/gpu_check.py says what it prints), from any directory:
#   bench/gpu_check.sh          on a GPU machine with python3, torch and transformers: under 8 minutes
#   bench/gpu_check.sh --cpu    the same code paths on the CPU at toy size: under 3 minutes
#   PYTHON=.venv/bin/python bench/gpu_check.sh --prepare
#                               where a package index is reachable, before: diffusers' wheel into
#                               .cache/wheels (ignored by git; carry it to the GPU machine)
# Stable Audio 3's section needs diffusers, which the GPU machine lacks and cannot download: when
# python3 cannot import it, the wheel in .cache/wheels is installed into a temporary folder for this
# run (diffusers' own needs, huggingface_hub, safetensors, Pillow and the rest, come with transformers
# or the machine's image). Without either the section says why it is skipped; the others run as ever.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WHEELS=.cache/wheels
DIFFUSERS=diffusers==0.42.1  # constraints.txt's pin: the Stable Audio 3 classes the project is written against

if [[ "${1:-}" == --prepare ]]; then
    exec "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" "$DIFFUSERS"
fi
if ! "$PYTHON" -c "import diffusers" 2>/dev/null && compgen -G "$WHEELS/diffusers-*.whl" >/dev/null; then
    site="$(mktemp -d)"
    trap 'rm -rf "$site"' EXIT
    if "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$WHEELS"/diffusers-*.whl
    then
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "gpu_check: the diffusers wheel in $WHEELS did not install; Stable Audio 3 will be skipped" >&2
    fi
fi
"$PYTHON" bench/gpu_check.py "$@"
