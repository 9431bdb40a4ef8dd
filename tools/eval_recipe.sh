#!/usr/bin/env bash
# The figures of issue 14 for a pipeline (e.g. one tools/train_bundled.sh made), in two processes of one thread each
# (about 30 minutes on a 2-core CPU):
#   bash tools/eval_recipe.sh OUT [D]   (D: where the clips, summaries and logs go; default OUT-eval)
# D/a.log: plain template, held-out words, layout 7x5 (50 clips), user keyframes 16@0,7,15; D/k.log: user set k;
# D/d.log: extend by 64 from 8 known frames; D/c.log: layouts 6x3, 5x5, 9x4, user keyframes, animate;
# D/gaps0.log, D/gaps50.log: the fills at gaps 2-8 against the blend and the VAE's ceiling (clips 0-49, 50-99).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash tools/eval_recipe.sh OUT [D]}
D=${2:-$OUT-eval}
mkdir -p "$D"
export OMP_NUM_THREADS=1
P=.venv/bin/python
( $P tools/eval_bundled.py --model "$OUT" --num 100 --paraphrase --skip animate extend \
    --layouts 31:7x5 --layout-num 50 --user-keyframes 16@0,7,15 --out "$D/a" > "$D/a.log" 2>&1
  $P tools/eval_bundled.py --model "$OUT" --num 100 --skip t2v animate extend --user-wording k --out "$D/k" > "$D/k.log" 2>&1
  $P tools/interp_gap_ceiling.py --model "$OUT" --num 50 --first 50 > "$D/gaps50.log" 2>&1 ) &
first=$!
( $P tools/eval_bundled.py --model "$OUT" --trials 50 --skip t2v animate \
    --extend-long 64 --extend-given 8 --out "$D/d" > "$D/d.log" 2>&1
  $P tools/eval_bundled.py --model "$OUT" --trials 50 --skip t2v extend \
    --layouts 16:6x3 21:5x5 33:9x4 --user-keyframes 16@7 16@3,12 31@0,13,30 --layout-num 20 --out "$D/c" > "$D/c.log" 2>&1
  $P tools/interp_gap_ceiling.py --model "$OUT" --num 50 --first 0 > "$D/gaps0.log" 2>&1 ) &
second=$!
source tools/wait_jobs.sh
wait_jobs "eval_recipe: a check failed (see $D/*.log)" $first $second
echo "[eval_recipe] done; summaries in $D/{a,c,d,k}/summary.json, the fills in $D/gaps0.log and gaps50.log"
