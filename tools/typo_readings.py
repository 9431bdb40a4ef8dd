"""How often the Shapes prompt reader still finds a prompt's colour, shape and direction when one of its words has a
typo, with the spelling reader (pipeline.yaml read_misspellings) and without.

    .venv/bin/python tools/typo_readings.py [--num 1000] [--seed 0]

Each prompt is a held-out paraphrase (vidiff/data/captions.py heldout_prompt) of a random colour, shape and direction,
with one edit (a letter dropped, added, changed or two neighbours swapped, each as likely) in one of its words that
name an attribute and have 4 letters or more, chosen at random. A prompt is read right when the prompt reader finds
exactly the asked colour, shape and direction in what the text encoder gets (the judge of `vidiff eval shapes`).
Text only: no model runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import string
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidiff.data.captions import heldout_prompt  # noqa: E402
from vidiff.data.prompt_words import prompt_tokens  # noqa: E402
from vidiff.data.shapes import all_combinations  # noqa: E402
from vidiff.data.shapes_prompt import named_values  # noqa: E402
from vidiff.pipeline.config import read_pipeline_folder  # noqa: E402
from vidiff.pipeline.prompt_reading import encoder_text  # noqa: E402
from vidiff.random import generator  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes"


def one_edit(word: str, rng: random.Random) -> str:
    """`word` with one random edit of Damerau's four kinds (never the word itself)."""
    while True:
        i, kind, letter = rng.randrange(len(word)), rng.randrange(4), rng.choice(string.ascii_lowercase)
        typo = (word[:i] + word[i + 1:] if kind == 0 else word[:i] + letter + word[i:] if kind == 1
                else word[:i] + letter + word[i + 1:] if kind == 2
                else word[:i] + word[i + 1:i + 2] + word[i] + word[i + 2:])
        if typo != word:
            return typo


def attribute_words(config, prompt: str, truth: tuple[str, str, str]) -> list[tuple[int, int]]:
    """Spans of the words of `prompt` (4 letters or more) without which the pipeline's reading misses the truth."""
    spans = []
    for word, (start, end) in prompt_tokens(prompt):
        rest = prompt[:start] + "x" * (end - start) + prompt[end:]
        if len(word) >= 4 and _read(encoder_text(config, rest)) != truth:
            spans.append((start, end))
    return spans


def _read(text: str) -> tuple:
    named = named_values(text)
    return tuple(v[0] if len(v) == 1 else None for v in named.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num", type=int, default=1000, help="prompts (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    on = read_pipeline_folder(str(BUNDLE))
    off = dataclasses.replace(on, read_misspellings=False)
    rng, combos = random.Random(args.seed), all_combinations()
    right = {"as written": 0, "read_misspellings: false": 0, "read_misspellings: true": 0}
    made = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while made < args.num:
            truth = combos[rng.randrange(len(combos))]
            prompt = heldout_prompt(*truth, generator(args.seed, made))
            if _read(encoder_text(on, prompt)) != truth:
                continue  # the reader misses it without a typo too: not a typo's figure
            spans = attribute_words(on, prompt, truth)
            if not spans:
                continue  # every word naming an attribute is under 4 letters ("a red box going up")
            start, end = rng.choice(spans)
            typo = prompt[:start] + one_edit(prompt[start:end].lower(), rng) + prompt[end:]
            made += 1
            right["as written"] += _read(typo) == truth
            right["read_misspellings: false"] += _read(encoder_text(off, typo)) == truth
            right["read_misspellings: true"] += _read(encoder_text(on, typo)) == truth
    for name, n in right.items():
        print(f"{name:26s} {n} of {made} read right ({100 * n / made:.1f}%)")


if __name__ == "__main__":
    main()
