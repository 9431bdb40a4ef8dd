"""The known-frame blend anchor (vidiff/diffusion/anchor.py) and a Denoiser that denoises around it."""
import pytest
import torch

from vidiff.diffusion import Denoiser
from vidiff.diffusion.anchor import known_blend
from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError


def test_the_frames_between_two_known_ends_are_their_linear_blend():
    g = torch.Generator().manual_seed(0)
    known = torch.zeros(2, 3, 5, 4, 4)
    left, right = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    known[:, :, 0], known[:, :, 4] = left, right
    known[:, :, 1:4] = 99.0  # unknown values are never read
    mask = torch.tensor([[1.0, 0, 0, 0, 1]] * 2)
    out = known_blend(known, mask)
    for t in range(5):
        torch.testing.assert_close(out[:, :, t], (1 - t / 4) * left + t / 4 * right)


def test_frames_outside_the_known_ones_hold_the_nearest_and_nothing_known_gives_zero():
    known = torch.arange(6, dtype=torch.float32).view(1, 1, 6, 1, 1).repeat(3, 2, 1, 2, 2)
    mask = torch.tensor([[0.0, 0, 1, 0, 1, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = known_blend(known, mask)[:, 0, :, 0, 0]
    assert out[0].tolist() == [2, 2, 2, 3, 4, 4]  # held before 2 and after 4, blended between
    assert out[1].tolist() == [3] * 6  # one known frame: held everywhere
    assert out[2].tolist() == [0] * 6


def test_a_per_pixel_mask_blends_each_pixel_between_its_own_known_frames():
    known = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1, 1).repeat(1, 1, 1, 1, 2) * 10
    mask = torch.zeros(1, 5, 1, 2)
    mask[0, [0, 4], 0, 0] = 1  # pixel 0: known at the ends only
    mask[0, [0, 2, 4], 0, 1] = 1  # pixel 1: also in the middle
    known[0, 0, 2, 0, 1] = 100.0  # ... with a value off the line
    out = known_blend(known, mask)[0, 0, :, 0]
    assert out[:, 0].tolist() == [0, 10, 20, 30, 40]
    assert out[:, 1].tolist() == [0, 50, 100, 70, 40]


def cond_with_ends(x0: torch.Tensor) -> Cond:
    b, _, f = x0.shape[:3]
    mask = torch.zeros(b, f)
    mask[:, 0] = mask[:, -1] = 1
    return Cond(known=x0 * mask[:, None, :, None, None], known_mask=mask)


def test_an_anchored_denoiser_is_the_blend_plus_the_plain_denoiser_of_the_residual():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 5, 4, 4, generator=g)
    x = x0 + 0.7 * torch.randn(2, 3, 5, 4, 4, generator=g)
    net = lambda x_in, c_noise, cond: torch.tanh(x_in) * 0.3 + c_noise.view(-1, 1, 1, 1, 1)  # noqa: E731
    cond = cond_with_ends(x0)
    blend = known_blend(cond.known, cond.known_mask)
    plain, anchored = Denoiser(net, "v"), Denoiser(net, "v", anchor="known_blend")
    torch.testing.assert_close(anchored(x, 0.7, cond), blend + plain(x - blend, 0.7, cond))
    noise = torch.randn(x0.shape, generator=g)
    torch.testing.assert_close(anchored.loss(x0, 0.7, cond, noise=noise),
                               plain.loss(x0 - blend, 0.7, cond, noise=noise))
    # a guidance pass without the known frames has no anchor: the plain denoiser
    torch.testing.assert_close(anchored(x, 0.7, cond.without_known()), plain(x, 0.7, cond.without_known()))


def test_a_residual_network_that_predicts_nothing_returns_the_blend():
    x0 = torch.randn(1, 2, 4, 3, 3, generator=torch.Generator().manual_seed(2))
    cond = cond_with_ends(x0)
    den = Denoiser(lambda x_in, c_noise, cond: torch.zeros_like(x_in), "x0", anchor="known_blend")
    out = den(torch.randn(x0.shape) * 80, 80.0, cond)
    torch.testing.assert_close(out, known_blend(cond.known, cond.known_mask))
    torch.testing.assert_close(out[:, :, [0, -1]], x0[:, :, [0, -1]])


def test_an_unknown_anchor_is_refused():
    with pytest.raises(InputError, match="anchor"):
        Denoiser(lambda x, c, cond: x, "v", anchor="blend")
