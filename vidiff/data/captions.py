"""A caption grammar for Shapes: many ways to say one (colour, shape, direction), drawn per training sample.

The bundled pipeline used to learn from five fixed templates, so its text pathway had never seen a colour
synonym or another noun for a shape ("a scarlet disc" became some other colour, every "box" a circle). Here
each attribute has several words, the motion several verbs and direction phrasings, and a caption may carry an
adjective, a background phrase, another article and another word order.

The vocabulary is split once, by hand: TRAIN words may appear in training captions, HELD_OUT words never do.
Prompts made only from held-out words (`heldout_prompt`) measure how far the model generalizes through the text
encoder rather than through memorized strings; that is the honest paraphrase figure (tools/eval_bundled.py
--paraphrase). The plain template ("a blue square moving up") stays in the training distribution
(`PLAIN_PROB`).

Every draw takes a torch.Generator: in training, `SampleDraws.gen(i, "caption")`, so a caption depends only on
(seed, epoch, step, sample id), never on the batch around it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, prompt_for

PLAIN_PROB = 0.2  # share of training captions that are exactly the plain template


@dataclass(frozen=True)
class Vocabulary:
    """Words per attribute value, plus the attribute-free parts of a caption."""

    colours: dict[str, tuple[str, ...]]  # colour -> words naming it
    shapes: dict[str, tuple[str, ...]]  # shape -> nouns
    directions: dict[str, tuple[str, ...]]  # direction -> phrases completing "moving ..."
    verbs: tuple[tuple[str, str], ...]  # (gerund, third person): ("moving", "moves")


def _paths(start: str, end: str) -> tuple[str, ...]:
    """The motion as a path that names both ends ("from right to left"): the first direction word a caption
    holds is then where the object starts, not where it goes, which users write and plain captions never teach."""
    return (f"from {start} to {end}", f"from the {start} to the {end}", f"from the {start} edge to the {end}")


def is_path(phrase: str) -> bool:
    return phrase.startswith("from ")


TRAIN = Vocabulary(
    colours={"red": ("red", "crimson", "ruby", "cherry"), "green": ("green", "emerald", "lime", "grassy"),
             "blue": ("blue", "azure", "navy", "sapphire"), "yellow": ("yellow", "golden", "lemon", "canary"),
             "white": ("white", "ivory", "snowy", "pearl")},
    shapes={"circle": ("circle", "disc", "ball", "dot"), "square": ("square", "box", "tile"),
            "triangle": ("triangle", "wedge")},
    directions={"left": ("left", "leftward", "to the left", "westward", "toward the left edge",
                         *_paths("right", "left")),
                "right": ("right", "rightward", "to the right", "eastward", "toward the right edge",
                          *_paths("left", "right")),
                "up": ("up", "upward", "upwards", "toward the top", "northward", *_paths("bottom", "top")),
                "down": ("down", "downward", "downwards", "toward the bottom", "southward", *_paths("top", "bottom"))},
    verbs=(("moving", "moves"), ("sliding", "slides"), ("drifting", "drifts"), ("gliding", "glides"),
           ("travelling", "travels"), ("heading", "heads"), ("going", "goes"), ("floating", "floats"),
           ("shifting", "shifts")),
)

# The training vocabulary before paths are taught: a model learning the direction words from nothing learns
# their sign from captions that name only the goal (conditioning.path_captions_from_step, docs/training.md).
TRAIN_NO_PATHS = Vocabulary(
    colours=TRAIN.colours, shapes=TRAIN.shapes, verbs=TRAIN.verbs,
    directions={d: tuple(p for p in phrases if not is_path(p)) for d, phrases in TRAIN.directions.items()})

# Never in a training caption. One or two per value, chosen as words a user would naturally write.
HELD_OUT = Vocabulary(
    colours={"red": ("scarlet",), "green": ("jade",), "blue": ("cobalt",), "yellow": ("gold",),
             "white": ("milky",)},
    shapes={"circle": ("ring",), "square": ("block",), "triangle": ("pyramid",)},
    directions={"left": ("west", "to the left side"), "right": ("east", "to the right side"),
                "up": ("north", "skyward"), "down": ("south", "downhill")},
    verbs=(("cruising", "cruises"), ("sailing", "sails")),
)

ADJECTIVES = ("small", "little", "bright", "solid", "flat", "tiny", "plain")
BACKGROUNDS = ("on a dark grey background", "on a grey background", "over a dark background",
               "against a dark backdrop", "on dark grey")
ARTICLES = ("a", "the", "one")

# Word orders. {thing}: "[article] [adjective] colour shape" (or "shape, colour," in the orders marked so).
_ORDERS = (
    "{thing} {ving} {dir}",
    "{ving} {dir}, {thing}",
    "{det}{shape}, {colour}, that {vs} {dir}",
    "{thing} that {vs} {dir}",
    "{thing} {vs} {dir}",
    "{det}{shape} in {colour} {ving} {dir}",
    "{thing} {bg}, {ving} {dir}",
    "{thing} {ving} {dir} {bg}",
)


def _pick(options, gen: torch.Generator):
    return options[int(torch.randint(len(options), (1,), generator=gen))]


def _chance(p: float, gen: torch.Generator) -> bool:
    return float(torch.rand((), generator=gen)) < p


def compose(colour: str, shape: str, direction: str, gen: torch.Generator, vocab: Vocabulary = TRAIN) -> str:
    """One caption naming exactly (colour, shape, direction), its words from `vocab`, drawn from `gen`."""
    det = _pick(ARTICLES, gen) + " " if _chance(0.8, gen) else ""
    adj = _pick(ADJECTIVES, gen) + " " if _chance(0.3, gen) else ""
    words = dict(colour=_pick(vocab.colours[colour], gen), shape=_pick(vocab.shapes[shape], gen),
                 dir=_pick(vocab.directions[direction], gen), bg=_pick(BACKGROUNDS, gen))
    ving, vs = _pick(vocab.verbs, gen)
    order = _pick(_ORDERS, gen)
    thing = f"{det}{adj}{words['colour']} {words['shape']}"
    return order.format(thing=thing, det=det, ving=ving, vs=vs, **words)


def draw_caption(colour: str, shape: str, direction: str, gen: torch.Generator,
                 plain_prob: float = PLAIN_PROB, paths: bool = True) -> str:
    """A training caption: the plain template with probability `plain_prob`, else a TRAIN-vocabulary paraphrase
    (without the motion said as a path when `paths` is False)."""
    _check(colour, shape, direction)
    if _chance(plain_prob, gen):
        return prompt_for(colour, shape, direction)
    return compose(colour, shape, direction, gen, TRAIN if paths else TRAIN_NO_PATHS)


def plain_captions() -> tuple[str, ...]:
    """Every plain-template caption ("a red circle moving left"): draw_caption gives one of these to a
    `plain_prob` share of the samples."""
    return tuple(prompt_for(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS)


def heldout_prompt(colour: str, shape: str, direction: str, gen: torch.Generator) -> str:
    """An evaluation prompt whose colour, shape, verb and direction words all come from HELD_OUT."""
    _check(colour, shape, direction)
    return compose(colour, shape, direction, gen, HELD_OUT)


def heldout_phrases() -> set[str]:
    """Every held-out word or phrase (the test checks none of them ever appears in a training caption)."""
    v = HELD_OUT
    groups = (*v.colours.values(), *v.shapes.values(), *v.directions.values(), *v.verbs)
    return {p for group in groups for p in group}


def untrained_words_note(prompt: str, attributes: tuple[str, ...] = ("colour", "shape")) -> str | None:
    """A one-line warning for a Shapes pipeline's user when the prompt names its colour or shape only by words no
    training caption uses: "a red cube" came out as a circle or a triangle in 13 of 13 clips, "scarlet" as another
    colour in 4 of 5 (docs/shapes_measured.md, "Solid-shape words taught by a fine-tune"); with the words trained
    for that value. None when every named colour and shape has a trained word; `attributes`: the ones looked at
    (a colour name read through colour_names.read_colour_names has its own note). Directions are not checked:
    direction words and verbs outside the grammar were read right (tools/probe_unseen_words.py)."""
    from vidiff.data.prompt_words import singular
    from vidiff.data.shapes_prompt import attribute_words

    untrained, keys, told = [], [], []
    for key, trained in (("colour", TRAIN.colours), ("shape", TRAIN.shapes)):
        words = attribute_words(prompt, key) if key in attributes else []
        if not words:
            continue
        value = words[0][1]  # the reader's: the first word naming this attribute
        said = [w for w, v in words if v == value]
        if any(singular(w, trained[value]) for w in said):  # a training word, or its plural ("boxes")
            continue
        untrained += [f"{w!r} ({value})" for w in dict.fromkeys(said)]
        keys.append(key)
        told.append(f"{', '.join(trained[value])} ({value})")
    if not untrained:
        return None
    return (f"{' and '.join(untrained)} {'is not a word' if len(untrained) == 1 else 'are not words'} this Shapes "
            f"pipeline was trained with, so the clip may show another {' and '.join(keys)}; trained words: "
            f"{'; '.join(told)}")


def contains_phrase(caption: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `caption` as whole words."""
    return re.search(r"\b" + re.escape(phrase) + r"\b", caption) is not None


def _check(colour: str, shape: str, direction: str) -> None:
    for value, allowed, name in ((colour, COLOURS, "colour"), (shape, SHAPES, "shape"),
                                 (direction, DIRECTIONS, "direction")):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
