"""The training loop's AdamW: fused where safe, gradients in their parameters' layout, flags kept on resume."""
import torch

from vidiff.training.optimizer import adamw_implementation, align_gradients, keep_implementation


def _weights():
    torch.manual_seed(0)
    conv = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)  # as the U-Net's conv weights
    return [conv, torch.randn(16, 8), torch.randn(8)]


def _steps(flags, grads, align: bool):
    params = [w.clone().requires_grad_(True) for w in _weights()]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01, **flags)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()  # contiguous: not the conv weight's layout
        if align:
            align_gradients(params)
        opt.step()
    return params


def test_fused_with_aligned_gradients_matches_the_reference_loop():
    gen = torch.Generator().manual_seed(1)
    grads = [[torch.randn(w.shape, generator=gen) for w in _weights()] for _ in range(5)]
    ref = _steps({"foreach": False}, grads, align=False)
    fused = _steps({"fused": True}, grads, align=True)
    for a, b in zip(ref, fused):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # what the alignment guards against: the fused kernel pairs the elements by memory position
    unaligned = _steps({"fused": True}, grads, align=False)
    assert (unaligned[0] - ref[0]).abs().max() > 1e-3
    torch.testing.assert_close(unaligned[1], ref[1], atol=1e-6, rtol=0)  # same layouts: unaffected


def test_align_keeps_values_and_takes_the_parameter_layout():
    p = _weights()[0].requires_grad_(True)
    g = torch.randn(p.shape)
    p.grad = g.clone()
    align_gradients([p])
    assert p.grad.stride() == p.stride() and torch.equal(p.grad, g)
    same = p.grad
    align_gradients([p])  # already aligned: left as it is
    assert p.grad is same


def test_implementation_choice():
    plain = [torch.zeros(3)]
    assert adamw_implementation(plain, sharded=False, loss_scaling=False) == {"fused": True, "foreach": False}
    weights = list(torch.nn.Conv2d(2, 4, 3).parameters())  # what the loop passes: Parameters
    assert adamw_implementation(weights, sharded=False, loss_scaling=False)["fused"]
    for kwargs in ({"sharded": True, "loss_scaling": False}, {"sharded": False, "loss_scaling": True}):
        assert adamw_implementation(plain, **kwargs) == {"fused": False, "foreach": True}
    assert adamw_implementation([torch.zeros(3, dtype=torch.float64)], sharded=False, loss_scaling=False)["foreach"]


def test_a_resumed_optimizer_keeps_its_implementation():
    old = torch.optim.AdamW([torch.zeros(3, requires_grad=True)])  # a checkpoint from the single-tensor loop
    old.param_groups[0]["params"][0].grad = torch.ones(3)
    old.step()
    params = [torch.zeros(3, requires_grad=True)]
    flags = adamw_implementation(params, sharded=False, loss_scaling=False)
    new = torch.optim.AdamW(params, **flags)
    new.load_state_dict(old.state_dict())
    assert not new.param_groups[0]["fused"]  # what torch does: the saved group's flags win
    keep_implementation(new, flags)
    assert new.param_groups[0]["fused"] and not new.param_groups[0]["foreach"]
    params[0].grad = torch.ones(3)
    new.step()  # the fused kernel takes the loaded state
    assert new.state[params[0]]["step"].item() == 2


def test_restored_moments_take_their_parameters_layout_so_a_resumed_step_is_exact():
    """A checkpoint stores AdamW's moments contiguous; a channels-last conv weight is not. Restored as stored, the
    fused kernel paired elements by memory position and the resumed run's second step differed (1.7e-3 on the
    keyframe U-Net, its losses 0.1-2% off the uninterrupted run's)."""
    from vidiff.training import checkpoint as ckpt
    from vidiff.training.sharding import shard_optimizer_state

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 4, 1)).to(memory_format=torch.channels_last)
    params = list(net.parameters())
    assert params[0].stride() != params[0].contiguous().stride()
    flags = adamw_implementation(params, sharded=False, loss_scaling=False)
    optimizer = torch.optim.AdamW(params, lr=1e-2, **flags)
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer.step()
    tensors, meta = ckpt.flatten_optimizer_state(optimizer.state_dict())
    tensors = {k: v.clone() for k, v in tensors.items()}  # as written to the checkpoint (flatten may alias)
    saved = [p.detach().clone() for p in params]
    grads = [torch.randn_like(p) for p in params]

    def next_step(opt):
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        return [p.detach().clone() for p in params]

    uninterrupted = next_step(optimizer)
    resumed = torch.optim.AdamW(params, lr=1e-2, **flags)
    state = ckpt.unflatten_optimizer_state({k: v.clone() for k, v in tensors.items()}, meta)
    resumed.load_state_dict(shard_optimizer_state(state, resumed))
    assert all(resumed.state[p]["exp_avg"].stride() == p.stride() for p in params)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted, next_step(resumed)))
