"""Misspelt Shapes words read as the word meant (vidiff/data/prompt_spelling.py, vidiff/data/wordnet_near_words.py,
tools/wordnet_near_words.py)."""
from __future__ import annotations

import dataclasses
import random
import string
import time
from pathlib import Path

import pytest

from vidiff.config import ConfigError
from vidiff.data.prompt_spelling import (SpellingReading, _one_edit, meant_word, read_misspellings, shapes_words,
                                         spelling_reading_note)
from vidiff.data.wordnet_near_words import WORDNET_NEAR_WORDS
from vidiff.pipeline.config import pipeline_config_from_dict
from vidiff.pipeline.prompt_reading import encoder_prompts, prompt_notes

ROOT = Path(__file__).resolve().parents[1]
WORDNET = Path("/usr/share/wordnet")
SHAPES = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")


@pytest.mark.parametrize("a, b, one", [
    ("squre", "square", True),  # a letter dropped
    ("downn", "down", True),  # added
    ("bkue", "blue", True),  # changed
    ("sqaure", "square", True), ("cirlce", "circle", True),  # two neighbours swapped
    ("sqaer", "square", False),  # a letter dropped and two swapped
    ("square", "square", False),
    ("eqaurs", "square", False),  # swapped letters that are not neighbours, and more
    ("bleu", "blue", True), ("ble", "blue", True), ("bluee", "blue", True), ("lbue", "blue", True),
    ("bleuu", "blue", False),
])
def test_one_edit_is_damerau_s_four_errors(a, b, one):
    assert _one_edit(a, b) is one and _one_edit(b, a) is one


@pytest.mark.parametrize("prompt, encoded", [
    ("a blue squre moving up", "a blue square moving up"),
    ("A Yelow Sqaure Drifting Leftt", "a yellow square moving left"),
    ("a whte triangel going upwrd", "a white triangle moving up"),
    ("a blue circle moving rigth", "a blue circle moving right"),
    # read, then read on by the other readers: a WordNet shape noun, a colour name of the xkcd survey
    ("a red pyramd sliding right", "a red triangle moving right"),
    ("a turquiose ball heading east", "a green circle moving right"),
    ("a red circle rissing", "a red circle moving up"),
    ("a gol square moving lft", "a yellow square moving left"),  # 3 letters: a letter dropped from a 4-letter word
])
def test_a_misspelt_word_reaches_the_encoder_as_the_word_meant(prompt, encoded):
    assert encoder_prompts(SHAPES, [prompt]) == [encoded]


@pytest.mark.parametrize("word", [
    "greet", "glue", "light", "read", "town",  # English words the encoder's vocabulary holds
    "mellow", "preen", "deft", "cleft", "aright", "atone",  # ... and words it lacks that WordNet holds
    "pointy", "bluey", "cubed",  # made from a Shapes word, not a slip of one
    "gren",  # one letter from green and from grey
    "teal", "mauve", "skyward", "orbs", "cubes",  # words (and plurals) the readers know
    "bu", "rd",  # too short to say which word
    "eft", "bock",  # WordNet's (a newt, a beer)
])
def test_words_that_are_no_misspelling_of_one_shapes_word_stay(word):
    assert meant_word(word) is None
    assert read_misspellings(f"a {word} ball") == (f"a {word} ball", None)


def test_no_shapes_word_and_no_wordnet_word_near_one_is_read_as_another():
    assert all(meant_word(w) is None for w in shapes_words())
    assert all(meant_word(w) is None for w in WORDNET_NEAR_WORDS)
    assert {"mellow", "preen", "deft"} <= WORDNET_NEAR_WORDS


@pytest.mark.parametrize("prompt, read", [
    ("a blue square moving letf", "a blue square moving left"),  # left, not the colour leaf: the colour is named
    ("a red blck moving up", "a red block moving up"),  # block, not black
    ("a blck square moving up", "a black square moving up"),
    ("a gren box moving left", "a gren box moving left"),  # green or grey: both colours
    ("a red ringg moving up", "a red ring moving up"),  # ring or rings: one noun
])
def test_a_word_one_edit_from_several_is_read_as_what_the_prompt_lacks(prompt, read):
    assert read_misspellings(prompt)[0] == read


def test_the_reading_keeps_the_rest_of_the_prompt_and_its_capitals():
    text, reading = read_misspellings("Make a YELOW squre, then a Cirlce!")
    assert text == "Make a YELLOW square, then a Circle!"
    assert reading == SpellingReading(("yelow", "squre", "cirlce"), ("yellow", "square", "circle"))


def test_the_note_names_each_word_read():
    notes = prompt_notes(SHAPES, "a blue squre moving up")
    assert notes[0] == ("read as misspelt: 'squre' as 'square' (a word neither the prompt reader, the text "
                        "encoder's vocabulary nor WordNet knows, one letter from a colour, shape or direction word)")
    many = SpellingReading(tuple("abcdefg"), tuple("ABCDEFG"))
    assert "'e' as 'E' and 2 more" in spelling_reading_note(many)
    # the shape is read, so no note leaves it to chance
    assert not any("left to chance" in n for n in notes)
    assert any("no shape it knows" in n for n in prompt_notes(dataclasses.replace(SHAPES, read_misspellings=False),
                                                            "a blue squre moving up"))


def test_read_misspellings_in_pipeline_yaml_is_a_bool_and_false_leaves_the_prompt():
    off = pipeline_config_from_dict({"prompt_vocabulary": "shapes", "read_misspellings": False}, where="p.yaml")
    assert off.read_misspellings is False
    assert encoder_prompts(off, ["a blue squre moving up"]) == ["a blue squre moving up"]
    with pytest.raises(ConfigError, match="read_misspellings"):
        pipeline_config_from_dict({"read_misspellings": "maybe"}, where="p.yaml")


def test_a_long_prompt_of_unknown_words_is_read_quickly():
    rng = random.Random(0)
    words = ("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))) for _ in range(20000))
    start = time.perf_counter()
    read_misspellings(" ".join(words))
    assert time.perf_counter() - start < 5  # 0.2 s here: an index of deletions, not a scan of every word


@pytest.mark.skipif(not (WORDNET / "index.noun").is_file(),
                    reason="WordNet's files are not here (Debian: apt-get install wordnet-base; make test-tools)")
def test_the_shipped_stop_list_is_what_the_tool_builds_from_wordnet(load_tool):
    builder = load_tool("wordnet_near_words")
    words = builder.english_words(WORDNET)
    assert {"mellow", "preen", "rinsing", "paler", "berries"} <= words  # lemmas and their regular forms
    near = builder.near_words(words)
    assert near == WORDNET_NEAR_WORDS
    assert builder.module_text(near) == (ROOT / "vidiff" / "data" / "wordnet_near_words.py").read_text()


def test_the_typo_benchmark_makes_one_edit_each_time(load_tool):
    tool = load_tool("typo_readings")
    rng = random.Random(3)
    for word in ("left", "square", "cobalt", "east") * 50:
        assert _one_edit(word, tool.one_edit(word, rng))


def test_an_animate_prompt_s_misspelt_direction_is_read_and_noted():
    # the image sets the colour and shape; before, the note left the read direction "to chance"
    notes = prompt_notes(SHAPES, "make it float upwrd", task="animate")
    assert len(notes) == 1 and notes[0].startswith("read as misspelt: 'upwrd' as 'upward'")
    assert encoder_prompts(SHAPES, ["make it float upwrd"], ("red", "circle")) == ["a red circle moving up"]
