"""The notes a Shapes pipeline gives for a prompt that describes the scene: a background, a size, a speed, a path
or a place the domain does not take from words; and that a background colour is not read as the object's."""
import pytest

from vidiff.data.prompt_ambiguity import ambiguous_prompt_note
from vidiff.data.shapes_prompt import parse_prompt
from vidiff.data.shapes_scene_notes import background_note, unset_words_note
from vidiff.pipeline.config import pipeline_config_from_dict
from vidiff.pipeline.prompt_reading import prompt_notes

# (prompt, what the reader must take from it, words the unset-words note must name or None)
USER_PROMPTS = [
    ("a red circle moving left on a white background", ("red", "circle", "left"), None),
    ("A white background with a red circle moving left", ("red", "circle", "left"), None),
    ("a blue square moving up against a green backdrop", ("blue", "square", "up"), None),
    ("a red circle on white, moving left", ("red", "circle", "left"), None),
    ("a big red circle moving left", ("red", "circle", "left"), "size ('big')"),
    ("a tiny blue square drifting up", ("blue", "square", "up"), None),  # every object is small
    ("a red circle moving left slowly", ("red", "circle", "left"), "speed ('slowly')"),
    ("a red circle moving quickly to the left", ("red", "circle", "left"), "speed ('quickly')"),
    ("a red circle bouncing", ("red", "circle", None), "path ('bouncing')"),
    ("a red circle moving left then up", ("red", "circle", "left"), "path ('then')"),
    ("a red circle in the top left corner moving right", ("red", "circle", "right"), "place ('corner')"),
    ("a red circle moving diagonally up and to the left", ("red", "circle", "up"), "path ('diagonally')"),
]


@pytest.mark.parametrize("prompt,read,unset", USER_PROMPTS)
def test_scene_words_are_not_the_object_and_are_told(prompt, read, unset):
    assert parse_prompt(prompt) == read
    note = unset_words_note(prompt)
    assert (note is None) if unset is None else (f"asks for a {unset} that this Shapes pipeline" in note)
    if "background" in prompt or "backdrop" in prompt or "on white" in prompt:
        assert "background" in background_note(prompt)
        # a background colour is no second object colour
        assert ambiguous_prompt_note(prompt) is None
    else:
        assert background_note(prompt) is None


def test_the_background_note_names_the_colour_and_what_is_drawn():
    note = background_note("A white background with a red circle moving left")
    assert note.startswith("the prompt asks for a white background: this Shapes pipeline draws every clip on its "
                           "own plain dark grey one (grey level 16-64 of 255)")
    assert "drew a white circle in 3 of 4 clips" in note
    assert background_note("a red ball on a pale blue backdrop").startswith("the prompt asks for a pale blue background")
    assert "pink background" in background_note("a red circle on a pink background")
    # the domain's own background, and a second object, are not a background the pipeline cannot draw
    for prompt in ("a red circle on a dark grey background", "a red ball on black", "a red ball over a white square",
                   "a white circle on a dark background moving up"):
        assert background_note(prompt) is None, prompt
    assert parse_prompt("a red ball over a white square")[0] == "red"
    assert "2 colours (red, white)" in ambiguous_prompt_note("a red ball over a white square")


def test_a_corner_is_a_place_and_a_start_in_it_is_still_read():
    assert parse_prompt("a blue box in the top-right corner moving down") == ("blue", "square", "down")
    assert parse_prompt("a dot that starts at the top and ends at the bottom") == (None, "circle", "down")


def test_the_generate_notes_say_them_and_control_maps_set_the_motion():
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"})
    notes = prompt_notes(shapes, "A white background with a red circle moving left")
    scene = [n for n in notes if "the text encoder gets" not in n]  # the prompt template's note besides
    assert len(scene) == 1 and scene[0].startswith("the prompt asks for a white background")
    assert any("speed ('slowly')" in n for n in prompt_notes(shapes, "a red circle moving left slowly"))
    assert not any("speed" in n for n in prompt_notes(shapes, "a red circle moving left slowly", by_maps=True))


def test_no_caption_of_the_grammar_gets_a_scene_note(grammar_captions):
    """No false alarms: every training, held-out and plain caption form, many draws of each."""
    for attributes, prompt in grammar_captions(40, 1):
        assert background_note(prompt) is None, prompt
        assert unset_words_note(prompt) is None, prompt
        assert parse_prompt(prompt) == attributes, prompt


def test_a_corner_moved_to_names_the_direction_and_a_thing_over_a_colour_is_no_background():
    """Two false readings the first version of the scene reader made: a corner the object moves to was taken as a
    place ("moving to the left corner" read no direction, and the note said the direction was left to chance), and
    a colour after "over" / "on" was taken as the background whatever followed ("over a white line")."""
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"})
    for prompt, direction in (("a red circle moving toward the top right corner", "up"),
                              ("a red circle moving to the left corner", "left"),
                              ("a red circle moving into the bottom corner", "down"),
                              ("a red circle in the top left corner moving right", "right")):
        assert parse_prompt(prompt)[2] == direction, prompt
    assert not any("left to chance" in n for n in prompt_notes(shapes, "a red circle moving to the left corner"))
    for prompt in ("a green triangle moving down over a white line", "a red circle on a blue box moving left"):
        assert background_note(prompt) is None, prompt
        assert parse_prompt(prompt)[0] in ("green", "red"), prompt
    for prompt in ("a red circle moving left on the blue", "a red circle on white, moving left"):
        assert background_note(prompt) is not None, prompt
