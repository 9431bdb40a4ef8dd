"""A prompt's words, and one of them said another way: what the Shapes readers of colour names and shape nouns
(colour_names.py, shape_nouns.py) give the text encoder."""
from __future__ import annotations

import re

Token = tuple[str, tuple[int, int]]  # (the word in lower case, its character span in the prompt)


def prompt_tokens(prompt: str) -> list[Token]:
    """The letter runs of `prompt`, lower-cased, with where each stands ("Teal-coloured" -> teal, coloured)."""
    return [(m.group().lower(), m.span()) for m in re.finditer(r"[A-Za-z]+", prompt)]


def replace_word(prompt: str, tokens: list[Token], i: int, word: str) -> str:
    """`prompt` with token i said as `word`, in its capitals, and an article right before it agreeing ("an
    orange ball" -> "a red ball", "an orb" -> "a circle")."""
    def cased(new: str, old: str) -> str:
        return new.upper() if old.isupper() and len(old) > 1 else new.capitalize() if old[0].isupper() else new

    start, end = tokens[i][1]
    text = prompt[:start] + cased(word, prompt[start:end]) + prompt[end:]
    if i and tokens[i - 1][0] in ("a", "an") and not prompt[tokens[i - 1][1][1]:start].strip(" '\"\u2018\u201c"):
        a_start, a_end = tokens[i - 1][1]
        text = text[:a_start] + cased("an" if word[0] in "aeiou" else "a", prompt[a_start:a_end]) + text[a_end:]
    return text
