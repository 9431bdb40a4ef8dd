"""The prompt reader (vidiff/data/shapes_prompt.py) on two corpora written by a helper session that read none of
its code: 470 motion phrases and 385 shape phrases, each with the direction or shape a person means ("none" where
there is no one of the four directions or three shapes). The prompt template (prompt_template.py) draws what the
reader reads, so a wrong reading is a wrong clip; a phrase it does not read keeps its words. Both corpora were used
to fix the reader (2026-12-06), so these are guards, not generalization figures: the blind ones are user sets g-i
(tools/user_wordings.py, docs/shapes_measured.md)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vidiff.data.prompt_words import read_untrained_words
from vidiff.data.prompt_ambiguity import ambiguous_prompt_note
from vidiff.data.shapes_prompt import parse_prompt

CORPORA = Path(__file__).parent / "data" / "prompt_corpora"


def _readings(name: str, index: int) -> Counter:
    counts = Counter()
    for line in (CORPORA / name).read_text().splitlines():
        label, prompt = line.split("\t")
        read = read_untrained_words(prompt)[0]
        got = parse_prompt(read)[index]
        if label == "none":
            # a diagonal or a motion both ways may name a direction, so long as the pipeline says it is two
            counts["none right" if got is None or ambiguous_prompt_note(read) else "none read as one"] += 1
        else:
            counts["right" if got == label else "unread" if got is None else "wrong"] += 1
    return counts


@pytest.mark.parametrize("name, index, right, wrong, none_as_one", [
    ("motion_phrases.tsv", 2, 418, 0, 0),  # 391 right and 6 wrong before the fixes they led to
    ("shape_phrases.tsv", 1, 307, 1, 2),  # 226 right before; 251 before everyday things (object_shapes.py), 302
    # before things named by two words ("pizza slice", "sticky note")
])
def test_the_reader_on_phrases_written_apart_from_it(name, index, right, wrong, none_as_one):
    counts = _readings(name, index)
    assert counts["right"] >= right and counts["wrong"] <= wrong, counts
    assert counts["none read as one"] <= none_as_one, counts
