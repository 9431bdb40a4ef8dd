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

from vidiff.data.prompt_ambiguity import ambiguous_prompt_note
from vidiff.data.prompt_negations import negated_words_note
from vidiff.data.shapes import prompt_for
from vidiff.data.shapes_prompt import colour_said_of_the_object, named_values


def template_reading(read: str, still: tuple[str, str] | None = None) -> str | None:
    """The plain template naming the one colour, shape and direction of `read` (a prompt with its colour names and
    shape nouns read: prompt_words.read_untrained_words), or None where the reader finds none or more than one of
    any, or a negation or more than one object, whose words the template could not carry. `still`: the (colour,
    shape) of the image being animated (still_attributes), said where the prompt names none ("make it float up")."""
    named = named_values(read)
    colour_said = bool(named["colour"])
    for key, seen in zip(("colour", "shape"), still or (None, None)):
        if seen and not named[key]:
            named[key] = [seen]
    if any(len(values) != 1 for values in named.values()):
        return None
    if negated_words_note(read) or ambiguous_prompt_note(read):
        return None
    if colour_said and not colour_said_of_the_object(read):  # "flying up into the blue sky"
        return None
    return prompt_for(*(values[0] for values in named.values()))


def template_reading_note(prompt: str, template: str) -> str | None:
    """The one-line note `vidiff generate` gives when the text encoder gets `template` for `prompt`; None when the
    prompt is the template but for capitals, spaces and stops."""
    if " ".join(re.findall(r"[a-z]+", prompt.lower())) == template:
        return None
    return (f"the text encoder gets {template!r}: this Shapes pipeline draws an object's colour, shape and "
            f"direction, and reads them best in the wording it was trained on (pipeline.yaml read_as_template)")


# the most a Shapes still's one object may stand from a palette colour (RGB distance) and a shape prototype (feature
# distance): rendered stills measure 0 and at most 0.07; frames of real footage hold several objects, or none
# near the palette (docs/shapes_measured.md, "Animate: the image's colour and shape in the template")
STILL_COLOUR_DISTANCE = 30.0
STILL_SHAPE_DISTANCE = 0.15


def still_attributes(image) -> tuple[str, str] | None:
    """(colour, shape) of the one object of a uint8 (H,W,3) Shapes still, by the Shapes analyzer; None where it
    holds no one such object (a photo, a blank frame)."""
    import numpy as np

    from vidiff.data.shapes_analysis import analyze_frame

    objects, _ = analyze_frame(np.asarray(image))
    if len(objects) != 1:
        return None
    found = objects[0]
    if found.colour_distance > STILL_COLOUR_DISTANCE or found.shape_distance > STILL_SHAPE_DISTANCE:
        return None
    return found.colour, found.shape
