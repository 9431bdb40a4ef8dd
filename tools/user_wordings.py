"""Prompts for the Shapes pipeline as people type them, written by hand apart from the caption grammar
(vidiff/data/captions.py), for tools/eval_bundled.py --user-wording.

Set "a" (2026-12-02): plain colour names, everyday nouns and verbs, capitals, full stops, "towards", filler words.
Set "b" (2026-12-03, written before it was first measured): the motion said as a path or by the verb alone
("from left to right", "falling", "rising up the screen"), US spellings ("gray", "colored"), imperatives and
scene words. A path names both ends ("from right to left" holds "right"), which the training captions did not do
until the caption fine-tune of 2026-12-03 (set b found that gap: 12 of its 30 path prompts right).
Set "c" (2026-12-03, written after set b's figure and before the fine-tune was measured, so never used to tune it):
other sentences, paths with and without "from" ("goes right to left"), a start alone ("comes in from the left and
moves right"), a verb alone ("falls slowly").
Set "d" (2026-12-03, evening, written before any part was measured on it and before the caption fine-tune of that
evening, so never used to tune it): requests ("a video of", "I want", "Make a clip where"), no article, hyphenated
paths ("right-to-left"), a start and an end in two clauses ("starts on the right and ends on the left"), "enters
from", "ascends" / "descends".
Set "e" (2026-12-05, written before any part was measured on it): colour words with modifiers and near names
("bright red", "navy blue", "gold"), solid-shape nouns ("sphere", "orb", "cube", "block"), verbs that say how it
moves ("rolls", "glides", "sinks"), "of the frame", "up the screen". Some of its words are held out ("scarlet",
"block", "pyramid"), and "sphere", "orb" and "cube" were put in the training grammar for a fine-tune that day and
taken out again (docs/shapes_measured.md), so this set measures what a user meets, not held-out generalization.
Set "f" (2026-12-06, written by hand before any model or prompt reader was run on it, and without looking at the
training vocabularies): a new user describing the clip in their own words; questions and two-sentence prompts,
everyday things for the shapes, flat and solid ("coin", "bubble", "dice", "crate", "wedge", "cone"), colour
names with modifiers ("cherry red", "sky blue", "lemon yellow", "silver"), plain and path motions ("goes left",
"moves from the bottom up").
Set "g" (2026-12-06, written by a helper session that read no file of the repository, before any model or prompt
reader ran on it): requests and questions ("Can you generate a clip where ...", "Video where ..., please."), colour
names with modifiers ("royal blue", "cream", "snow-white"), nouns with and without a shape word ("three-sided shape",
"tent shape", "orb"), and eight motions per direction: compass words, paths, starts and ends, "of the frame".
Set "h" (2026-12-06, written as set g was, after set g was measured, for a last blind figure of the day's readers):
users of several kinds (a child, a fast typist, a designer, a storyboard line), "Flat fill, constant speed.",
everyday things for the shapes ("warning-sign triangle", "mountain shape", "square patch"), leaving the frame.
Set "i" (2026-12-06, written as sets g and h were, after the reader fixes that corpora of motion and shape phrases
led to, for the last blind figure): a teacher, a game developer, a kid, dictation without punctuation, things for
the shapes ("pizza-slice shape", "filled-in circle"), "the" or "one" before the colour.
Set "j" (2026-12-06, written as sets g-i were, after everyday things were read by their outline
(vidiff/data/object_shapes.py), for the figure of that list): an intern, a retired engineer, a spec line, a toddler's
cartoon, a terse animator, formal second-language English.
Set "k" (2026-12-06, written as sets g-j were, by a session that read no repository file, after the prompt reader's
negations, clock positions, paths said by a shape and colours of the light were added, and measured once after them):
a marketer, a physics teacher, someone on a phone, a screenplay line, a bug report, a search query and others.
No set is used to train; words in them may or may not be in the training vocabulary.
"""
from __future__ import annotations

import torch

# the wording of prompt i in set s is drawn from generator(SEEDS[s], i)
SEEDS = {"a": 78, "b": 79, "c": 80, "d": 81, "e": 82, "f": 83, "g": 84, "h": 85, "i": 86, "j": 87, "k": 88}

TEMPLATES = {
    "a": (
        "A {colour} {shape} moves {dir}.",
        "{colour} {shape} going {dir}",
        "a {shape} that is {colour}, moving {dir}",
        "There is a {colour} {shape} and it moves {dir}.",
        "a {colour} {shape} slowly moving {dir}",
        "The {colour} {shape} is moving {dir} across the screen.",
        "a {colour} {shape} rolls {dir}",
        "{Colour} {shape}, {dir}",
        "video of a {colour} {shape} moving {dir}",
        "a {colour} {shape} travels {dir} over a grey background",
    ),
    "b": (
        "a {colour} {shape} {move}",
        "A {colour} {shape} {move}.",
        "Show a {colour} {shape} {move}",
        "{Shape} in {colour}, {move}",
        "a small {colour} {shape} {move} on a gray background",
        "Animation: {colour} {shape} {move}",
        "a {colour} colored {shape} {move}",
        "one {colour} {shape} {move}, nothing else in the scene",
    ),
    "c": (
        "a {colour} {shape} {move}",
        "A {colour} {shape} that {move}.",
        "Generate a video where a {colour} {shape} {move}.",
        "The {shape} is {colour} and it {move}",
        "{colour} {shape} {move} on a dark background",
        "a single {colour} {shape} which {move}",
    ),
    "d": (
        "a video of a {colour} {shape} that {move}",
        "Make a clip where the {colour} {shape} {move}.",
        "{colour} {shape} {move}",
        "I want a {colour} {shape} that {move}",
        "Short animation: one {colour} {shape} {move}, plain background.",
        "the {shape} ({colour}) {move}",
    ),
    "e": (
        "a {colour} {shape} that {move}",
        "{Colour} {shape} {move} against a black background.",
        "Please generate a {colour} {shape} which {move}.",
        "an animation where a {colour} {shape} {move}",
        "simple clip: a {colour} {shape} {move}",
        "the {colour} {shape} {move}, nothing else moves",
    ),
    "f": (
        "{Colour} {shape} {move} on a dark background.",
        "there's a {colour} {shape} and it {move}",
        "can you make a {colour} {shape} that {move}?",
        "a dark screen with a {colour} {shape} that {move}",
        "the {shape}, which is {colour}, {move}",
        "just one {colour} {shape} that {move}, nothing else",
        "I see a {colour} {shape}. It {move}.",
        "a tiny {colour} {shape} {move}, the background is black",
    ),
    "g": (
        'Show me a {colour} {shape} that {move}.',
        'make a video of a {colour} {shape} that {move}',
        'A {colour} {shape} {move}.',
        'Can you generate a clip where a {colour} {shape} {move}?',
        '{Colour} {shape}. It {move}.',
        'i want to see a {colour} {shape} as it {move}',
        'Animation: a single {colour} {shape} {move}',
        'A short clip in which one {colour} {shape} {move}.',
        'Could you show a {colour} {shape} that {move}?',
        "there's a {colour} {shape} and it {move}",
        'Video where a {colour} {shape} {move}, please.',
        'Watch the {colour} {shape} as it {move}!',
    ),
    "h": (
        'a {colour} {shape} {move}',
        '{Colour} {shape} {move}, flat and simple.',
        'Can you show a {colour} {shape} that {move}?',
        'Please make a video where a {colour} {shape} {move}.',
        'Look, it {move}! A {colour} {shape}!',
        'There is one {shape}, colour is {colour}, and it {move}.',
        'Picture a {colour} {shape}. It {move}.',
        'On an otherwise empty stage, a flat {colour} {shape} {move} at an even, unhurried pace.',
        'Animate a {colour} {shape} as it {move}.',
        '{Shape}, {colour}, {move}. Flat fill, constant speed.',
        'my {colour} {shape} {move}!!',
        'Scene: a {colour} {shape} {move}, in one smooth straight line.',
    ),
    "i": (
        '{Colour} {shape} {move}.',
        'Make a video where the {colour} {shape} {move}.',
        'can u make a vid where the {colour} {shape} {move} plz',
        'ok so theres this {colour} {shape} and it {move}',
        'For my class slide: one {colour} {shape} that {move}.',
        'Prototype sprite: one {colour} {shape} that {move} at constant speed.',
        'Hello! If it is not too much trouble, I would love an animation in which the {colour} {shape} {move}. Many thanks in advance.',
        'Picture this: the {shape}, {colour} all over, {move}.',
        'There is one {shape} in the clip. It is {colour}, and it {move}.',
        'Watch the {colour} {shape} as it steadily {move}.',
        '{Shape}, colour {colour}, {move} in a straight line.',
        'Could you please generate a short clip in which one {colour} {shape} {move}? Thank you so much!',
    ),
    "j": (
        'A {colour} {shape} {move}.',
        'Show one {colour} {shape} that {move}.',
        'Animation: a {colour} {shape} {move} at a steady pace.',
        '{Colour} {shape} {move}.',
        'Please make a video where a {colour} {shape} {move}.',
        'Look, a {colour} {shape}! It {move}.',
        'Kindly generate a clip in which a {colour} {shape} {move}.',
        'Spec: object = {colour} {shape}; motion: it {move}.',
        "I'd like to see a {colour} {shape} that {move}.",
        'Picture a {colour} {shape} as it {move}.',
        'There is a {colour} {shape}, and it {move}.',
        '{Shape}, coloured {colour}, {move}.',
    ),
    "k": (
        'Eye-catching ad loop: a bold {colour} {shape} {move} on a clean, minimal background. Simple, punchy, on-brand.',
        'Consider one {colour} {shape} in uniform motion: it {move} at constant speed, with nothing else in the scene.',
        'pls make a vid where the {colour} {shape} {move} thx',
        'Please I want video of one {colour} {shape}, it {move} on the plain background only.',
        'INT. EMPTY VOID - CONTINUOUS. A lone {colour} {shape} {move}. Nothing else in frame.',
        'Test case #14 - expected output: the {colour} {shape} {move} on an empty background, single object only.',
        'Alone in the quiet emptiness, a small {colour} {shape} {move}, patient and silent.',
        'And here it comes - the {colour} {shape} {move}, clean and straight, what a line!',
        'As a viewer, I want to see the {colour} {shape} {move} so that the motion is easy to follow.',
        '{Colour} {shape} {move}, plain background, simple animation, minimal',
        "Gallery label: 'Passage', 2026. A solitary {colour} {shape} {move}; a meditation on stillness and direction.",
        'Hi! Could you put together a short clip where a single {colour} {shape} {move}? A plain background is fine. Thanks so much!',
    ),
}
# the sets that say a colour in several ways draw {colour} from here; the others say its plain name
COLOURS = {"e": {"red": ("red", "bright red", "crimson", "scarlet"), "green": ("green", "bright green", "emerald"),
                 "blue": ("blue", "dark blue", "navy blue", "royal blue"), "yellow": ("yellow", "golden", "gold"),
                 "white": ("white", "pure white", "snow white")},
           "f": {"red": ("red", "bright red", "cherry red", "dark red"),
                 "green": ("green", "lime green", "forest green", "dark green"),
                 "blue": ("blue", "light blue", "sky blue", "deep blue"),
                 "yellow": ("yellow", "lemon yellow", "bright yellow", "canary yellow"),
                 "white": ("white", "bright white", "milky white", "silver")},
           "g": {"red": ('crimson', 'scarlet', 'deep red', 'cherry red'),
                 "green": ('green', 'lime green', 'forest green', 'grass-green'),
                 "blue": ('royal blue', 'baby blue', 'navy', 'cobalt blue'),
                 "yellow": ('lemon yellow', 'pale yellow', 'canary yellow', 'bright yellow'),
                 "white": ('white', 'snow-white', 'cream', 'pure white')},
           "h": {"red": ('red', 'crimson', 'cherry red', 'fire-engine red'),
                 "green": ('green', 'lime green', 'grass green', 'leaf green'),
                 "blue": ('blue', 'sky blue', 'cobalt blue', 'navy blue'),
                 "yellow": ('yellow', 'lemon yellow', 'sunflower yellow', 'canary yellow'),
                 "white": ('white', 'snow white', 'pure white', 'chalk white')},
           "i": {"red": ('red', 'crimson', 'scarlet', 'cherry red'),
                 "green": ('green', 'emerald', 'lime green', 'grass-green'),
                 "blue": ('blue', 'navy', 'sky blue', 'royal blue'),
                 "yellow": ('yellow', 'lemon yellow', 'canary yellow', 'sunshine yellow'),
                 "white": ('white', 'snow white', 'chalk white', 'pure white')},
           "j": {"red": ('red', 'cherry red', 'scarlet', 'tomato red'),
                 "green": ('grass green', 'lime green', 'forest green', 'green'),
                 "blue": ('sky blue', 'blue', 'royal blue', 'cobalt'),
                 "yellow": ('lemon yellow', 'sunflower yellow', 'yellow', 'canary yellow'),
                 "white": ('snow white', 'chalk white', 'paper white', 'white')},
           "k": {"red": ('red', 'bright red', 'fire-engine red', 'cherry red'),
                 "green": ('green', 'lime green', 'grass green', 'emerald green'),
                 "blue": ('blue', 'sky blue', 'navy blue', 'royal blue'),
                 "yellow": ('yellow', 'lemon yellow', 'bright yellow', 'sunflower yellow'),
                 "white": ('white', 'pure white', 'snow-white', 'milky white')}}
SHAPES = {"a": {"circle": ("circle", "ball"), "square": ("square", "box"), "triangle": ("triangle",)},
          "b": {"circle": ("circle", "ball", "dot"), "square": ("square", "box"), "triangle": ("triangle",)},
          "c": {"circle": ("circle", "ball"), "square": ("square", "box"), "triangle": ("triangle",)},
          "d": {"circle": ("circle", "ball"), "square": ("square", "box"), "triangle": ("triangle",)},
          "e": {"circle": ("sphere", "orb", "ball", "circle"), "square": ("cube", "block", "square"),
                "triangle": ("triangle", "pyramid")},
          "f": {"circle": ("circle", "disc", "dot", "coin", "ball", "bubble", "globe"),
                "square": ("square", "box", "cube", "tile", "crate", "block", "dice"),
                "triangle": ("triangle", "pyramid", "wedge", "arrowhead", "cone", "prism", "tent")},
          "g": {"circle": ('circle', 'disc', 'dot', 'ball', 'orb', 'round shape'),
                "square": ('square', 'box', 'block', 'cube', 'tile', 'square shape'),
                "triangle": ('triangle', 'pyramid', 'wedge', 'tent shape', 'three-sided shape', 'pointy triangle')},
          "h": {"circle": ('circle', 'disc', 'dot', 'ball', 'coin', 'round blob'),
                "square": ('square', 'box', 'block', 'tile', 'solid square', 'square patch'),
                "triangle": ('triangle', 'solid triangle', 'pyramid shape', 'tent shape', 'mountain shape', 'warning-sign triangle')},
          "i": {"circle": ('circle', 'disc', 'dot', 'coin', 'ball', 'filled-in circle'),
                "square": ('square', 'block', 'tile', 'box', 'sticky-note shape', 'shape with four equal sides'),
                "triangle": ('triangle', 'upright triangle', 'pyramid', 'three-cornered shape', 'pizza-slice shape', 'tent shape')},
          "j": {"circle": ('circle', 'disc', 'dot', 'ball', 'filled-in circle', 'round coin shape'),
                "square": ('square', 'box', 'square tile', 'block', 'four-cornered square', 'square patch'),
                "triangle": ('triangle', 'three-sided shape', 'pyramid shape', 'tent shape', 'upright triangle', 'little mountain shape')},
          "k": {"circle": ('circle', 'dot', 'disc', 'ball', 'round shape', 'coin'),
                "square": ('square', 'box', 'block', 'tile', 'sticky note', 'four-sided box'),
                "triangle": ('triangle', 'wedge', 'pyramid shape', 'three-sided shape', 'arrowhead', 'delta')}}
# set a: a direction completing "moves ..."; sets b to f: the whole motion, often a path or a verb that
# implies it
DIRECTIONS = {
    "a": {"left": ("left", "to the left", "leftwards"), "right": ("right", "to the right", "rightwards"),
          "up": ("up", "upwards", "towards the top"), "down": ("down", "downwards", "towards the bottom")},
    "b": {"left": ("moving from right to left", "moves from the right side to the left side",
                   "traveling leftwards across the frame", "slides over to the left", "heading left"),
          "right": ("moving from left to right", "moves from the left side to the right side",
                    "traveling rightwards across the frame", "slides over to the right", "heading right"),
          "up": ("rising", "moving from the bottom to the top", "climbing up the screen",
                 "floats up to the top", "going upward"),
          "down": ("falling", "moving from top to bottom", "dropping down the screen", "sinks to the bottom",
                   "going downward")},
    "c": {"left": ("goes right to left", "moves across the screen from right to left",
                   "comes in from the right and moves left", "moves to the left", "heads toward the left"),
          "right": ("goes left to right", "moves across the screen from left to right",
                    "comes in from the left and moves right", "moves to the right", "heads toward the right"),
          "up": ("goes bottom to top", "moves up from the bottom of the screen", "floats upward",
                 "moves to the top", "rises slowly"),
          "down": ("goes top to bottom", "moves down from the top of the screen", "drops downward",
                   "moves to the bottom", "falls slowly")},
    "d": {"left": ("moves right-to-left", "enters from the right and heads left", "drifts off to the left",
                   "travels across to the left", "starts on the right and ends on the left"),
          "right": ("moves left-to-right", "enters from the left and heads right", "drifts off to the right",
                    "travels across to the right", "starts on the left and ends on the right"),
          "up": ("moves bottom-to-top", "enters from the bottom and heads up", "drifts up", "ascends",
                 "starts at the bottom and ends at the top"),
          "down": ("moves top-to-bottom", "enters from the top and heads down", "drifts down", "descends",
                   "starts at the top and ends at the bottom")},
    "e": {"left": ("rolls to the left", "glides from the right to the left", "moves toward the left edge of the frame",
                   "slides left slowly", "travels leftward"),
          "right": ("rolls to the right", "glides from the left to the right",
                    "moves toward the right edge of the frame", "slides right slowly", "travels rightward"),
          "up": ("rises to the top of the frame", "floats up", "travels from the bottom to the top",
                 "goes up the screen", "moves upward"),
          "down": ("sinks to the bottom of the frame", "drops down", "travels from the top to the bottom",
                   "goes down the screen", "moves downward")},
    "f": {"left": ("goes left", "slides toward the left", "drifts across to the left side",
                   "moves right to left across the screen", "makes its way to the left"),
          "right": ("goes right", "slides toward the right", "drifts across to the right side",
                    "moves left to right across the screen", "makes its way to the right"),
          "up": ("goes up", "floats upward", "rises toward the top", "moves from the bottom up",
                 "climbs up the screen"),
          "down": ("goes down", "falls downward", "drops toward the bottom", "moves from the top down",
                   "slides down the screen")},
    "g": {"left": ('moves to the left', 'drifts leftward', 'slides from the right edge to the left edge', 'travels west', 'heads toward the left side of the frame', 'glides across the screen from right to left', 'starts on the right and ends up on the left', 'scoots off to the left'),
          "right": ('moves to the right', 'drifts rightward', 'slides from the left edge to the right edge', 'travels east', 'heads toward the right side of the frame', 'glides across the screen from left to right', 'starts on the left and finishes on the right', 'zips off to the right'),
          "up": ('rises toward the top', 'floats upward', 'climbs from the bottom of the frame to the top', 'travels north', 'moves up the screen', 'drifts up toward the top edge', 'starts near the bottom and ends near the top', 'shoots straight up'),
          "down": ('falls toward the bottom', 'sinks downward', 'drops from the top of the frame to the bottom', 'travels south', 'moves down the screen', 'slides down toward the bottom edge', 'starts near the top and ends near the bottom', 'descends steadily')},
    "h": {"left": ('moves left', 'drifts to the left', 'slides from the right edge to the left edge', 'travels west across the screen', 'heads toward the left side of the frame', 'glides leftward', 'starts on the right and ends up on the left', 'slips out of the frame on the left side'),
          "right": ('moves right', 'scoots over to the right', 'travels from the left edge to the right edge', 'heads east', 'makes its way toward the right-hand side of the screen', 'drifts rightward', 'enters on the left and crosses to the right', 'goes off the right edge of the frame'),
          "up": ('moves up', 'rises toward the top of the frame', 'floats upward', 'travels north', 'climbs from the bottom of the screen to the top', 'heads for the top edge', 'starts near the bottom and finishes at the top', 'leaves the frame through the top'),
          "down": ('moves down', 'falls straight down', 'sinks downward', 'heads south', 'drops from the top of the screen to the bottom', 'travels toward the bottom edge', 'starts at the top and finishes near the bottom', 'exits through the bottom of the frame')},
    "i": {"left": ('moves left', 'drifts to the left', 'slides toward the left edge', 'travels west', 'glides from right to left', 'heads leftward', 'enters from the right and exits on the left', 'scoots over to the left side'),
          "right": ('moves right', 'slides to the right', 'drifts toward the right edge', 'travels east', 'glides from left to right', 'heads rightward', 'enters from the left and exits on the right', 'zips across to the right side'),
          "up": ('moves up', 'rises', 'floats upward', 'climbs toward the top of the screen', 'travels north', 'drifts from bottom to top', 'rises and leaves through the top edge', 'slides straight up'),
          "down": ('moves down', 'falls', 'sinks downward', 'drops toward the bottom of the screen', 'travels south', 'slides from top to bottom', 'descends and leaves through the bottom edge', 'drifts straight down')},
    "j": {"left": ('drifts left', 'moves to the left', 'slides toward the left edge', 'travels westward', 'glides from right to left', 'heads leftwards', 'exits through the left side of the frame', 'starts on the right and finishes on the left'),
          "right": ('drifts right', 'moves to the right', 'slides toward the right edge', 'travels eastward', 'glides from left to right', 'heads rightwards', 'enters from the left and crosses to the right', 'sweeps across to the right side of the screen'),
          "up": ('rises', 'floats upward', 'moves up', 'climbs toward the top of the frame', 'travels north', 'glides from the bottom to the top', 'ascends', 'drifts up and out through the top edge'),
          "down": ('falls', 'sinks downward', 'moves down', 'drops toward the bottom of the frame', 'travels south', 'glides from top to bottom', 'descends', 'slides down and out through the bottom edge')},
    "k": {"left": ('moves to the left', 'drifts slowly leftward', 'slides from right to left', 'travels west', 'glides toward the left edge of the frame', 'starts on the right side and ends on the left side', 'exits through the left side of the screen', 'scrolls steadily leftwards across the screen'),
          "right": ('moves to the right', 'drifts rightward', 'slides from left to right', 'heads east', 'travels toward the right edge of the frame', 'starts at the left and finishes at the right', 'slides off the right side of the screen', 'glides steadily rightwards across the frame'),
          "up": ('moves up', 'rises slowly', 'floats from the bottom to the top', 'heads north', 'climbs toward the top edge of the frame', 'starts near the bottom and ends near the top', 'drifts upward and out through the top of the screen', 'ascends steadily'),
          "down": ('moves down', 'sinks slowly', 'drops from the top to the bottom', 'heads south', 'falls toward the bottom edge of the frame', 'starts near the top and ends near the bottom', 'slides downward and out through the bottom of the screen', 'descends steadily')},
}


def user_prompt(colour: str, shape: str, direction: str, gen: torch.Generator, wording: str = "a") -> str:
    """One prompt of set `wording` for (colour, shape, direction), its template and words drawn from `gen`."""
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=gen))]  # noqa: E731
    template = pick(TEMPLATES[wording])
    noun = pick(SHAPES[wording][shape])
    motion = pick(DIRECTIONS[wording][direction])
    if wording in COLOURS:  # drawn last, so the sets without it keep their draws
        colour = pick(COLOURS[wording][colour])
    return template.format(colour=colour, Colour=colour.capitalize(), shape=noun, Shape=noun.capitalize(),
                           dir=motion, move=motion)
