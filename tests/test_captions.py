"""The Shapes caption grammar (vidiff/data/captions.py): deterministic per seed, every caption names exactly its
attributes, held-out words never reach training captions, and the prompt parser reads every word it uses."""
import itertools
import re

import pytest
import torch

from vidiff.data import captions
from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, all_combinations, parse_caption, parse_prompt
from vidiff.data.shapes_prompt import _COLOUR_WORDS, _DIRECTION_WORDS, _SHAPE_WORDS


def _gen(*keys):
    from vidiff.random import generator

    return generator(*keys)


def _training_draws(n):
    combos = all_combinations()
    for i in range(n):
        colour, shape, direction = combos[i % len(combos)]
        yield (colour, shape, direction), captions.draw_caption(colour, shape, direction, _gen(7, i, "caption"))


def test_draws_are_deterministic_per_generator_seed():
    a = [captions.draw_caption("red", "square", "up", _gen(3, i)) for i in range(50)]
    b = [captions.draw_caption("red", "square", "up", _gen(3, i)) for i in range(50)]
    c = [captions.draw_caption("red", "square", "up", _gen(4, i)) for i in range(50)]
    assert a == b
    assert a != c
    assert len(set(a)) > 30  # the grammar varies: 50 draws, mostly different sentences


def test_every_training_caption_names_exactly_its_attributes():
    tables = (("colour", _COLOUR_WORDS), ("shape", _SHAPE_WORDS), ("direction", _DIRECTION_WORDS))
    for truth, caption in _training_draws(3000):
        assert parse_caption(caption) == truth, caption
        # a path names its start too ("from right to left"): drop that part before looking for other values
        words = re.sub(r"\bfrom (the )?\w+( edge)? to\b", "to", caption).replace(",", " ").split()
        for (_, table), value in zip(tables, truth):
            named = {table[w] for w in words if w in table}
            assert named == {value}, (caption, named)  # no word of another value of the same attribute


def test_heldout_words_never_appear_in_training_captions():
    phrases = captions.heldout_phrases()
    assert {"scarlet", "ring", "block", "cruising", "west", "skyward"} <= phrases
    for _, caption in _training_draws(5000):
        hits = [p for p in phrases if captions.contains_phrase(caption, p)]
        assert not hits, (caption, hits)


def test_heldout_prompts_use_only_heldout_attribute_words_and_parse_back():
    train_words = {w for group in (*captions.TRAIN.colours.values(), *captions.TRAIN.shapes.values())
                   for w in group} | {w for pair in captions.TRAIN.verbs for w in pair}
    for i, (c, s, d) in enumerate(all_combinations() * 5):
        prompt = captions.heldout_prompt(c, s, d, _gen(11, i))
        assert parse_prompt(prompt) == (c, s, d), prompt
        assert not [w for w in train_words if captions.contains_phrase(prompt, w)], prompt
        assert any(captions.contains_phrase(prompt, p) for p in captions.HELD_OUT.directions[d]), prompt


def test_plain_template_stays_in_the_training_distribution():
    drawn = [captions.draw_caption("blue", "square", "up", _gen(5, i)) for i in range(1000)]
    share = drawn.count("a blue square moving up") / len(drawn)
    assert 0.15 < share < 0.3  # PLAIN_PROB = 0.2, plus the rare grammar draw that equals it


def test_vocabularies_are_disjoint_and_complete():
    for vocab in (captions.TRAIN, captions.HELD_OUT):
        assert set(vocab.colours) == set(COLOURS)
        assert set(vocab.shapes) == set(SHAPES)
        assert set(vocab.directions) == set(DIRECTIONS)
    train = {p for g in itertools.chain(captions.TRAIN.colours.values(), captions.TRAIN.shapes.values(),
                                        captions.TRAIN.directions.values(), captions.TRAIN.verbs) for p in g}
    assert not train & captions.heldout_phrases()


def test_training_captions_say_every_direction_also_as_a_path():
    paths = [c for _, c in _training_draws(3000) if " from " in f" {c} "]
    assert 0.05 < len(paths) / 3000 < 0.4
    assert {parse_caption(c)[2] for c in paths} == set(DIRECTIONS)


def test_captions_without_paths_name_only_the_goal_and_keep_every_other_draw():
    combos = all_combinations()
    with_paths, without = [], []
    for i in range(600):
        colour, shape, direction = combos[i % len(combos)]
        with_paths.append(captions.draw_caption(colour, shape, direction, _gen(7, i, "caption"), 0.0))
        without.append(captions.draw_caption(colour, shape, direction, _gen(7, i, "caption"), 0.0, paths=False))
    assert not [c for c in without if " from " in f" {c} "]
    assert [parse_caption(c) for c in without] == [parse_caption(c) for c in with_paths]
    phrases = sorted({p for ps in captions.TRAIN.directions.values() for p in ps}, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, phrases)) + r")\b")
    # only the direction phrase is drawn from other options: article, adjective, colour, shape, verb and word
    # order stay those of the caption with paths
    assert [pattern.sub("~", c) for c in without] == [pattern.sub("~", c) for c in with_paths]
    assert sum(a != b for a, b in zip(with_paths, without)) > 0.3 * 600
    assert all(not captions.is_path(p) for ps in captions.TRAIN_NO_PATHS.directions.values() for p in ps)


@pytest.mark.parametrize("prompt, direction", [
    ("a red circle moving from right to left", "left"), ("moves from the left side to the right side", "right"),
    ("a box going left to right", "right"), ("from the bottom to the top", "up"), ("goes top to bottom", "down"),
    ("a ball coming in from the left", "right"), ("moves up from the bottom of the screen", "up"),
    ("a square moving to the left", "left"), ("toward the right edge", "right"), ("a dot falling", "down"),
    ("starts on the right and ends on the left", "left"), ("enters at the top", "down"),
    ("moves left-to-right", "right"), ("a box that descends", "down"), ("ascends slowly", "up"),
    ("the ball starts moving left", "left"), ("starting from the bottom, it climbs", "up"),
    ("beginning in the left corner", "right"),
])
def test_a_direction_word_that_names_the_start_means_the_opposite_way(prompt, direction):
    assert parse_prompt(prompt)[2] == direction


def test_bad_attribute_is_refused():
    with pytest.raises(ValueError, match="colour"):
        captions.draw_caption("purple", "square", "up", torch.Generator())


def test_plain_caption_prob_sets_the_share_of_plain_templates():
    import torch

    from vidiff.data.captions import draw_caption
    from vidiff.data.shapes import prompt_for

    plain = prompt_for("red", "circle", "left")
    for p, lo, hi in ((1.0, 400, 400), (0.5, 160, 240), (0.0, 0, 8)):
        g = torch.Generator().manual_seed(0)
        hits = sum(draw_caption("red", "circle", "left", g, plain_prob=p) == plain for _ in range(400))
        assert lo <= hits <= hi, (p, hits)


def test_heldout_prompts_stay_the_ones_every_figure_was_measured_on():
    """A change to the grammar for training must not change a held-out draw (one did on 2026-12-03, evening, and
    was caught only by its figure): these four are what the grammar has drawn since 2026-12-01."""
    expected = ["one ring in scarlet sailing west", "a jade ring on a dark grey background, cruising to the right side",
                "the ring, cobalt, that cruises north", "one gold ring cruises south"]
    drawn = [captions.heldout_prompt(*all_combinations()[i * 13], torch.Generator().manual_seed(1000 + i))
             for i in range(4)]
    assert drawn == expected
