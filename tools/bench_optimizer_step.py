"""What the optimizer and EMA update cost per training step, per implementation, on one model's parameters.

torch's AdamW runs a Python loop over the parameters on CPU unless asked for `foreach` or `fused` (its default
picks foreach on CUDA only), and the EMA lerps each tensor on its own. This times one AdamW step and one EMA
update for each implementation on the parameters of a config's model (random gradients, the same for all),
interleaved in one process, and reports the largest weight difference from the single-tensor loop after 20 steps
(and what the fused kernel does with gradients laid out otherwise than their parameters).

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_optimizer_step.py --config configs/shapes-keyframes.yaml

Also timed, as the training loop calls them: vidiff's EMA.update (one foreach lerp) against the former update (a
per-tensor walk over a state_dict, kept here), on the config's model; and the text encoder on a step's 8 grammar
captions, half of them the plain template, as the grammar draws them, with the plain captions pinned
(TextEncoder.pin, what a training stage does) and without.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def build_params(config: str) -> list[torch.Tensor]:
    from vidiff.models import UNet3D
    from vidiff.training.config import load_train_config

    torch.manual_seed(0)
    model = UNet3D(load_train_config(config).model_config())
    return [p.detach().clone() for p in model.parameters()]


def make_optimizer(params, kind: str) -> torch.optim.Optimizer:
    flags = {"single": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}[kind]
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **flags)


def ema_loop(shadow, params, w):
    for s, p in zip(shadow, params):
        s.lerp_(p, w)


def ema_foreach(shadow, params, w):
    torch._foreach_lerp_(shadow, params, w)


class StateDictWalkEMA:
    """vidiff's EMA update before 2026-12-06: a per-tensor lerp over the model's state_dict, for the comparison."""

    def __init__(self, model):
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, d):
        params = dict(model.named_parameters())
        for name, value in model.state_dict().items():
            target = self.shadow[name]
            if name in params and value.is_floating_point():
                target.lerp_(value.detach().float(), 1.0 - d)
            else:
                target.copy_(value.detach())


def time_ema_update(config: str, rounds: int) -> None:
    from vidiff.models import UNet3D
    from vidiff.training.config import load_train_config
    from vidiff.training.ema import EMA

    torch.manual_seed(0)
    model = UNet3D(load_train_config(config).model_config())
    new, old = EMA(model, 0.998), StateDictWalkEMA(model)
    times = {"state_dict walk": [], "EMA.update": []}
    for _ in range(rounds):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 1e-3)
        d = new.current_decay()
        t = time.perf_counter()
        old.update(model, d)
        times["state_dict walk"].append(time.perf_counter() - t)
        t = time.perf_counter()
        new.update(model)
        times["EMA.update"].append(time.perf_counter() - t)
    same = all(torch.equal(old.shadow[k], new.shadow[k]) for k in new.shadow)
    for name, ts in times.items():
        print(f"EMA update as the loop calls it, {name:16s}: median {statistics.median(ts) * 1e3:6.2f} ms")
    print(f"after {rounds} updates the two shadows are {'bitwise equal' if same else 'DIFFERENT'}")


def time_text(rounds: int) -> None:
    from vidiff.data.captions import draw_caption, plain_captions
    from vidiff.text import TextEncoder

    plain, pinned = TextEncoder.load("default", cache_size=0), TextEncoder.load("default", cache_size=0)
    pinned.pin(list(plain_captions()))
    gen = torch.Generator().manual_seed(0)
    attributes = [("red", "circle", "left"), ("blue", "square", "up"), ("green", "triangle", "down"),
                  ("yellow", "circle", "right")] * 2
    batches = [[draw_caption(*a, gen, 0.5, True) for a in attributes] for _ in range(rounds)]
    times = {"no pin": [], "plain pinned": []}
    for batch in batches:
        for name, enc in (("no pin", plain), ("plain pinned", pinned)):
            t = time.perf_counter()
            enc.encode(batch)
            times[name].append(time.perf_counter() - t)
    share = sum(c in set(plain_captions()) for b in batches for c in b) / sum(map(len, batches))
    for name, ts in times.items():
        print(f"text encoder, 8 grammar captions ({share:.0%} plain), {name:12s}: median "
              f"{statistics.median(ts[1:]) * 1e3:6.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/shapes-keyframes.yaml")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    base = build_params(args.config)
    print(f"{len(base)} parameter tensors, {sum(p.numel() for p in base) / 1e6:.2f} M values, "
          f"{torch.get_num_threads()} thread(s)")
    gen = torch.Generator().manual_seed(1)
    # laid out like their parameters (channels-last convolution weights included), as autograd lays them out
    grads = [[torch.empty_like(p).copy_(torch.randn(p.shape, generator=gen) * 1e-2) for p in base]
             for _ in range(args.steps)]
    kinds = ["single", "foreach", "fused"]
    runs = {}
    for k in kinds:
        params = [p.clone().requires_grad_(True) for p in base]
        runs[k] = (params, make_optimizer(params, k))
    times = {k: [] for k in kinds}
    for r in range(args.rounds):
        for k in kinds:
            params, opt = runs[k]
            for g in grads:
                for p, gi in zip(params, g):
                    p.grad = gi.clone()  # an optimizer may work in its gradients in place
                t = time.perf_counter()
                opt.step()
                times[k].append(time.perf_counter() - t)
        if r == 0:  # the same gradients, the same number of steps: compare the weights
            ref = [p.detach().clone() for p in runs["single"][0]]
            for k in kinds[1:]:
                diff = max((a - b).abs().max().item() for a, b in zip(ref, runs[k][0]))
                print(f"after {args.steps} steps, {k} vs single-tensor loop: max |weight difference| {diff:.2e}")
    # torch's fused CPU kernel walks a parameter and its gradient as flat memory: a gradient laid out otherwise than
    # its parameter (a DDP bucket view of a channels-last weight, say) is applied to the wrong elements
    params = [p.clone().requires_grad_(True) for p in base]
    opt = make_optimizer(params, "fused")
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = gi.contiguous()
        opt.step()
    diff = max((a - b).abs().max().item() for a, b in zip(ref, params))
    print(f"fused, gradients contiguous while channels-last weights are not, first round: max |difference| {diff:.2e}"
          f"{'' if diff > 1e-5 else ' (no mismatched layouts in this model)'}")
    for k in kinds:
        print(f"AdamW step, {k:8s}: median {statistics.median(times[k]) * 1e3:6.2f} ms")
    shadow_a = [p.clone() for p in base]
    shadow_b = [p.clone() for p in base]
    target = [p + 1 for p in base]
    ema_times = {"loop": [], "foreach": []}
    for _ in range(args.rounds * args.steps):
        for name, fn, shadow in (("loop", ema_loop, shadow_a), ("foreach", ema_foreach, shadow_b)):
            t = time.perf_counter()
            fn(shadow, target, 0.002)
            ema_times[name].append(time.perf_counter() - t)
    diff = max((a - b).abs().max().item() for a, b in zip(shadow_a, shadow_b))
    for name, ts in ema_times.items():
        print(f"EMA update, {name:8s}: median {statistics.median(ts) * 1e3:6.2f} ms")
    print(f"EMA loop vs foreach after {len(ema_times['loop'])} updates: max |difference| {diff:.2e}")
    time_ema_update(args.config, args.rounds * args.steps)
    time_text(args.rounds * 8)


if __name__ == "__main__":
    main()
