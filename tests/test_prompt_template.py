"""A Shapes prompt read whole goes to the text encoder in the plain template (vidiff/data/prompt_template.py,
pipeline.yaml read_as_template)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from vidiff.config import ConfigError
from vidiff.data.prompt_template import template_reading
from vidiff.data.shapes import prompt_for
from vidiff.pipeline.config import pipeline_config_from_dict
from vidiff.pipeline.prompt_reading import encoder_prompts, encoder_text, prompt_notes

from test_colour_names import recording_shapes_pipeline  # noqa: E402 (tests/ is on the path: pytest's rootdir imports)

SHAPES = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")


def test_every_grammar_caption_goes_to_the_encoder_as_the_plain_template_of_its_attributes(grammar_captions):
    """Training, held-out and plain captions of every attribute set: the encoder gets exactly the template of the
    attributes the caption was drawn for, and the plain template itself goes through unchanged."""
    for (colour, shape, direction), caption in grammar_captions(10, 3):
        assert encoder_text(SHAPES, caption) == prompt_for(colour, shape, direction), caption


@pytest.mark.parametrize("prompt, template", [
    ("Show me a scarlet orb that floats skyward.", "a red circle moving up"),  # colour name, shape noun, motion
    ("A red circle moves left.", "a red circle moving left"),
    ("a box, lemon, that enters from the left", "a yellow square moving right"),  # where the motion starts
    ("starts on the right and ends on the left: a teal triangle", "a green triangle moving left"),
    ("a blue cube in the top left corner sinking", "a blue square moving down"),  # a place is not the motion
    ("an orange ball moving east", "a red circle moving right"),  # drawn as the nearest palette colour
    ("a red ball on a white background moving up", "a red circle moving up"),  # the background is not drawn
])
def test_a_prompt_read_whole_is_said_in_the_template(prompt, template):
    assert encoder_text(SHAPES, prompt) == template


@pytest.mark.parametrize("prompt", [
    "a red star moving left",  # a noun the reader gives no shape
    "a grey ball moving left",  # a colour the pipeline does not draw: left to the model
    "a circle moving left",  # no colour
    "a red ball",  # no direction
    "a red ball, not blue, moving left",  # a negation
    "two red balls moving up",  # more than one object
    "red balls moving up",
    "a red ball moving up and down",  # two directions
    "a red ball and a blue box moving left",  # two colours and shapes
    # a colour said only of something else: the template made the object that colour
    "a ball flying up into the blue sky",
    "a ball rolling left across green grass",
    "a square sliding left over a white line",
    "a blue car driving left in a circle",
])
def test_a_prompt_not_read_whole_keeps_its_words(prompt):
    read = encoder_text(dataclasses.replace(SHAPES, read_as_template=False), prompt)
    assert encoder_text(SHAPES, prompt) == read
    assert template_reading(read) is None


@pytest.mark.parametrize("prompt, template", [
    ("a red shiny ball moving left", "a red circle moving left"),  # a word between colour and noun
    ("a ball painted red rolls left", "a red circle moving left"),  # the colour after the noun
    ("a ball, red in colour, moving up", "a red circle moving up"),
    ("a red circle moving left past a red wall", "a red circle moving left"),  # one of its colour words is the object's
])
def test_the_object_colour_said_around_its_noun_is_read_whole(prompt, template):
    assert encoder_text(SHAPES, prompt) == template


def test_it_can_be_turned_off_and_an_open_text_pipeline_never_reads_it():
    prompts = ["a scarlet orb floats skyward", "A red circle moves left."]
    assert encoder_prompts(SHAPES, prompts) == ["a red circle moving up", "a red circle moving left"]
    off = dataclasses.replace(SHAPES, read_as_template=False)
    assert encoder_prompts(off, prompts) == ["a red circle floats skyward", "A red circle moves left."]
    open_text = pipeline_config_from_dict({}, where="p.yaml")
    assert encoder_prompts(open_text, prompts) == prompts
    assert pipeline_config_from_dict({"read_as_template": False}, where="p.yaml").read_as_template is False
    with pytest.raises(ConfigError, match="read_as_template"):
        pipeline_config_from_dict({"read_as_template": "always"}, where="p.yaml")


def test_the_notes_say_what_the_encoder_gets_instead_of_calling_read_words_untrained():
    notes = prompt_notes(SHAPES, "a jade ring cruising west")
    assert notes == ["'jade' is read as green: this Shapes pipeline was not trained on the word, and the xkcd "
                     "colour survey's jade is a shade of green",
                     "the text encoder gets 'a green circle moving left': this Shapes pipeline draws an object's "
                     "colour, shape and direction, and reads them best in the wording it was trained on "
                     "(pipeline.yaml read_as_template)"]
    assert prompt_notes(SHAPES, "A red circle moving left.") == []  # the template but for capitals and a stop
    off = prompt_notes(dataclasses.replace(SHAPES, read_as_template=False), "a jade ring cruising west")
    assert any("'ring' (circle) is not a word" in n for n in off) and not any("text encoder gets" in n for n in off)
    # the template leaves a background's colour word out, so it cannot become the object's
    background = prompt_notes(SHAPES, "A white background with a red circle moving left")[1]
    assert background.startswith("the prompt asks for a white background") and "may become" not in background
    off_background = prompt_notes(dataclasses.replace(SHAPES, read_as_template=False), "A white background with a "
                                  "red circle moving left")
    assert len(off_background) == 1 and "may become the object's" in off_background[0]
    # an animated image sets the colour and shape: nothing is said of them there
    assert prompt_notes(SHAPES, "a jade ring cruising west", task="animate") == []


def test_the_pipeline_draws_a_prompt_read_whole_as_its_template(load_tool):
    pipe, text = recording_shapes_pipeline(load_tool)
    config = pipe.config
    with pytest.warns(UserWarning, match="the text encoder gets 'a red circle moving up'"):
        said, _ = pipe.text_to_video("Show me a crimson ball that rises.", seed=2, progress=False)
    plain, _ = pipe.text_to_video("a red circle moving up", seed=2, progress=False)
    assert torch.equal(said, plain) and "Show me a crimson ball that rises." not in text.seen
    pipe.config = dataclasses.replace(config, read_as_template=False)
    as_read, _ = pipe.text_to_video("Show me a crimson ball that rises.", seed=2, progress=False)
    assert not torch.equal(as_read, plain)


@pytest.mark.parametrize("prompt", [
    "a red ball and another red ball moving left",  # two objects of one colour and shape
    "a red ball moving left and back again",  # a motion back
    "a ball moving left, no longer red",  # a negation
])
def test_what_the_template_could_not_carry_keeps_its_words(prompt):
    assert encoder_text(SHAPES, prompt) == encoder_text(dataclasses.replace(SHAPES, read_as_template=False), prompt)
    assert encoder_text(SHAPES, prompt) == prompt


def test_an_animated_still_gives_the_colour_and_shape_a_motion_prompt_leaves_out():
    """Animate prompts name the motion ("make it float up"), and the model was trained on captions naming all three:
    21 of 40 such clips moved as asked before (docs/shapes_measured.md)."""
    import numpy as np

    from vidiff.data.prompt_template import still_attributes
    from vidiff.data.shapes import render_clip, sample_clip_params

    params = sample_clip_params(1000, 3)
    still = np.asarray(render_clip(params)[0])
    assert still_attributes(still) == (params.colour, params.shape)
    assert still_attributes(np.full((64, 64, 3), 40, np.uint8)) is None  # no object
    two = still.copy()
    two[:8, :8] = (230, 210, 40)  # a second object in a corner
    two[-8:, -8:] = (50, 80, 230)
    assert still_attributes(two) is None
    seen = ("red", "square")
    assert template_reading("make it float up", seen) == "a red square moving up"
    assert template_reading("make the circle float up", seen) == "a red circle moving up"  # the prompt's words first
    assert template_reading("make it float", seen) is None  # no direction
    assert template_reading("make it float up and down", seen) is None


def test_image_to_video_says_the_still_in_the_template(load_tool):
    import numpy as np

    from vidiff.data.shapes import render_clip, sample_clip_params

    pipe, text = recording_shapes_pipeline(load_tool)
    config = pipe.config
    params = sample_clip_params(1000, 3)
    still = np.asarray(render_clip(params)[0])
    pipe.image_to_video(still, "make it float up", seed=1, progress=False)
    assert f"a {params.colour} {params.shape} moving up" in text.seen
    text.seen.clear()
    pipe.config = dataclasses.replace(config, read_as_template=False)
    pipe.image_to_video(still, "make it float up", seed=1, progress=False)
    assert "make it float up" in text.seen and not any("moving up" in s for s in text.seen)


def test_extend_video_says_the_clips_colour_and_shape_in_the_template(load_tool):
    """"keep going up" for a clip of a red square: the clip's last frame sets the colour and shape, as an animated
    image's do; a clip of more than one object (real footage) gives none, and the words go as written."""
    import numpy as np

    from vidiff.data.shapes import render_clip, sample_clip_params

    pipe, text = recording_shapes_pipeline(load_tool)
    params = sample_clip_params(1000, 3)
    clip = np.asarray(render_clip(params))[:5]
    pipe.extend_video(clip, "keep going up", num_frames=4, seed=1, progress=False)
    assert f"a {params.colour} {params.shape} moving up" in text.seen
    text.seen.clear()
    busy = clip.copy()
    busy[:, :8, :8] = (230, 210, 40)  # a second object in a corner
    busy[:, -8:, -8:] = (50, 80, 230)
    pipe.extend_video(busy, "keep going up", num_frames=4, seed=1, progress=False)
    assert "keep going up" in text.seen and not any("moving up" in s for s in text.seen)
