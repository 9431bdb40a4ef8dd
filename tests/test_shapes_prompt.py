"""The note a Shapes pipeline gives for a prompt that leaves colour, shape or direction to chance."""
import pytest

from vidiff.config import ConfigError
from vidiff.data.captions import HELD_OUT, TRAIN, untrained_words_note
from vidiff.data.prompt_ambiguity import ambiguous_prompt_note
from vidiff.data.shapes_prompt import unnamed_attributes_note
from vidiff.pipeline.config import pipeline_config_from_dict


def test_the_note_names_what_the_prompt_leaves_to_chance():
    note = unnamed_attributes_note("a cat walking on the beach")
    assert note.startswith("this Shapes pipeline found no colour, shape or direction it knows")
    assert "colour: red, green, blue, yellow, white" in note and "direction: left, right, up, down" in note
    note = unnamed_attributes_note("A red circle.")
    assert "found no direction it knows" in note and "that is left to chance" in note and "shape:" not in note
    assert unnamed_attributes_note("a red circle moving left") is None
    assert unnamed_attributes_note("the ring, jade, that sails west") is None  # held-out words are read too
    # a training noun's plural names its shape ("boxes" named none, and the note said the shape was left to chance)
    for prompt in ("red boxes moving left", "green balls going up", "white wedges moving down", "blue discs, left"):
        assert unnamed_attributes_note(prompt) is None and untrained_words_note(prompt) is None, prompt


def test_the_note_for_prompts_one_clip_cannot_hold():
    assert ambiguous_prompt_note("a red ball and a blue square moving up") == (
        "the prompt names 2 colours (red, blue); 2 shapes (circle, square): this Shapes pipeline draws one object "
        "and takes the first of each (colour red, shape circle)")
    assert ambiguous_prompt_note("two red circles moving left").startswith("the prompt names more than one object")
    # a plural said without a count asks for several too; a negated plural and a verb ("drops") do not
    assert ambiguous_prompt_note("red balls moving left") == (
        "the prompt names more than one object ('balls'): this Shapes pipeline draws one object")
    assert ambiguous_prompt_note("green boxes drifting up").startswith("the prompt names more than one object ('boxes')")
    for prompt in ("a red ball, not balls, moving left", "a red ball drops down", "a blue square moving up"):
        assert ambiguous_prompt_note(prompt) is None, prompt
    # a plural shape noun said as a verb, a place or a likeness asks for one object
    for prompt in ("a ball that circles left", "a red ball circles to the left", "a blue square squares off left",
                   "a red ball moving left past rings of colour", "a red ball moving left, like billiard balls",
                   "a red ball moving left, no other balls"):
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert "2 directions (up, down)" in ambiguous_prompt_note("a green triangle moving up and down")
    # one direction said as a path, or twice, is no contradiction; nor is a synonym of the same colour
    for prompt in ("a blue square moving from left to right", "a box that starts at the top and sinks to the bottom",
                   "a crimson red disc drifting west, leftward", "a red circle moving left"):
        assert ambiguous_prompt_note(prompt) is None, prompt


def test_the_note_for_colour_and_shape_words_no_training_caption_uses():
    assert untrained_words_note("a red cube moving left") == (
        "'cube' (square) is not a word this Shapes pipeline was trained with, so the clip may show another shape; "
        "trained words: square, box, tile (square)")
    note = untrained_words_note("Please generate a scarlet orb which drops down.")
    assert note.startswith("'scarlet' (red) and 'orb' (circle) are not words") and "another colour and shape" in note
    # every held-out colour and shape word is told; a trained word beside it (or its plural) is enough
    for value, words in (*HELD_OUT.colours.items(), *HELD_OUT.shapes.items()):
        for word in words:
            assert f"{word!r} ({value})" in untrained_words_note(f"the {word} thing"), word
    for prompt in ("snow white ball moving up", "a navy blue box", "red squares moving up", "a crimson red disc",
                   "a cat walking", "a red circle moving west"):  # directions are not checked
        assert untrained_words_note(prompt) is None, prompt
    for value, words in (*TRAIN.colours.items(), *TRAIN.shapes.items()):
        for word in words:
            assert untrained_words_note(f"the {word} thing") is None, word


def test_no_caption_of_the_grammar_reads_as_negated(grammar_captions):
    """The negation words must not fire on ordinary prompts: every training and held-out caption form."""
    from vidiff.data.prompt_negations import negated_words_note

    for _, prompt in grammar_captions(20, 0):
        assert negated_words_note(prompt) is None, prompt


def test_an_unknown_prompt_vocabulary_is_refused():
    assert pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml").prompt_vocabulary == "shapes"
    with pytest.raises(ConfigError, match="prompt_vocabulary: 'klingon' unknown"):
        pipeline_config_from_dict({"prompt_vocabulary": "klingon"}, where="p.yaml")


def test_the_note_for_a_negated_colour_shape_or_direction():
    """"a circle moving left, not red" came out red in 4 of 4 clips, and "a square that is not moving up" moved up,
    without a word: the reader takes 'red' and 'up' as asked."""
    from vidiff.data.prompt_negations import negated_words_note
    from vidiff.pipeline.prompt_reading import prompt_notes

    assert negated_words_note("a circle moving left, not red") == (
        "the prompt says 'not red': this Shapes pipeline reads the words and not the negation, so the clip will "
        "likely have them (colour red); say what it should show instead")
    note = negated_words_note("a blue box that isn\u2019t moving up, without any green")
    assert "\"isn't moving up\", 'without any green'" in note and "(direction up, colour green or blue)" in note
    assert "will likely have them (direction up)" in negated_words_note("a box that isn't moving up")
    # with another value of it named, the clip may show either: "not a circle, a green triangle moving down" drew 8
    # of 8 circles, "a red circle moving left, not blue" 6 of 8 red; that is no second object, and said once (the
    # note on more than one object took the first colour, red, while this note said blue)
    assert "may have them (shape square or circle)" in negated_words_note("No squares: a red circle moving up")
    for prompt in ("a red circle moving left, not blue", "not a circle, a green triangle moving down"):
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert "(direction left or right or up)" in negated_words_note("a red circle moving up, not left, not right")
    assert "'non-red'" in negated_words_note("a non-red circle going left")
    # a negation of something else, or one a comma or another word cuts off, is no note
    for prompt in ("a red circle with no trail moving left", "a red circle that does not stop, moving left",
                   "a red circle moving left without stopping", "a knot of red moving left", "a red circle moving up"):
        assert negated_words_note(prompt) is None, prompt
    # every common way to say it: contractions with any apostrophe or none, and the two-word negations
    for prompt, said in (("Don't make it red", "don't make it red"), ("Don\u2019t make it red", "don't make it red"),
                         ("Don\u2018t make it red", "don't make it red"), ("Don`t make it red", "don't make it red"),
                         ("dont make it red", "dont make it red"), ("it doesn't move up", "doesn't move up"),
                         ("a square that aren't blue", "aren't blue"), ("a box that won\u2019t go up", "won't go up"),
                         ("a ball that can't be red", "can't be red"), ("a ball that cannot be red", "cannot be red"),
                         ("a circle in any colour except red", "except red"), ("anything but blue", "anything but blue"),
                         ("a circle, other than red", "other than red"), ("a square instead of a circle",
                                                                          "instead of a circle"),
                         ("a blue disc, rather than red", "rather than red"), ("never blue", "never blue"),
                         ("no green please", "no green"), ("a circle that is not really red", "not really red")):
        assert f"says {said!r}:" in (negated_words_note(prompt) or ""), prompt
    for prompt in ("nothing but red circles moving up", "a note: red circle moving north", "a red circle moving north",
                   "a red circle moving left, instead of stopping"):
        assert negated_words_note(prompt) is None, prompt
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    for task in ("generate", "edit", "animate"):  # the model reads the word as asked in every task
        assert any("not the negation" in n for n in prompt_notes(shapes, "a circle moving left, not red", task)), task


def test_a_place_said_with_at_in_or_on_is_not_the_direction():
    """"a red circle at the bottom moving up" read down (the place's word came first) and said the prompt named two
    directions; a start and an end said there still name the motion."""
    from vidiff.data.shapes_prompt import parse_prompt

    for prompt, direction in (("a red circle at the bottom moving up", "up"),
                              ("a red circle at the top moving down", "down"),
                              ("a red circle in the upper left, moving right", "right"),
                              ("a circle on the left moving right", "right"),
                              ("a ball that ends at the bottom", "down"), ("enters at the top", "down"),
                              ("moving in the left direction", "left")):
        assert parse_prompt(prompt)[2] == direction, prompt
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert parse_prompt("a red circle at the bottom") == ("red", "circle", None)


def test_near_places_and_starts_and_ends_up_is_an_arrival():
    """User set g: "starts near the bottom and ends near the top" read down (a start said with "near" was taken for
    the motion), and "starts on the right and ends up on the left" named two directions (the "up" of "ends up")."""
    from vidiff.data.shapes_prompt import parse_prompt

    for prompt, direction in (("a red orb starts near the bottom and ends near the top", "up"),
                              ("a box that starts near the left edge", "right"),
                              ("a red ball near the bottom moving up", "up"),
                              ("starts on the right and ends up on the left", "left"),
                              ("a ball that ends up at the top", "up"), ("a ball that winds up on the right", "right"),
                              ("a ball that goes up", "up"), ("a ball moving up and ending up on the left", "up")):
        assert parse_prompt(prompt)[2] == direction, prompt
    assert ambiguous_prompt_note("starts on the right and ends up on the left") is None
    assert "2 directions" in ambiguous_prompt_note("a ball moving up and ending up on the left")
    assert parse_prompt("a red ball near the bottom")[2] is None


def test_entering_leaving_and_the_sky_and_floor_name_the_motion():
    """A corpus of 426 motion phrases written apart from the reader: "comes out of the left side" and "enters frame
    right" read the side as the goal (wrong where the prompt template draws it), "exits on the left" and "leaves the
    screen at the top" read no direction (a place), and "into the sky", "toward the floor", "from below",
    "westbound", "plummeting" none at all."""
    from vidiff.data.shapes_prompt import parse_prompt

    for prompt, direction in (("a purple ball comes out of the left side of the frame", "right"),
                              ("a cube that comes out of the top of the frame", "down"),
                              ("A brown cube enters frame right and crosses the screen.", "left"),
                              ("a square appears at the right edge and slides across", "left"),
                              ("The green cube exits on the left.", "left"),
                              ("a square leaving the frame on the left side", "left"),
                              ("a star that leaves the screen at the top", "up"),
                              ("a ball soaring into the sky", "up"), ("The square moves toward the floor.", "down"),
                              ("a ball falls from the ceiling", "down"), ("a ball rising from the floor", "up"),
                              ("a triangle begins near the ceiling and ends up on the floor", "down"),
                              ("a ball lands on the ground", "down"), ("a ball entering the shot from below", "up"),
                              ("a ball comes in from above", "down"), ("a square moving westbound", "left"),
                              ("a ball plummeting earthward", "down"), ("a dot plunging", "down"),
                              # a place stays a place
                              ("a ball on the ground moving left", "left"),
                              ("a red ball in the sky moving right", "right"),
                              ("A gold ball rolling along the floor to the left.", "left"),
                              ("a ball above the line moving left", "left"),
                              ("a ball in the frame on the left moving right", "right")):
        assert parse_prompt(prompt)[2] == direction, prompt
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert parse_prompt("a red ball on the floor")[2] is None


def test_a_motion_said_after_on_or_in_is_the_direction():
    """Only a word that names a place is one after "at", "in" or "on": "heading on up", "keeps on falling" and "in
    upward motion" read no direction (taken for places), and "comes to rest at the bottom" none either."""
    from vidiff.data.shapes_prompt import parse_prompt

    for prompt, direction in (("a red ball heading on up", "up"), ("a ball moving on down", "down"),
                              ("a ball that keeps on falling", "down"), ("a ball on the rise", "up"),
                              ("a ball in upward motion", "up"), ("a square that goes on rightward", "right"),
                              ("a ball comes to rest at the bottom", "down"), ("a ball settles at the bottom", "down"),
                              ("a ball on the far right moving left", "left")):
        assert parse_prompt(prompt)[2] == direction, prompt
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert parse_prompt("a ball at rest at the top")[2] is None


def test_the_wards_spellings_of_compass_words_name_a_direction():
    from vidiff.data.shapes_prompt import parse_prompt

    for word, direction in (("eastwards", "right"), ("westwards", "left"), ("northwards", "up"),
                            ("southwards", "down")):
        assert parse_prompt(f"a green triangle moving {word}")[2] == direction, word


def test_a_long_prompt_is_read_at_once():
    """A prompt of a few hundred colour words took seconds (every word walked back over the run before it, each
    step looking over the run again), and a few thousand minutes."""
    import time

    from vidiff.data.shapes_prompt import parse_prompt
    from vidiff.pipeline.prompt_reading import prompt_notes, read_prompt

    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    prompt_notes(shapes, "a red circle moving left")  # the readers' imports
    start = time.perf_counter()
    notes = prompt_notes(shapes, "red " * 2000 + "circle moving left")
    assert time.perf_counter() - start < 1.0
    assert len(notes) == 1 and "the text encoder gets 'a red circle moving left'" in notes[0]
    start = time.perf_counter()  # every word walked forward over the shade words after it for a colour name
    # the walk for every word took 0.12 s at 3000 words, growing as the square of the length
    read = read_prompt(shapes, "a " + "very " * 20000 + "teal square moving left")
    assert time.perf_counter() - start < 1.0
    assert read[0].endswith("very green square moving left")
    start = time.perf_counter()  # every direction word walked back over the direction words before it for "at"
    # the walk back for every word took 1.1 s at 5000 words, growing as the square of the length
    assert parse_prompt("a ball moving " + "up " * 20000) == (None, "circle", "up")
    assert time.perf_counter() - start < 1.0


def test_a_second_object_of_the_same_colour_and_shape_or_a_motion_back_is_no_one_clip():
    """"a red ball and another red ball moving left" and "a red ball moving left and back again" named one colour,
    shape and direction, so the text encoder got "a red circle moving left" with no word of the rest."""
    assert ambiguous_prompt_note("a red ball and another red ball moving left") == (
        "the prompt names more than one object ('another'): this Shapes pipeline draws one object")
    assert "more than one object ('second')" in ambiguous_prompt_note("a red ball and a second ball moving left")
    assert "more than one object ('twin')" in ambiguous_prompt_note("a red ball with its twin moving left")
    assert ambiguous_prompt_note("a red ball moving left and back again") == (
        "the prompt names a motion back ('back'): this Shapes pipeline draws one object moving one way")
    for prompt, word in (("a red ball moving left and returning", "returning"),
                         ("a red ball moving up then turning around", "around"),
                         ("a red ball goes left, then reverses", "reverses")):
        assert f"a motion back ({word!r})" in ambiguous_prompt_note(prompt), prompt
    # a time, a direction said with "back" and a place are none of them
    for prompt in ("a red ball moving left in a second", "a red ball heading back up",
                   "a red ball near the back wall moving left", "one red ball moving left"):
        assert ambiguous_prompt_note(prompt) is None, prompt


def test_a_negation_said_with_ever_no_longer_lacking_or_minus():
    from vidiff.data.prompt_negations import negated_words_note

    for prompt, said in (("a ball that should not ever be red moving left", "'not ever be red'"),
                         ("a ball moving left, no longer red", "'no longer red'"),
                         ("a ball lacking red moving left", "'lacking red'"),
                         ("a ball moving left, minus the red", "'minus the red'")):
        assert f"the prompt says {said}:" in negated_words_note(prompt), prompt


def test_a_shape_described_by_its_sides_or_a_shape_adjective_is_read():
    """A corpus of 337 shape phrases written apart from the reader: "a three-sided shape", "with four equal sides",
    "a rectangular object", "boxy" named no shape (and "three" was counted as three objects); each goes to the
    encoder as the template now."""
    from vidiff.data.shapes_prompt import parse_prompt
    from vidiff.pipeline.config import pipeline_config_from_dict
    from vidiff.pipeline.prompt_reading import encoder_text

    for prompt, shape in (("a red three-sided shape moving down", "triangle"),
                          ("a blue three-cornered object moving up", "triangle"),
                          ("a yellow shape with four equal sides moving down", "square"),
                          ("a white shape with four corners moving left", "square"),
                          ("a green shape with three straight sides moving left", "triangle"),
                          ("a rectangular red object moving left", "square"), ("a blue boxy thing", "square"),
                          ("a spherical red object floating upward", "circle"), ("a squarish tile", "square")):
        assert parse_prompt(prompt)[1] == shape, prompt
        assert ambiguous_prompt_note(prompt) is None, prompt
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    assert encoder_text(shapes, "Cobalt blue three-sided shape. It moves up the screen.") == "a blue triangle moving up"
    # a count is still a count
    assert "more than one object ('three')" in ambiguous_prompt_note("three red squares moving left")
    assert "more than one object ('four')" in ambiguous_prompt_note("four triangles with sharp corners")


def test_departing_a_side_opposite_and_a_motion_that_does_not_happen():
    """A reviewer's prompts the prompt template drew as the person did not mean: "fleeing the right side" as right,
    "moving opposite to left" as left, "refuses to go left" as left, "toward the upper left corner" as left."""
    from vidiff.data.prompt_negations import negated_words_note
    from vidiff.data.shapes_prompt import parse_prompt
    from vidiff.pipeline.config import pipeline_config_from_dict
    from vidiff.pipeline.prompt_reading import encoder_text

    for prompt, direction in (("a red ball fleeing the right side", "left"),
                              ("a red ball leaving the left edge", "right"),
                              ("a red ball leaves the screen at the top", "up"),  # a goal, said with a place word
                              ("a red ball moving opposite to left", "right"),
                              ("a red ball in the upper left, moving right", "right")):
        assert parse_prompt(prompt)[2] == direction, prompt
        assert ambiguous_prompt_note(prompt) is None, prompt
    assert "2 directions (up, left)" in ambiguous_prompt_note("a triangle sliding toward the upper left corner")
    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    for prompt in ("a red square that refuses to go left", "a red square is unable to move left",
                   "a red triangle sliding toward the upper left corner"):
        assert encoder_text(shapes, prompt) == prompt, prompt
    assert "'refuses to go left'" in negated_words_note("a red square that refuses to go left")


def test_nothing_and_free_of_negate_and_nothing_but_asks():
    """"a ball moving left, nothing red" and "a red-free square" went to the encoder as a red object (the template
    of what they negate); "nothing but red" asks for red."""
    from vidiff.data.prompt_negations import negated_words_note
    from vidiff.pipeline.prompt_reading import encoder_text

    shapes = pipeline_config_from_dict({"prompt_vocabulary": "shapes"}, where="p.yaml")
    for prompt, said in (("a ball moving left, nothing red", "'nothing red'"),
                         ("a red-free square moving up", "'red-free'"),
                         ("a circle free of red moving up", "'free of red'"),
                         ("a blue-less box moving up", "'blue-less'")):
        assert f"the prompt says {said}:" in negated_words_note(prompt), prompt
        assert encoder_text(shapes, prompt) == prompt, prompt
    assert negated_words_note("nothing but red: a circle moving left") is None
    assert encoder_text(shapes, "nothing but red: a circle moving left") == "a red circle moving left"
    assert negated_words_note("a carefree red ball moving left") is None  # "free" of no colour


def test_clock_positions_name_the_direction_they_point_to():
    from vidiff.data.shapes_prompt import parse_prompt

    for prompt, direction in (("a red circle heading toward 3 o'clock", "right"),
                              ("a ball moving from 9 o'clock to 3 o'clock", "right"),
                              ("a ball going to twelve o clock", "up"),
                              ("a box sliding towards 6 o\u2019clock", "down"),
                              ("a ball that starts at 3 o'clock", "left"),  # a start: the other way
                              ("a red ball rolling left at 3 o'clock in the afternoon", "left")):  # a time of day
        assert parse_prompt(prompt)[2] == direction, prompt
    assert "2 directions (up, right)" in ambiguous_prompt_note("a blue box heading to 2 o'clock")
    assert ambiguous_prompt_note("two o'clock, a red ball moving up") is None  # a time is not a count


def test_a_circle_said_of_the_path_is_not_the_shape():
    """"a red square moving left in a circle" named two shapes; the circle is the path, which a note says the
    pipeline does not draw."""
    from vidiff.data.shapes_prompt import parse_prompt
    from vidiff.data.shapes_scene_notes import unset_words_note

    assert parse_prompt("a red square moving left in a circle") == ("red", "square", "left")
    assert ambiguous_prompt_note("a red square moving left in a circle") is None
    assert "a path ('in a circle')" in unset_words_note("a red square moving left in a circle")
    assert parse_prompt("a blue car driving round in big circles")[1] is None  # "round" too: how it moves
    assert "path ('round', 'in circles')" in unset_words_note("a blue car driving round in big circles")
    # the object itself
    assert parse_prompt("a red circle in a corner moving up")[1] == "circle"
    assert parse_prompt("a red object moving left in a circle shape")[1] == "circle"
    assert parse_prompt("a round red thing spinning round, moving up")[1] == "circle"


def test_a_colour_said_of_the_light_or_the_ground_is_not_the_object():
    from vidiff.data.shapes_prompt import parse_prompt

    assert parse_prompt("a red ball under a white light moving left") == ("red", "circle", "left")
    assert parse_prompt("a ball rolling left across bright green grass")[0] is None
    assert parse_prompt("a light blue ball moving up")[0] == "blue"  # "light" a shade
    assert parse_prompt("a white light box moving up")[0] == "white"  # a noun of the object follows


def test_a_count_said_as_a_multiplier():
    assert "more than one object ('x2')" in ambiguous_prompt_note("red circle x2 moving left")
    assert "more than one object ('2')" in ambiguous_prompt_note("2x red circles moving left")
    assert ambiguous_prompt_note("a red circle moving left at 2x speed") is None
