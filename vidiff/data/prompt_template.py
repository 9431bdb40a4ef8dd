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
    ambiguous_prompt_note, colour_said_of_the_object, named_values, negated_words_note,
)


def template_reading(read: str) -> str | None:
    """The plain template naming the one colour, shape and direction of `read` (a prompt with its colour names and
    shape nouns read: prompt_words.read_untrained_words), or None where the reader finds none or more than one of
    any, or a negation or more than one object, whose words the template could not carry."""
    named = named_values(read)
    if any(len(values) != 1 for values in named.values()):
        return None
    if negated_words_note(read) or ambiguous_prompt_note(read) or not colour_said_of_the_object(read):
        return None
    return prompt_for(*(values[0] for values in named.values()))


def template_reading_note(prompt: str, template: str) -> str | None:
    """The one-line note `vidiff generate` gives when the text encoder gets `template` for `prompt`; None when the
    prompt is the template but for capitals, spaces and stops."""
    if " ".join(re.findall(r"[a-z]+", prompt.lower())) == template:
        return None
    return (f"the text encoder gets {template!r}: this Shapes pipeline draws an object's colour, shape and "
            f"direction, and reads them best in the wording it was trained on (pipeline.yaml read_as_template)")
