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
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, 1e20])  # 1e20: finite, but decoded all black
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


# ---------------------------------------------------------------------------------------------------------
# Negative prompts, guidance rescale, guidance interval
# ---------------------------------------------------------------------------------------------------------


def with_text(cond, context, mask):
    return dataclasses.replace(cond, context=context, context_mask=mask)


def test_negative_prompt_replaces_the_unconditional_branch():
    x, sigma, cond, null = make_inputs(null_len=3)
    g = torch.Generator().manual_seed(5)
    neg = torch.randn(B, 7, D, generator=g)  # one negative prompt per row, longer than the prompt
    neg_mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    ref = LinearToy()
    no_image = {"known": torch.zeros_like(cond.known), "known_mask": torch.zeros_like(cond.known_mask)}
    u = ref(x, sigma, dataclasses.replace(with_text(cond, neg, neg_mask), **no_image))
    i = ref(x, sigma, with_text(cond, neg, neg_mask))
    c = ref(x, sigma, cond)
    toy = LinearToy()
    guided = GuidedDenoiser(toy, text_scale=5.0, image_scale=1.5, null_context=null,
                            negative_context=neg, negative_context_mask=neg_mask)
    torch.testing.assert_close(guided(x, sigma, cond), u + 1.5 * (i - u) + 5.0 * (c - i), rtol=1e-5, atol=1e-5)
    assert toy.batches == [3 * B]
    # it is not the null-context answer: the mechanism acts
    plain = GuidedDenoiser(LinearToy(), text_scale=5.0, image_scale=1.5, null_context=null)(x, sigma, cond)
    assert (plain - guided(x, sigma, cond)).abs().max() > 1e-2
    # text only, and without a null context at all
    text_only = Cond(context=cond.context, context_mask=cond.context_mask)
    u = ref(x, sigma, Cond(context=neg, context_mask=neg_mask))
    c = ref(x, sigma, text_only)
    out = GuidedDenoiser(LinearToy(), text_scale=3.0, negative_context=neg, negative_context_mask=neg_mask)(x, sigma, text_only)
    torch.testing.assert_close(out, u + 3.0 * (c - u), rtol=1e-5, atol=1e-5)


def test_negative_prompt_per_row_and_shared():
    """A row without a negative prompt passes the null encoding in its place; one (L, D) prompt serves all rows."""
    x, sigma, cond, null = make_inputs(null_len=3)
    text_only = Cond(context=cond.context, context_mask=cond.context_mask)
    neg0 = torch.randn(3, D, generator=torch.Generator().manual_seed(6))
    per_row = torch.stack([neg0, null])  # row 0: a negative prompt; row 1: none, so the null encoding
    out = GuidedDenoiser(LinearToy(), text_scale=4.0, null_context=null, negative_context=per_row)(x, sigma, text_only)
    with_neg = GuidedDenoiser(LinearToy(), text_scale=4.0, null_context=null, negative_context=neg0)(x, sigma, text_only)
    plain = GuidedDenoiser(LinearToy(), text_scale=4.0, null_context=null)(x, sigma, text_only)
    torch.testing.assert_close(out[0], with_neg[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[1], plain[1], rtol=1e-6, atol=1e-6)
    assert (with_neg[1] - plain[1]).abs().max() > 1e-2  # the shared prompt reaches row 1 as well
    with pytest.raises(InputError, match="negative_context"):
        GuidedDenoiser(LinearToy(), text_scale=4.0, negative_context=torch.zeros(3, 2, D))(x, sigma, text_only)
    with pytest.raises(InputError, match="negative_context_mask"):
        GuidedDenoiser(LinearToy(), text_scale=4.0, negative_context=per_row, negative_context_mask=torch.ones(2, 4))


@pytest.mark.parametrize("image", [False, True])
def test_guidance_rescale(image):
    """phi = 0 is plain guidance bit for bit; otherwise D~ * (phi * std(C) / std(D~) + 1 - phi), per sample."""
    x, sigma, cond, null = make_inputs()
    cond = cond if image else Cond(context=cond.context, context_mask=cond.context_mask)
    plain = GuidedDenoiser(LinearToy(), text_scale=7.5, image_scale=1.5, null_context=null)(x, sigma, cond)
    off = GuidedDenoiser(LinearToy(), text_scale=7.5, image_scale=1.5, null_context=null, rescale=0.0)(x, sigma, cond)
    assert torch.equal(plain, off)
    c = LinearToy()(x, sigma, cond)
    for phi in (0.7, 1.0):
        toy = LinearToy()
        out = GuidedDenoiser(toy, text_scale=7.5, image_scale=1.5, null_context=null, rescale=phi)(x, sigma, cond)
        assert len(toy.batches) == 1  # no extra pass: C is one of the guidance passes
        for row in range(B):
            factor = phi * c[row].std() / plain[row].std() + 1 - phi
            torch.testing.assert_close(out[row], plain[row] * factor, rtol=1e-5, atol=1e-6)
        if phi == 1.0:
            torch.testing.assert_close(out.flatten(1).std(1), c.flatten(1).std(1), rtol=1e-5, atol=1e-6)
    assert (plain.flatten(1).std(1) > 1.5 * c.flatten(1).std(1)).all()  # so the rescale did change something
    # text_scale 0: the conditional pass has weight 0 but is run as the rescale's reference
    toy = LinearToy()
    out = GuidedDenoiser(toy, text_scale=0.0, image_scale=1.0, null_context=null, rescale=1.0)(x, sigma, cond)
    torch.testing.assert_close(out.flatten(1).std(1), c.flatten(1).std(1), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="rescale"):
        GuidedDenoiser(LinearToy(), null_context=null, rescale=1.5)


def test_guidance_interval():
    """Guidance only for lo <= sigma <= hi; outside, one conditional pass; rows are decided one by one."""
    x, _, cond, null = make_inputs()
    neg = torch.randn(B, 4, D, generator=torch.Generator().manual_seed(8))
    kw = dict(text_scale=6.0, image_scale=2.0, null_context=null, negative_context=neg)
    everywhere = GuidedDenoiser(LinearToy(), **kw)
    for sigma in (torch.tensor([0.5, 3.0]), torch.tensor(1.0)):
        assert torch.equal(GuidedDenoiser(LinearToy(), **kw, interval=(0.0, float("inf")))(x, sigma, cond),
                           everywhere(x, sigma, cond))
    toy = LinearToy()
    outside = GuidedDenoiser(toy, **kw, interval=(1.0, 2.0))(x, torch.tensor([0.5, 3.0]), cond)
    assert toy.batches == [B]
    torch.testing.assert_close(outside, LinearToy()(x, torch.tensor([0.5, 3.0]), cond))
    sigma = torch.tensor([0.5, 1.5])  # row 0 outside, row 1 inside [1, 2]
    out = GuidedDenoiser(LinearToy(), **kw, interval=(1.0, 2.0))(x, sigma, cond)
    torch.testing.assert_close(out[0], LinearToy()(x, sigma, cond)[0])
    torch.testing.assert_close(out[1], everywhere(x, sigma, cond)[1], rtol=1e-5, atol=1e-5)  # its own negative row
    for bad in [(2.0, 1.0), (-1.0, 1.0), (float("nan"), 1.0), (1.0,)]:
        with pytest.raises(InputError, match="interval"):
            GuidedDenoiser(LinearToy(), null_context=null, interval=bad)


def test_guided_rows_do_not_depend_on_the_batch():
    """Rescale and per-row negative prompts are computed row by row: row 1 alone gives the same bits."""
    x, sigma, cond, null = make_inputs()
    neg = torch.randn(B, 4, D, generator=torch.Generator().manual_seed(9))
    kw = dict(text_scale=6.0, image_scale=2.0, null_context=null, rescale=0.7)
    full = GuidedDenoiser(LinearToy(), negative_context=neg, **kw)(x, sigma, cond)
    alone = GuidedDenoiser(LinearToy(), negative_context=neg[1:], **kw)(x[1:], sigma[1:], cond.rows(slice(1, 2)))
    assert torch.equal(full[1:], alone)


def test_text_masks_follow_their_context_to_its_device():
    """A context on a GPU with no mask (or a CPU mask) got a CPU mask, which met the context in the U-Net. The meta
    device stands in for a GPU here: the masks must land where the contexts are."""
    from vidiff.diffusion.guidance import _text_encoding

    for mask in (None, torch.ones(1, 5, dtype=torch.bool)):
        context, got = _text_encoding(torch.zeros(1, 5, 8, device="meta"), mask, "null_context", False)
        assert context.device.type == "meta" and got.device.type == "meta" and got.dtype == torch.bool
