#!/usr/bin/env bash
# The real-interp pipeline (issue 18) from scratch, with the project's own code, one thread per job (two for the VAE):
#   bash tools/train_real_interp.sh [WORK [OUT]]   (defaults: runs/real-interp, vidiff/bundled/real-interp)
# 1. the training corpus: vtest.avi, Megamind.avi, Megamind_bugy.avi, newtonscradle.gif
#    (tools/fetch_sample_videos.sh) and scikit-image's bundled stills, decoded once (short side up to 576);
#    tree.avi, cockatoo.mp4 and realshort.mp4 are held out and never read  2. the VAE (configs/real-vae.yaml) on
#    augmented 64x64 crops  3. the window cache: every 9-frame window of each clip under 8 fixed crops / flips /
#    time strides, encoded once, with their 64 px frames  4. the interpolation model (configs/real-interpolation.yaml:
#    the residual from the flow anchor, the two ends warped along optical flow and encoded), gaps 2..8, and beside
#    it, on the second core, the VAE's temporal decoder
#    (configs/real-vae-temporal.yaml: encoder frozen, so the cache's latents stay valid)  5. an interpolation-only
#    pipeline folder (the VAE with its temporal decoder + interpolation), sampling one Euler step from sigma 10
#    (after a mean phase of the interpolation model at noise levels around 9): the model's estimate of the mean
#    in-between frame, which scored best on training clips
#    (docs/real_footage.md); weights stored in float16 except the VAE's encoder side.
# Each training step resumes from its newest complete checkpoint if the script is run again; finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/real-interp}
OUT=${2:-vidiff/bundled/real-interp}
PY=.venv/bin/python
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$W"
t0=$(date +%s)
mark() { echo "[train_real_interp] $1 at $(( $(date +%s) - t0 )) s"; }

bash tools/fetch_sample_videos.sh
[ -f "$W/corpus/manifest.json" ] || $PY tools/real_interp.py prep --samples third_party_samples --out "$W/corpus"
mark "corpus"
# nothing runs beside the VAE: it takes both cores (a step 1.6x as fast as on one on an AVX-512 EPYC, 1.9x on an
# AVX2 one)
[ -f "$W/vae/export/model.safetensors" ] || OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 $PY tools/real_interp.py vae \
  --config configs/real-vae.yaml --corpus "$W/corpus" --run "$W/vae" > "$W/vae.log" 2>&1
mark "vae"
# the temporal decoder learns beside the cache and the interpolation model (it needs only the per-frame VAE)
vt=
if [ ! -f "$W/vae_temporal/export/model.safetensors" ]; then
  $PY tools/real_interp.py vae --config configs/real-vae-temporal.yaml --corpus "$W/corpus" --run "$W/vae_temporal" \
    --set init_weights="$W/vae/export" > "$W/vae_temporal.log" 2>&1 &
  vt=$!
fi
[ -f "$W/windows/windows.json" ] || $PY tools/real_interp.py cache --corpus "$W/corpus" --vae "$W/vae/export" \
  --out "$W/windows" --size 64 --window 9 --hop 1 --variants 8 --pixels > "$W/cache.log" 2>&1
mark "window cache"
[ -f "$W/interpolation/export/model.safetensors" ] || $PY tools/real_interp.py interp \
  --config configs/real-interpolation.yaml --cache "$W/windows" --vae "$W/vae/export" --run "$W/interpolation" \
  > "$W/interpolation.log" 2>&1
mark "interpolation"
# the mean phase: the pipeline samples one Euler step, i.e. asks the part only for its estimate of the mean
# in-between frame at a high noise level, where the first phase's noise levels (centred on 0.15) rarely went; 600
# more steps with the levels centred on 9 (docs/real_footage.md)
[ -f "$W/interpolation_mean/export/model.safetensors" ] || $PY tools/real_interp.py interp \
  --config configs/real-interpolation.yaml --cache "$W/windows" --vae "$W/vae/export" --run "$W/interpolation_mean" \
  --set init_weights="$W/interpolation/export" --set diffusion.noise.p_mean=2.2 --set diffusion.noise.p_std=0.6 \
  --set train.max_steps=600 --set optimizer.lr=5.0e-4 --set optimizer.warmup_steps=20 \
  > "$W/interpolation_mean.log" 2>&1
mark "interpolation, mean phase"
[ -z "$vt" ] || wait "$vt"
mark "vae temporal decoder"
$PY tools/real_interp.py export --vae "$W/vae_temporal" --interp "$W/interpolation_mean" -o "$OUT" --steps 1 \
  --sampler euler --sigma-max 10 --half
mark "export"
