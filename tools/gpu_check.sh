#!/usr/bin/env bash
# The prepared GPU check (docs/training.md, "The GPU check"): at most 8 minutes on a CUDA machine.
#   bash tools/gpu_check.sh
# bf16 training steps of the 256 px keyframe recipe beside diffusers' UNet3DConditionModel (samples/s, peak
# memory), a bf16 generation of the bundled pipeline against fp32 (PSNR >= 35 dB), one summary line at the end.
# Without CUDA it skips those parts by name and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
timeout 480 "$PY" tools/bench_gpu_check.py "$@"
