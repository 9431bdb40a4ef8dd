"""Everyday things whose outline is one of the Shapes shapes, read as that shape by shape_nouns.py ("a white coin"
-> circle, "a red tent" -> triangle), as WordNet's shape nouns are (wordnet_shapes.py).

Written by hand, unlike wordnet_shapes.py. WordNet files these among artifacts and natural objects, and no rule
over their definitions was found that reads them without reading hundreds of other nouns wrong: taking the head
noun of each first definition ("die: a small cube ...", "crate: a rugged box ...") also read "apex" and "deadline"
as circles, by "point". Each word here names a thing whose outline, seen as such a thing is drawn, is one shape;
a word that is as often something else ("sail", a verb; "pizza", round whole and a triangle sliced; "flag"; "star")
is left out. Every blind user set had such things among its nouns (docs/shapes_measured.md, "Everyday things").

A thing named by a noun before one of these ("a pizza slice", "a traffic cone", "a hockey puck") is read by its last
word (shape_nouns.py). OBJECT_PHRASES holds the names whose last word is no such noun ("sticky note"), or says
another shape than the name does ("floppy disk": WordNet's disk is round).
"""
from __future__ import annotations

OBJECT_SHAPES = {
    **dict.fromkeys(("coin", "bubble", "marble", "button", "wheel", "plate", "moon", "sun", "planet", "pea",
                     "snowball", "puck", "cookie", "balloon", "saucer", "frisbee"), "circle"),
    **dict.fromkeys(("dice", "die", "crate", "brick", "pixel"), "square"),
    **dict.fromkeys(("tent", "cone", "mountain", "arrowhead", "roof", "pennant", "nacho", "slice", "delta"),
                    "triangle"),
}

# several words naming one thing, as prompt_tokens splits them ("post-it" -> post, it; "Rubik's" -> rubik, s)
OBJECT_PHRASES = {
    **dict.fromkeys((("sticky", "note"), ("post", "it"), ("post", "it", "note"), ("floppy", "disk"),
                     ("rubik", "s", "cube")), "square"),
    **dict.fromkeys((("ice", "cream", "cone"), ("party", "hat")), "triangle"),
}
