#!/usr/bin/env bash
# Teaches a Shapes pipeline's keyframe part to take an extension's speed from the clip (issue 14, "long clips"):
#   bash tools/finetune_speed.sh [WORK_DIR [OUT [FROM]]]   (defaults: runs/speed, WORK_DIR/pipeline,
#                                                          vidiff/bundled/shapes)
# 1. 2000 Shapes clips of 41 frames (seed 1) whose speeds are scaled by a factor in [0.3, 1] (`--min-speed-scale`):
#    slow clips like the ones a user extends, which the bundle's data lacked; encoded by FROM's VAE.
# 2. the keyframe part from FROM's weights, in two phases at lr 3e-4 on both cores:
#    a. 1500 steps with the first keyframes known (k = 1 or 2) in 28% of samples and the first alone in 24%;
#    b. 2500 steps with the first keyframes known (k = 1 or 2, as extend_video's windows know them) in 46% of
#       samples, so that the motion between known keyframes, not the prior, sets the speed.
#    A_STEPS=0 skips phase a (phase b then starts from FROM's keyframes); B_STEPS sets phase b's length and B_SETS
#    adds `--set` overrides to it ("KEY=VALUE KEY=VALUE"). The caption fine-tune of 2026-12-03 (paths such as "from
#    left to right" in the grammar) is documented with its commands in docs/shapes_measured.md.
# 3. the keyframe control adapter, tied to the keyframe part's weights, from FROM's adapter: 300 steps at lr 3e-4.
# 4. OUT: FROM with the new keyframes/ and control-keyframes/ (VAE, interpolation part and its adapter unchanged).
# Each run resumes from its newest checkpoint when the script is run again. OUT must not be FROM: it is replaced
# whole at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/speed}
OUT=${2:-$W/pipeline}
FROM=${3:-vidiff/bundled/shapes}
V=.venv/bin
if [ "$(realpath -m "$OUT")" = "$(realpath -m "$FROM")" ]; then
  echo "finetune_speed: OUT and FROM are the same folder ($OUT); write OUT elsewhere, then copy it" >&2
  exit 2
fi
mkdir -p "$W"
export OMP_NUM_THREADS=2
# glibc: keep freed memory instead of mapping fresh pages each step (docs/training.md, "The allocator on CPU")
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456
t0=$(date +%s)
mark() { echo "[finetune_speed] $1 at $(( $(date +%s) - t0 )) s"; }

[ -f "$W/shapes/metadata.jsonl" ] || $V/vidiff data shapes --out "$W/shapes" --num 2000 --frames 41 --seed 1 \
  --min-speed-scale 0.3
$V/vidiff data cache --videos "$W/shapes" --vae "$FROM/vae" --frames 41 --size 64 --out "$W/latents"
mark "data"

common=(--set data.root="$W/latents" --set vae="$FROM/vae" --set optimizer.lr=3.0e-4 --set optimizer.warmup_steps=50
        --set train.preview_every=0 --resume auto)
[ -n "${FORCE:-}" ] && common+=(--force)
b_init="$FROM/keyframes"
b_sets=()
for kv in ${B_SETS:-}; do b_sets+=(--set "$kv"); done
if [ "${A_STEPS:-1500}" != 0 ]; then
  $V/vidiff train --config configs/shapes-keyframes.yaml --set output_dir="$W/keyframes-a" "${common[@]}" \
    --set init_weights="$FROM/keyframes" --set train.max_steps="${A_STEPS:-1500}" \
    --set conditioning.pattern_first=0.3 --set conditioning.pattern_first_k=0.35 > "$W/keyframes-a.log" 2>&1
  mark "keyframes, phase a"
  b_init="$W/keyframes-a/export"
fi
$V/vidiff train --config configs/shapes-keyframes.yaml --set output_dir="$W/keyframes-b" "${common[@]}" \
  --set init_weights="$b_init" --set train.max_steps="${B_STEPS:-2500}" --set train.seed=1 \
  --set conditioning.pattern_none=0.15 --set conditioning.pattern_first=0.25 --set conditioning.pattern_first_k=0.6 \
  --set conditioning.pattern_region=0.2 "${b_sets[@]}" > "$W/keyframes-b.log" 2>&1
mark "keyframes, phase b"
$V/vidiff train --config configs/shapes-control-keyframes.yaml --set base="$W/keyframes-b/export" \
  --set vae="$FROM/vae" --set init_weights="$FROM/control-keyframes" --set output_dir="$W/control-keyframes" \
  --set train.max_steps=300 --set optimizer.lr=3.0e-4 --set optimizer.warmup_steps=20 --resume auto \
  > "$W/control-keyframes.log" 2>&1
mark "control adapter"

rm -rf "$OUT.tmp"
cp -r "$FROM" "$OUT.tmp"
rm -rf "$OUT.tmp/keyframes" "$OUT.tmp/control-keyframes"
cp -r "$W/keyframes-b/export" "$OUT.tmp/keyframes"
cp -r "$W/control-keyframes/export" "$OUT.tmp/control-keyframes"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
$V/python -c 'import sys; from vidiff.pipeline import VideoPipeline; VideoPipeline.from_pretrained(sys.argv[1])' "$OUT"
mark "pipeline at $OUT"
du -sh "$OUT"
