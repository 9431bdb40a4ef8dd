"""How a pipeline reads a prompt before its text encoder sees it, and what it says about it.

A Shapes pipeline (pipeline.yaml prompt_vocabulary: shapes) reads misspelt words, colour names and shape nouns it
was not trained on as its trained words, says a prompt whose one colour, shape and direction it finds in its plain
template, and notes what it reads, leaves to chance or cannot draw. Any other pipeline takes prompts as given.
Importing this module does not import torch.
"""
from __future__ import annotations

from vidiff.limits import short_repr
from vidiff.pipeline.config import PipelineConfig


def prompt_notes(config: PipelineConfig, prompt: str, task: str = "generate", by_maps: bool = False) -> list[str]:
    """A Shapes pipeline's one-line notes on `prompt` (pipeline.yaml prompt_vocabulary: shapes) for `task`
    ("generate", "edit" or "animate"): a colour name read as the palette colour it names and a shape noun as the
    shape WordNet defines it as (read_prompt; animate's image sets both, so they are not said there), colour or
    shape words no training caption uses and, for a generation, what it leaves to chance or asks beyond one clip
    (vidiff/data/shapes_prompt.py), and a background, size, speed, path or place it cannot draw
    (vidiff/data/shapes_scene_notes.py); an edit keeps from its clip what the prompt leaves out, and an animated
    image sets the colour and shape, so only a missing direction is said.
    `by_maps`: control maps set the motion. The CLI says them before the weights load; text_to_video,
    image_to_video and edit_video warn them too."""
    if config.prompt_vocabulary != "shapes":
        return []
    from vidiff.data.captions import untrained_words_note
    from vidiff.data.colour_names import colour_reading_note
    from vidiff.data.prompt_template import template_reading, template_reading_note
    from vidiff.data.shape_nouns import shape_reading_note
    from vidiff.data.prompt_negations import negated_words_note
    from vidiff.data.prompt_ambiguity import ambiguous_prompt_note
    from vidiff.data.prompt_spelling import spelling_reading_note
    from vidiff.data.shapes_prompt import unnamed_attributes_note
    from vidiff.data.shapes_scene_notes import background_note, unset_words_note

    by_maps_known = ("direction",) if by_maps else ()
    # what the model reads: a colour name said as its palette colour ("a teal box" names green, not no colour), a
    # shape noun as its shape
    read, reading, shape, spelt = read_prompt(config, prompt)
    if task == "animate":  # the image sets the colour and shape; a misspelt direction word is read
        notes = [spelling_reading_note(spelt) if spelt else None,
                 unnamed_attributes_note(read, ("colour", "shape") + by_maps_known)]
    else:
        looked_at = tuple(key for key, known in (("colour", reading and reading.colour), ("shape", shape)) if not known)
        template = template_reading(read) if config.read_as_template else None
        notes = [spelling_reading_note(spelt) if spelt else None,
                 colour_reading_note(reading) if reading else None, shape_reading_note(shape) if shape else None,
                 # the template says each attribute in a trained word
                 template_reading_note(prompt, template) if template else untrained_words_note(prompt, looked_at)]
    if task == "generate":
        grey_said = ("colour",) if reading and reading.colour is None else ()  # its own note says it is left open
        notes += [unnamed_attributes_note(read, by_maps_known + grey_said), ambiguous_prompt_note(read),
                  background_note(prompt, read_whole=template is not None)]
        if not by_maps:  # control maps set the object's place, size and path
            notes.append(unset_words_note(prompt))
    notes.append(negated_words_note(prompt))  # in every task: the model reads a negated word as asked
    return [note for note in notes if note]


def read_prompt(config: PipelineConfig, prompt: str):
    """(the prompt as a Shapes pipeline's text encoder gets it, the colour reading, the shape reading, the spelling
    reading): a misspelt colour, shape or direction word said as the word meant ("a yelow squre" -> "a yellow
    square": vidiff/data/prompt_spelling.py, pipeline.yaml read_misspellings), a colour name it was not trained on
    as the palette colour that name means ("the scarlet ring" -> "the red ring": vidiff/data/colour_names.py,
    read_colour_names), a shape noun as the shape WordNet defines it as ("a cube" -> "a square":
    vidiff/data/shape_nouns.py, read_shape_nouns)."""
    from vidiff.data.prompt_words import read_untrained_words

    return read_untrained_words(prompt, colours=config.read_colour_names, shapes=config.read_shape_nouns,
                                spelling=config.read_misspellings)


def encoder_prompts(config: PipelineConfig, prompts: list[str] | None,
                    still: tuple[str, str] | None = None) -> list[str] | None:
    """The prompts as the text encoder gets them: a Shapes pipeline (prompt_vocabulary: shapes) says a colour name
    or a shape noun it was not trained on in its trained words, and a prompt read whole in its plain template
    (encoder_text); any other pipeline, or None, as given. Not for negative prompts: "orange" read as red there
    would steer a red object away from red."""
    if prompts is None or config.prompt_vocabulary != "shapes":
        return prompts
    return [encoder_text(config, p, still) for p in prompts]


def encoder_text(config: PipelineConfig, prompt: str, still: tuple[str, str] | None = None) -> str:
    """One prompt as a Shapes pipeline's text encoder gets it: read_prompt's reading, said in the plain template
    where the prompt reader finds its one colour, shape and direction ("Show me a scarlet orb that floats skyward."
    -> "a red circle moving up": vidiff/data/prompt_template.py, pipeline.yaml read_as_template). `still`: the
    (colour, shape) of an image being animated, for a prompt that names only the motion ("make it float up")."""
    from vidiff.data.prompt_template import template_reading

    read = read_prompt(config, prompt)[0]
    return (template_reading(read, still) if config.read_as_template else None) or read


def template_still(config: PipelineConfig, image) -> tuple[str, str] | None:
    """The (colour, shape) of a uint8 (H,W,3) image's one Shapes object for encoder_text's `still`, where a Shapes
    pipeline says prompts in the template: an animated image, or the last frame of a clip being extended, fills what
    a prompt naming only the motion leaves out ("make it float up"; the model was trained on captions naming all
    three). None elsewhere, or where the image holds no one such object (prompt_template.still_attributes)."""
    if config.prompt_vocabulary != "shapes" or not config.read_as_template:
        return None
    from vidiff.data.prompt_template import still_attributes

    return still_attributes(image)


def warn_prompt_notes(config: PipelineConfig, prompt, task: str = "generate", by_maps: bool = False) -> None:
    """prompt_notes of each distinct prompt (a str or a list) as warnings, said at the caller's call. With more than
    one distinct prompt each note names its own: two prompts' same note read alike (and Python's warning filter
    showed it once)."""
    from vidiff.caller_warning import warn_at_caller

    texts = prompt if isinstance(prompt, (list, tuple)) else [prompt]
    # anything but a str is request()'s to refuse; dict.fromkeys of a list or an array raised "unhashable type"
    distinct = list(dict.fromkeys(t for t in texts if isinstance(t, str)))
    for text in distinct:
        for note in prompt_notes(config, text, task, by_maps):
            warn_at_caller(f"prompt {short_repr(text, 60)}: {note}" if len(distinct) > 1 else note)
