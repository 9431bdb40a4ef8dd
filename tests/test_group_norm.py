"""GroupNorm's contiguous path for small half-precision channels-last planes on the CPU (vidiff/models/group_norm.py)
gives nn.GroupNorm's values, forward and backward, and leaves everything else to nn.GroupNorm."""
import torch
from torch import nn

from vidiff.models.group_norm import SMALL_PLANE, GroupNorm


def _pair(channels=32, groups=8, dtype=torch.bfloat16):
    torch.manual_seed(0)
    ours = GroupNorm(groups, channels).to(dtype)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    stock = nn.GroupNorm(groups, channels).to(dtype)
    stock.load_state_dict(ours.state_dict())
    return ours, stock


def test_small_half_channels_last_planes_match_nn_groupnorm_forward_and_backward():
    ours, stock = _pair()
    x = torch.randn(6, 32, 8, 8).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), stock(xb)
    assert ya.is_contiguous(memory_format=torch.channels_last)  # the next convolution's layout is kept
    assert ya.dtype == torch.bfloat16
    torch.testing.assert_close(ya.float(), yb.float(), atol=2e-2, rtol=2e-2)  # bf16 rounding, summed in another order
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad.float(), xb.grad.float(), atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(ours.weight.grad.float(), stock.weight.grad.float(), atol=0.2, rtol=5e-2)
    # and against fp32, the bf16 rounding of the input alone
    ref = nn.functional.group_norm(x.float(), 8, ours.weight.float(), ours.bias.float())
    assert (ya.float() - ref).abs().max() < 0.05


def test_the_path_is_taken_only_where_it_pays(monkeypatch):
    calls = []
    real = torch.Tensor.contiguous

    def spy(self, *a, **k):
        calls.append(k.get("memory_format", a[0] if a else torch.contiguous_format))
        return real(self, *a, **k)

    ours, _ = _pair()
    cases = {
        "small bf16 channels-last": (torch.randn(2, 32, 8, 8).bfloat16().contiguous(memory_format=torch.channels_last), True),
        "fp32": (torch.randn(2, 32, 8, 8).contiguous(memory_format=torch.channels_last), False),
        "large plane": (torch.randn(1, 32, 32, 32).bfloat16().contiguous(memory_format=torch.channels_last), False),
        "contiguous already": (torch.randn(2, 32, 8, 8).bfloat16(), False),
    }
    assert 8 * 8 <= SMALL_PLANE < 32 * 32
    for name, (x, taken) in cases.items():
        calls.clear()
        monkeypatch.setattr(torch.Tensor, "contiguous", spy)
        out = ours.to(x.dtype)(x)
        monkeypatch.undo()
        assert (torch.contiguous_format in calls) == taken, name
        ref = nn.functional.group_norm(x.float(), 8, ours.weight.float(), ours.bias.float())
        assert (out.float() - ref).abs().max() < 0.05, name
