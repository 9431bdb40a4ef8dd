"""A prompt's words, and one of them said another way: what the Shapes readers of colour names and shape nouns
(colour_names.py, shape_nouns.py) give the text encoder, and `vidiff eval shapes` judges a clip by."""
from __future__ import annotations

import re

Token = tuple[str, tuple[int, int]]  # (the word in lower case, its character span in the prompt)


def prompt_tokens(prompt: str) -> list[Token]:
    """The letter runs of `prompt`, lower-cased, with where each stands ("Teal-coloured" -> teal, coloured)."""
    return [(m.group().lower(), m.span()) for m in re.finditer(r"[A-Za-z]+", prompt)]


def plural_of(word: str, nouns) -> str | None:
    """The noun of `nouns` that `word` says in the plural ("cubes" -> cube, "boxes" -> box), else None."""
    for suffix in ("es", "s"):
        if word.endswith(suffix) and word[:-len(suffix)] in nouns:
            return word[:-len(suffix)]
    return None


def singular(word: str, nouns) -> str | None:
    """The noun of `nouns` that `word` is or says in the plural, else None."""
    return word if word in nouns else plural_of(word, nouns)


def replace_word(prompt: str, tokens: list[Token], i: int, word: str, keep_case: bool = True) -> str:
    """`prompt` with token i said as `word`, in its capitals (`keep_case` False: as `word` is), and an article right
    before it agreeing ("an orange ball" -> "a red ball", "an orb" -> "a circle")."""
    def cased(new: str, old: str) -> str:
        return new.upper() if old.isupper() and len(old) > 1 else new.capitalize() if old[0].isupper() else new

    start, end = tokens[i][1]
    text = prompt[:start] + (cased(word, prompt[start:end]) if keep_case else word) + prompt[end:]
    if i and tokens[i - 1][0] in ("a", "an") and not prompt[tokens[i - 1][1][1]:start].strip(" '\"\u2018\u201c"):
        a_start, a_end = tokens[i - 1][1]
        text = text[:a_start] + cased("an" if word[0] in "aeiou" else "a", prompt[a_start:a_end]) + text[a_end:]
    return text


def read_untrained_words(prompt: str, colours: bool = True, shapes: bool = True, spelling: bool = True):
    """(the prompt in a Shapes model's trained words, the colour reading, the shape reading, the spelling reading): a
    misspelt colour, shape or direction word said as the word meant ("a yelow squre" -> "a yellow square":
    prompt_spelling.py), a shape noun no training caption used as the shape WordNet defines it as ("a cube" -> "a
    square": shape_nouns.py), then a colour name as the palette colour it names ("the scarlet ring" -> "the red ring":
    colour_names.py); `colours`, `shapes`, `spelling` False leave that kind as written (pipeline.yaml
    read_colour_names, read_shape_nouns, read_misspellings)."""
    from vidiff.data.colour_names import read_colour_names
    from vidiff.data.prompt_spelling import read_misspellings
    from vidiff.data.shape_nouns import read_shape_nouns

    read, spelt = read_misspellings(prompt) if spelling else (prompt, None)
    read, shape = read_shape_nouns(read) if shapes else (read, None)
    # the noun's rewrite keeps every colour word where it was, so the colour is read of the same object
    read, reading = read_colour_names(read) if colours else (read, None)
    return read, reading, shape, spelt
