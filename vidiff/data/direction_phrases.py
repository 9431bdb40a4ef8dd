"""The motion a Shapes prompt names, read from its words: which of left, right, up and down, for the prompt reader
(shapes_prompt.py), and so for `vidiff eval shapes` and the prompt template (prompt_template.py).

A direction word names the motion's goal ("moving left", "toward the top", "rises"), unless it names where the motion
starts ("from left to right", "enters from the top", "comes out of the left side", "starts on the right and ends on
the left": the opposite direction) or where the object is ("in the top left corner", "at the bottom moving up": no
direction). Leaving the picture at a side is going there ("exits on the left"), and up and down may be said as
things ("into the sky", "toward the floor", "from below").
"""
from __future__ import annotations

OPPOSITE_DIRECTION = {"left": "right", "right": "left", "up": "down", "down": "up"}

DIRECTION_WORDS = {
    "left": "left", "leftward": "left", "leftwards": "left", "west": "left", "westward": "left",
    "right": "right", "rightward": "right", "rightwards": "right", "east": "right", "eastward": "right",
    "up": "up", "upward": "up", "upwards": "up", "north": "up", "northward": "up", "skyward": "up",
    "down": "down", "downward": "down", "downwards": "down", "south": "down", "southward": "down",
    "downhill": "down",
    "top": "up", "bottom": "down",  # "toward the top"
    # the "-wards" spellings of the compass words ("eastwards" named no direction while "leftwards" did)
    "westwards": "left", "eastwards": "right", "northwards": "up", "southwards": "down", "skywards": "up",
}
# verbs that carry the direction themselves, in the forms a prompt uses ("rises", "rising", "rise")
DIRECTION_WORDS.update(dict.fromkeys(
    ("rise", "rises", "rising", "ascend", "ascends", "ascending", "climb", "climbs", "climbing"), "up"))
DIRECTION_WORDS.update(dict.fromkeys(
    ("fall", "falls", "falling", "descend", "descends", "descending", "sink", "sinks", "sinking",
     "drop", "drops", "dropping"), "down"))
# compass "-bound" words, and the steep motions (a corpus of motion phrases written apart from this reader)
DIRECTION_WORDS.update({"westbound": "left", "eastbound": "right", "northbound": "up", "southbound": "down",
                         "earthward": "down", "earthwards": "down", "heavenward": "up", "heavenwards": "up"})
DIRECTION_WORDS.update(dict.fromkeys(("soar", "soars", "soaring"), "up"))
DIRECTION_WORDS.update(dict.fromkeys(("plunge", "plunges", "plunging", "plummet", "plummets", "plummeting"), "down"))
# where up and down are, said as things: a direction only as a goal ("into the sky", "toward the floor"), a start
# ("from the ceiling") or an end ("lands on the ground"), not as a place ("across the floor to the left")
_GOAL_NOUNS = {"sky": "up", "ceiling": "up", "air": "up", "heavens": "up", "floor": "down", "ground": "down",
               "earth": "down"}
_GOAL_WORDS = {"to", "toward", "towards", "into", "onto"}
# a start said by where it is from, not by a direction word: "enters from below" moves up
_FROM_SIDES = {"below": "up", "beneath": "up", "underneath": "up", "above": "down"}
# the picture itself, between a verb and its side: "enters frame right", "leaves the screen at the top"
_FRAME_NOUNS = {"frame", "screen", "shot", "view", "picture", "scene", "image", "canvas", "video", "clip"}

# words after which a direction is where the motion starts: "from (the) left", "starts on the right",
# "enters at the top", "beginning in the bottom ..."
_ORIGIN_VERBS = {"start", "starts", "starting", "begin", "begins", "beginning", "enter", "enters", "entering",
                 "appear", "appears", "appearing", "emerge", "emerges", "emerging"}
_PLACE_WORDS = {"on", "at", "in", "from", "near"}  # "starts near the bottom" (user set g)
# the words before a place ("at the bottom", "on the left"): a side said after them is where the object is, unless a
# verb of starting or arriving stands before them
_AT_WORDS = {"on", "at", "in", "near"}
# leaving a side by name is starting there: "fleeing the right side", "leaving the left edge" (not "leaves the screen
# at the top", whose side is a goal: _ARRIVE_VERBS)
_DEPART_VERBS = {"leave", "leaves", "leaving", "flee", "flees", "fleeing", "fled", "escape", "escapes", "escaping",
                 "escaped", "depart", "departs", "departing", "departed"}
# "the upper left": a corner, so two directions where it is a goal, none where it is a place
_VERTICAL_SIDES = {"upper": "up", "lower": "down"}


def _corner_positions(words: list[str]) -> set[int]:
    """Indices of direction words that say where the object is, not where it goes: "in the top left corner",
    "top-right corner" (a start said so, "starts in the bottom corner", is read by _names_the_origin). A corner it
    moves to ("toward the top right corner", "to the left corner") names the direction: the reader took no
    direction from it and the note said the direction was left to chance."""
    found = set()
    for k, word in enumerate(words):
        if word not in ("corner", "corners"):
            continue
        i = k - 1
        while i >= 0 and words[i] in DIRECTION_WORDS:
            i -= 1
        run = range(i + 1, k)
        # "to the top left corner", "toward a far left corner": a destination word within the three words before
        towards = bool({"to", "toward", "towards", "into"} & set(words[max(0, i - 2):i + 1]))
        if run and not towards and not any(_names_the_origin(words, j) for j in run):
            found.update(run)
    return found


# words that say where the motion ends: "ends at the bottom" names the direction (down), "at the bottom" alone a place
_END_VERBS = {"end", "ends", "ending", "ended", "stop", "stops", "stopping", "stopped", "finish", "finishes",
              "finishing", "finished", "arrive", "arrives", "arriving", "arrived", "land", "lands", "landing", "landed",
              "settle", "settles", "settling", "settled"}
# "winds up on the left": with the end verbs, what an "up" after them is a particle of (_end_particles)
_ARRIVE_VERBS = _END_VERBS | {"wind", "winds", "winding", "wound"}
# leaving the picture at a side is going that way: "exits on the left", "leaves the screen at the top"
_ARRIVE_VERBS |= {"exit", "exits", "exiting", "exited", "leave", "leaves", "leaving", "disappear", "disappears",
                  "disappearing", "disappeared", "vanish", "vanishes", "vanishing", "vanished"}
# the direction words that name a place too ("at the bottom", "on the left"); "on up", "keeps on rising", "in upward
# motion" say the motion, and read as a place they named no direction
_PLACE_NOUNS = {"left", "right", "top", "bottom", "west", "east", "north", "south"}
_PLACE_FILLERS = {"the", "upper", "lower", "far"}


def _verb_before(words: list[str], j: int) -> int:
    """Index of the verb whose place word stands at j, over an "up" ("ends up at the top") and the picture it
    leaves ("leaves the frame on the left"); -1 where there is none."""
    k = j - 1
    while k >= 0 and (words[k] in _FRAME_NOUNS or words[k] == "the"
                      or (words[k] == "up" and k and words[k - 1] in _ARRIVE_VERBS)):
        k -= 1
    return k


def _end_particles(words: list[str]) -> set[int]:
    """Indices of an "up" that ends a verb of arriving ("ends up on the left", "winds up at the top"), not a
    direction: read as one, "starts on the right and ends up on the left" named two directions (user set g)."""
    return {i for i, word in enumerate(words) if word == "up" and i and words[i - 1] in _ARRIVE_VERBS}


def _place_positions(words: list[str]) -> set[int]:
    """Indices of direction words that say where the object is, said after "at", "in", "on" or "near" ("a red circle at
    the bottom moving up", "in the upper left, moving right"): read as directions, they were the motion's, so
    "at the bottom moving up" read down. Only a word that names a place (_PLACE_NOUNS); not a start ("starts at the
    top": _names_the_origin reads it), an end ("ends at the bottom"), or "in the left direction"."""
    found, before = set(), -1  # before: the last word before k that is no direction or filler word
    for k, word in enumerate(words):
        if word in _PLACE_NOUNS and not _names_the_origin(words, k):
            at = before >= 0 and words[before] in _AT_WORDS
            verb = _verb_before(words, before) if before >= 0 else -1
            ends = verb >= 0 and (words[verb] in _ARRIVE_VERBS or words[verb] in _ORIGIN_VERBS
                                  or words[max(0, before - 2):before] == ["to", "rest"])  # "comes to rest at"
            if at and not ends and words[k + 1:k + 2] not in (["direction"], ["to"]):
                found.add(k)
        if word not in DIRECTION_WORDS and word not in _PLACE_FILLERS:
            before = k  # found once as the words go: walking back from each took a second on 'up ' * 5000
    return found


def _names_the_origin(words: list[str], i: int) -> bool:
    """Whether words[i] is where the motion starts: "from (the) left ...", "starts on the left", "left to right"."""
    before = words[max(0, i - 3):i]
    if before[-1:] == ["the"]:
        before = before[:-1]
    after_from = before[-1:] == ["from"]
    after_start = (len(before) >= 2 and before[-1] in _PLACE_WORDS | _FRAME_NOUNS and before[-2] in _ORIGIN_VERBS) \
        or before[-1:] in (["starts"], ["starting"]) or before[-2:] == ["out", "of"]  # "comes out of the left side"
    departs = words[i - 1:i] == ["the"] and i >= 2 and words[i - 2] in _DEPART_VERBS
    opposite = before[-1:] == ["opposite"] or before[-2:] in (["opposite", "to"], ["opposite", "of"])
    rest = words[i + 1:i + 4]
    to_another = rest[:1] == ["to"] and any(DIRECTION_WORDS.get(w) not in (None, DIRECTION_WORDS[words[i]])
                                            for w in rest[1:3])
    return after_from or after_start or to_another or departs or opposite


def _side_said(words: list[str], i: int) -> str | None:
    """The direction words[i] names where it is no direction word: a goal noun as a goal, start or end ("soars into
    the sky", "from the ceiling", "lands on the floor"), or "from below" / "from above"."""
    word = words[i]
    if word in _FROM_SIDES:
        return _FROM_SIDES[word] if words[i - 1:i] == ["from"] else None
    if word not in _GOAL_NOUNS:
        return None
    j = i - 1 if words[i - 1:i] == ["the"] else i
    before = words[max(0, j - 2):j]
    if before[-1:] == ["from"] or (len(before) == 2 and before[1] in _PLACE_WORDS and before[0] in _ORIGIN_VERBS):
        return OPPOSITE_DIRECTION[_GOAL_NOUNS[word]]  # "falls from the ceiling", "begins near the ceiling"
    if before[-1:] and before[-1] in _GOAL_WORDS:
        return _GOAL_NOUNS[word]
    at = j and words[j - 1] in _AT_WORDS
    verb = _verb_before(words, j - 1) if at else -1
    return _GOAL_NOUNS[word] if verb >= 0 and words[verb] in _ARRIVE_VERBS else None


def direction_at(words: list[str], i: int) -> str | None:
    """The direction of the motion words[i] (of lower-case words) names, a start read as the opposite one; None
    where it names none. Not for an index of direction_scenery(words)."""
    word = words[i]
    if word in DIRECTION_WORDS:
        return OPPOSITE_DIRECTION[DIRECTION_WORDS[word]] if _names_the_origin(words, i) else DIRECTION_WORDS[word]
    if word in _VERTICAL_SIDES and words[i + 1:i + 2] in (["left"], ["right"]):  # a start or a goal as its side is
        return OPPOSITE_DIRECTION[_VERTICAL_SIDES[word]] if _names_the_origin(words, i + 1) else _VERTICAL_SIDES[word]
    return _side_said(words, i)


def direction_scenery(words: list[str]) -> set[int]:
    """Indices of direction words that are not the motion's: where the object is ("in the top left corner", "at the
    bottom", "in the upper left") and the "up" of "ends up"."""
    found = _corner_positions(words) | _place_positions(words) | _end_particles(words)
    return found | {i for i, word in enumerate(words) if word in _VERTICAL_SIDES and i + 1 in found}
