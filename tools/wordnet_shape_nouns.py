"""Build vidiff/data/wordnet_shapes.py: the English nouns WordNet 3.0 defines as a Shapes shape.

    .venv/bin/python tools/wordnet_shape_nouns.py [--wordnet /usr/share/wordnet] > vidiff/data/wordnet_shapes.py

WordNet's database files come with Debian's wordnet-base package (`apt-get install wordnet-base`). One rule, the
same for every noun, so that no word is picked by hand (docs/shapes_measured.md, "Shape nouns read through
WordNet"): a one-word noun reads as a Shapes shape when its senses in WordNet's shape category (the lexicographer
file noun.shape) that say a shape at all say one and the same:
- a kind of circle, square, rectangle or triangle (the synset descends from that figure: "dot", "wedge"), or
- a body (a solid or a round shape: "sphere", "cube", "pyramid") whose definition names one of them, or its
  adjective ("spherical", "rectangular", "triangular"); a solid is seen from its side, so the shape its definition
  gives its base is not its own ("a shape whose base is a circle and whose sides taper up to a point": a cone says
  no shape).
A rectangle is read as the square, the Shapes shape nearest it. Words of two shapes are left out.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

SHAPE_LEXICOGRAPHER_FILE = "25"  # noun.shape
# the words of a definition that name a Shapes shape
DEFINITION_WORDS = {
    "circle": "circle", "circular": "circle", "round": "circle", "sphere": "circle", "spherical": "circle",
    "disk": "circle", "disc": "circle",
    "square": "square", "squares": "square", "rectangle": "square", "rectangular": "square", "cube": "square",
    "triangle": "triangle", "triangular": "triangle",
}
# (lemma, how its definition starts): the plane figures whose kinds are read as that shape, and the bodies
FIGURES = {("circle", "ellipse in which"): "circle", ("square", "(geometry) a plane rectangle"): "square",
           ("rectangle", "a parallelogram with four"): "square", ("triangle", "a three-sided polygon"): "triangle"}
BODIES = (("solid", "a three-dimensional shape"), ("round_shape", "a shape that is curved"))


class WordNet:
    """The nouns of WordNet's database files: synsets by offset, and each lemma's synsets in WordNet's sense order."""

    def __init__(self, folder: Path):
        self.synsets: dict[str, tuple[str, list[str], str]] = {}  # offset -> (lexicographer file, hypernyms, gloss)
        for line in (folder / "data.noun").open(encoding="latin-1"):
            if line.startswith("  "):  # the licence at the top
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            word_count = int(fields[3], 16)
            at = 4 + 2 * word_count
            pointers = [fields[at + 1 + 4 * k: at + 5 + 4 * k] for k in range(int(fields[at]))]
            hypernyms = [offset for symbol, offset, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
            self.synsets[fields[0]] = (fields[1], hypernyms, gloss.strip())
        self.senses: dict[str, list[str]] = {}
        for line in (folder / "index.noun").open(encoding="latin-1"):
            if line.startswith("  "):
                continue
            fields = line.split()
            self.senses[fields[0]] = fields[-int(fields[2]):]

    def synset(self, lemma: str, gloss_start: str) -> str:
        for offset in self.senses[lemma]:
            if self.synsets[offset][2].startswith(gloss_start):
                return offset
        raise SystemExit(f"WordNet has no sense of {lemma!r} defined as {gloss_start!r}...: not WordNet 3.0?")

    def ancestors(self, offset: str) -> set[str]:
        seen, stack = set(), [offset]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack += self.synsets[node][1]
        return seen


def definition_shapes(gloss: str) -> set[str]:
    """The Shapes shapes a WordNet gloss's definition (before its quoted examples) names, not counting its base's."""
    words = re.findall(r"[a-z]+", re.split(r';\s*"', gloss)[0].lower())
    shapes = set()
    for i, word in enumerate(words):
        base = words[i + 1:i + 2] == ["base"] or words[max(0, i - 3):i - 1] == ["base", "is"]
        if word in DEFINITION_WORDS and not base:
            shapes.add(DEFINITION_WORDS[word])
    return shapes


def shape_nouns(wordnet: WordNet) -> dict[str, str]:
    figures = {wordnet.synset(lemma, start): shape for (lemma, start), shape in FIGURES.items()}
    bodies = {wordnet.synset(lemma, start) for lemma, start in BODIES}

    def sense_shapes(offset: str) -> set[str]:
        ancestors = wordnet.ancestors(offset)
        kinds = {figures[a] for a in ancestors if a in figures}
        if kinds:
            return kinds
        return definition_shapes(wordnet.synsets[offset][2]) if ancestors & bodies else set()

    nouns = {}
    for lemma, offsets in wordnet.senses.items():
        if not lemma.isalpha():  # one plain word: no compounds ("round_shape"), hyphens or digits
            continue
        said = set().union(*(sense_shapes(o) for o in offsets if wordnet.synsets[o][0] == SHAPE_LEXICOGRAPHER_FILE))
        if len(said) == 1:
            nouns[lemma] = said.pop()
    return dict(sorted(nouns.items()))


HEADER = '''"""The one-word English nouns WordNet 3.0 defines as a Shapes shape (circle, square, triangle), for
vidiff/data/shape_nouns.py. Generated by tools/wordnet_shape_nouns.py from Debian's wordnet-base package; the rule
is in that tool's docstring, and no word was picked by hand.

Derived from WordNet 3.0, under its licence:

WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

Permission to use, copy, modify and distribute this software and database and its documentation for any purpose
and without fee or royalty is hereby granted, provided that you agree to comply with the following copyright notice
and statements, including the disclaimer, and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal use or for distribution.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES,
EXPRESS OR IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR
WARRANTIES OF MERCHANT- ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE,
DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in advertising or publicity pertaining to
distribution of the software and/or database.  Title to copyright in this software, database and any associated
documentation shall at all times remain with Princeton University and LICENSEE agrees to preserve same.
"""
'''


def wrapped_rows(items: list[str]) -> list[str]:
    """`items` (each a Python literal and its comma) as rows of a module's table, indented 4, at most 118 wide."""
    rows, row = [], "   "
    for item in items:
        if len(row) + len(item) + 1 > 118:
            rows.append(row)
            row = "   "
        row += " " + item
    return rows + [row]


def module_text(nouns: dict[str, str]) -> str:
    lines = [HEADER, "WORDNET_SHAPE_NOUNS = {"]
    for shape in ("circle", "square", "triangle"):
        lines += wrapped_rows([f'"{w}": "{shape}",' for w, s in nouns.items() if s == shape])
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"),
                   help="folder of WordNet 3.0's database files (data.noun, index.noun)")
    args = p.parse_args()
    if not (args.wordnet / "data.noun").is_file():
        raise SystemExit(f"{args.wordnet}: no WordNet data.noun here (Debian: apt-get install wordnet-base)")
    print(module_text(shape_nouns(WordNet(args.wordnet))), end="")


if __name__ == "__main__":
    main()
