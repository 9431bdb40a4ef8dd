import math

import pytest
import torch

from vidiff.models import attention
from vidiff.models.attention import AttentionBackendError


def _naive(q, k, v, mask=None, bias=None):
    """Loop-free but independent reference: softmax computed with exp / sum in float64."""
    s = torch.einsum("bhnd,bhmd->bhnm", q.double(), k.double()) / math.sqrt(q.shape[-1])
    if bias is not None:
        s = s + bias.double()
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.exp(s - s.amax(-1, keepdim=True))
    p = p / p.sum(-1, keepdim=True)
    return torch.einsum("bhnm,bhmd->bhnd", p, v.double()).float()


# (B, heads, N, M, d): spatial self-attention, cross-attention to a short context, temporal over frames
SHAPES = [(2, 2, 256, 256, 16), (2, 3, 96, 7, 8), (64, 2, 9, 9, 8), (16, 1, 1, 1, 32)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_sdpa_and_math_agree(shape, use_mask, use_bias):
    b, h, n, m, d = shape
    q, k, v = torch.randn(b, h, n, d), torch.randn(b, h, m, d), torch.randn(b, h, m, d)
    mask = bias = None
    if use_mask:
        mask = torch.rand(b, 1, 1, m) > 0.4
        mask[..., 0] = True  # every row keeps at least one key
    if use_bias:
        bias = torch.randn(h, n, m)
    ref = _naive(q, k, v, mask, bias)
    for backend in ("sdpa", "math"):
        out = attention(q, k, v, backend=backend, mask=mask, bias=bias)
        assert out.shape == (b, h, n, d)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=f"backend {backend}")


def test_masked_keys_are_ignored():
    q, k, v = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    mask = torch.tensor([True, True, False, True, False, False])[None, None, None, :]
    k2, v2 = k.clone(), v.clone()
    k2[..., ~mask[0, 0, 0], :] = 100.0  # garbage in masked keys must not matter
    v2[..., ~mask[0, 0, 0], :] = -100.0
    keep = mask[0, 0, 0]
    ref = attention(q, k[:, :, keep], v[:, :, keep], backend="math")
    for backend in ("sdpa", "math"):
        torch.testing.assert_close(attention(q, k2, v2, backend=backend, mask=mask), ref, atol=1e-5, rtol=1e-5)


def test_gradients_agree():
    q, k, v = (torch.randn(3, 2, 16, 8, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 16, 16)
    grads = []
    for backend in ("sdpa", "math"):
        attention(q, k, v, backend=backend, bias=bias).square().sum().backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
        for t in (q, k, v):
            t.grad = None
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_xformers_not_usable_here_raises():
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(AttentionBackendError, match="xformers"):
        attention(q, q, q, backend="xformers")


def test_unknown_backend_and_bad_mask_raise():
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(AttentionBackendError, match="flash9"):
        attention(q, q, q, backend="flash9")
    with pytest.raises(ValueError, match="mask"):
        attention(q, q, q, mask=torch.ones(1, 1, 1, 4))
    with pytest.raises(ValueError, match="heads"):
        attention(q[0], q[0], q[0])


def test_cpu_training_in_half_computes_sdpa_in_fp32():
    """The CPU flash kernel's bf16 backward ran 5-14x slower than fp32 (docs/benchmarks.md): in training on the CPU a
    half-precision SDPA is computed in fp32 from the half inputs, and returned in their dtype; sampling keeps it."""
    import sys

    from vidiff.models.attention import attention

    module = sys.modules["vidiff.models.attention"]  # vidiff.models' `attention` is the function
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 16, 8).bfloat16().requires_grad_() for _ in range(3))
    bias = torch.randn(16, 16)
    ref = torch.softmax((q.float() @ k.float().transpose(-1, -2)) / 8 ** 0.5 + bias, -1) @ v.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v, bias=bias)
    assert out.dtype == torch.bfloat16
    # fp32 arithmetic on the bf16 inputs: off only by the output's own rounding to bf16
    assert (out.float() - ref).abs().max() <= ref.abs().max() * 2 ** -8
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in (q, k, v))
    calls = []
    real = module.F.scaled_dot_product_attention
    try:
        module.F.scaled_dot_product_attention = lambda *a, **kw: calls.append(a[0].dtype) or real(*a, **kw)
        with torch.no_grad():
            attention(q, k, v)
        attention(q, k, v)
    finally:
        module.F.scaled_dot_product_attention = real
    assert calls == [torch.bfloat16, torch.float32]
