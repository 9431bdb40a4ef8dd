"""Shapes accuracy of a text-to-video folder, per direction phrase of the prompt set that made it: which wordings
the model misses (docs/shapes_measured.md, "A start said on its own").

    .venv/bin/python tools/score_by_phrase.py FOLDER (--user-set a|b|c|d | --held-out) [--attribute direction]

FOLDER: clips with sidecars, e.g. DIR/t2v_user_d of `tools/eval_bundled.py --user-wording d --out DIR`, or
DIR/t2v_paraphrase with --held-out. A clip counts as right when colour, shape, direction and one object are, or
only the one --attribute.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from user_wordings import DIRECTIONS as USER_DIRECTIONS  # noqa: E402

from vidiff.data.captions import HELD_OUT, contains_phrase  # noqa: E402
from vidiff.eval.shapes import evaluate_shapes_folder  # noqa: E402


def tally(rows: list[dict], phrases: dict[str, str], attribute: str = "all_correct") -> tuple[Counter, Counter]:
    """(right, total) per phrase; a prompt counts under the longest phrase it holds."""
    right, total = Counter(), Counter()
    by_length = sorted(phrases, key=len, reverse=True)
    for row in rows:
        phrase = next((p for p in by_length if contains_phrase(row["prompt"].lower(), p)), None)
        if phrase is None:
            raise SystemExit(f"score_by_phrase: no phrase of the set in {row['prompt']!r} ({row['file']})")
        total[phrase] += 1
        right[phrase] += bool(row["matches"][attribute])
    return right, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--user-set", choices=sorted(USER_DIRECTIONS))
    which.add_argument("--held-out", action="store_true")
    p.add_argument("--attribute", default="all_correct", choices=["all_correct", "colour", "shape", "direction",
                                                                  "one_object"])
    args = p.parse_args()
    table = HELD_OUT.directions if args.held_out else USER_DIRECTIONS[args.user_set]
    phrases = {phrase: direction for direction, group in table.items() for phrase in group}
    right, total = tally(evaluate_shapes_folder(args.folder)["clips"], phrases, args.attribute)
    for phrase in sorted(total, key=lambda q: (phrases[q], q)):
        print(f"{phrases[phrase]:<6} {phrase:<48} {right[phrase]:>3} / {total[phrase]}")
    print(f"{'all':<6} {'':<48} {sum(right.values()):>3} / {sum(total.values())}")


if __name__ == "__main__":
    main()
