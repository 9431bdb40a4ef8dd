import pytest
import torch

from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError

B, C, F, H, W, D = 3, 2, 4, 2, 2, 5


def full_cond(seed=0, length=4, batch=B):
    g = torch.Generator().manual_seed(seed)
    return Cond(
        context=torch.randn(batch, length, D, generator=g),
        context_mask=torch.rand(batch, length, generator=g) > 0.3,
        known=torch.randn(batch, C, F, H, W, generator=g),
        known_mask=(torch.rand(batch, F, generator=g) > 0.5).float(),
        frame_stride=torch.arange(1.0, batch + 1),
        cond_sigma=torch.full((batch,), 0.05),
    )


def test_cat_pads_contexts_of_different_lengths_with_masked_zeros():
    a, b = full_cond(0, length=3, batch=2), full_cond(1, length=6, batch=3)
    out = Cond.cat([a, b])
    assert out.batch_size == 5 and out.context.shape == (5, 6, D) and out.context_mask.dtype == torch.bool
    assert torch.equal(out.context[:2, :3], a.context) and torch.equal(out.context[2:], b.context)
    assert torch.equal(out.context[:2, 3:], torch.zeros(2, 3, D))  # padding is zeros ...
    assert not out.context_mask[:2, 3:].any()  # ... and masked out
    assert torch.equal(out.context_mask[:2, :3], a.context_mask) and torch.equal(out.context_mask[2:], b.context_mask)
    for name in ("known", "known_mask", "frame_stride", "cond_sigma"):
        assert torch.equal(getattr(out, name), torch.cat([getattr(a, name), getattr(b, name)])), name


def test_cat_without_masks_adds_one_when_it_pads():
    """Contexts without masks: equal lengths stay unmasked; different lengths get a mask (True on real tokens)."""
    a, b = Cond(context=torch.ones(1, 2, D)), Cond(context=torch.ones(2, 5, D))
    same = Cond.cat([a, a])
    assert same.context_mask is None and torch.equal(same.context, torch.ones(2, 2, D))
    out = Cond.cat([a, b])
    assert out.context.shape == (3, 5, D)
    assert torch.equal(out.context_mask, torch.tensor([[True, True, False, False, False]] + [[True] * 5] * 2))


def test_cat_refuses_conds_with_different_fields():
    with pytest.raises(InputError, match="different fields"):
        Cond.cat([Cond(context=torch.ones(1, 2, D)), Cond(context=torch.ones(1, 2, D), frame_stride=torch.ones(1))])


def test_rows_without_known_and_without_text():
    cond = full_cond()
    row = cond.rows([2])
    for name, value in cond.items().items():
        assert torch.equal(getattr(row, name), value[[2]]), name
    assert cond.rows(slice(0, 2)).batch_size == 2
    assert torch.equal(cond.rows(torch.tensor([2, 0])).frame_stride, torch.tensor([3.0, 1.0]))

    blind = cond.without_known()
    assert cond.has_known and not blind.has_known
    for name in ("known", "known_mask", "cond_sigma"):
        assert getattr(blind, name).shape == getattr(cond, name).shape and not getattr(blind, name).any(), name
    for name in ("context", "context_mask", "frame_stride"):
        assert getattr(blind, name) is getattr(cond, name), name  # untouched

    null, null_mask = torch.randn(1, 7, D), torch.tensor([[True] * 5 + [False] * 2])
    mute = cond.without_text(null, null_mask)
    assert mute.context.shape == (B, 7, D) and all(torch.equal(mute.context[i], null[0]) for i in range(B))
    assert torch.equal(mute.context_mask, null_mask.expand(B, -1))
    for name in ("known", "known_mask", "frame_stride", "cond_sigma"):
        assert getattr(mute, name) is getattr(cond, name), name
    with pytest.raises(InputError, match="width"):
        cond.without_text(torch.zeros(1, 2, D + 1), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(InputError, match="text context"):
        Cond(frame_stride=torch.ones(2)).without_text(null, null_mask)


def test_batch_size_to_and_disagreeing_fields():
    assert Cond().batch_size is None and not Cond().has_known
    cond = full_cond().to(dtype=torch.float64)
    assert cond.context.dtype == torch.float64 and cond.known.dtype == torch.float64
    assert cond.context_mask.dtype == torch.bool and cond.frame_stride.dtype == torch.float32
    with pytest.raises(InputError, match="batch size"):
        Cond(context=torch.ones(2, 3, D), frame_stride=torch.ones(3)).batch_size
