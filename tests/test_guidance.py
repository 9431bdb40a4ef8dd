import pytest
import torch

import dataclasses

from vidiff.diffusion import GuidedDenoiser, sample, sampling_sigmas
from vidiff.diffusion.cond import Cond
from vidiff.errors import InputError

B, C, F, H, W, L, D = 2, 3, 4, 5, 5, 6, 8


class LinearToy:
    """A denoiser linear in its inputs, that records every call's batch size.

    D = a x + <text> + <image>, with <text> = masked mean of the context (through a fixed projection) and
    <image> = weighted known * mask; every pass gives a different, known answer."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(D, C, generator=g)
        self.batches = []

    def text_term(self, context, context_mask):
        m = context_mask.float().unsqueeze(-1) if context_mask is not None else torch.ones_like(context[..., :1])
        pooled = (context * m).sum(1) / m.sum(1).clamp(min=1)  # (B, D)
        return (pooled @ self.proj).reshape(-1, C, 1, 1, 1)  # (B, C, 1, 1, 1)

    def __call__(self, x, sigma, cond=None):
        cond = Cond() if cond is None else cond
        self.batches.append(x.shape[0])
        out = 0.3 * x / (1 + sigma.reshape(-1, 1, 1, 1, 1))
        out = out + self.text_term(cond.context, cond.context_mask)
        if cond.known is not None:
            out = out + 2.0 * cond.known * cond.known_mask.reshape(-1, 1, F, 1, 1)
            out = out + 0.7 * cond.known_mask.reshape(-1, 1, F, 1, 1)
        if cond.frame_stride is not None:
            out = out + cond.frame_stride.reshape(-1, 1, 1, 1, 1)
        return out


def make_inputs(seed=0, null_len=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, F, H, W, generator=g)
    cond = Cond(
        context=torch.randn(B, L, D, generator=g),
        context_mask=torch.tensor([[True] * L, [True] * 4 + [False] * 2]),
        known=torch.randn(B, C, F, H, W, generator=g),
        known_mask=torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]]),
        frame_stride=torch.tensor([4.0, 2.0]),
    )
    null = torch.randn(null_len, D, generator=g)
    return x, torch.tensor([0.5, 3.0]), cond, null


def test_scales_one_one_is_a_single_conditional_call():
    x, sigma, cond, null = make_inputs()
    toy = LinearToy()
    guided = GuidedDenoiser(toy, text_scale=1.0, image_scale=1.0, null_context=null)
    out = guided(x, sigma, cond)
    assert toy.batches == [B]
    torch.testing.assert_close(out, LinearToy()(x, sigma, cond))


@pytest.mark.parametrize("s_t,s_i", [(7.5, 1.5), (3.0, 0.0), (0.0, 2.0), (1.0, 2.5), (4.0, 1.0)])
def test_combination_equals_instructpix2pix_formula(s_t, s_i):
    x, sigma, cond, null = make_inputs(null_len=3)
    ref = LinearToy()
    null_cond = {"context": null.expand(B, -1, -1), "context_mask": torch.ones(B, 3, dtype=torch.bool)}
    no_image = {"known": torch.zeros_like(cond.known), "known_mask": torch.zeros_like(cond.known_mask)}
    u = ref(x, sigma, dataclasses.replace(cond, **null_cond, **no_image))
    i = ref(x, sigma, dataclasses.replace(cond, **null_cond))
    c = ref(x, sigma, cond)
    expected = u + s_i * (i - u) + s_t * (c - i)
    toy = LinearToy()
    out = GuidedDenoiser(toy, text_scale=s_t, image_scale=s_i, null_context=null)(x, sigma, cond)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert len(toy.batches) == 1  # all passes in one batched call
    n_passes = sum(w != 0 for w in (1 - s_i, s_i - s_t, s_t))
    assert toy.batches[0] == n_passes * B


def test_without_image_only_text_scale_applies_in_two_passes():
    x, sigma, cond, null = make_inputs()
    text_only = Cond(context=cond.context, context_mask=cond.context_mask, frame_stride=cond.frame_stride)
    ref = LinearToy()
    u = ref(x, sigma, dataclasses.replace(text_only, context=null.expand(B, -1, -1),
                                          context_mask=torch.ones(B, 3, dtype=torch.bool)))
    c = ref(x, sigma, text_only)
    for s_i in (0.0, 1.0, 3.0):
        toy = LinearToy()
        out = GuidedDenoiser(toy, text_scale=6.0, image_scale=s_i, null_context=null)(x, sigma, text_only)
        torch.testing.assert_close(out, u + 6.0 * (c - u), rtol=1e-5, atol=1e-5)
        assert toy.batches == [2 * B]
    # an all-zero known_mask is "no image" too
    toy = LinearToy()
    zero_img = dataclasses.replace(cond, known_mask=torch.zeros(B, F))
    GuidedDenoiser(toy, text_scale=6.0, image_scale=2.0, null_context=null)(x, sigma, zero_img)
    assert toy.batches == [2 * B]


def test_null_context_padding_when_lengths_differ():
    """A null context longer than the prompt's is handled by padding the prompt with masked tokens."""
    x, sigma, cond, null = make_inputs(null_len=9)
    text_only = Cond(context=cond.context, context_mask=cond.context_mask)
    ref = LinearToy()
    u = ref(x, sigma, Cond(context=null.expand(B, -1, -1), context_mask=torch.ones(B, 9, dtype=torch.bool)))
    c = ref(x, sigma, text_only)
    out = GuidedDenoiser(LinearToy(), text_scale=2.0, null_context=null)(x, sigma, text_only)
    torch.testing.assert_close(out, u + 2.0 * (c - u), rtol=1e-5, atol=1e-5)


def test_guided_denoiser_runs_inside_a_sampler():
    x, _, cond, null = make_inputs()
    guided = GuidedDenoiser(LinearToy(), text_scale=3.0, image_scale=1.5, null_context=null)
    sigmas = sampling_sigmas(4)
    out = sample(guided, x * sigmas[0], sigmas, method="dpmpp_2m", cond=cond)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", ["text_scale", "image_scale"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5])
def test_bad_scales_raise(name, bad):
    _, _, _, null = make_inputs()
    with pytest.raises(InputError, match=name):
        GuidedDenoiser(LinearToy(), null_context=null, **{name: bad})


def test_missing_null_context_or_context():
    with pytest.raises(InputError, match="null_context"):
        GuidedDenoiser(LinearToy(), text_scale=5.0)
    x, sigma, cond, null = make_inputs()
    guided = GuidedDenoiser(LinearToy(), text_scale=5.0, null_context=null)
    with pytest.raises(InputError, match="context"):
        guided(x, sigma, Cond(known=cond.known, known_mask=cond.known_mask))
    with pytest.raises(InputError, match="null_context"):
        GuidedDenoiser(LinearToy(), text_scale=5.0, null_context=torch.zeros(2, 3, 4, 5))


def test_unconditional_pass_sees_no_known_frames_and_zero_cond_sigma():
    """Dropping the image zeroes known, known_mask and cond_sigma, as training does when nothing is known."""
    x, sigma, cond, null = make_inputs()
    seen = []

    def record(x, sigma, c):
        seen.append((c.known_mask.clone(), c.cond_sigma.clone()))
        return x

    guided = GuidedDenoiser(record, text_scale=3.0, image_scale=2.0, null_context=null)
    guided(x, sigma, dataclasses.replace(cond, cond_sigma=torch.tensor([0.05, 0.1])))
    masks, sigmas = seen[0]
    passes = masks.shape[0] // B
    assert passes == 3
    known = masks.reshape(passes, B, F).sum(dim=(1, 2))
    uncond = int((known == 0).nonzero()[0])  # the one pass without known frames
    assert torch.all(sigmas.reshape(passes, B)[uncond] == 0)
    assert torch.all(sigmas.reshape(passes, B)[known > 0] > 0)
