"""Layouts and captions as training inputs (issue 14): the keyframe stage draws (K, stride) per step over its
configured ranges, the interpolation stage a gap per step, trained_on records the ranges, and with
captions=shapes_grammar each sample gets its own grammar caption for its clip's attributes."""
import pytest
import torch

from vidiff.config import ConfigError, from_dict
from vidiff.data.shapes import parse_caption
from vidiff.random import SampleDraws
from vidiff.training.config import TrainConfig, validate

TINY_UNET = {"in_channels": 4, "out_channels": 4, "block_out_channels": [16, 32], "layers_per_block": 1,
             "attention_levels": [False, True], "mid_attention": False, "num_head_channels": 16,
             "context_dim": 384, "conditioning": True, "use_frame_stride": True, "use_cond_sigma": True,
             "norm_groups": 8}
RANGES = {"num_keyframes": 4, "keyframe_stride": 5, "min_keyframes": 3, "max_keyframes": 9,
          "min_keyframe_stride": 3, "max_keyframe_stride": 5, "default_layout_prob": 0.3, "min_gap": 2, "max_gap": 8}


def cfg_for(tmp_path, stage, conditioning=RANGES, data=None):
    return validate(from_dict(TrainConfig, {
        "stage": stage, "output_dir": str(tmp_path / stage), "model": TINY_UNET,
        "data": data or {"kind": "latent_cache", "root": "unused", "num_frames": 41},
        "conditioning": dict(conditioning), "train": {"max_steps": 3, "batch_size": 2}}))


def stage_for(tmp_path, stage="keyframes", **conditioning):
    from vidiff.training.stages import LatentDiffusionStage

    return LatentDiffusionStage(cfg_for(tmp_path, stage, {**RANGES, **conditioning}), dataset=[])


def frame_index_latents(b, frames):
    """(B, 4, F, 2, 2) latents whose channel 0 holds the frame index, so a test sees which frames were picked."""
    return torch.arange(frames, dtype=torch.float32)[None, None, :, None, None].expand(b, 4, frames, 2, 2).clone()


def test_keyframe_layout_is_drawn_per_step_over_the_ranges(tmp_path):
    stage = stage_for(tmp_path)
    layouts = [stage.keyframe_layout(0, step) for step in range(2000)]
    assert layouts == [stage.keyframe_layout(0, step) for step in range(2000)]  # (seed, step) alone decide
    assert layouts != [stage.keyframe_layout(1, step) for step in range(2000)]
    assert {k for k, _ in layouts} == set(range(3, 10)) and {s for _, s in layouts} == {3, 4, 5}
    assert len(set(layouts)) == 7 * 3  # every pair of the rectangle is trained
    share = layouts.count((4, 5)) / len(layouts)
    assert abs(share - (0.3 + 0.7 / 21)) < 0.04  # default_layout_prob, plus the uniform draw's own share


def test_keyframe_frames_follow_the_drawn_layout(tmp_path):
    stage = stage_for(tmp_path)
    lat = frame_index_latents(6, 41)
    seen = set()
    for step in range(40):
        d = SampleDraws(0, [0] * 6, step, list(range(6)))
        x0, mask, stride, _ = stage._frames(lat, d, step)
        k, s = stage.keyframe_layout(0, step)
        ids = x0[:, 0, :, 0, 0]  # (B, K) picked frame indices
        assert x0.shape[2] == k and stride == float(s) and mask.shape == (6, k)
        assert bool(((ids[:, 1:] - ids[:, :-1]) == s).all())
        assert ids.min() >= 0 and ids.max() <= 40
        seen.add((k, s))
    assert len(seen) > 8


def test_interpolation_gaps_cover_the_range(tmp_path):
    stage = stage_for(tmp_path, "interpolation")
    lat = frame_index_latents(2, 41)
    gaps = set()
    for step in range(200):
        x0, mask, stride, idx = stage._frames(lat, SampleDraws(0, [0, 0], step, [0, 1]), step)
        ids = x0[:, 0, :, 0, 0]
        assert stride == 1.0 and bool(((ids[:, 1:] - ids[:, :-1]) == 1).all())
        assert torch.equal(idx.to(ids.dtype), ids)  # the indices the flow anchor reads the window's pixels at
        gaps.add(x0.shape[2] - 1)
    assert gaps == set(range(2, 9))


def test_proportional_gap_weighting_draws_gap_g_with_probability_g_over_the_sum(tmp_path):
    from vidiff.training.config import config_hash

    stage = stage_for(tmp_path, "interpolation", gap_weighting="proportional")
    n = 7000
    counts = torch.bincount(torch.tensor([stage.interpolation_gap(0, step, 41) for step in range(n)]), minlength=9)
    expected = torch.arange(9, dtype=torch.float64) / sum(range(2, 9))  # gaps 2..8 sum to 35
    expected[:2] = 0
    sd = (expected * (1 - expected) / n).sqrt()
    assert bool(((counts / n - expected).abs() <= 4 * sd + 1e-12).all()), counts  # 4 standard errors
    assert counts[8] > 3 * counts[2]  # uniform draws would give about equal counts
    assert stage.interpolation_gap(0, 5, 41) == stage.interpolation_gap(0, 5, 41)  # from (seed, step): a resume replays it
    assert stage.interpolation_gap(0, 5, 4) <= 3  # capped by the clip like the uniform draw
    uniform = stage_for(tmp_path, "interpolation")
    assert config_hash(stage.cfg) != config_hash(uniform.cfg)
    with pytest.raises(ConfigError, match="gap_weighting: only the interpolation stage"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "gap_weighting": "proportional"})
    with pytest.raises(ConfigError, match="gap_weighting"):
        cfg_for(tmp_path, "interpolation", {**RANGES, "gap_weighting": "long"})


def test_proportional_keyframe_count_weighting_draws_k_with_probability_k_over_the_sum(tmp_path):
    from vidiff.training.config import config_hash

    stage = stage_for(tmp_path, keyframe_count_weighting="proportional", default_layout_prob=0.0)
    n = 7000
    layouts = [stage.keyframe_layout(0, step) for step in range(n)]
    counts = torch.bincount(torch.tensor([k for k, _ in layouts]), minlength=10)
    expected = torch.arange(10, dtype=torch.float64) / sum(range(3, 10))  # K in 3..9 sums to 42
    expected[:3] = 0
    sd = (expected * (1 - expected) / n).sqrt()
    assert bool(((counts / n - expected).abs() <= 4 * sd + 1e-12).all()), counts  # 4 standard errors
    assert counts[9] > 2.5 * counts[3]  # uniform draws would give about equal counts
    assert {s for _, s in layouts} == {3, 4, 5}  # the stride stays uniform over its range
    assert stage.keyframe_layout(0, 5) == stage.keyframe_layout(0, 5)  # from (seed, step): a resume replays it
    # the default share still comes first: all of it at probability 1
    assert {stage_for(tmp_path, keyframe_count_weighting="proportional", default_layout_prob=1.0)
            .keyframe_layout(0, step) for step in range(50)} == {(4, 5)}
    uniform = stage_for(tmp_path, default_layout_prob=0.0)
    assert config_hash(stage.cfg) != config_hash(uniform.cfg)
    # a uniform run replays the draws of the runs from before the key existed: one rand, then K, then the stride
    from vidiff.random import generator

    def before(step):
        g = generator(0, step, "layout")
        torch.rand((), generator=g)
        return int(torch.randint(3, 10, (1,), generator=g)), int(torch.randint(3, 6, (1,), generator=g))
    assert [uniform.keyframe_layout(0, step) for step in range(200)] == [before(step) for step in range(200)]
    with pytest.raises(ConfigError, match="keyframe_count_weighting: only the keyframe stage"):
        cfg_for(tmp_path, "interpolation", {**RANGES, "keyframe_count_weighting": "proportional"})
    with pytest.raises(ConfigError, match="keyframe_count_weighting"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "keyframe_count_weighting": "long"})


def test_trained_on_records_the_ranges(tmp_path):
    kf, it = stage_for(tmp_path).trained_on(), stage_for(tmp_path, "interpolation").trained_on()
    assert kf.num_frames == (3, 9) and kf.frame_strides == (3, 5)
    assert it.num_frames == (3, 9) and it.frame_strides == (1, 1)
    fixed = {k: v for k, v in RANGES.items() if not k.startswith(("min_key", "max_key"))}
    assert cfg_for(tmp_path, "keyframes", fixed).conditioning.keyframe_counts() == (4, 4)


def test_layout_ranges_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="must hold conditioning.num_keyframes"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "min_keyframes": 5})
    with pytest.raises(ConfigError, match="max_keyframe_stride: must be >= 1"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "max_keyframe_stride": 0})
    with pytest.raises(ConfigError, match="default_layout_prob"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "default_layout_prob": 1.5})
    with pytest.raises(ConfigError, match="path_captions_from_step: must be >= 0"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "path_captions_from_step": -1})
    with pytest.raises(ConfigError, match="conditioning.path_captions_from_step needs the Shapes caption grammar"):
        cfg_for(tmp_path, "keyframes", {**RANGES, "path_captions_from_step": 100})
    with pytest.raises(ConfigError, match=r"data.num_frames \(33\) < 41"):  # 9 keyframes at stride 5 span 41
        cfg_for(tmp_path, "keyframes", data={"kind": "shapes", "num_frames": 33}, conditioning=RANGES)
    with pytest.raises(ValueError, match="41"):
        stage_for(tmp_path)._frames(frame_index_latents(2, 33), SampleDraws(0, [0, 0], 0, [0, 1]), 0)


class RecordingText:
    """Stands in for the text encoder: records what it was asked to encode."""

    def __init__(self):
        self.seen = []

    def encode(self, prompts):
        self.seen.append(list(prompts))
        return torch.zeros(len(prompts), 3, 384), torch.ones(len(prompts), 3, dtype=torch.bool)


def test_grammar_captions_are_drawn_per_sample_and_encoded_on_the_fly(tmp_path):
    stage = stage_for(tmp_path, captions="shapes_grammar")
    stage._text = RecordingText()
    stored = ["a red circle moving left", "the white triangle slides up", "a square, blue, moving down"] * 4
    batch = {"latents": frame_index_latents(12, 41), "context": torch.ones(12, 7, 384),
             "context_mask": torch.ones(12, 7, dtype=torch.bool), "caption": stored}
    d = SampleDraws(0, [0] * 12, 3, list(range(12)))
    _, context, _ = stage._latents_and_text(batch, d)
    drawn = stage._text.seen[-1]
    assert context.shape == (12, 3, 384)  # the fresh encoding, not the cached context
    assert [parse_caption(c) for c in drawn] == [parse_caption(c) for c in stored]
    assert len(set(drawn)) > 6  # the same attributes, said differently per sample
    again = stage.captions(stored, SampleDraws(0, [0] * 12, 3, list(range(12))))
    assert again == drawn  # (seed, epoch, step, sample id) decide the caption
    alone = stage.captions([stored[5]], SampleDraws(0, [0], 3, [5]))
    assert alone == [drawn[5]]  # sample 5's caption does not depend on the batch around it
    assert stage.captions(stored, SampleDraws(0, [0] * 12, 4, list(range(12)))) != drawn
    with pytest.raises(ValueError, match="does not name"):
        stage.captions(["a purple thing"], d)


def test_path_captions_start_at_their_step(tmp_path):
    stage = stage_for(tmp_path, captions="shapes_grammar", plain_caption_prob=0.0, path_captions_from_step=100)
    stored = ["a red circle moving left", "the white triangle slides up", "a square, blue, moving down"] * 20

    def paths_at(step):
        drawn = stage.captions(stored, SampleDraws(0, [0] * 60, step, list(range(60))))
        assert [parse_caption(c) for c in drawn] == [parse_caption(c) for c in stored]
        return sum(" from " in f" {c} " for c in drawn)

    assert paths_at(0) == paths_at(99) == 0
    assert paths_at(100) > 5 and paths_at(2000) > 5


def test_dataset_captions_keep_the_cached_embeddings(tmp_path):
    stage = stage_for(tmp_path)
    stage._text = RecordingText()
    batch = {"latents": frame_index_latents(2, 41), "context": torch.ones(2, 7, 384),
             "context_mask": torch.ones(2, 7, dtype=torch.bool), "caption": ["a", "b"]}
    _, context, _ = stage._latents_and_text(batch, SampleDraws(0, [0, 0], 0, [0, 1]))
    assert torch.equal(context, batch["context"]) and stage._text.seen == []


@pytest.mark.parametrize("stage_name", ["keyframes", "interpolation"])
def test_frame_budget_keeps_the_first_samples_of_long_windows(tmp_path, stage_name):
    from vidiff.training.stages import LatentDiffusionStage

    cfg = cfg_for(tmp_path, stage_name)
    cfg = validate(from_dict(TrainConfig, {**_as_dict(cfg), "train": {"max_steps": 3, "batch_size": 8,
                                                                     "max_batch_frames": 20}}))
    stage = LatentDiffusionStage(cfg, dataset=[])
    b = 8
    batch = {"latents": frame_index_latents(b, 41), "caption": [f"c{i}" for i in range(b)],
             "sample_id": torch.arange(b), "epoch": torch.zeros(b, dtype=torch.long)}
    kept = set()
    for step in range(60):
        draws = SampleDraws(0, [0] * b, step, list(range(10, 10 + b)))
        length = stage.window_length(0, step, 41)
        out, d = stage._within_frame_budget(batch, draws, step)
        keep = min(b, max(1, 20 // length))
        assert len(d) == keep and d.sample_ids == list(range(10, 10 + keep))
        assert out["latents"].shape[0] == keep and out["caption"] == batch["caption"][:keep]
        assert torch.equal(out["sample_id"], batch["sample_id"][:keep])
        # a kept sample's draws are the ones it had in the full batch
        assert torch.equal(d.randn((3,), "noise"), draws.randn((3,), "noise")[:keep])
        x0, *_ = stage._frames(out["latents"], d, step)
        assert x0.shape[:3] == (keep, 4, length) and keep * length <= max(20, length)
        kept.add(keep)
    assert len(kept) > 2  # short windows keep more samples than long ones


def test_frame_budget_off_and_validated(tmp_path):
    from vidiff.training.stages import LatentDiffusionStage

    stage = LatentDiffusionStage(cfg_for(tmp_path, "keyframes"), dataset=[])
    batch = {"latents": frame_index_latents(2, 41)}
    draws = SampleDraws(0, [0, 0], 5, [0, 1])
    assert stage._within_frame_budget(batch, draws, 5) == (batch, draws)
    with pytest.raises(ConfigError, match="train.max_batch_frames"):
        validate(from_dict(TrainConfig, {**_as_dict(cfg_for(tmp_path, "keyframes")),
                                         "train": {"max_batch_frames": 0}}))


def _as_dict(cfg) -> dict:
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(cfg).items() if k in ("stage", "output_dir", "model", "data",
                                                                      "conditioning")}
