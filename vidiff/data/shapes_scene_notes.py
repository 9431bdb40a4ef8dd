"""What a Shapes prompt asks of the scene that words do not set: the background, and the object's size, speed,
path and place. Every Shapes clip is one object on a plain dark grey background, drawn at a random size, speed and
start, moving in a straight line (vidiff/data/shapes.py); the caption grammar has no words for any of these (its
"small", "little", "tiny" are drawn apart from the size, and every object is small: at most a third of the frame),
so the model cannot follow them. These notes tell the user so before the weights load.
"""
from __future__ import annotations

from vidiff.data.shapes import BACKGROUND_RANGE, SIZE_RANGE
from vidiff.data.shapes_prompt import (BACKGROUND_NOUNS, _COLOUR_WORDS, _words, background_colour_positions,
                                      path_shape_positions)

# Background words that fit the domain's own background (the grammar says "dark grey", "grey", "dark")
_DOMAIN_SHADES = {"a", "an", "the", "plain", "solid", "uniform", "flat", "dark", "deep", "grey", "gray", "black"}
# colours and looks people give a background that the object's colour table does not hold
_OTHER_BACKGROUND_WORDS = {"light", "pale", "bright", "pink", "purple", "orange", "brown", "cyan", "magenta",
                           "violet", "beige", "teal", "turquoise", "cream", "silver", "colourful", "colorful",
                           "striped", "checkered", "checked", "gradient", "coloured", "colored"}

# Words for what the domain draws at random or never, by what they ask for. None is in the caption grammar.
_UNSET_WORDS = {
    "size": {"big", "bigger", "biggest", "large", "larger", "largest", "huge", "giant", "enormous", "massive",
             "smaller", "growing", "grows", "shrinking", "shrinks"},
    "speed": {"slow", "slowly", "slower", "quick", "quickly", "fast", "faster", "rapid", "rapidly", "swift",
              "swiftly", "gradually", "accelerating", "accelerates", "decelerating", "slowing", "speeding"},
    "path": {"bounce", "bounces", "bouncing", "bouncy", "zigzag", "zigzags", "zigzagging", "diagonal", "diagonally",
             "then", "spin", "spins", "spinning", "rotate", "rotates", "rotating", "circling", "orbiting", "orbits",
             "curve", "curves", "curving", "wobbling", "wiggling", "jumping", "jumps", "turning", "turns", "stops",
             "stopping", "forth", "returns"},
    "place": {"corner", "corners", "center", "centre", "middle"},
}
_WHAT_HAPPENS = {
    "size": f"its size is drawn at random ({SIZE_RANGE[0]}-{SIZE_RANGE[1]} px across in a 64 px frame)",
    "speed": "its speed is drawn at random",
    "path": "it moves in a straight line one way (left, right, up or down) for the whole clip",
    "place": "it starts at a random place",
}


def background_note(prompt: str, read_whole: bool = False) -> str | None:
    """A one-line warning when `prompt` asks for a background other than the domain's dark grey ("on a white
    background", "against a green backdrop", "on white"): the bundled pipeline draws every clip on its own. The
    model reads a colour word said of the background as the object's colour now and then: "A white background
    with a red circle moving left" drew a white circle in 3 of 4 clips, "a red circle on white, moving left" a
    yellow one in 2 of 4 (docs/shapes_measured.md, "Prompts as users type them"); not so where the text encoder gets
    the prompt in the plain template (`read_whole`: prompt_template.py), which leaves the background out. None when
    no other background is asked."""
    words = _words(prompt)
    coloured = background_colour_positions(words)
    said = set(coloured)
    for k, word in enumerate(words):
        if word not in BACKGROUND_NOUNS:
            continue
        i = k - 1
        while i >= 0 and (words[i] in _DOMAIN_SHADES or words[i] in _OTHER_BACKGROUND_WORDS
                          or words[i] in _COLOUR_WORDS):
            if words[i] in _OTHER_BACKGROUND_WORDS:
                said.add(i)
            i -= 1
    if not said:
        return None
    note = (f"the prompt asks for a {' '.join(dict.fromkeys(words[i] for i in sorted(said)))} background: this "
            f"Shapes pipeline draws every clip on its own plain dark grey one (grey level "
            f"{BACKGROUND_RANGE[0]}-{BACKGROUND_RANGE[1]} of 255)")
    if coloured and not read_whole:  # measured on the bundled pipeline, 4 seeds each (docs/shapes_measured.md)
        note += (", and a colour word said of the background may become the object's (\"A white background with a "
                 "red circle moving left\" drew a white circle in 3 of 4 clips, \"a red circle on white, moving "
                 "left\" a yellow one in 2 of 4): leave the background out")
    return note


def unset_words_note(prompt: str) -> str | None:
    """A one-line warning naming the words of `prompt` that ask for a size, speed, path or place the Shapes
    domain draws at random or never ("a big red circle", "moving left slowly", "bouncing", "then up", "in the top
    left corner"), and what the clip does instead; None when there are none."""
    words = _words(prompt)
    asked = {what: [w for w in dict.fromkeys(words) if w in table] for what, table in _UNSET_WORDS.items()}
    asked["path"] += [words[i] if words[i] == "round" else f"in {words[i]}" if words[i].endswith("s")
                      else f"in a {words[i]}" for i in path_shape_positions(words)]  # "driving in a circle"
    asked = {what: found for what, found in asked.items() if found}
    if not asked:
        return None
    told = ", ".join(f"{what} ({', '.join(repr(w) for w in found)})" for what, found in asked.items())
    return (f"the prompt asks for a {told} that this Shapes pipeline does not take from words: "
            + "; ".join(_WHAT_HAPPENS[what] for what in asked))
