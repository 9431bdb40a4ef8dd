"""Shape nouns outside the training vocabulary, read as the shape WordNet defines them as
(vidiff/data/shape_nouns.py, vidiff/data/wordnet_shapes.py, tools/wordnet_shape_nouns.py)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vidiff.config import ConfigError
from vidiff.data.captions import TRAIN
from vidiff.data.shape_nouns import read_shape_nouns
from vidiff.data.wordnet_shapes import WORDNET_SHAPE_NOUNS
from vidiff.pipeline.config import pipeline_config_from_dict
from vidiff.pipeline.prompt_reading import encoder_prompts, prompt_notes

ROOT = Path(__file__).resolve().parents[1]
WORDNET = Path("/usr/share/wordnet")


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(),
                    reason="WordNet's files are not here (Debian: apt-get install wordnet-base; make test-tools)")
def test_the_shipped_table_is_what_the_rule_builds_from_wordnet(load_tool):
    builder = load_tool("wordnet_shape_nouns")
    nouns = builder.shape_nouns(builder.WordNet(WORDNET))
    assert nouns == WORDNET_SHAPE_NOUNS
    assert builder.module_text(nouns) == (ROOT / "vidiff" / "data" / "wordnet_shapes.py").read_text()


def test_every_training_noun_wordnet_places_reads_as_its_trained_shape():
    """The rule was written before it was run on any noun; the training nouns are its check."""
    placed = [(noun, shape) for shape, nouns in TRAIN.shapes.items() for noun in nouns if noun in WORDNET_SHAPE_NOUNS]
    assert all(WORDNET_SHAPE_NOUNS[noun] == shape for noun, shape in placed), placed
    assert len(placed) == 8  # all but "tile", whose senses are no shape in WordNet (a slab)


@pytest.mark.parametrize("gloss, shapes", [
    ("a hexahedron with six equal squares as faces", {"square"}),
    ("a polyhedron having a polygonal base and triangular sides with a common vertex", {"triangle"}),
    ("a shape whose base is a circle and whose sides taper up to a point", set()),  # a cone: its base's shape
    ("a solid figure bounded by a spherical surface; \"the triangle in the quote is an example\"", {"circle"}),
])
def test_a_definition_names_the_shape_of_the_body_not_of_its_base(gloss, shapes, load_tool):
    assert load_tool("wordnet_shape_nouns").definition_shapes(gloss) == shapes


@pytest.mark.parametrize("prompt, encoded, word", [
    ("a red cube moving left", "a red square moving left", "cube"),
    ("An orb rises", "A circle rises", "orb"),  # the article agrees, the capital is kept
    ("two cubes moving up", "two squares moving up", "cubes"),
    ("Cube, red, moving left", "Square, red, moving left", "cube"),
    ("the jade pyramid cruises skyward", "the jade triangle cruises skyward", "pyramid"),
    ("a small teal globe moving toward the point", "a small teal circle moving toward the point", "globe"),
    ("a red rectangle moving right", "a red square moving right", "rectangle"),
])
def test_a_shape_noun_of_the_object_is_said_as_the_shape_word(prompt, encoded, word):
    text, reading = read_shape_nouns(prompt)
    assert text == encoded and reading.word == word and reading.shape in encoded.lower()


@pytest.mark.parametrize("prompt", [
    "a red ball rolls left",  # a training noun: the shape is said in the model's words ("roll" is not read)
    "boxes moving left",
    "a scarlet thing rolls to the left",  # a verb, not the object's noun
    "a green thing drops down",
    "a red shape, not a cube, moving left",  # negated
    "a pearl moving left",  # a colour name ("pearl" white) is not read as a shape
    "a blue star moving up",  # neither WordNet nor the list of everyday things gives a star one shape
    "a red star moving left",
    "a yellow shape moving into the sphere",  # after a preposition: a place, not the object
])
def test_prompts_read_as_written(prompt):
    assert read_shape_nouns(prompt) == (prompt, None)


@pytest.mark.parametrize("prompt, encoded", [
    # nouns that are verbs too: an imperative, a third person after a colour or "one", and an animate prompt that
    # names only the motion were said as "circle" / "square"
    ("Roll a red cube to the left", "Roll a red square to the left"),
    ("Drop the red orb down", "Drop the red circle down"),
    ("roll left", "roll left"),
    ("drop down", "drop down"),
    ("Point it up", "Point it up"),
    ("Roll to the left", "Roll to the left"),
    ("the red one drops down", "the red one drops down"),
    ("a yellow one rolls to the left", "a yellow one rolls to the left"),
    ("Blue rolls to the left", "Blue rolls to the left"),
    ("this drops down", "this drops down"),
    # a command with no article before its object: the verb first, then the object's noun ("Roll" and "Drop" were
    # read as round things: "Circle square left")
    ("Roll coin left", "Roll circle left"),
    ("a blue Rubik's cube going down", "a blue square going down"),  # the name's capital, not the square's
    ("Rubik's cube going down", "Square going down"),
    ("Roll square left", "Roll square left"),
    ("Drop cube down", "Drop square down"),
    ("drop red cube down", "drop red square down"),
    ("Push orb left", "Push circle left"),
    ("Move cube to the left", "Move square to the left"),
    # ... but a noun first, with a verb-like noun after it, stays the object's
    ("Block drop down", "Square drop down"),
    ("Box drop down", "Box drop down"),
    ("Roll moving left", "Circle moving left"),
    # a bare noun is still the object's before its verb, punctuation or a trained place phrase
    ("Orb rises", "Circle rises"),
    ("Cube, the red one, moving left", "Square, the red one, moving left"),
    ("red cube to the left", "red square to the left"),
    ("a red cube drops down", "a red square drops down"),
    # "one" before a colour is a determiner, "that" after the noun a relative pronoun (held-out eval prompts)
    ("one gold pyramid that sails south", "one gold triangle that sails south"),
    ("cobalt block that sails skyward", "cobalt square that sails skyward"),
    ("one drop falls", "one circle falls"),
    ("one flat jade block over a dark background, cruising south",
     "one flat jade square over a dark background, cruising south"),
    ("a glowing orb moving up", "a glowing circle moving up"),
])
def test_a_verb_spelled_like_a_shape_noun_is_not_read(prompt, encoded):
    assert read_shape_nouns(prompt)[0] == encoded


def test_the_encoder_gets_both_readings_and_each_can_be_turned_off():
    # the words' readings, before the prompt template (tests/test_prompt_template.py) says the prompt whole
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes", "read_as_template": False}, where="p.yaml")
    prompts = ["one scarlet block sails west", "a teal globe moving up", "a red circle moving left"]
    assert encoder_prompts(shapes, prompts) == [
        "one red square sails west", "a green circle moving up", "a red circle moving left"]
    no_shapes = dataclasses.replace(shapes, read_shape_nouns=False)
    assert encoder_prompts(no_shapes, prompts[:2]) == ["one red block sails west", "a green globe moving up"]
    open_text = pipeline_config_from_dict({}, where="p.yaml")
    assert encoder_prompts(open_text, prompts) == prompts


def test_notes_say_the_reading_instead_of_the_untrained_noun():
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes", "read_as_template": False}, where="p.yaml")
    notes = prompt_notes(shapes, "a red cube moving left")
    assert notes == ["'cube' is read as square: this Shapes pipeline was not trained on the word, and WordNet "
                     "defines it as that shape"]
    off = dataclasses.replace(shapes, read_shape_nouns=False)
    assert any("'cube' (square) is not a word" in n for n in prompt_notes(off, "a red cube moving left"))
    # both read: each says its own, and no note calls either word untrained or the shape unnamed
    both = prompt_notes(shapes, "a scarlet orb moving left")
    assert len(both) == 2 and "'scarlet' is read as red" in both[0] and "'orb' is read as circle" in both[1]


def test_read_shape_nouns_in_pipeline_yaml_is_a_bool():
    assert pipeline_config_from_dict({"read_shape_nouns": False}, where="p.yaml").read_shape_nouns is False
    with pytest.raises(ConfigError, match="read_shape_nouns"):
        pipeline_config_from_dict({"read_shape_nouns": "yes please"}, where="p.yaml")


def test_everyday_things_are_read_by_their_outline():
    from vidiff.data.object_shapes import OBJECT_SHAPES
    from vidiff.data.shape_nouns import shape_reading_note

    assert read_shape_nouns("a white coin sliding down")[0] == "a white circle sliding down"
    assert read_shape_nouns("Two red tents moving up")[0] == "Two red triangles moving up"
    assert read_shape_nouns("a tiny deep blue dice goes right")[0] == "a tiny deep blue square goes right"
    text, reading = read_shape_nouns("a crimson tent shape rises")
    assert text == "a crimson triangle shape rises"
    assert shape_reading_note(reading).endswith("the thing it names has that outline")
    assert shape_reading_note(read_shape_nouns("a red cube")[1]).endswith("WordNet defines it as that shape")
    # a thing that is not the object, and a training noun, keep their words
    for prompt in ("a ball rolls past a tent to the left", "a red ball shaped like a coin", "a red box on a plate"):
        assert read_shape_nouns(prompt) == (prompt, None), prompt
    # no word of the list says another shape than a training noun or WordNet does
    trained = {noun: shape for shape, nouns in TRAIN.shapes.items() for noun in nouns}
    assert not {w for w, s in OBJECT_SHAPES.items() if trained.get(w, s) != s or WORDNET_SHAPE_NOUNS.get(w, s) != s}


def test_things_named_by_two_words_are_read_by_the_thing():
    """"sticky note" and "pizza slice" were the misses of a blind user set (docs/shapes_measured.md): the object's
    noun stood after another noun ("pizza") or was no shape noun at all ("note")."""
    cases = {
        "a yellow sticky note sliding left": "a yellow square sliding left",
        "Yellow post-it moving left": "Yellow square moving left",
        "two green post-it notes drifting right": "two green squares drifting right",
        "a red floppy disk moving down": "a red square moving down",  # not WordNet's round disk
        "a pink ice cream cone moving right": "a pink triangle moving right",
        "a red pizza slice moving up": "a red pizza triangle moving up",
        "an orange traffic cone rising": "an orange traffic triangle rising",
        "Hockey puck sliding left": "Hockey circle sliding left",
    }
    for prompt, read in cases.items():
        assert read_shape_nouns(prompt)[0] == read, prompt
    assert read_shape_nouns("a yellow sticky note")[1].word == "sticky note"
    # a training noun after another noun is the object's, as written; a place, a verb, a negation or another shape
    # before the noun still keep the prompt as it is
    for prompt in ("a red tennis ball moving left", "a red ball moving past a traffic cone", "the ball hits coin",
                   "not a sticky note, a red ball moving up", "a circle tent moving up", "a red ball and coin"):
        assert read_shape_nouns(prompt) == (prompt, None), prompt
    assert read_shape_nouns("two red pizza slices moving up")[0] == "two red pizza triangles moving up"
    for prompt in ("a scarlet thing drops down", "a red shape rolls left", "the blue object drops to the left"):
        assert read_shape_nouns(prompt) == (prompt, None), prompt
