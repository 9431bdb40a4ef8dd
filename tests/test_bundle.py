"""The shipped Shapes pipeline: its frames for 10 fixed requests are bit-identical to the recorded hashes, and its
text-to-video clips show what was asked (the Shapes analyzer), so the README's figures are guarded."""
import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated(load_tool):
    from vidiff import VideoPipeline

    tool = load_tool("bundle_hashes")
    pipe = VideoPipeline.from_pretrained(tool.BUNDLE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the recorded hashes were made with one thread
    try:
        return tool, [(case, tool.run_case(pipe, *case)) for case in tool.CASES]
    finally:
        torch.set_num_threads(threads)


def test_bundled_frames_are_bit_identical_to_the_recorded_hashes(generated):
    tool, results = generated
    recorded = json.loads((REPO / "tests" / "data" / "bundle_hashes.json").read_text())
    assert [(r["kind"], r["prompt"], r["seed"]) for r in recorded] == [case for case, _ in results]
    for row, (case, frames) in zip(recorded, results):
        assert list(frames.shape) == row["shape"], case
        assert tool.frame_hash(frames) == row["sha256_16"], case


def test_bundled_clips_show_what_was_asked(generated):
    from vidiff.data.shapes_analysis import analyze_clip

    _, results = generated
    for (kind, prompt, seed), frames in results:
        if kind not in ("t2v", "animate"):
            continue
        verdict = analyze_clip(frames.numpy()).matches(prompt)
        assert all(verdict.values()), (kind, prompt, seed, verdict)
