"""Negations in a Shapes prompt ("not red", "isn't moving up", "nothing red", "red-free"): what they reach, for the
note a pipeline gives (a Shapes model reads the words, not the negation), for the prompt template (which says no
prompt with a negation) and for the colour and shape-noun readers (which leave a negated word as it is).
"""
from __future__ import annotations

import re

from vidiff.data.shapes_prompt import named_values

# A negation ("not red", "isn't moving up", "no squares", "anything but red"), and the words that may stand between
# it and the word it negates; anything else (a comma, "but", "stop") ends its reach, so "does not stop, moving left"
# negates nothing. "nothing" is one unless a word of "only" follows it: "nothing red", but "nothing but red".
_NEGATIONS = {"not", "no", "never", "without", "nor", "neither", "non", "cannot", "except", "excluding", "avoid",
              "avoiding", "lacking", "minus", "nothing",
              # a motion that does not happen: "refuses to go left", "is unable to move left"
              "refuse", "refuses", "refusing", "refused", "unable", "fail", "fails", "failing", "failed",
              # and every "...n't", with or without its apostrophe ("dont make it red")
              "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "cant", "shouldnt", "mustnt"}
_NEGATION_PAIRS = {("anything", "but"), ("everything", "but"), ("other", "than"), ("rather", "than"),
                   ("instead", "of"), ("apart", "from"), ("free", "of"), ("free", "from")}
_NEGATED_FILLER = {"-", "a", "an", "the", "any", "be", "is", "are", "in", "to", "toward", "towards", "coloured",
                   "colored", "move", "moves", "moving", "go", "goes", "going", "head", "heads", "heading", "travel",
                   "travels", "travelling", "traveling", "drift", "drifts", "drifting", "slide", "slides", "sliding",
                   "make", "makes", "made", "it", "its", "colour", "color", "for", "one", "single", "really", "very",
                   "too", "use", "show", "want", "have", "has", "being", "shade", "of",
                   "ever", "longer"}  # "should not ever be red", "no longer red"
# every apostrophe a keyboard or an editor writes in "don't"
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u2032`\u00b4", "'"))
_ONLY_AFTER_NOTHING = {"but", "except", "other", "save", "besides"}  # "nothing but red" asks for red
_NEGATING_SUFFIXES = {"free", "less"}  # said after what they negate, hyphenated: "red-free", "a red-less square"


def _names(word: str, names) -> bool:
    return word in names or any(named_values(word).values())


def _negation_reaches(words: list[str], names=(), shades=(), reach: int = 4):
    """(first, last, j) for each negation and the word words[j] it reaches, words[first:last + 1] said together: a
    negation before (of two words, "anything but") reaches over _NEGATED_FILLER (and `shades`), within `reach`
    words, the first naming a colour, shape or direction, or in `names`; "-free" negates the word before it."""
    for i, word in enumerate(words):
        if word in _NEGATING_SUFFIXES:
            if i >= 2 and words[i - 1] == "-" and _names(words[i - 2], names):
                yield i - 2, i, i - 2
            continue
        pair = i > 0 and (words[i - 1], word) in _NEGATION_PAIRS
        if word not in _NEGATIONS and not word.endswith("n't") and not pair:
            continue
        if word == "nothing" and words[i + 1:i + 2] and words[i + 1] in _ONLY_AFTER_NOTHING:
            continue
        for j in range(i + 1, min(i + 1 + reach, len(words))):
            if words[j] in shades:
                continue
            if _names(words[j], names):
                yield i - pair, j, j
                break
            if words[j] not in _NEGATED_FILLER:
                break


def negations(prompt: str) -> tuple[list[str], dict[str, list[str]], str]:
    """(the negating phrases as said, {attribute: the values they negate}, the prompt's other words): a
    negation reaches over _NEGATED_FILLER to the first word naming a colour, shape or direction."""
    # words with their "n't", and punctuation, which ends a negation's reach
    words = re.findall(r"[a-z]+(?:'t)?|[^a-z\s]", prompt.lower().translate(_APOSTROPHES))
    said, negated, taken = [], {}, set()
    for first, last, j in _negation_reaches(words):
        said.append(" ".join(words[first:last + 1]).replace(" - ", "-"))
        for key, values in named_values(words[j]).items():
            if values:
                negated.setdefault(key, []).append(values[0])
        taken.add(j)
    return said, negated, " ".join(w for j, w in enumerate(words) if j not in taken)


def negated_spans(prompt: str, names, shades=()) -> set[tuple[int, int]]:
    """Character spans in `prompt` of the words a negation reaches, as negations reaches them ("a ball, not
    orange", "isn't teal"), where a word counts as naming something when it is in `names` or names a colour, shape
    or direction here (vidiff/data/colour_names.py asks this of the colour survey's names); `shades`: words the
    negation reaches over too ("not a bright teal square"), one word further."""
    tokens = list(re.finditer(r"[A-Za-z]+(?:'[tT])?|[^A-Za-z\s]", prompt.translate(_APOSTROPHES)))
    words = [m.group().lower() for m in tokens]
    return {tokens[j].span() for _, _, j in _negation_reaches(words, names, shades, reach=5)}


def negated_words_note(prompt: str) -> str | None:
    """A one-line warning when `prompt` negates a colour, shape or direction ("a circle, not red", "a square that
    isn't moving up", "don't make it red", "anything but blue"): a Shapes pipeline reads the words, not the
    negation, so the clip shows what they name (4 of 4 clips of "a circle moving left, not red" came out red).
    Where the prompt also names another value of it, the clip may show either: "not a circle, a green triangle"
    drew 8 of 8 circles, "a red circle moving left, not blue" 6 of 8 red and 1 blue. None when nothing is negated."""
    said, negated, rest = negations(prompt)
    if not said:
        return None
    also = named_values(rest)
    either = any(also[key] for key in negated)
    named = ", ".join(f"{key} {' or '.join(dict.fromkeys(values + also[key]))}" for key, values in negated.items())
    return (f"the prompt says {', '.join(repr(s) for s in dict.fromkeys(said))}: this Shapes pipeline reads the "
            f"words and not the negation, so the clip {'may' if either else 'will likely'} have them ({named}); say "
            f"what it should show instead")
