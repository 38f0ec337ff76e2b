#!/usr/bin/env bash
# The GPU check of hptune in one command (bench/GPU.md): the CUDA tests, the trainers on the
# GPU, several trials packed on one GPU, and the main job with fit_micro_batch and amp.
# Under 8 minutes on one H200; without a GPU it says so and exits 0.
#
#   bench/gpu_check.sh [OUT_DIR] [--parts tests trainer packing main] [--quick]
#
# OUT_DIR defaults to $OUT if set (the device tool's folder that comes back), else
# bench/results/gpu. Options after it go to `python -m bench gpu`.
#
# Run from anywhere; it works in the repository root. hptune is imported from src/ (no
# install). Wheels in .whl/ (what the GPU machine lacks: bench/GPU.md lists them) are
# installed first into a folder of their own, with no index: that machine reaches no registry.
set -uo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
  site="${TMPDIR:-/tmp}/hptune-gpu-site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || exit 1
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
out="${OUT:-bench/results/gpu}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  out="$1"
  shift
fi
exec "$python" -m bench gpu --out "$out" "$@"
