import dataclasses

import pytest
import torch

from vidiff.config import ConfigError, from_dict, to_dict
from vidiff.diffusion.cond import Cond
from vidiff.models import UNet3D, UNet3DConfig

TINY = dict(in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
            attention_levels=(True, True), num_head_channels=4, context_dim=12, norm_groups=4,
            temporal_max_distance=4)


def tiny(**changes) -> UNet3DConfig:
    return UNet3DConfig(**{**TINY, **changes})


def randomize(model: UNet3D, only_non_temporal: bool = False) -> UNet3D:
    """Gives every all-zero parameter (zero-initialised projections, norm biases) random values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if only_non_temporal and (".tconv." in name or ".tattn." in name):
                continue
            if not p.any():
                p.normal_(0.0, 0.3)
    return model


def inputs(b=2, f=4, h=8, w=8, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, f, h, w, generator=g)
    c_noise = torch.randn(b, generator=g)
    context = torch.randn(b, 5, 12, generator=g)
    return x, c_noise, context


@pytest.mark.parametrize("f", [1, 4, 9])
def test_output_shape(f):
    model = randomize(UNet3D(tiny())).eval()
    x, c_noise, context = inputs(f=f)
    with torch.no_grad():
        out = model(x, c_noise, Cond(context=context))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_frames_interact_only_through_temporal_layers():
    x, c_noise, context = inputs(f=4)
    x2 = x.clone()
    x2[:, :, 0] += torch.randn_like(x2[:, :, 0])
    for temporal in (False, True):
        model = randomize(UNet3D(tiny(temporal=temporal))).eval()
        with torch.no_grad():
            a, b = model(x, c_noise, Cond(context=context)), model(x2, c_noise, Cond(context=context))
        assert (a[:, :, 0] - b[:, :, 0]).abs().max() > 1e-3  # frame 0 itself always changes
        other = (a[:, :, 1:] - b[:, :, 1:]).abs().max()
        if temporal:
            assert other > 1e-3
        else:
            assert other <= 1e-6


def test_temporal_layers_start_as_identity():
    full = randomize(UNet3D(tiny(temporal=True)), only_non_temporal=True).eval()
    spatial = UNet3D(tiny(temporal=False)).eval()
    result = spatial.load_state_dict(full.state_dict(), strict=False)
    assert not result.missing_keys
    assert result.unexpected_keys and all(".tconv." in k or ".tattn." in k for k in result.unexpected_keys)
    x, c_noise, context = inputs(f=4)
    with torch.no_grad():
        a, b = full(x, c_noise, Cond(context=context)), spatial(x, c_noise, Cond(context=context))
    assert a.abs().max() > 1e-2
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_same_gradients():
    plain = randomize(UNet3D(tiny(use_frame_stride=True))).train()
    ckpt = UNet3D(tiny(use_frame_stride=True, gradient_checkpointing=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    x, c_noise, context = inputs(f=3)
    for model in (plain, ckpt):
        model(x, c_noise, Cond(context=context, frame_stride=torch.tensor([1.0, 4.0]))).square().mean().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("which", ["attention_backend", "temporal_attention_backend"])
def test_model_backends_agree(which):
    a = randomize(UNet3D(tiny(**{which: "sdpa"}))).eval()
    b = UNet3D(tiny(**{which: "math"})).eval()
    b.load_state_dict(a.state_dict())
    x, c_noise, context = inputs(f=5)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    with torch.no_grad():
        for m in (None, mask):
            cond = Cond(context=context, context_mask=m)
            torch.testing.assert_close(a(x, c_noise, cond), b(x, c_noise, cond), atol=1e-5, rtol=1e-5)


def test_context_mask_ignores_masked_tokens():
    model = randomize(UNet3D(tiny())).eval()
    x, c_noise, context = inputs(f=2)
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    garbage = context.clone()
    garbage[~mask] = 50.0
    with torch.no_grad():
        a = model(x, c_noise, Cond(context=context, context_mask=mask))
        b = model(x, c_noise, Cond(context=garbage, context_mask=mask))
        c = model(x[:1], c_noise[:1], Cond(context=context[:1, :3]))  # sample 0 with only its 3 real tokens
        d = model(x, c_noise, Cond(context=context))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[:1], c, atol=1e-5, rtol=1e-5)
    assert (a - d).abs().max() > 1e-3


def test_conditioning_changes_output_only_when_known_frames_given():
    model = randomize(UNet3D(tiny(conditioning=True))).eval()
    x, c_noise, context = inputs(f=4)
    cond = torch.randn_like(x)
    with torch.no_grad():
        base = model(x, c_noise, Cond(context=context))
        zero_mask = model(x, c_noise, Cond(context=context, known=cond, known_mask=torch.zeros(2, 4)))
        known = model(x, c_noise, Cond(context=context, known=cond, known_mask=torch.tensor([[1.0, 0, 0, 0]] * 2)))
    torch.testing.assert_close(base, zero_mask, atol=0, rtol=0)
    assert (known - base).abs().max() > 1e-3


def test_single_frame_with_all_conditioning_inputs():
    model = randomize(UNet3D(tiny(conditioning=True, use_frame_stride=True, use_cond_sigma=True))).eval()
    x, c_noise, context = inputs(f=1)
    with torch.no_grad():
        out = model(x, c_noise, Cond(context=context, known=x, known_mask=torch.ones(2, 1),
                                     frame_stride=torch.tensor([2.0, 8.0]), cond_sigma=torch.tensor([0.0, 0.1])))
        default = model(x, c_noise, Cond(context=context, known=x, known_mask=torch.ones(2, 1)))
        explicit = model(x, c_noise, Cond(context=context, known=x, known_mask=torch.ones(2, 1),
                                          frame_stride=torch.ones(2), cond_sigma=torch.zeros(2)))
    assert out.shape == x.shape
    torch.testing.assert_close(default, explicit)  # documented defaults: stride 1, cond_sigma 0
    assert (out - default).abs().max() > 1e-4


def test_bad_inputs_raise_clear_errors():
    model = UNet3D(tiny())
    x, c_noise, context = inputs(h=5, w=8)
    with pytest.raises(ValueError, match="divisible by 2"):
        model(x, c_noise, Cond(context=context))
    x, c_noise, context = inputs()
    with pytest.raises(ValueError, match="context"):
        model(x, c_noise, Cond(context=context[..., :5]))
    with pytest.raises(ValueError, match="conditioning=False"):
        model(x, c_noise, Cond(context=context, known_mask=torch.ones(2, 4)))
    with pytest.raises(ValueError, match=r"x must be"):
        model(x[:, :2], c_noise, Cond(context=context))
    with pytest.raises(ValueError, match="context_mask"):
        model(x, c_noise, Cond(context=context, context_mask=torch.ones(2, 4, dtype=torch.bool)))
    with pytest.raises(ValueError, match="frame_stride"):
        model(x, c_noise, Cond(context=context, frame_stride=torch.ones(3)))
    cmodel = UNet3D(tiny(conditioning=True))
    with pytest.raises(ValueError, match="known"):
        cmodel(x, c_noise, Cond(context=context, known=x[:, :, :2], known_mask=torch.ones(2, 4)))
    with pytest.raises(ValueError, match="known_mask"):
        cmodel(x, c_noise, Cond(context=context, known=x, known_mask=torch.ones(2, 3)))


def test_config_round_trip_and_validation():
    cfg = tiny(conditioning=True)
    assert from_dict(UNet3DConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="block_width"):
        from_dict(UNet3DConfig, {**to_dict(cfg), "block_width": 3})
    with pytest.raises(ConfigError, match="attention_levels"):
        tiny(attention_levels=(True,))
    with pytest.raises(ConfigError, match="attention_backend"):
        from_dict(UNet3DConfig, {**to_dict(cfg), "attention_backend": "flash9"})
    with pytest.raises(ConfigError, match="norm_groups"):
        tiny(norm_groups=3)
    # heads split only attended widths: 12 at a level without attention is fine, at an attention level it is not
    x, c_noise, context = inputs(c=3)
    model = UNet3D(tiny(block_out_channels=(12, 16), attention_levels=(False, True), num_head_channels=8))
    assert model(x, c_noise, Cond(context=context)).shape == x.shape
    with pytest.raises(ConfigError, match="does not divide width 12"):
        tiny(block_out_channels=(12, 16), num_head_channels=8)
    with pytest.raises(ConfigError, match="does not divide width 12"):
        tiny(block_out_channels=(16, 12), attention_levels=(True, False), num_head_channels=8, mid_attention=True)
    assert dataclasses.is_dataclass(cfg)
    assert UNet3D(cfg).num_parameters() == sum(p.numel() for p in UNet3D(cfg).parameters())


def test_fused_geglu_matches_plain_autograd():
    from vidiff.models.transformer import GEGLU, _GatedProjection

    ff = GEGLU(6, mult=2).double()
    h = torch.randn(2, 3, 24, dtype=torch.float64, requires_grad=True)
    w = ff.proj_out.weight.detach().clone().requires_grad_()
    b = ff.proj_out.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(_GatedProjection.apply, (h, w, b))
    x = torch.randn(4, 6, dtype=torch.float64)
    value, gate = ff.proj_in(x).chunk(2, dim=-1)
    torch.testing.assert_close(ff(x), ff.proj_out(value * torch.nn.functional.gelu(gate)))


def test_bf16_autocast_training_step():
    model = randomize(UNet3D(tiny())).train()
    x, c_noise, context = inputs(f=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, c_noise, Cond(context=context))
    out.float().square().mean().backward()
    assert out.shape == x.shape
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        full = model(x, c_noise, Cond(context=context))
    assert (out.float() - full).abs().max() < 0.1 * full.abs().max()  # bf16 is close to fp32


def test_pooled_text_is_the_masked_mean_and_starts_as_a_no_op():
    from vidiff.models.embeddings import PooledTextEmbedding

    x, c_noise, context = inputs(f=3)
    mask = torch.tensor([[True, True, True, False, False], [True, False, True, True, True]])
    base = randomize(UNet3D(tiny())).eval()
    pooled = UNet3D(tiny(pooled_text=True)).eval()
    missing, unexpected = pooled.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("text_embed.") for k in missing)
    with torch.no_grad():  # zero-initialised last layer: identical outputs to the model without the term
        assert torch.equal(pooled(x, c_noise, Cond(context=context, context_mask=mask)),
                           base(x, c_noise, Cond(context=context, context_mask=mask)))

    emb = PooledTextEmbedding(12, 32)
    randomize(emb)
    by_hand = torch.stack([context[0, :3].mean(0), context[1, [0, 2, 3, 4]].mean(0)])  # masked mean
    with torch.no_grad():
        assert torch.allclose(emb(context, mask), emb.mlp(emb.norm(by_hand)), atol=1e-6)
        changed = context.clone()
        changed[0, 3:] += 5.0  # padding tokens of row 0 do not count
        changed[1, 1] -= 5.0
        assert torch.equal(emb(changed, mask), emb(context, mask))

    randomize(pooled)
    changed = context.clone()
    changed[1, 2] += 1.0  # a real token moves the whole clip, through every residual block
    with torch.no_grad():
        a = pooled(x, c_noise, Cond(context=context, context_mask=mask))
        b = pooled(x, c_noise, Cond(context=changed, context_mask=mask))
    assert (a[0] - b[0]).abs().max() == 0 and (a[1] - b[1]).abs().max() > 1e-3


def _saved_bytes_and_grads(model, x, c_noise, context):
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, c_noise, Cond(context=context))
    out.square().mean().backward()
    return out.detach(), sum(saved), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_activation_recompute_trades_memory_not_values():
    from vidiff.models.recompute import set_activation_recompute
    from vidiff.models.resnet import ResBlock
    from vidiff.models.temporal_conv import TemporalConv
    from vidiff.models.transformer import GEGLU

    model = randomize(UNet3D(tiny())).train()
    x, c_noise, context = inputs(f=4)
    blocks = sum(isinstance(m, (ResBlock, TemporalConv, GEGLU)) for m in model.modules())
    assert set_activation_recompute(model, True) == blocks > 0
    out_on, bytes_on, grads_on = _saved_bytes_and_grads(model, x, c_noise, context)
    assert set_activation_recompute(model, False) == blocks
    assert not any(m.recompute_activations for m in model.modules() if isinstance(m, (ResBlock, GEGLU)))
    out_off, bytes_off, grads_off = _saved_bytes_and_grads(model, x, c_noise, context)
    torch.testing.assert_close(out_on, out_off, atol=0, rtol=0)  # the forward is the same computation
    assert grads_on.keys() == grads_off.keys()
    for name in grads_on:  # the fused GEGLU backward sums in another order than autograd's
        torch.testing.assert_close(grads_on[name], grads_off[name], atol=1e-6, rtol=1e-5, msg=name)
    assert bytes_off > 1.2 * bytes_on  # what the recompute saves: the normalised tensors and the GEGLU gates


@pytest.mark.slow
def test_the_conditioned_forward_compiles_without_graph_breaks():
    """`--compile`: the frame-stride check, a data-dependent branch, is skipped under torch.compile, where it was a
    graph break (and a page of dynamo warnings on every `generate --compile`)."""
    model = randomize(UNet3D(tiny(conditioning=True, use_frame_stride=True, use_cond_sigma=True))).eval()
    x, c_noise, context = inputs()
    cond = Cond(context=context, known=x, known_mask=torch.ones(2, 4), frame_stride=torch.tensor([2.0, 5.0]),
                cond_sigma=torch.tensor([0.0, 0.1]))
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(model.forward)(x, c_noise, cond)
    assert explained.graph_break_count == 0, explained.break_reasons
