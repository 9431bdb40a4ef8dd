"""Direction pairs (conditioning.direction_pairs_from_step): half a keyframe batch is the other half played backwards with
the opposite direction word, sharing its draws and, where the layout leaves room, its first keyframe."""
import pytest
import torch

from vidiff.config import ConfigError
from vidiff.data.shapes import parse_caption
from vidiff.random import SampleDraws
from vidiff.training.direction_pairs import pair_batch, partner_starts, start_range

from test_training_layouts import RANGES, TINY_UNET, cfg_for, frame_index_latents, stage_for

CAPTIONS = ["a red circle moving left", "a blue square moving up", "a green triangle moving right",
            "a yellow circle moving down", "a red square moving left"]


def test_pair_batch_reverses_the_partners_and_swaps_their_direction():
    lat = torch.randn(5, 4, 41, 2, 2)
    before = lat.clone()
    draws = SampleDraws(3, [0, 0, 1, 1, 1], 7, [10, 11, 12, 13, 14])
    batch, paired, partner = pair_batch({"latents": lat, "caption": CAPTIONS, "meta": "kept"}, draws)
    assert partner.tolist() == [False, False, False, True, True]
    assert torch.equal(batch["latents"][:3], lat[:3])
    assert torch.equal(batch["latents"][3], lat[0].flip(1)) and torch.equal(batch["latents"][4], lat[1].flip(1))
    assert batch["caption"][:3] == CAPTIONS[:3]
    assert [parse_caption(c) for c in batch["caption"][3:]] == [("red", "circle", "right"), ("blue", "square", "down")]
    assert paired.sample_ids == [10, 11, 12, 10, 11] and paired.epochs == [0, 0, 1, 0, 0]
    # a partner draws exactly what its original draws (pattern, sigma, noise, caption wording)
    assert torch.equal(paired.randn((6,), "noise")[3], paired.randn((6,), "noise")[0])
    assert batch["meta"] == "kept" and torch.equal(lat, before)  # the input batch is not changed in place


def test_partner_starts_share_the_first_keyframe_when_the_clip_has_room():
    total, span = 41, 15
    lo, hi = start_range(total, span, paired=True)
    assert (lo, hi) == (15, 25)
    assert start_range(total, 40, paired=True) == (0, 0)  # 9 keyframes at stride 5: no room either way
    starts = partner_starts([20, 20, 5, 5], torch.tensor([False, True, False, True]), total, span)
    assert starts == [20, 40 - 20, 5, 40 - 20]  # frame 20 reversed is 20; frame 5 falls back to its window backwards


def test_a_paired_stage_trains_on_the_same_first_frame_in_both_directions(tmp_path):
    stage = stage_for(tmp_path, captions="shapes_grammar", direction_pairs_from_step=0)
    lat = frame_index_latents(6, 41)
    shared = 0
    for step in range(30):
        draws = SampleDraws(0, [0] * 6, step, list(range(6)))
        batch, paired, partner = pair_batch({"latents": lat, "caption": CAPTIONS + CAPTIONS[:1]}, draws)
        x0, mask, stride, _ = stage._frames(batch["latents"], paired, step, partner)
        ids = x0[:, 0, :, 0, 0]  # (B, K): the original clip's frame index of each picked keyframe
        k = ids.shape[1]
        assert torch.equal(mask[3:], mask[:3])  # the same known pattern in each pair
        for orig, part in ((0, 3), (1, 4), (2, 5)):
            fwd, back = ids[orig], ids[part]
            assert bool((fwd[1:] - fwd[:-1] == stride).all()) and bool((back[1:] - back[:-1] == -stride).all())
            if 2 * (k - 1) * stride <= 40:
                assert back[0] == fwd[0]  # same first keyframe, moving the other way
                shared += 1
            else:
                assert torch.equal(back, fwd.flip(0))  # the same window played backwards
    assert shared > 0


def test_direction_pairs_start_at_their_step_and_need_the_keyframe_stage_and_the_grammar(tmp_path):
    stage = stage_for(tmp_path, captions="shapes_grammar", direction_pairs_from_step=4000)
    assert [stage.direction_pairs_at(s) for s in (0, 3999, 4000, 9000)] == [False, False, True, True]
    assert not stage_for(tmp_path, captions="shapes_grammar").direction_pairs_at(10**6)  # null: never
    with pytest.raises(ConfigError, match="direction_pairs_from_step"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "direction_pairs_from_step": 0})
    with pytest.raises(ConfigError, match="direction_pairs_from_step"):
        cfg_for(tmp_path, "interpolation", {**RANGES, "captions": "shapes_grammar", "direction_pairs_from_step": 0})
    with pytest.raises(ConfigError, match="must be >= 0"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "captions": "shapes_grammar", "direction_pairs_from_step": -1})


def test_direction_pairs_of_one_sample_a_micro_batch_are_refused(tmp_path):
    """A pair is made within one process's micro-batch: at train.batch_size 1 (one sample per GPU) or a frame budget
    that keeps one sample of the longest layout, pair_batch made none and the run trained without pairs, unsaid."""
    from vidiff.config import from_dict
    from vidiff.training.config import TrainConfig, validate

    def cfg(**train):
        return validate(from_dict(TrainConfig, {
            "stage": "keyframes", "output_dir": str(tmp_path / "run"), "model": TINY_UNET,
            "data": {"kind": "latent_cache", "root": "unused", "num_frames": 41},
            "conditioning": {**RANGES, "captions": "shapes_grammar", "direction_pairs_from_step": 0},
            "train": {"max_steps": 3, **train}}))

    with pytest.raises(ConfigError, match=r"^conditioning.direction_pairs_from_step: pairs are made within each "
                       r"process's micro-batch and need 2 samples in it, but train.batch_size is 1; give "):
        cfg(batch_size=1)
    longest = max(RANGES["num_keyframes"], RANGES["max_keyframes"])
    with pytest.raises(ConfigError, match=f"train.max_batch_frames {2 * longest - 1} keeps 1 sample of {longest} "
                       f"keyframes; give train.batch_size >= 2 per process \\(and train.max_batch_frames >= "
                       f"{2 * longest}\\)"):
        cfg(batch_size=8, max_batch_frames=2 * longest - 1)
    assert cfg(batch_size=8, max_batch_frames=2 * longest).train.max_batch_frames == 2 * longest
    assert stage_for(tmp_path, captions="shapes_grammar", direction_pairs_from_step=0).cfg.train.batch_size == 2


def test_grammar_captions_of_a_caption_the_grammar_cannot_read_is_a_user_error(tmp_path):
    """A Shapes recipe reused on one's own captions stopped at its first step with a ValueError traceback."""
    from vidiff.errors import InputError

    stage = stage_for(tmp_path, captions="shapes_grammar")
    assert len(stage.captions(["a red circle moving left"], SampleDraws(0, [0], 0, [0]))) == 1
    with pytest.raises(InputError, match="set conditioning.captions=dataset"):
        stage.captions(["a cartoon character talking"], SampleDraws(0, [0], 0, [0]))
