#!/usr/bin/env bash
# Reproduces the bundled Shapes pipeline (vidiff/bundled/shapes) with the project's own commands:
#   bash tools/train_bundled.sh [WORK_DIR [OUT]]   (defaults: runs/bundle, vidiff/bundled/shapes)
# 1. 2000 Shapes clips of 41 frames (seed 1; evaluation uses other seeds)  2. the VAE (per-frame)  3. the latent
# cache (its encoder)  4. on one core the keyframe model; on the other the VAE's temporal decoder (encoder frozen, so
# the cached latent space stays valid), then the interpolation model  5. the pipeline.
# Layouts, grammar captions and region masks are training inputs (configs/shapes-keyframes.yaml, -interpolation.yaml).
# Each training step resumes from its newest complete checkpoint if the script is run again.
#
# Two shortcuts, for a machine without the hour the whole recipe needs (both are said in the pipeline's docs when used):
#   VAE_FROM=FOLDER  take this VAE part (e.g. vidiff/bundled/shapes/vae) instead of training steps 2-3;
#   INIT_FROM=FOLDER start the keyframe and interpolation models from this pipeline's parts (fine-tuning:
#                    KF_STEPS / IT_STEPS steps, default 2000 / 1200, at learning rate FT_LR, default 3e-4).
# FORCE=1 lets the two diffusion runs resume although their settings changed (e.g. fewer steps on a busy machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/wait_jobs.sh
W=${1:-runs/bundle}
OUT=${2:-vidiff/bundled/shapes}
V=.venv/bin
mkdir -p "$W"
# Stages that run alone take both cores; the two that run side by side take one intra-op thread each: on this
# 2-core CPU two single-threaded runs beat one two-threaded run, and OpenMP threads spin badly when cores are shared.
export OMP_NUM_THREADS=1
# glibc: serve allocations up to 32 MB from the heap and keep freed memory, instead of mapping fresh pages each
# step (page faults on first touch): 7-14% faster U-Net training steps here (docs/training.md)
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456
t0=$(date +%s)
mark() { echo "[train_bundled] $1 at $(( $(date +%s) - t0 )) s"; }

# 41 frames: the largest trained keyframe layout, 9 keyframes at stride 5, spans 41 (configs/shapes-keyframes.yaml)
[ -f "$W/shapes/metadata.jsonl" ] || $V/vidiff data shapes --out "$W/shapes" --num 2000 --frames 41 --seed 1
mark "shapes"

# Every training stage runs under bf16 autocast where the CPU has AMX-BF16 (weights, gradients and AdamW stay
# fp32): on a 2-core Xeon with AMX the diffusion models' whole step ran 1.25-1.29x the fp32 speed, the VAE's 1.78x and
# the temporal decoder's 1.75x (docs/benchmarks.md, "bf16 on a CPU: the norms and the attention", "The VAE recipes
# in bf16"); the recipe took 58.5 minutes so (docs/training.md, "The recipe in under an hour"). Elsewhere
# fp32 (AVX-512 alone converts, AVX2 emulates). MIXED_PRECISION=no|bf16 chooses, the latent cache's encoder too.
MP=${MIXED_PRECISION:-$($V/python -c "import torch; from vidiff.cpu_precision import cpu_flags, cpu_has_fast
print('bf16' if 'amx_bf16' in cpu_flags() and cpu_has_fast(torch.bfloat16) else 'no')")}
echo "[train_bundled] train.mixed_precision=$MP"

tdec_cmd=()
if [ -n "${VAE_FROM:-}" ]; then
  # a run folder around the given part, so that `vidiff export` takes it like a trained one
  mkdir -p "$W/vae_temporal/export"
  cp "$VAE_FROM"/config.yaml "$VAE_FROM"/model.safetensors "$W/vae_temporal/export/"
  [ -f "$VAE_FROM/trained_on.yaml" ] && cp "$VAE_FROM/trained_on.yaml" "$W/vae_temporal/export/"
  sed 's#^init_weights: .*#init_weights: null#' configs/shapes-vae-temporal.yaml > "$W/vae_temporal/config.yaml"
  VAE_ENC="$W/vae_temporal/export"
else
  [ -f "$W/vae/export/model.safetensors" ] || OMP_NUM_THREADS=2 $V/vidiff train --config configs/shapes-vae.yaml \
    --set data.root="$W/shapes" --set output_dir="$W/vae" --set train.mixed_precision="$MP" --resume auto
  VAE_ENC="$W/vae/export"
  # the decoder learns on clips; the encoder, so the latent space the cache holds, stays as trained above
  [ -f "$W/vae_temporal/export/model.safetensors" ] || tdec_cmd=($V/vidiff train
    --config configs/shapes-vae-temporal.yaml --set init_weights="$W/vae/export" --set output_dir="$W/vae_temporal"
    --set train.mixed_precision="$MP" --resume auto)
fi
mark "vae"

common=(--set data.root="$W/latents" --set vae="$VAE_ENC" --set train.mixed_precision="$MP" --resume auto)
[ -n "${FORCE:-}" ] && common+=(--force)
kf_extra=() it_extra=()
if [ -n "${INIT_FROM:-}" ]; then
  lr=${FT_LR:-3.0e-4}
  kf_extra=(--set init_weights="$INIT_FROM/keyframes" --set train.max_steps="${KF_STEPS:-2000}"
            --set optimizer.lr="$lr" --set optimizer.warmup_steps=50)
  it_extra=(--set init_weights="$INIT_FROM/interpolation" --set train.max_steps="${IT_STEPS:-1200}"
            --set optimizer.lr="$lr" --set optimizer.warmup_steps=50)
fi
# The latent cache on both cores first, its encoder in bf16 where the stages train in bf16: 2000 clips took 638 s
# on one core in fp32 beside the temporal decoder, the encoder ran 0.076 s a clip at 2 threads in bf16 against
# 0.143 in fp32, its latents 0.6% of their spread (RMS) from fp32's (docs/training.md, "The latent cache in bf16").
# The VAE's decoder learnt on bf16-encoded latents already: the VAE stage trains under the same autocast.
ENC=$([ "$MP" = bf16 ] && echo bfloat16 || echo float32)
# resumes at the first missing shard; a finished cache returns at once
OMP_NUM_THREADS=2 $V/vidiff data cache --videos "$W/shapes" --vae "$VAE_ENC" --frames 41 --size 64 --out "$W/latents" \
  --encode-dtype "$ENC" > "$W/latent_cache.log" 2>&1 || { echo "train_bundled: the latent cache failed (see $W/latent_cache.log)" >&2; exit 1; }
mark "latent cache"
# Then two lanes, one core each: the keyframe model; the temporal decoder (it needs the VAE, not the cache), then
# the interpolation model. 8000 keyframe steps against 1200 decoder + 4850 interpolation steps: on a 2-core Xeon the
# lanes took 3392 s and 1190 + 2197 s at 8400 / 1500 + 4850 steps (docs/training.md, "Every stage in bf16"), so
# that at these counts they end together.
(
  $V/vidiff train --config configs/shapes-keyframes.yaml --set output_dir="$W/keyframes" "${common[@]}" \
    --set train.preview_every=0 "${kf_extra[@]}" > "$W/keyframes.log" 2>&1
  echo "[train_bundled] keyframes at $(( $(date +%s) - t0 )) s"
) &
lane_a=$!
(
  if [ ${#tdec_cmd[@]} -gt 0 ]; then
    "${tdec_cmd[@]}" > "$W/vae_temporal.log" 2>&1
    echo "[train_bundled] temporal decoder at $(( $(date +%s) - t0 )) s"
  fi
  $V/vidiff train --config configs/shapes-interpolation.yaml --set output_dir="$W/interpolation" "${common[@]}" \
    "${it_extra[@]}" > "$W/interpolation.log" 2>&1
  echo "[train_bundled] interpolation at $(( $(date +%s) - t0 )) s"
) &
lane_b=$!
wait_jobs "train_bundled: a step failed (see $W/keyframes.log, vae_temporal.log, interpolation.log)" \
  $lane_a $lane_b
mark "keyframes | temporal decoder + interpolation"

# keyframe guidance 4 at noise levels sigma >= 1 only: guidance at every level rounds squares (94% of plain prompts
# at 4, 100% at 2; docs/shapes_measured.md, "Keyframe guidance and square corners"), guidance where the layout and
# motion form keeps them and holds this recipe's direction on the long layouts (9 x 4: 98% against 93% at
# guidance 2, 100 clips; "Guidance where the motion forms"); fills by euler_ancestral: 4.3-5.5 dB over the blend
# at gaps 2-8, dpmpp_2m 3.4 at gap 2 (docs/shapes_measured.md, "The fills' sampler"); extensions start each new keyframe
# from the clip's last frame moved on at its speed, at strength 0.2, as the bundle does (docs/shapes_measured.md,
# "Extensions that keep the clip's speed")
$V/vidiff export "$W/vae_temporal" "$W/keyframes" "$W/interpolation" -o "$OUT" --force --guidance 4 \
  --guidance-interval 1 1000 --interpolation-sampler euler_ancestral --extension-strength 0.2
mark "export"
