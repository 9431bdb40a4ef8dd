"""Known content per latent pixel: region masks for training, the U-Net's per-pixel known mask, the stages."""
import pytest
import torch

from vidiff.diffusion.cond import Cond, known_volume
from vidiff.errors import InputError
from vidiff.models import UNet3D, UNet3DConfig
from vidiff.random import SampleDraws
from vidiff.training import conditioning as cond
from vidiff.training.config import ConditioningSection
from vidiff.training.regions import region_keep_mask


def draws(n, step=0):
    return SampleDraws(0, [0] * n, step, list(range(n)))


def test_region_masks_are_binary_partial_and_reproducible():
    moved = 0
    for i in range(60):
        keep = region_keep_mask(5, 16, 16, torch.Generator().manual_seed(i))
        assert keep.shape == (5, 16, 16) and set(keep.unique().tolist()) <= {0.0, 1.0}
        per_frame = keep.flatten(1)
        assert bool((per_frame.min(1).values == 0).all()) and bool((per_frame.max(1).values == 1).all())
        again = region_keep_mask(5, 16, 16, torch.Generator().manual_seed(i))
        assert torch.equal(keep, again)
        moved += not torch.equal(keep[0], keep[-1])
    assert 5 <= moved < 60  # moving boxes move; boxes and blobs stay put


def test_known_volume_shapes():
    m = torch.tensor([[1.0, 0.0, 1.0]])
    v = known_volume(m, (1, 4, 3, 2, 2))
    assert v.shape == (1, 1, 3, 2, 2) and v[0, 0, :, 1, 1].tolist() == [1.0, 0.0, 1.0]
    pixel = torch.rand(1, 3, 2, 2)
    assert torch.equal(known_volume(pixel, (1, 4, 3, 2, 2))[:, 0], pixel)
    with pytest.raises(InputError, match="known_mask"):
        known_volume(torch.ones(1, 3, 4, 4), (1, 4, 3, 2, 2))


def tiny_unet():
    torch.manual_seed(0)
    net = UNet3D(UNet3DConfig(block_out_channels=(16, 32), layers_per_block=1, attention_levels=(False, True),
                              num_head_channels=16, conditioning=True, norm_groups=8)).eval()
    with torch.no_grad():
        for p in net.parameters():  # zero-initialised output layers would hide every input
            p.add_(0.05 * torch.randn_like(p))
    return net


def test_unet_per_frame_mask_equals_its_per_pixel_broadcast():
    net = tiny_unet()
    x, known = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 8, 8)
    frame_mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    pixel_mask = frame_mask[:, :, None, None].expand(2, 3, 8, 8).contiguous()
    with torch.no_grad():
        a = net(x, torch.zeros(2), Cond(known=known, known_mask=frame_mask))
        b = net(x, torch.zeros(2), Cond(known=known, known_mask=pixel_mask))
        region = pixel_mask.clone()
        region[:, :, 2:6, 2:6] = 0.0
        c = net(x, torch.zeros(2), Cond(known=known, known_mask=region))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)  # the network sees which pixels are known
    with pytest.raises(ValueError, match="known_mask"):
        net(x, torch.zeros(2), Cond(known=known, known_mask=torch.ones(2, 3, 4, 4)))


def test_keyframe_masks_with_regions():
    plain = ConditioningSection(drop_cond_prob=0.0)
    with_regions = ConditioningSection(pattern_none=0, pattern_first=0, pattern_first_k=0, pattern_random_subset=0,
                                       pattern_region=1.0, drop_cond_prob=0.0)
    per_frame = cond.keyframe_masks(draws(8), 4, plain, (16, 16))
    assert per_frame.shape == (8, 4)  # no region pattern: per-frame masks as before
    m = cond.keyframe_masks(draws(8), 4, with_regions, (16, 16))
    assert m.shape == (8, 4, 16, 16)
    assert bool((m.flatten(2).min(2).values == 0).all()) and bool((m.flatten(2).max(2).values == 1).all())
    mixed = ConditioningSection(pattern_region=0.5, drop_cond_prob=0.0)
    m = cond.keyframe_masks(draws(64), 4, mixed, (16, 16))
    partial = (m.flatten(2).min(2).values == 0) & (m.flatten(2).max(2).values == 1)  # (B, F)
    assert 10 < int(partial.all(1).sum()) < 54  # about half the samples are region samples
    whole = m[~partial.any(1)]  # the others: per-frame masks broadcast over the pixels
    assert torch.equal(whole, whole[:, :, :1, :1].expand_as(whole))


def test_interpolation_masks_with_regions_keep_both_ends():
    c = ConditioningSection(pattern_region=1.0, drop_cond_prob=0.0)
    m = cond.interpolation_masks(draws(6), 5, c, (16, 16))
    assert m.shape == (6, 5, 16, 16)
    assert bool((m[:, [0, -1]] == 1).all())
    assert bool((m[:, 1:-1].flatten(2).min(2).values == 0).all())
    assert cond.interpolation_masks(draws(6), 5, ConditioningSection(drop_cond_prob=0.0), (16, 16)).shape == (6, 5)


def test_augment_known_with_pixel_masks():
    latents = torch.randn(2, 4, 3, 4, 4)
    mask = torch.ones(2, 3, 4, 4)
    mask[0, :, :2] = 0.0
    mask[1] = 0.0
    c, sigma = cond.augment_known(latents, mask, draws(2), max_sigma=0.1)
    assert c[0, :, :, :2].abs().sum() == 0 and c[0, :, :, 2:].abs().sum() > 0
    assert sigma[1] == 0 and c[1].abs().sum() == 0


def test_region_training_runs_and_records_the_pattern(tmp_path):
    from test_training_stages import LatentClips, latent_cfg
    from vidiff.pipeline.trained import read_trained_on
    from vidiff.training.loop import train
    from vidiff.training.stages import LatentDiffusionStage

    for stage_name in ("keyframes", "interpolation"):
        conditioning = {"num_keyframes": 4, "keyframe_stride": 5, "min_gap": 2, "max_gap": 5, "pattern_region": 0.5}
        cfg = latent_cfg(tmp_path, stage_name, conditioning=conditioning)
        stage = LatentDiffusionStage(cfg, dataset=LatentClips())
        stage.null_text = torch.zeros(1, 7, 384), torch.zeros(1, 7, dtype=torch.bool)
        run = train(cfg, stage=stage)
        assert "region" in read_trained_on(run / "export").known_patterns
