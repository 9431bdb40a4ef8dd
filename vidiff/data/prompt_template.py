"""A Shapes prompt said in its model's plain template when the prompt reader reads the whole of it.

A Shapes model draws one object's colour, shape and direction, and nothing else a prompt says reaches the frames.
It reads those three best in the wording it was trained on most: the plain template ("a red circle moving left")
came out right in 97-98% of clips, while the same attributes said in held-out words went through the frozen text
encoder to 22% (docs/shapes_measured.md). The misses left after colour names and shape nouns are read are the
motion's words ("floats skyward", "to the right side", "travels east"), which the prompt reader of
`vidiff/data/shapes_prompt.py` reads as `vidiff eval shapes` does. So where that reader finds one colour, one shape
and one direction of one object, and nothing negated or ambiguous, the text encoder gets the plain template for
them (pipeline.yaml read_as_template); any other prompt goes on as colour_names and shape_nouns read it.
"""
from __future__ import annotations

import re

from vidiff.data.shapes import prompt_for
from vidiff.data.shapes_prompt import (
    _AFTER_A_PLACE, _COLOUR_WORDS, _DIRECTION_WORDS, _POLYGONS, _SHADE_WORDS, _SHAPE_WORDS, ambiguous_prompt_note,
    background_colour_positions, named_values, negated_words_note,
)


def template_reading(read: str) -> str | None:
    """The plain template naming the one colour, shape and direction of `read` (a prompt with its colour names and
    shape nouns read: prompt_words.read_untrained_words), or None where the reader finds none or more than one of
    any, or a negation or more than one object, whose words the template could not carry."""
    named = named_values(read)
    if any(len(values) != 1 for values in named.values()):
        return None
    if negated_words_note(read) or ambiguous_prompt_note(read) or not _colour_of_the_object(read):
        return None
    return prompt_for(*(values[0] for values in named.values()))


def template_reading_note(prompt: str, template: str) -> str | None:
    """The one-line note `vidiff generate` gives when the text encoder gets `template` for `prompt`; None when the
    prompt is the template but for capitals, spaces and stops."""
    if " ".join(re.findall(r"[a-z]+", prompt.lower())) == template:
        return None
    return (f"the text encoder gets {template!r}: this Shapes pipeline draws an object's colour, shape and "
            f"direction, and reads them best in the wording it was trained on (pipeline.yaml read_as_template)")


# words that may follow the object's colour: "a ball, red, moving left", "the ball is red and rolls left", "red in
# colour"
_AFTER_THE_COLOUR = _AFTER_A_PLACE | {"in", "colour", "color", "coloured", "colored", "one", "object", "thing", "shape"}


# a noun of the object, or the number of a polygon's sides ("a pale yellow three-sided shape")
_OBJECT_WORDS = set(_SHAPE_WORDS) | set(_POLYGONS) | {"shape", "object", "thing"}


def _colour_of_the_object(read: str) -> bool:
    """Whether a colour word of `read` may be the object's: followed, over shade words, by the shape noun (within two
    more words: "a red shiny ball"), a stop, a verb or a direction. One said only of something else ("a ball flying
    up into the blue sky", "a ball rolling left across green grass", "a blue car driving left in a circle") is not:
    the template made the object that colour. A prompt that names no colour is not asked here (named_values is)."""
    tokens = re.findall(r"[a-z]+|[^a-z\s]", read.lower())
    words = [t for t in tokens if t.isalpha()]
    background = background_colour_positions(words)
    k = -1  # index among the words
    for i, token in enumerate(tokens):
        if not token.isalpha():
            continue
        k += 1
        if token not in _COLOUR_WORDS or k in background:
            continue
        j = i + 1
        while j < len(tokens) and (tokens[j] in _SHADE_WORDS or tokens[j] in _COLOUR_WORDS):
            j += 1
        after = tokens[j:j + 3]
        if (not after or not after[0].isalpha() or after[0] in _AFTER_THE_COLOUR or after[0] in _DIRECTION_WORDS
                or after[0].endswith("ing") or any(w in _OBJECT_WORDS for w in after)):
            return True
    return False
