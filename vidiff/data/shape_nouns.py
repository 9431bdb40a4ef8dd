"""Shape nouns a Shapes prompt uses that no training caption did, read as the shape WordNet defines them as.

The bundled Shapes model learned its three shapes from a few nouns each (`captions.TRAIN`: circle, disc, ball,
dot; square, box, tile; triangle, wedge). Another noun goes through the frozen text encoder alone, which carries
shape nouns least of all ("cube" came out a circle or a triangle in 13 of 13 clips; docs/shapes_measured.md,
"Solid-shape words taught by a fine-tune"). What a noun's shape is, is known outside the model: WordNet defines
it ("cube: a hexahedron with six equal squares as faces"). So a Shapes pipeline reads such a noun as the shape
WordNet gives it (vidiff/data/wordnet_shapes.py, built by one rule from WordNet 3.0: tools/wordnet_shape_nouns.py)
and gives the text encoder that shape's plain word ("a red cube moving left" -> "a red square moving left"), with
a note. Every training noun WordNet places reads as its trained shape (tests/test_shape_nouns.py). Everyday things
whose outline is one shape ("coin", "dice", "tent") are read the same way, from a list written by hand
(object_shapes.py).

A noun counts as the object's where a noun phrase ends in it: after an article, a number, a colour, a size,
shade or look word ("a cube", "two red cubes", "the small teal orb", "a glowing cube"), or first in the prompt ("Cube, red, ..."), and with no
place word before the phrase. So a verb ("it drops", "rolls left"), a place ("moving into the sphere") and a
likeness ("like a cube") are not read. Many of these nouns are verbs too ("drop", "roll", "point", "block"): one with
no article before it ("Roll a cube left", "drop down", "red drops down", "this drops") is a verb where a determiner,
a pronoun or a direction comes next, or a place for an imperative or a plural ("Roll to the left", "Blue rolls to
the left"), and "one" after a colour or size is a pronoun ("the red one drops"). A command said first, with its
object and no article ("Roll coin left", "Drop cube down", "Push orb left"), is read as the verb and its object.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vidiff.data.prompt_words import plural_of, prompt_tokens, replace_word, singular
from vidiff.data.object_shapes import OBJECT_PHRASES, OBJECT_SHAPES
from vidiff.data.wordnet_shapes import WORDNET_SHAPE_NOUNS

# the nouns read: WordNet's shape nouns, and everyday things by their outline (WordNet's shape wins where both say)
_NOUNS = {**OBJECT_SHAPES, **WORDNET_SHAPE_NOUNS}

# the plain template's word for each shape: the one the model was trained on most
_PLAIN_NOUN = {"circle": "circle", "square": "square", "triangle": "triangle"}
_DETERMINERS = {"a", "an", "the", "one", "single", "some", "this", "that", "its", "two", "three", "four", "several",
                "many", "few", "lone", "solitary"}
_SIZES = {"small", "little", "tiny", "mini", "big", "large", "huge", "giant", "medium", "sized", "massive", "d"}  # "3D"
# how an object looks or what it is made of, said before its noun ("a flat jade block", "a glowing orb")
_LOOKS = {"flat", "shiny", "glossy", "glowing", "simple", "smooth", "hollow", "filled", "outlined", "perfect",
          "geometric", "metal", "metallic", "glass", "wooden", "plastic", "rubber", "spinning", "rolling", "bouncing",
          "floating", "lone", "single"}
# determiners that are pronouns too: right before a verb's third person ("this drops", "one rolls") they stand alone
_PRONOUN_DETERMINERS = {"this", "that", "one", "some"}
_PRONOUNS = {"it", "them", "itself", "me", "us", "him", "her", "everything", "something"}
# a direction or particle right after a verb ("roll left", "drop down"); no direction verb: "Orb rises" is a noun's
_DIRECTIONS = {"left", "right", "up", "down", "away", "off", "out", "back", "around", "along", "forward", "forwards",
               "over", "west", "east", "north", "south", "skyward", "downhill",
               *(d + s for d in ("left", "right", "up", "down", "west", "east", "north", "south")
                 for s in ("ward", "wards"))}
# before a noun phrase, these make it a place or a likeness ("into the sphere", "like a cube"), not the object;
# "of" and "with" are left out: "a video of a cube", "a screen with a cube"
_PLACES = {"to", "into", "onto", "toward", "towards", "at", "from", "past", "through", "across", "over", "under",
           "near", "around", "behind", "inside", "beside", "beneath", "above", "below", "like", "on", "off", "out",
           "by", "than"}


# commands said first with no article before their object ("Roll coin left", "Drop cube down", "Push orb left"):
# the first word is the verb (WordNet reads "roll" and "drop" as round things), the next noun the object's
_COMMAND_VERBS = {"roll", "drop", "wheel", "bowl", "tip", "push", "pull", "move", "slide", "send", "shift", "drag",
                  "throw", "toss", "launch", "fly", "float", "spin", "bounce", "glide", "drift", "lift", "raise",
                  "lower", "carry", "steer", "guide", "make", "show", "animate", "draw", "render"}


def _command_first(words: list[str], colours: set[str]) -> bool:
    """Whether the prompt opens with a command whose object follows without an article ("Roll coin left", "drop red
    cube down", "Push orb left"): the next word names the object or describes it."""
    if len(words) < 2 or words[0] not in _COMMAND_VERBS:
        return False
    after = words[1]  # not another command word: "Block drop down" is a block dropping
    return after not in _COMMAND_VERBS and (
        after in colours or after in _SIZES or after in _LOOKS
        or (_singular(after) == after and (after in _NOUNS or after in _trained_nouns())))


@cache
def _trained_nouns() -> frozenset[str]:
    from vidiff.data.captions import TRAIN

    return frozenset(w for nouns in TRAIN.shapes.values() for w in nouns)


@dataclass(frozen=True)
class ShapeReading:
    word: str  # the noun as the prompt says it, lower-case
    shape: str  # the Shapes shape WordNet defines it as, or the thing's outline is (object_shapes.py)


def _singular(word: str) -> str:
    """`word`'s singular where it is a read noun's plural ("boxes", "cubes", "tents"), else `word`."""
    return plural_of(word, _NOUNS) or word


def is_shape_noun(word: str) -> bool:
    """Whether `word` (lower case, singular or plural) is read as a Shapes shape: WordNet defines it as one, or it
    names an everyday thing of that outline (object_shapes.py)."""
    return _singular(word) in _NOUNS


def _starts_noun(words: list[str], i: int, colours: set[str], ends: bool = False) -> bool:
    """Whether words[i] is where the object's noun stands: first, or after a determiner, size, shade or colour
    that no place word stands before, and no verb (module docstring). `ends`: punctuation follows it ("Cube, the
    red one")."""
    from vidiff.data.colour_names import _SHADES, _is_colour

    def modifies(word: str) -> bool:
        return (word in _DETERMINERS or word in _SIZES or word in _LOOKS or word in _SHADES or word in colours
                or _is_colour(word))

    if i and words[i - 1] in _PRONOUN_DETERMINERS and _singular(words[i]) != words[i]:
        return False  # "this drops", "one rolls": the pronoun and its verb
    j, article = i - 1, False
    while j >= 0 and modifies(words[j]):
        if words[j] in _DETERMINERS:
            article = True
        elif article:  # a determiner stands between this word and the noun
            return False  # a determiner after a colour or size is a pronoun: "the red one drops"
        j -= 1
    if (i == 0 or j == 0) and _command_first(words, colours):  # the first word, or the noun after it (j == 0)
        return i > 0  # "Roll coin left", "drop red cube down": "roll" the verb, "coin" and "cube" the object
    if not ((j < i - 1 or i == 0) and (j < 0 or words[j] not in _PLACES)):
        return False
    after = words[i + 1] if i + 1 < len(words) else None
    if article or after is None or ends:
        return True
    # no article: a verb where what follows is its object or its direction ("Drop the orb", "roll left",
    # "Point it up", "red drops down"), or its place for an imperative or a plural ("Roll to the left")
    # "that" next is a relative pronoun far more often than a verb's object: "cobalt block that sails"
    verb_next = (after in _DETERMINERS and after != "that") or after in _PRONOUNS or after in _DIRECTIONS
    return not (verb_next or (after in _PLACES and (i == 0 or _singular(words[i]) != words[i])))


def starts_noun(words: list[str], i: int) -> bool:
    """Whether words[i] (lower case) stands where the object's noun does, as read_shape_nouns reads it: not a verb
    ("a ball that circles left"), a place ("over a tiles pattern") or a likeness. For the note on plural nouns."""
    from vidiff.data.captions import TRAIN

    return _starts_noun(words, i, {w for names in TRAIN.colours.values() for w in names})


def read_shape_nouns(prompt: str) -> tuple[str, ShapeReading | None]:
    """(the prompt as the text encoder gets it, the reading) for a Shapes pipeline: the first noun of the object
    that no training caption used and WordNet defines as a shape, said as that shape's word ("An orb rises" -> "A
    circle rises", "two cubes" -> "two squares"). Unchanged, with no reading, when the prompt names the shape in a
    training noun, and for a negated noun ("not a cube"), a colour name ("a pearl ...": the survey's colour) or a
    word that is no noun of the object here."""
    from vidiff.data.captions import TRAIN
    from vidiff.data.colour_names import _is_colour
    from vidiff.data.prompt_negations import negated_spans

    tokens = prompt_tokens(prompt)
    words = [w for w, _ in tokens]
    trained = _trained_nouns()
    colours = {w for names in TRAIN.colours.values() for w in names}
    negated = negated_spans(prompt, _NEGATABLE)
    ends = [i + 1 == len(tokens) or prompt[span[1]:tokens[i + 1][1][0]].strip() != "" for i, (_, span) in
            enumerate(tokens)]

    def is_trained(word: str) -> bool:
        return singular(word, trained) is not None

    # only a noun is looked at as the object's: walking back from every word took seconds on a long prompt
    said = [i for i, (w, span) in enumerate(tokens) if (is_trained(w) or is_shape_noun(w)) and span not in negated
            and (_starts_noun(words, i, colours, ends[i])
                 or _after_a_noun_modifier(words, i, colours, ends[i], is_trained))]
    if any(is_trained(words[i]) for i in said):
        return prompt, None
    read = _read_phrase(prompt, tokens, words, colours, ends, negated)  # first: "floppy disk" is no round disk
    if read[1]:
        return read
    for i in said:
        noun = _singular(words[i])
        if noun not in _NOUNS or noun in colours or _is_colour(noun):
            continue
        shape = _NOUNS[noun]
        plain = _PLAIN_NOUN[shape] + ("s" if noun != words[i] else "")
        return replace_word(prompt, tokens, i, plain), ShapeReading(words[i], shape)
    return prompt, None


# words that do not modify a noun standing after them: "a ball and coin" names no "and coin"
# ("a red shape drops": "shape", "thing", "object" name no kind of thing)
_NOT_NOUN_MODIFIERS = _DETERMINERS | _PLACES | _DIRECTIONS | _PRONOUNS | {
    "and", "or", "then", "but", "with", "of", "is", "are", "s", "thing", "shape", "object", "item", "figure",
    "crescent", "half", "quarter", "broken"}  # ... and a crescent moon is no circle
_PLURAL_COUNTS = {"two", "three", "four", "five", "several", "many", "some", "few", "multiple"}


def _after_a_noun_modifier(words: list[str], i: int, colours: set[str], ends: bool, is_trained) -> bool:
    """Whether words[i] ends a noun phrase with one noun before it that names what kind of thing it is ("a pizza
    slice", "the red traffic cone", "Hockey puck sliding left"): the pair stands where the object's noun does.
    `is_trained`: whether a word is a training caption's shape noun."""
    if i == 0 or words[i - 1] in _NOT_NOUN_MODIFIERS or is_shape_noun(words[i - 1]) or is_trained(words[i - 1]):
        return False  # ... "a circle tent": two shapes, not a kind of tent
    if _singular(words[i]) != words[i] and not _PLURAL_COUNTS.intersection(words[max(0, i - 4):i - 1]):
        return False  # "a red thing drops down": a verb after the object's noun; "two pizza slices" is counted
    return _starts_noun(words[:i - 1] + words[i:], i - 1, colours, ends)


# the listed names, longest first ("post it note" before "post it"), and the nouns a negation may stand before
_PHRASES = sorted(OBJECT_PHRASES.items(), key=lambda item: -len(item[0]))
_NEGATABLE = {w + s for w in set(_NOUNS) | {phrase[-1] for phrase in OBJECT_PHRASES} for s in ("", "s")}


def _read_phrase(prompt: str, tokens, words: list[str], colours: set[str], ends: list[bool], negated
                 ) -> tuple[str, ShapeReading | None]:
    """read_shape_nouns for a thing named by several words (object_shapes.OBJECT_PHRASES: "a yellow sticky note"
    -> "a yellow square"), where it stands as the object's noun does."""
    for phrase, shape in _PHRASES:
        n = len(phrase)
        for start in range(len(words) - n + 1):
            head = words[start + n - 1]
            plural = head != phrase[-1]
            if (words[start:start + n - 1] != list(phrase[:-1]) or (plural and plural_of(head, {phrase[-1]}) is None)
                    or tokens[start + n - 1][1] in negated):
                continue
            joined = " ".join(phrase)
            if not _starts_noun(words[:start] + [joined] + words[start + n:], start, colours, ends[start + n - 1]):
                continue
            span = (tokens[start][1][0], tokens[start + n - 1][1][1])
            merged = tokens[:start] + [(joined, span)] + tokens[start + n:]
            plain = _PLAIN_NOUN[shape] + ("s" if plural else "")
            # a name's capital inside the prompt is the name's ("a blue Rubik's cube" -> "a blue square")
            read = replace_word(prompt, merged, start, plain, keep_case=start == 0)
            return read, ShapeReading(prompt[span[0]:span[1]].lower(), shape)
    return prompt, None


def shape_reading_note(reading: ShapeReading) -> str:
    """The one-line note `vidiff generate` gives for a reading of read_shape_nouns."""
    why = ("WordNet defines it as that shape" if _singular(reading.word) in WORDNET_SHAPE_NOUNS
           else "the thing it names has that outline")
    return f"{reading.word!r} is read as {reading.shape}: this Shapes pipeline was not trained on the word, and {why}"
