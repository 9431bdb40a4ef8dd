#!/usr/bin/env bash
# Teaches a Shapes pipeline's keyframe and interpolation models region edits (known content per latent pixel) by
# fine-tuning them with region masks beside their own known-frame patterns, on the data they were trained on:
#   bash tools/finetune_regions.sh [WORK_DIR [OUT [FROM]]]   (defaults: runs/regions, runs/regions/pipeline,
#                                                            vidiff/bundled/shapes)
# 1. 2000 Shapes clips of 16 frames (seed 1, as the bundled models saw; evaluations use other seeds), encoded by
#    FROM's VAE  2. both diffusion models from FROM's weights, side by side, one thread each, with the settings
#    they were trained with (dataset captions, 4 keyframes at stride 5, gaps 2..5) plus `pattern_region`
#    (keyframes: a fifth known pattern, 20% of samples; interpolation: 30% of windows)  3. the pipeline.
# KF_STEPS / IT_STEPS (default 2000 / 1200) and FT_LR (default 3e-4) set the length and learning rate.
# GENERAL=1 also teaches what issue 14 asks, in the same fine-tune: the recipes' layouts (keyframes K 3..9 x stride
# 3..5, 40% of steps at the default 4 x 5; gaps 2..8) on 41-frame clips, and grammar captions (half of them the
# plain template, PLAIN_PROB), so one run serves region edits, wordings and layouts.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/wait_jobs.sh
W=${1:-runs/regions}
OUT=${2:-$W/pipeline}
FROM=${3:-vidiff/bundled/shapes}
V=.venv/bin
mkdir -p "$W"
export OMP_NUM_THREADS=1
t0=$(date +%s)
mark() { echo "[finetune_regions] $1 at $(( $(date +%s) - t0 )) s"; }

frames=16
[ -n "${GENERAL:-}" ] && frames=41  # the largest layout, 9 keyframes at stride 5, spans 41
LATENTS=${LATENTS:-$W/latents}  # LATENTS=FOLDER: an existing latent cache of those clips (by FROM's VAE) instead
if [ "$LATENTS" = "$W/latents" ]; then
  [ -f "$W/shapes/metadata.jsonl" ] || $V/vidiff data shapes --out "$W/shapes" --num 2000 --frames $frames --seed 1
  $V/vidiff data cache --videos "$W/shapes" --vae "$FROM/vae" --frames $frames --size 64 --out "$W/latents"
fi
mark "data"

lr=${FT_LR:-3.0e-4}
common=(--set data.root="$LATENTS" --set data.num_frames=$frames --set vae="$FROM/vae"
        --set optimizer.lr="$lr" --set optimizer.warmup_steps=50 --set train.max_batch_frames=null --resume auto)
if [ -n "${GENERAL:-}" ]; then
  kf_extra=(--set conditioning.default_layout_prob=0.4 --set conditioning.plain_caption_prob=0.5)
  it_extra=(--set conditioning.plain_caption_prob=0.5)
else  # the settings the bundled models were trained with: dataset captions, 4 x 5 only, gaps 2..5
  kf_extra=(--set conditioning.captions=dataset --set conditioning.min_keyframes=null
            --set conditioning.max_keyframes=null --set conditioning.min_keyframe_stride=null
            --set conditioning.max_keyframe_stride=null --set conditioning.default_layout_prob=0.0
            --set conditioning.path_captions_from_step=0 --set conditioning.direction_pairs_from_step=null)
  it_extra=(--set conditioning.captions=dataset --set conditioning.max_gap=5)
fi
$V/vidiff train --config configs/shapes-keyframes.yaml --set output_dir="$W/keyframes" "${common[@]}" \
  --set init_weights="$FROM/keyframes" --set train.max_steps="${KF_STEPS:-2000}" --set conditioning.pattern_region=0.25 \
  --set train.preview_every=100000 "${kf_extra[@]}" > "$W/keyframes.log" 2>&1 &
kf=$!
$V/vidiff train --config configs/shapes-interpolation.yaml --set output_dir="$W/interpolation" "${common[@]}" \
  --set init_weights="$FROM/interpolation" --set train.max_steps="${IT_STEPS:-1200}" \
  --set conditioning.pattern_region=0.3 "${it_extra[@]}" > "$W/interpolation.log" 2>&1 &
it=$!
wait_jobs "finetune_regions: a training run failed (see $W/keyframes.log, $W/interpolation.log)" $kf $it
mark "keyframes + interpolation"

# a run folder around FROM's VAE part, so that `vidiff export` takes it like a trained one
mkdir -p "$W/vae/export"
cp "$FROM"/vae/config.yaml "$FROM"/vae/model.safetensors "$W/vae/export/"
[ -f "$FROM/vae/trained_on.yaml" ] && cp "$FROM/vae/trained_on.yaml" "$W/vae/export/"
sed 's#^init_weights: .*#init_weights: null#' configs/shapes-vae-temporal.yaml > "$W/vae/config.yaml"
# keyframe guidance 2 (docs/shapes_measured.md, "Keyframe guidance and square corners"); fills by euler_ancestral
# (docs/shapes_measured.md, "The fills' sampler")
$V/vidiff export "$W/vae" "$W/keyframes" "$W/interpolation" -o "$OUT" --force --guidance 2 \
  --interpolation-sampler euler_ancestral
mark "export"
