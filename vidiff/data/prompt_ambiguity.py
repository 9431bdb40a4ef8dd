"""What one Shapes clip cannot hold, read from a prompt: more than one object ("two circles", "red balls", "a red
ball and a blue box", "with its twin"), contradicting attributes ("moving up and down") or a motion back ("then
returns"). The pipeline draws one object moving one way and takes the first word of each kind; the note says so, and
the prompt template (prompt_template.py) leaves such a prompt as written."""
from __future__ import annotations

import re

from vidiff.data.prompt_negations import negations
from vidiff.data.prompt_words import plural_of
from vidiff.data.shape_nouns import starts_noun
from vidiff.data.shapes_prompt import _DIRECTION_WORDS, _SHAPE_WORDS, _polygon_at, _words, named_values

_COUNT_WORDS = {"two", "three", "four", "five", "several", "many", "multiple", "pair", "both", "couple"}
_TWIN_WORDS = {"twin", "twins"}
_SECOND_WORDS = {"another", "second"}  # an object when a shape noun or "one" follows: not "in a second"


def _second_objects(words: list[str]) -> list[str]:
    """Words that add an object of the same colour and shape: "a red ball and another red ball", "a second ball",
    "with its twin"; the colour and shape counts saw one of each, and the template drew one."""
    return [w for i, w in enumerate(words) if w in _TWIN_WORDS or (
        w in _SECOND_WORDS and any(v in _SHAPE_WORDS or v in ("one", "ones") for v in words[i + 1:i + 4]))]


_RETURN_WORDS = {"return", "returns", "returning", "returned", "reverse", "reverses", "reversing", "reversed"}


def _return_motions(words: list[str]) -> list[str]:
    """Words that turn the motion back without naming a direction: "moving left and back again", "then returns",
    "turns around", "a u-turn"; one clip moves one way, and the template said only the first."""
    found = []
    for i, w in enumerate(words):
        nxt, prev = words[i + 1:i + 2], words[i - 1:i]
        turn = (w == "around" and prev and prev[0].startswith("turn")) or (w == "turn" and prev == ["u"])
        if w in _RETURN_WORDS or turn:
            found.append(w)
        # "back" of a motion: not "heading back up" (a direction), "the back wall" or "in back"
        elif w == "back" and not (nxt and nxt[0] in _DIRECTION_WORDS) and prev[:1] not in (["the"], ["its"], ["in"],
                                                                                            ["at"]):
            found.append(w)
    return found


def _names_a_shape(words: list[str]) -> bool:
    return any(named_values(v)["shape"] for w in words for v in (w, w[:-1], w[:-2]) if v)


def _digit_counts(prompt: str) -> list[str]:
    """Counts said in digits before a shape noun ("2 red circles", "3 boxes", "2x red circle") or as a multiplier after
    one ("red circle x2"); not "in 2 seconds" nor "at 2x speed"."""
    found, text = [], prompt.lower()
    for m in re.finditer(r"\b(\d+)\s*[x\u00d7]?\s+((?:[a-z-]+\s+){0,2}[a-z-]+)", text):
        if int(m.group(1)) >= 2 and _names_a_shape(m.group(2).split()):
            found.append(m.group(1))
    for m in re.finditer(r"([a-z]+)\s*[x\u00d7]\s*(\d+)\b", text):
        if int(m.group(2)) >= 2 and _names_a_shape([m.group(1)]):
            found.append(f"x{m.group(2)}")
    return found


def ambiguous_prompt_note(prompt: str) -> str | None:
    """A one-line warning when `prompt` asks for what one Shapes clip cannot hold: more than one object ("two
    circles", "red balls", "a red ball and a blue box") or contradicting attributes ("moving up and down"); the
    pipeline draws one object and reads the first word of each kind. A negated word is the note of
    prompt_negations.py. None when the prompt is unambiguous."""
    rest = negations(prompt)[2]
    named = named_values(rest)  # "a red circle, not blue" asks for one object
    problems = [f"{len(values)} {key}s ({', '.join(values)})" for key, values in named.items() if len(values) > 1]
    # a count, or a shape noun said in the plural ("red balls moving left") where the object's noun stands: not
    # the verb of "a ball that circles left", nor a place ("over a tiles pattern", "past rings of colour")
    all_words = _words(prompt)
    counted = [w for i, w in enumerate(all_words) if w in _COUNT_WORDS and not _polygon_at(all_words, i)
               and all_words[i + 1:i + 3] != ["o", "clock"]]  # "at two o'clock": a time
    counted += _digit_counts(prompt)
    words = _words(rest)
    counted += [w for i, w in enumerate(words) if w in _SHAPE_WORDS and plural_of(w, _SHAPE_WORDS)
                and starts_noun(words, i)]
    counted += _second_objects(words)
    back = _return_motions(words)
    if counted:
        problems.insert(0, f"more than one object ({counted[0]!r})")
    if back:
        problems.append(f"a motion back ({back[0]!r})")
    if not problems:
        return None
    took = ", ".join(f"{key} {values[0]}" for key, values in named.items() if len(values) > 1)
    return (f"the prompt names {'; '.join(problems)}: this Shapes pipeline draws one object"
            + (" moving one way" if back else "") + (f" and takes the first of each ({took})" if took else ""))
