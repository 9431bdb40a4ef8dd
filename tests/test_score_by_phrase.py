"""tools/score_by_phrase.py: each clip counts under the longest phrase of its set that its prompt holds."""
import pytest


def _row(prompt: str, right: bool, direction_right: bool = True) -> dict:
    return {"file": "x.mp4", "prompt": prompt,
            "matches": {"colour": True, "shape": True, "direction": direction_right, "one_object": True,
                        "all_correct": right and direction_right, "steady": True}}


def test_counts_each_prompt_under_its_longest_phrase(load_tool):
    tool = load_tool("score_by_phrase")
    phrases = {"moves left": "left", "moves left slowly": "left", "to the right": "right"}
    rows = [_row("A red ball moves left slowly.", True), _row("a box moves left", False),
            _row("a dot moves left", True, direction_right=False), _row("Ball going To The Right", True)]
    right, total = tool.tally(rows, phrases)
    assert dict(total) == {"moves left slowly": 1, "moves left": 2, "to the right": 1}
    assert (right["moves left slowly"], right["moves left"], right["to the right"]) == (1, 0, 1)
    right, _ = tool.tally(rows, phrases, "direction")
    assert right["moves left"] == 1  # the box: direction right, the clip not all correct


def test_a_prompt_outside_the_set_is_an_error(load_tool):
    tool = load_tool("score_by_phrase")
    with pytest.raises(SystemExit, match="no phrase of the set"):
        tool.tally([_row("a red ball", True)], {"moves left": "left"})
