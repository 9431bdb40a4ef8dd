#!/usr/bin/env bash
# Reproduces the bundled Shapes pipeline (vidiff/bundled/shapes) from scratch with the project's own commands:
#   bash tools/train_bundled.sh [WORK_DIR]        (default WORK_DIR: runs/bundle)
# 1. 3000 Shapes clips (seed 1; evaluation uses other seeds)  2. the VAE  3. the latent cache
# 4. the keyframe and interpolation models, side by side, one thread each  5. the pipeline folder.
# Each training step resumes from its newest complete checkpoint if the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/bundle}
V=.venv/bin
mkdir -p "$W"
# One intra-op thread per process: on this 2-core CPU two single-threaded runs beat one two-threaded run, and
# OpenMP threads spin badly when the cores are shared.
export OMP_NUM_THREADS=1

[ -f "$W/shapes/metadata.jsonl" ] || $V/vidiff data shapes --out "$W/shapes" --num 3000 --frames 16 --seed 1

[ -f "$W/vae/export/model.safetensors" ] || $V/vidiff train --config configs/shapes-vae.yaml \
  --set data.root="$W/shapes" --set output_dir="$W/vae" --resume auto

# resumes at the first missing shard; a finished cache returns at once
$V/vidiff data cache --videos "$W/shapes" --vae "$W/vae/export" --frames 16 --size 64 --out "$W/latents"

common=(--set data.root="$W/latents" --set vae="$W/vae/export" --resume auto)
$V/vidiff train --config configs/shapes-keyframes.yaml --set output_dir="$W/keyframes" "${common[@]}" \
  > "$W/keyframes.log" 2>&1 &
kf=$!
$V/vidiff train --config configs/shapes-interpolation.yaml --set output_dir="$W/interpolation" "${common[@]}" \
  > "$W/interpolation.log" 2>&1 &
it=$!
wait $kf $it

$V/python tools/assemble_pipeline.py --vae "$W/vae/export" --keyframes-run "$W/keyframes" \
  --interpolation-run "$W/interpolation" --out vidiff/bundled/shapes
