"""Reading a Shapes prompt back into (colour, shape, direction): how `vidiff eval shapes` and the analyzer know
what a prompt asked for, and how training tells which attributes a caption names.

It reads words, not sentences: the first word naming an attribute wins, with one rule for the direction. People
often name where the motion starts rather than where it goes ("from left to right", "enters from the top",
"starts on the right and ends on the left"); a direction word in such a place means the opposite direction.
"""
from __future__ import annotations

import re

from vidiff.data.direction_phrases import DIRECTION_WORDS as _DIRECTION_WORDS
from vidiff.data.direction_phrases import OPPOSITE_DIRECTION, direction_at, direction_scenery  # noqa: F401

_COLOUR_WORDS = {
    "red": "red", "crimson": "red", "scarlet": "red",
    "green": "green", "lime": "green", "emerald": "green",
    "blue": "blue", "navy": "blue", "azure": "blue",
    "yellow": "yellow", "gold": "yellow", "golden": "yellow",
    "white": "white", "snow": "white",
    # the caption grammar's words (vidiff/data/captions.py), training and held-out alike
    "ruby": "red", "cherry": "red", "grassy": "green", "jade": "green", "sapphire": "blue", "cobalt": "blue",
    "lemon": "yellow", "canary": "yellow", "ivory": "white", "snowy": "white", "pearl": "white", "milky": "white",
}
_SHAPE_WORDS = {
    "circle": "circle", "circles": "circle", "disc": "circle", "disk": "circle", "ball": "circle", "dot": "circle",
    "round": "circle", "circular": "circle", "sphere": "circle", "spheres": "circle", "orb": "circle",
    "cubes": "square",
    "square": "square", "squares": "square", "box": "square", "block": "square", "cube": "square",
    "triangle": "triangle", "triangles": "triangle", "triangular": "triangle", "pyramid": "triangle",
    "ring": "circle", "tile": "square", "wedge": "triangle",
}
# how a shape is described rather than named (a corpus of shape phrases written apart from this reader): a rectangle
# is drawn as the square, the nearest shape
_SHAPE_WORDS.update({"spherical": "circle", "globular": "circle", "roundish": "circle", "squarish": "square",
                     "boxy": "square", "boxlike": "square", "blocky": "square", "cubic": "square", "cubical": "square",
                     "rectangular": "square", "rectangle": "square", "pyramidal": "triangle"})
# and their plurals: "red boxes moving left" named no shape the reader knew
_SHAPE_WORDS.update({noun + ("es" if noun.endswith(("x", "s")) else "s"): shape for noun, shape in list(_SHAPE_WORDS.items())
                     if not noun.endswith("s") and noun not in ("round", "circular", "triangular")})
# a clock face's hours as the directions they point to from its centre ("heads toward 3 o'clock" moves right); the hours
# between say two directions, which the reader then names both of
_CLOCK_HOURS = {"12": "up", "twelve": "up", "1": "up right", "one": "up right", "2": "up right", "two": "up right",
                "3": "right", "three": "right", "4": "down right", "four": "down right", "5": "down right",
                "five": "down right", "6": "down", "six": "down", "7": "down left", "seven": "down left",
                "8": "down left", "eight": "down left", "9": "left", "nine": "left", "10": "up left", "ten": "up left",
                "11": "up left", "eleven": "up left"}
# a position where it follows a word of going or starting ("toward 3 o'clock", "from the 9 o'clock position"), and not a
# time of day ("at 3 o'clock in the afternoon", "3 o'clock pm")
_CLOCK = re.compile(r"\b(to|toward|towards|into|from|at|past|the)(\s+)(" + "|".join(_CLOCK_HOURS)
                    + r")\s*o\s*['\u2019\u2018`]?\s*clock\b(?!\s*(?:in the (?:morning|afternoon|evening)|at night|[ap]\.?m\b))")


def clock_said_as_directions(text: str) -> str:
    """`text`, lower-cased, with each clock position said as the direction it points to: "from 9 o'clock to 3
    o'clock" -> "from left to right"."""
    return _CLOCK.sub(lambda m: m.group(1) + m.group(2) + _CLOCK_HOURS[m.group(3)], text.lower())


def _words(text: str) -> list[str]:
    """The words of a prompt as the reader sees them: lower-case letter runs ("Right-to-left." -> right, to, left),
    clock positions said as directions."""
    return re.findall(r"[a-z]+", clock_said_as_directions(text))


def parse_prompt(text: str) -> tuple[str | None, str | None, str | None]:
    """(colour, shape, direction) named in a prompt or caption; None for an attribute not named.

    The first word naming an attribute wins ("a red square moving up" -> ("red", "square", "up")). A direction
    word that names where the motion starts means the opposite direction: after "from (the)", after a start verb
    ("starts on the left", "enters at the top"), or before "to (the)" and another direction ("left to right",
    "left-to-right"). So "moving from left to right", "coming in from the left" and "starts on the left and ends
    on the right" all read "right".
    """
    named = named_values(text)
    return tuple(values[0] if values else None for values in named.values())


def named_values(text: str) -> dict[str, list[str]]:
    """Every distinct colour, shape and direction the words of `text` name, in the order they first appear (a
    direction word that names where the motion starts read as the opposite direction). A colour said of the
    background and a direction word that places the object ("in the top left corner", "at the bottom") are not the
    object's."""
    named: dict[str, list[str]] = {"colour": [], "shape": [], "direction": []}
    words = _words(text)
    scenery = (set(background_colour_positions(words)) | set(scenery_colour_positions(words)) | direction_scenery(words)
               | set(path_shape_positions(words)))
    for i, word in enumerate(words):
        if i in scenery:
            continue
        found = {"colour": _COLOUR_WORDS.get(word), "shape": _SHAPE_WORDS.get(word) or _polygon_at(words, i),
                 "direction": direction_at(words, i)}
        for key, value in found.items():
            if value and value not in named[key]:
                named[key].append(value)
    return named


parse_caption = parse_prompt  # the name used in docs/architecture.md

# a motion's path said by a shape: "driving in a circle", "going round in circles", "moves left in a big circle"
_PATH_SHAPES = {"circle", "circles", "loop", "loops"}
_PATH_SIZES = {"a", "big", "small", "wide", "tight", "large", "little", "full", "perfect", "slow", "fast"}
_MOTION_VERBS = {"move", "moves", "go", "goes", "run", "runs", "drive", "drives", "fly", "flies", "travel", "travels",
                 "roll", "rolls", "spin", "spins", "turn", "turns", "swim", "swims", "walk", "walks", "around"}


def _says_motion(word: str) -> bool:
    return word in _MOTION_VERBS or word in _DIRECTION_WORDS or word.endswith("ing")


def path_shape_positions(words: list[str]) -> list[int]:
    """Indices of the words in `words` that say the path of a motion by a shape, not the object: "circle" or "loop"
    after "in" (over size words) where a motion is said before it ("driving in a circle", "moves left in big
    circles"), and "round" right after a motion ("goes round", "spinning round"). Not "a red circle in a corner",
    "in a circle shape" or "a round ball"."""
    found, motion_seen = [], False
    for i, word in enumerate(words):
        if word == "round" and i and _says_motion(words[i - 1]):
            found.append(i)
        elif word in _PATH_SHAPES and motion_seen and words[i + 1:i + 2] not in (["shape"], ["shaped"], ["form"]):
            j = i - 1
            while j >= 0 and words[j] in _PATH_SIZES:
                j -= 1
            if j >= 1 and words[j] == "in":
                found.append(i)
        motion_seen = motion_seen or _says_motion(word)
    return found


def attribute_words(text: str, key: str) -> list[tuple[str, str]]:
    """(word, value) for each word of `text` that names the object's colour (`key` "colour") or shape ("shape"),
    in order."""
    table = {"colour": _COLOUR_WORDS, "shape": _SHAPE_WORDS}[key]
    words = _words(text)
    background = background_colour_positions(words) if key == "colour" else {}
    return [(w, table[w]) for i, w in enumerate(words) if w in table and i not in background]


# The background as people name it: "on a white background", "against a green backdrop", "on white".
BACKGROUND_NOUNS = {"background", "backgrounds", "backdrop", "backdrops", "bg", "backround"}
_BACKGROUND_PLACES = {"on", "against", "over"}
# words that may stand between a colour and "background", or between "on" and the colour ("on a pale blue ...")
_SHADE_WORDS = {"a", "an", "the", "plain", "solid", "pure", "flat", "uniform", "dark", "light", "pale", "bright",
                "deep", "coloured", "colored", "grey", "gray", "black"}


def _run_ends(words: list[str], in_run) -> list[int]:
    """For each index k, the first index after k whose word is not `in_run` (len(words) where there is none): where the
    run of words after each word ends, found in one pass; walking it from every word took minutes on a prompt of a
    few thousand colour words."""
    ends, end = [0] * len(words), len(words)
    for k in range(len(words) - 1, -1, -1):
        ends[k] = end
        if not in_run(words[k]):
            end = k
    return ends


def background_colour_positions(words: list[str], extra_colours=()) -> dict[int, str]:
    """{index: colour} for each colour word in `words` (as _words gives them) said of the background: followed,
    over shade words, by a background noun ("a white background", "green-coloured backdrop"), or after "on",
    "against" or "over" where the phrase ends (_ends_a_place: "on white, moving left"; "on a blue box" and "over a
    white line" are things). `extra_colours`: more colour names to look at (the word itself is their value)."""
    def is_colour(word: str) -> bool:
        return word in _COLOUR_WORDS or word in extra_colours

    # where each word's run of shade and colour words ends, and where its run of shade words before it starts
    run_end = _run_ends(words, lambda word: word in _SHADE_WORDS or is_colour(word))
    before_shades, start = [0] * len(words), -1
    for k, word in enumerate(words):
        before_shades[k] = start
        if word not in _SHADE_WORDS:
            start = k
    found = {}
    for i, word in enumerate(words):
        if not is_colour(word):
            continue
        j, before = run_end[i], before_shades[i]
        after_place = before >= 0 and words[before] in _BACKGROUND_PLACES
        if (j < len(words) and words[j] in BACKGROUND_NOUNS) or (after_place and _ends_a_place(words, j)):
            found[i] = _COLOUR_WORDS.get(word, word)
    return found


# things around the object that a colour may be said of: "under a white light", "across green grass", "into the blue
# sky"; the object is not that colour
_SCENERY_NOUNS = {"light", "lights", "lighting", "spotlight", "glow", "lamp", "sunlight", "sky", "skies", "grass",
                  "lawn", "water", "sea", "ocean", "river", "sand", "wall", "walls", "floor", "ground", "table", "stage",
                  "carpet", "haze", "fog", "mist", "smoke", "clouds", "cloud", "trail", "shadow", "shadows"}


def scenery_colour_positions(words: list[str]) -> list[int]:
    """Indices of colour words in `words` said of a thing around the object (_SCENERY_NOUNS), over shade words:
    "under a white light", "across bright green grass". "light" ends such a run only where no noun of the object
    follows ("a white light moving left" is a light; "a light blue ball" and "a white light ball" are not)."""
    # "light" ends a run here: it is the thing lit ("a white light") or a shade before the next colour
    run_end = _run_ends(words, lambda word: (word in _SHADE_WORDS or word in _COLOUR_WORDS) and word != "light")
    found = []
    for i, word in enumerate(words):
        if word not in _COLOUR_WORDS:
            continue
        j = run_end[i]
        if j < len(words) and words[j] in _SCENERY_NOUNS and not (
                words[j] == "light" and j + 1 < len(words) and (words[j + 1] in _OBJECT_WORDS
                                                                or words[j + 1] in _COLOUR_WORDS)):
            found.append(i)
    return found


# words that may follow "on white" when it is the background: the clause ends and the motion or another is said
_AFTER_A_PLACE = {"and", "with", "while", "that", "which", "as", "where", "it", "is", "goes", "moves", "heads",
                  "travels", "slides", "drifts", "glides", "rolls", "floats", "flies", "runs", "then"}


def _ends_a_place(words: list[str], j: int) -> bool:
    """Whether "on / against / over COLOUR" ends at words[j] (the end, a verb, a direction or a joining word), so the
    colour is the place's: "on white, moving left", "against blue and moving up"; not "over a white line" or "on a
    blue box", where a noun follows."""
    return j >= len(words) or words[j] in _AFTER_A_PLACE or words[j] in _DIRECTION_WORDS or words[j].endswith("ing")


def unnamed_attributes_note(prompt: str, set_otherwise: tuple[str, ...] = ()) -> str | None:
    """A one-line warning for a Shapes pipeline's user when `prompt` names no colour, shape or direction it knows
    ("a cat walking" -> all three are drawn at random), naming the words that would set them; None if it names all.
    `set_otherwise`: attributes something else sets (control maps set the motion)."""
    from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES

    named = dict(zip(("colour", "shape", "direction"), parse_prompt(prompt)))
    missing = [key for key, value in named.items() if value is None and key not in set_otherwise]
    if not missing:
        return None
    words = {"colour": COLOURS, "shape": SHAPES, "direction": DIRECTIONS}
    told = "; ".join(f"{key}: {', '.join(words[key])}" for key in missing)
    listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} or {missing[-1]}"
    return (f"this Shapes pipeline found no {listed} it knows in the prompt, so "
            f"{'that is' if len(missing) == 1 else 'those are'} left to chance ({told})")


# a polygon said by its sides or corners: "a three-sided shape", "with four equal sides", "three-cornered"; its
# number counts parts of the one object, not objects
_POLYGONS = {"three": "triangle", "four": "square"}
_POLYGON_PARTS = {"sided", "cornered", "pointed", "angled", "sides", "corners", "points", "angles", "edges", "vertices"}
_PART_SHADES = {"equal", "straight", "sharp", "right", "even", "identical", "same"}


def _polygon_at(words: list[str], i: int) -> str | None:
    """The shape words[i] begins to say as a polygon ("three" of "three-sided", "with four equal sides"), else None."""
    if words[i] not in _POLYGONS:
        return None
    j = i + 1
    while j < min(len(words), i + 3) and words[j] in _PART_SHADES:
        j += 1
    return _POLYGONS[words[i]] if j < len(words) and words[j] in _POLYGON_PARTS else None


# words that may follow the object's colour: "a ball, red, moving left", "the ball is red and rolls left", "red in
# colour"
_AFTER_THE_COLOUR = _AFTER_A_PLACE | {"in", "colour", "color", "coloured", "colored", "one", "object", "thing", "shape"}
# a noun of the object, or the number of a polygon's sides ("a pale yellow three-sided shape")
_OBJECT_WORDS = set(_SHAPE_WORDS) | set(_POLYGONS) | {"shape", "object", "thing"}


def colour_said_of_the_object(read: str) -> bool:
    """Whether a colour word of `read` may be the object's: followed, over shade words, by the shape noun (within two
    more words: "a red shiny ball"), a stop, a verb or a direction. One said only of something else ("a ball flying
    up into the blue sky", "a ball rolling left across green grass", "a blue car driving left in a circle") is not:
    the prompt template made the object that colour (prompt_template.py). A prompt that names no colour is not asked
    here (named_values is)."""
    tokens = re.findall(r"[a-z]+|[^a-z\s]", read.lower())
    words = [t for t in tokens if t.isalpha()]
    background = background_colour_positions(words)
    k = -1  # index among the words
    for i, token in enumerate(tokens):
        if not token.isalpha():
            continue
        k += 1
        if token not in _COLOUR_WORDS or k in background:
            continue
        j = i + 1
        while j < len(tokens) and (tokens[j] in _SHADE_WORDS or tokens[j] in _COLOUR_WORDS):
            j += 1
        after = tokens[j:j + 3]
        if (not after or not after[0].isalpha() or after[0] in _AFTER_THE_COLOUR or after[0] in _DIRECTION_WORDS
                or after[0].endswith("ing") or any(w in _OBJECT_WORDS for w in after)):
            return True
    return False
