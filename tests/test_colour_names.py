"""Colour names outside the training vocabulary, read as the palette colour they name (vidiff/data/colour_names.py)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from vidiff.data.captions import TRAIN
from vidiff.data.colour_names import (
    _oklch, colour_reading_note, palette_colour, read_colour_names,
)
from vidiff.config import ConfigError
from vidiff.pipeline.config import pipeline_config_from_dict
from vidiff.pipeline.prompt_reading import encoder_prompts, prompt_notes


def test_oklch_matches_the_published_oklab_values():
    # Ottosson's reference: sRGB red is OKLab (0.62796, 0.22486, 0.12585), white (1, 0, 0), black (0, 0, 0)
    lightness, chroma, hue = _oklch("#ff0000")
    assert lightness == pytest.approx(0.62796, abs=1e-4)
    assert chroma == pytest.approx((0.22486 ** 2 + 0.12585 ** 2) ** 0.5, abs=1e-4)
    assert hue == pytest.approx(29.234, abs=0.01)
    assert _oklch("#ffffff")[:2] == pytest.approx((1.0, 0.0), abs=1e-4)
    assert _oklch("#000000")[:2] == (0.0, 0.0)


def test_every_training_colour_word_the_survey_names_reads_as_its_trained_colour():
    """The thresholds were set on these words; a change to them, or to the palette, must keep them right."""
    checked = 0
    for colour, words in TRAIN.colours.items():
        for word in words:
            reading = palette_colour(word)
            if reading is not None:
                assert (reading.colour, reading.shade) == (colour, True), word
                checked += 1
    assert checked == 17  # grassy, snowy and pearl are not survey names


@pytest.mark.parametrize("word, colour, shade", [
    ("maroon", "red", True), ("teal", "green", True), ("cerulean", "blue", True), ("mustard", "yellow", True),
    ("cream", "white", True), ("silver", "white", True),
    ("orange", "red", False), ("purple", "blue", False), ("pink", "red", False),  # other basic colours: nearest
    ("black", None, False), ("grey", None, False), ("gray", None, False), ("charcoal", None, False),  # greys
])
def test_survey_names_read_by_hue(word, colour, shade):
    assert palette_colour(word) == palette_colour(word.upper())
    reading = palette_colour(word)
    assert (reading.colour, reading.shade) == (colour, shade)


def test_words_that_are_no_survey_colour_are_not_read():
    for word in ("milky", "circle", "dark", "pale", "moving", ""):
        assert palette_colour(word) is None, word


@pytest.mark.parametrize("prompt, encoded", [
    ("a scarlet circle moving left", "a red circle moving left"),
    ("The Scarlet ring sails west", "The Red ring sails west"),  # the word's capitals kept
    ("an orange ball moving up", "a red ball moving up"),  # the article agrees with the new word
    ("An amber box falling", "A yellow box falling"),
    ("the ring, jade, that sails west", "the ring, green, that sails west"),
    ("a ring in cobalt cruising north", "a ring in blue cruising north"),  # "in" + colour names the colour
    ("a dark maroon dot going right", "a dark red dot going right"),
    ("a teal square on a grey background moving up", "a green square on a grey background moving up"),
    ("a square in deep teal moving up", "a square in deep green moving up"),  # a shade word after "in"
    ("a ball that is orange, moving up", "a ball that is red, moving up"),
    ("a square that's teal moving up", "a square that's green moving up"),
    ("a teal-coloured box moving right", "a green-coloured box moving right"),
    ("AN ORANGE BALL", "A RED BALL"), ("an 'orange' ball", "a 'red' ball"),
    ("a black and scarlet ball moving left", "a black and red ball moving left"),  # past a grey to a colour
    ("an orange ball falling onto the white floor", "a red ball falling onto the white floor"),  # white: a floor's
    ("a teal circle moving left, not red", "a green circle moving left, not red"),  # red is negated
])
def test_a_colour_name_of_the_object_is_said_as_the_palette_word(prompt, encoded):
    text, reading = read_colour_names(prompt)
    assert text == encoded
    assert reading is not None and reading.colour in encoded.lower()


@pytest.mark.parametrize("prompt", [
    "a crimson disc moving left",  # a training word: the model knows it
    "a navy blue box moving up",
    "a red circle moving toward the sky",  # a trained colour, and a place
    "a circle moving toward the sky",  # a place, not the object's colour
    "a circle in the sky moving left",
    "a circle moving left over the sea",
    "a ball moving left like a leaf",  # the survey's nouns, said of no object
    "a ball rolling in mud, moving left",
    "a circle moving up into the night sky",
    "a box of chocolate, sliding left",
    "a milky ball moving like a leaf",
    "a circle moving left, not orange",  # negated: the model reads the word, and the negation note says so
    "a circle, not a bright teal square",  # negated over a shade word
    "a red one, not a dark teal ball",
    "a square moving up on a teal background",  # the background's colour
    "a milky circle moving left",  # not a survey name
    "a cat walking",
])
def test_prompts_read_as_written(prompt):
    assert read_colour_names(prompt) == (prompt, None)


def test_a_grey_is_read_but_left_as_written():
    text, reading = read_colour_names("a black circle moving left")
    assert text == "a black circle moving left" and (reading.word, reading.colour) == ("black", None)
    assert "not a colour this Shapes pipeline draws" in colour_reading_note(reading)
    assert "left to the model" in colour_reading_note(reading)


def test_a_prompt_whose_colour_is_read_is_not_told_its_colour_is_left_to_chance():
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes", "read_as_template": False}, where="p.yaml")
    assert prompt_notes(shapes, "a teal square moving up") == [
        "'teal' is read as green: this Shapes pipeline was not trained on the word, and the xkcd colour survey's teal "
        "is a shade of green"]
    grey = prompt_notes(shapes, "a black circle moving left")  # one note says the colour is left open, not two
    assert len(grey) == 1 and "'black' is not a colour" in grey[0], grey


def test_negative_prompts_go_to_the_encoder_as_written(load_tool):
    """A negative "orange" read as red would steer a red object away from red."""
    pipe, text = recording_shapes_pipeline(load_tool)
    pipe.text_to_video("a red circle moving left", seed=1, negative_prompt="an orange box", progress=False)
    assert "an orange box" in text.seen and "a red box" not in text.seen


def test_notes_say_the_reading_instead_of_the_untrained_colour_word():
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes", "read_as_template": False}, where="p.yaml")
    notes = prompt_notes(shapes, "a scarlet ring moving left")  # "ring": a noun WordNet does not read as a shape
    assert notes[0] == ("'scarlet' is read as red: this Shapes pipeline was not trained on the word, and the xkcd "
                        "colour survey's scarlet is a shade of red")
    untrained = [n for n in notes if "not a word" in n or "not words" in n]
    assert len(untrained) == 1 and "'ring' (circle)" in untrained[0] and "scarlet" not in untrained[0]
    assert "drawn as the nearest, blue" in prompt_notes(shapes, "a purple circle moving left")[0]
    # a held-out colour the survey does not name keeps the untrained-word note; off, scarlet gets it again
    assert any("'milky' (white)" in n for n in prompt_notes(shapes, "a milky circle moving left"))
    off = dataclasses.replace(shapes, read_colour_names=False)
    assert any("'scarlet' (red) is not a word" in n for n in prompt_notes(off, "a scarlet circle moving left"))
    assert not any("read as" in n for n in prompt_notes(off, "a scarlet circle moving left"))


def test_encoder_prompts_by_pipeline():
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    assert encoder_prompts(shapes, ["a gold box", "a red box"]) == ["a yellow box", "a red box"]
    assert encoder_prompts(shapes, None) is None
    assert encoder_prompts(shapes, ["a gray square", "a sky-blue ball"]) == ["a gray square", "a sky-blue ball"]
    assert encoder_prompts(dataclasses.replace(shapes, read_colour_names=False), ["a gold box"]) == ["a gold box"]
    open_text = pipeline_config_from_dict({}, where="p.yaml")  # a pipeline trained on open text: as written
    assert encoder_prompts(open_text, ["a gold box"]) == ["a gold box"]


def test_read_colour_names_in_pipeline_yaml_is_a_bool():
    assert pipeline_config_from_dict({"read_colour_names": False}, where="p.yaml").read_colour_names is False
    with pytest.raises(ConfigError, match="read_colour_names"):
        pipeline_config_from_dict({"read_colour_names": "sometimes"}, where="p.yaml")


class RecordingText:
    """A text encoder that records what it was given and embeds each prompt by its characters."""

    dim = 384
    identifier = "recording-text"

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, prompts):
        self.seen += prompts
        rows = [torch.randn(5, self.dim, generator=torch.Generator().manual_seed(sum(map(ord, p)) + len(p)))
                for p in prompts]
        return torch.stack(rows), torch.ones(len(prompts), 5, dtype=torch.bool)


def recording_shapes_pipeline(load_tool):
    """(a tiny random Shapes pipeline of one step a stage, its RecordingText encoder): what the encoder is given."""
    pytest.importorskip("vidiff.models.unet3d")
    from vidiff.pipeline import VideoPipeline

    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0)
    text = RecordingText()
    config = dataclasses.replace(tool.pipeline_config(steps=1), prompt_vocabulary="shapes")
    return VideoPipeline(config, vae, kf, it, text), text


def test_the_text_encoder_gets_the_palette_word_and_the_clip_is_the_palette_words_clip(load_tool):
    pipe, text = recording_shapes_pipeline(load_tool)
    config = pipe.config
    with pytest.warns(UserWarning, match="'scarlet' is read as red"):
        scarlet, _ = pipe.text_to_video("a scarlet circle moving left", seed=1, negative_prompt="a blue box",
                                        progress=False)
    assert "a red circle moving left" in text.seen and not any("scarlet" in seen for seen in text.seen)
    red, _ = pipe.text_to_video("a red circle moving left", seed=1, negative_prompt="a blue box", progress=False)
    assert torch.equal(scarlet, red)
    # the prompt template reads "scarlet" too (the prompt reader knows the held-out words): both off, as written
    pipe.config = dataclasses.replace(config, read_colour_names=False, read_as_template=False)
    text.seen.clear()
    with pytest.warns(UserWarning, match="not a word this Shapes pipeline was trained with"):
        pipe.text_to_video("a scarlet circle moving left", seed=1, progress=False)
    assert "a scarlet circle moving left" in text.seen and "a red circle moving left" not in text.seen
