"""Misspelt Shapes words in a prompt, read as the word meant ("a yelow squre" -> "a yellow square").

The prompt readers find a colour, a shape and a direction by their words, so one wrong letter lost the attribute: "a
blue squre moving up" named no shape, and the shape was left to chance. A word is read as a Shapes word (a colour,
shape or direction word some reader knows, of 4 letters or more) when

- it is no word the readers know and no English word: not a whole word of the default text encoder's WordPiece
  vocabulary (about 22,000 lower-case words: "greet", "glue", "light") nor one of WordNet's words one edit from a
  Shapes word, which that vocabulary lacks ("mellow", "preen", "deft": wordnet_near_words.py);
- it has 3 letters or more ("gol", "lft"); and
- it is one edit from that Shapes word: a letter added, dropped or changed, or two neighbours swapped. Damerau (1964)
  found over 80% of misspellings to be one such edit. A word one edit from several is read as the one that names
  what the rest of the prompt does not ("a blue square moving letf": left, not the colour leaf), else left as
  written ("gren": green or grey).

Each word so read gets a one-line note, and every reader after this one sees the word meant.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from vidiff.data.prompt_words import plural_of, prompt_tokens, replace_word

_SUFFIXES = "ydrs"
SHORTEST = 3  # a misspelt word: "rd" or "bu" could be many words ("gol", "lft": gold, left)
TARGET_SHORTEST = 4  # a Shapes word: a 3-letter word one edit off "red" or "box" is often another word


@dataclass(frozen=True)
class SpellingReading:
    said: tuple[str, ...]  # the misspelt words as the prompt says them, lower-case
    meant: tuple[str, ...]  # the Shapes word each is read as


@cache
def _word_kinds() -> dict[str, frozenset[str]]:
    """The one-word colour, shape and direction names the prompt readers know, each with what it names of the three
    ("drop" names a shape, WordNet's, and a direction)."""
    from vidiff.data.captions import HELD_OUT, TRAIN
    from vidiff.data.direction_phrases import DIRECTION_WORDS
    from vidiff.data.object_shapes import OBJECT_SHAPES
    from vidiff.data.shapes_prompt import _COLOUR_WORDS, _SHAPE_WORDS
    from vidiff.data.wordnet_shapes import WORDNET_SHAPE_NOUNS
    from vidiff.data.xkcd_colours import XKCD_COLOURS

    kinds: dict[str, set[str]] = defaultdict(set)
    named = {"colour": [_COLOUR_WORDS, XKCD_COLOURS], "shape": [_SHAPE_WORDS, OBJECT_SHAPES, WORDNET_SHAPE_NOUNS],
             "direction": [DIRECTION_WORDS]}
    for vocab in (TRAIN, HELD_OUT):
        named["colour"] += list(vocab.colours.values())
        named["shape"] += list(vocab.shapes.values())
    for kind, tables in named.items():
        for table in tables:
            for word in table:
                if word.isalpha():
                    kinds[word].add(kind)
    return {word: frozenset(k) for word, k in kinds.items()}


@cache
def shapes_words() -> frozenset[str]:
    """The one-word colour, shape and direction names the prompt readers know."""
    return frozenset(_word_kinds())


@cache
def _english_words() -> frozenset[str]:
    """The whole lower-case words of the default text encoder's WordPiece vocabulary (empty if it is not installed:
    then nothing is read as misspelt)."""
    from vidiff.text_folder import default_model_folder

    try:
        vocab = Path(default_model_folder()) / "vocab.txt"
        lines = vocab.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.islower())


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@cache
def _by_deletion() -> dict[str, frozenset[str]]:
    """Each Shapes word of 4 letters or more under itself and under each of its one-letter deletions: a word one
    edit from it shares one of these keys (a symmetric-deletion index; the edit distance then decides)."""
    index: dict[str, set[str]] = defaultdict(set)
    for word in shapes_words():
        if len(word) >= TARGET_SHORTEST:
            for key in _deletions(word) | {word}:
                index[key].add(word)
    return {key: frozenset(words) for key, words in index.items()}


def _one_edit(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter added, dropped or changed, or two neighbouring letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def near_shapes_words(word: str) -> set[str]:
    """The Shapes words of 4 letters or more one edit from `word` (lower case), other than those it is made from
    ("pointy", "bluey" and "cubed" are words made from a Shapes word, not slips of one; "leftt" is a slip)."""
    index = _by_deletion()
    near = set().union(*(index.get(key, ()) for key in _deletions(word) | {word}))
    return {w for w in near if _one_edit(word, w) and not (word[:-1] == w and word[-1] in _SUFFIXES)}


def _candidates(word: str) -> set[str]:
    """The Shapes words a misspelt `word` (lower case) may mean: none for a word the readers, the vocabulary or
    WordNet know, or a short one."""
    from vidiff.data.wordnet_near_words import WORDNET_NEAR_WORDS

    known = shapes_words()
    if (len(word) < SHORTEST or word in known or plural_of(word, known) or word in _english_words()
            or word in WORDNET_NEAR_WORDS):
        return set()
    near = near_shapes_words(word)
    # a noun and its plural ("blockk": block or blocks) say one thing: the noun, as the word is as often one
    nouns = {w for w in near if not plural_of(w, near)}
    return nouns if len(nouns) == 1 and all(plural_of(w, nouns) for w in near - nouns) else near


def meant_word(word: str) -> str | None:
    """The Shapes word a misspelt `word` (lower case) is read as on its own, or None: a word the readers, the
    vocabulary or WordNet know, a short one, or one that is one edit from no Shapes word or from several."""
    near = _candidates(word)
    return near.pop() if len(near) == 1 else None


def _named_kinds(prompt: str) -> set[str]:
    """Which of colour, shape and direction the prompt reader finds in `prompt` (its colour names and shape nouns
    read)."""
    from vidiff.data.prompt_words import read_untrained_words
    from vidiff.data.shapes_prompt import named_values

    return {kind for kind, values in named_values(read_untrained_words(prompt, spelling=False)[0]).items() if values}


def read_misspellings(prompt: str) -> tuple[str, SpellingReading | None]:
    """(the prompt with each misspelt Shapes word said as the word meant, the reading; None where there is none).
    A word one edit from several is read as the one of them that names what the rest of the prompt does not ("a
    blue square moving letf": left, not the colour leaf; "a red blck": block, not black)."""
    tokens = prompt_tokens(prompt)
    near = [_candidates(word) for word, _ in tokens]
    meant = [next(iter(n)) if len(n) == 1 else None for n in near]
    if any(len(n) > 1 for n in near):
        named, kinds = _named_kinds(_said_as(prompt, tokens, meant)), _word_kinds()
        for i, n in enumerate(near):
            missing = {w for w in n if kinds[w] - named} if len(n) > 1 else set()
            meant[i] = missing.pop() if len(missing) == 1 else meant[i]
    said = tuple(tokens[i][0] for i in range(len(tokens)) if meant[i])
    read = _said_as(prompt, tokens, meant)
    return (read, SpellingReading(said, tuple(m for m in meant if m))) if said else (prompt, None)


def _said_as(prompt: str, tokens, meant: list[str | None]) -> str:
    """`prompt` with each token i whose meant[i] is set said as that word."""
    for i in reversed(range(len(tokens))):  # from the end, so the spans before stay where they are
        if meant[i]:
            prompt = replace_word(prompt, tokens, i, meant[i])
    return prompt


def spelling_reading_note(reading: SpellingReading, most: int = 5) -> str:
    """The one-line note `vidiff generate` gives for a reading of read_misspellings (the first `most` words)."""
    pairs = ", ".join(f"{s!r} as {m!r}" for s, m in list(zip(reading.said, reading.meant))[:most])
    more = f" and {len(reading.said) - most} more" if len(reading.said) > most else ""
    return (f"read as misspelt: {pairs}{more} (a word neither the prompt reader, the text encoder's vocabulary nor "
            "WordNet knows, one letter from a colour, shape or direction word)")
