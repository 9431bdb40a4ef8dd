#!/usr/bin/env bash
# Reproduces the bundled Shapes pipeline (vidiff/bundled/shapes) from scratch with the project's own commands:
#   bash tools/train_bundled.sh [WORK_DIR [OUT]]   (defaults: runs/bundle, vidiff/bundled/shapes)
# 1. 3000 Shapes clips (seed 1; evaluation uses other seeds)  2. the VAE  3. its temporal decoder (encoder frozen)
# 4. the latent cache  5. the keyframe and interpolation models, side by side, one thread each  6. the pipeline.
# Each training step resumes from its newest complete checkpoint if the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/bundle}
OUT=${2:-vidiff/bundled/shapes}
V=.venv/bin
mkdir -p "$W"
# Stages that run alone take both cores; the two that run side by side take one intra-op thread each: on this
# 2-core CPU two single-threaded runs beat one two-threaded run, and OpenMP threads spin badly when cores are shared.
export OMP_NUM_THREADS=1

[ -f "$W/shapes/metadata.jsonl" ] || $V/vidiff data shapes --out "$W/shapes" --num 3000 --frames 16 --seed 1

[ -f "$W/vae/export/model.safetensors" ] || OMP_NUM_THREADS=2 $V/vidiff train --config configs/shapes-vae.yaml \
  --set data.root="$W/shapes" --set output_dir="$W/vae" --resume auto

# the decoder learns on clips; the encoder, so the latent space the cache holds, stays as trained above
[ -f "$W/vae_temporal/export/model.safetensors" ] || OMP_NUM_THREADS=2 $V/vidiff train \
  --config configs/shapes-vae-temporal.yaml --set init_weights="$W/vae/export" --set output_dir="$W/vae_temporal" \
  --resume auto

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

$V/vidiff export "$W/vae_temporal" "$W/keyframes" "$W/interpolation" -o "$OUT" --force
