"""Colour names a Shapes prompt uses that no training caption did, read as the palette colour they name.

The bundled Shapes model learned its five colours from a few words each (`captions.TRAIN`); a colour word outside
them goes through the frozen text encoder alone, which puts held-out names near the right training word only
about 4 times in 10 ("scarlet" came out yellow or white in 4 of 5 clips; docs/shapes_measured.md, "How far
held-out words can go through this text encoder"). What a colour name means is known outside the model: the xkcd
colour survey gives each of its names an sRGB colour (vidiff/data/xkcd_colours.py). So a Shapes pipeline reads
such a name as the palette colour nearest it in hue and gives the text encoder the palette's word instead
("the scarlet ring" -> "the red ring"); `vidiff generate` says so in a note.

Nearest in hue, in OKLCh (Ottosson's OKLab, whose hue angle follows perceived hue far better than CIELAB's,
which bends blue toward purple), because lightness says little here: the palette's colours are five bright ones,
and "navy" or "crimson" name a blue and a red however dark. Names with little colour for their lightness are the
greys: a light one reads as white, a mid or dark one (grey, black, charcoal) as no palette colour at all.
The grey thresholds were set on the training vocabulary's own words that the survey names (crimson, ruby, cherry,
emerald, lime, azure, navy, sapphire, golden, lemon, canary, ivory), which they all read as their trained colour;
the held-out words (captions.HELD_OUT) played no part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from vidiff.data.prompt_words import prompt_tokens, replace_word
from vidiff.data.xkcd_colours import XKCD_COLOURS

# A name reads as grey when its OKLCh chroma is under this share of its lightness: ivory 0.07 (white), navy 0.38
# (blue) are the training words on either side; pale tints (cream 0.08, beige 0.08) go with ivory.
GREY_SATURATION = 0.1
LIGHT_GREY = 0.8  # OKLab lightness from which a grey reads as white (silver 0.83, grey 0.67)
# The survey's basic colour terms with a hue (Berlin and Kay's, less brown, a dark orange by hue): a name whose
# nearest basic hue is a palette colour's is a shade of it; else it is another colour, drawn as the nearest palette
# colour with a note ("orange" -> red, "purple" -> blue).
BASIC_HUED_TERMS = ("red", "orange", "yellow", "green", "blue", "purple", "pink")

# The survey's "dark" and "pale" are shade words before a colour, not colours of their own.
_NOT_COLOURS = {"dark", "pale"}
_SPELLINGS = {"gray": "grey", "grayish": "greyish"}  # the survey spells these the British way
# What may stand between a colour name and the object it colours: "a light teal-coloured square", "the ring, jade,
# ...", "a square that is deep teal", "a pyramid in cobalt".
_SHADES = {"dark", "light", "pale", "bright", "deep", "very", "vivid", "pastel", "soft", "rich", "pure", "solid",
           "plain", "neon", "dull", "muted", "warm", "cool", "hot", "dusty", "faded", "coloured", "colored", "toned",
           "tinted", "hued", "ish"}
_LINKS = {"in", "is", "are", "s", "that", "which", "coloured", "colored", "painted", "all"}  # "s": "that's teal"
_OBJECT_NOUNS = {"shape", "shapes", "object", "objects", "thing", "things"}


@dataclass(frozen=True)
class ColourReading:
    word: str  # the name as the prompt says it, lower-case
    colour: str | None  # the palette colour it is drawn as; None for a grey or black (left as written)
    shade: bool  # a shade of that colour (its nearest basic colour term), not another colour drawn as the nearest


def _oklch(hex_rgb: str) -> tuple[float, float, float]:
    """(lightness, chroma, hue in degrees) of an sRGB colour '#rrggbb' (Ottosson 2020)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hex_rgb[i:i + 2], 16) / 255) for i in (1, 3, 5))
    l_, m_, s_ = (max(v, 0.0) ** (1 / 3) for v in (
        0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b,
        0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b,
        0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b))
    lightness = 0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_
    a = 1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_
    b_ = 0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_
    return lightness, math.hypot(a, b_), math.degrees(math.atan2(b_, a)) % 360


def _palette_hues() -> dict[str, float]:
    from vidiff.data.shapes import PALETTE

    hues = {}
    for name, rgb in PALETTE.items():
        lightness, chroma, hue = _oklch("#" + "".join(f"{c:02x}" for c in rgb))
        if chroma / lightness >= GREY_SATURATION:  # white has no hue
            hues[name] = hue
    return hues


_HUES = _palette_hues()
_BASIC_HUES = {term: _oklch(XKCD_COLOURS[term])[2] for term in BASIC_HUED_TERMS}


def _hue_distance(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def palette_colour(word: str) -> ColourReading | None:
    """How a Shapes pipeline draws the colour `word` names in the xkcd survey; None if the survey has no such name."""
    word = word.lower()
    name = _SPELLINGS.get(word, word)
    if name in _NOT_COLOURS or name not in XKCD_COLOURS:
        return None
    lightness, chroma, hue = _oklch(XKCD_COLOURS[name])
    if lightness == 0 or chroma / lightness < GREY_SATURATION:
        return ColourReading(word, "white" if lightness >= LIGHT_GREY else None, lightness >= LIGHT_GREY)
    nearest = min(_HUES, key=lambda name: _hue_distance(hue, _HUES[name]))
    term = min(_BASIC_HUES, key=lambda name: _hue_distance(hue, _BASIC_HUES[name]))
    return ColourReading(word, nearest, term == nearest)


def read_colour_names(prompt: str) -> tuple[str, ColourReading | None]:
    """(the prompt as the text encoder gets it, the reading) for a Shapes pipeline: the first colour name of the
    object that is not a training word ("scarlet", not "crimson") replaced by its palette colour's word
    ("A scarlet ring" -> "A red ring"). A name is the object's when it stands with an object noun: before it ("a
    light teal square", "a teal-coloured ball") or after it ("the ring, jade, that ...", "a ball in deep teal", "a
    square that is teal"); "like a leaf", "into the night sky" and "a box of chocolate" name no colour of the
    object. Unchanged, with no reading, when the object's colour is said in a training word; a colour of the
    background ("on a teal background") or negated ("not orange") is not the object's. A grey or black name, with
    no other, is read (its note says so) but left as written: no palette colour is near."""
    from vidiff.data.captions import TRAIN
    from vidiff.data.prompt_negations import negated_spans
    from vidiff.data.shapes_prompt import background_colour_positions

    tokens = prompt_tokens(prompt)
    words = [w for w, _ in tokens]
    trained = {w for names in TRAIN.colours.values() for w in names}
    negated = negated_spans(prompt, XKCD_COLOURS, shades=_SHADES | _NOT_COLOURS)
    scenery = set(background_colour_positions(words, extra_colours=XKCD_COLOURS))
    scenery |= {i for i, (_, span) in enumerate(tokens) if span in negated}
    if any(w in trained and i not in scenery and _of_the_object(words, i) for i, w in enumerate(words)):
        return prompt, None
    grey = None
    for i, word in enumerate(words):
        # a colour name first: walking every word's shade words took a tenth of a second in a long prompt
        reading = None if i in scenery or not _is_colour(word) or not _of_the_object(words, i) else palette_colour(word)
        if reading is not None and reading.colour is not None:
            return replace_word(prompt, tokens, i, reading.colour), reading
        grey = grey or reading
    return prompt, grey


def _is_colour(word: str) -> bool:
    return word in XKCD_COLOURS or _SPELLINGS.get(word, "") in XKCD_COLOURS


def _is_object(word: str) -> bool:
    from vidiff.data.shape_nouns import is_shape_noun
    from vidiff.data.shapes_prompt import _SHAPE_WORDS

    return word in _SHAPE_WORDS or word in _OBJECT_NOUNS or is_shape_noun(word)


def _of_the_object(words: list[str], i: int) -> bool:
    """Whether the colour word words[i] stands with an object noun (the prompt reader's shape nouns, "shape",
    "object", "thing"): before it over shade words and other colours, or after it over shade and linking words."""
    j = i + 1
    while j < len(words) and (words[j] in _SHADES or _is_colour(words[j])):
        j += 1
    if j < len(words) and _is_object(words[j]):
        return True
    j = i - 1
    while j >= max(0, i - 4) and (words[j] in _SHADES or words[j] in _LINKS):
        j -= 1
    return j >= 0 and _is_object(words[j])


def colour_reading_note(reading: ColourReading) -> str:
    """The one-line note `vidiff generate` gives for a reading of read_colour_names."""
    from vidiff.data.shapes import COLOURS

    palette = ", ".join(COLOURS)
    if reading.colour is None:
        return (f"{reading.word!r} is not a colour this Shapes pipeline draws ({palette}; the background is dark "
                f"grey), so the object's colour is left to the model")
    if reading.shade:
        return (f"{reading.word!r} is read as {reading.colour}: this Shapes pipeline was not trained on the word, and "
                f"the xkcd colour survey's {reading.word} is a shade of {reading.colour}")
    return (f"{reading.word!r} is not a colour this Shapes pipeline draws ({palette}); it is drawn as the nearest, "
            f"{reading.colour}")
