"""`vidiff train --dry-run`: parameter count and estimated memory per GPU, without allocating the model.

The model is built on the meta device and one forward pass runs on meta tensors; a saved-tensors hook adds up
what autograd keeps for backward (the activations). On meta tensors scaled_dot_product_attention falls back to
its math decomposition, which keeps the full N x M probability matrix; the fused kernels that run on CUDA and on
CPU keep only q, k, v, the output and the row log-sum-exp, so the dry run swaps in a stand-in that saves exactly
those. Per GPU (plain DDP: every rank holds everything):
    weights 4P (fp32 master copy), grads 4P, AdamW moments 8P, EMA 4P, activations as measured, and backward's
    temporaries (gradients of activations, kernel workspaces) at a third of the activations.
With bf16/fp16, float32 activations are counted at 2 bytes (autocast computes most of them in half precision).
The third is measured, not derived: the peak resident-memory growth of a real training step (model, EMA, AdamW,
forward, backward, step) of scaled-down keyframe and interpolation recipes on CPU lands within 4% of the total
(tests/test_training_dryrun.py, docs/training.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from vidiff.diffusion.cond import Cond
from vidiff.models.recompute import set_activation_recompute

GIB = 1024**3
BACKWARD_SHARE = 1 / 3  # backward's temporaries against the saved activations (measured on CPU, see above)


@dataclass
class MemoryEstimate:
    parameters: int
    weights: int  # bytes
    grads: int
    optimizer: int
    ema: int
    activations: int
    backward: int  # backward's temporaries at the peak: BACKWARD_SHARE of the activations
    batch_size: int
    input_shape: tuple[int, ...]
    mixed_precision: str
    gradient_checkpointing: bool

    @property
    def total(self) -> int:
        return self.weights + self.grads + self.optimizer + self.ema + self.activations + self.backward


def _latent_side(cfg) -> tuple[int, int]:
    """(h, w) of the training latents: a latent cache's own (its index.json), else data.size over the VAE's factor;
    without the VAE folder on this machine the Stable Diffusion VAE's 8 is assumed, and said."""
    import warnings

    from vidiff.errors import InputError
    from vidiff.parts import load_part_config
    from vidiff.vae import VAEConfig

    if cfg.data.kind == "latent_cache":
        from vidiff.data.latent_cache import cached_latent_shape

        shape = cached_latent_shape(cfg.data.root)  # a 32 px cache has 8 x 8 latents whatever data.size says
        if shape is not None and len(shape) >= 2:  # else not on this machine, or unreadable: from data.size below
            return shape[-2], shape[-1]
    try:
        factor = load_part_config(cfg.vae, VAEConfig).downsample_factor if cfg.vae else 8
    except InputError:
        warnings.warn(f"--dry-run: vae {cfg.vae} is not readable here; latents assumed data.size / 8 "
                      f"({cfg.data.size // 8} x {cfg.data.size // 8})", stacklevel=2)
        factor = 8
    return cfg.data.size // factor, cfg.data.size // factor


def _inputs(cfg, model_cfg, batch: int, device) -> tuple[torch.nn.Module, dict]:
    """(module whose forward is the training forward, its keyword inputs) for one batch."""
    if cfg.stage == "vae":
        from vidiff.vae import AutoencoderKL

        video = torch.zeros(batch, 3, cfg.data.num_frames, cfg.data.size, cfg.data.size, device=device)
        return AutoencoderKL(model_cfg), {"video": video}
    from vidiff.models import UNet3D

    c = cfg.conditioning
    frames = c.keyframe_counts()[1] if cfg.stage == "keyframes" else c.max_gap + 1  # the largest window
    h, w = _latent_side(cfg)
    x = torch.zeros(batch, model_cfg.in_channels, frames, h, w, device=device)
    cond = Cond(context=torch.zeros(batch, 77, model_cfg.context_dim, device=device),
                context_mask=torch.ones(batch, 77, dtype=torch.bool, device=device))
    if model_cfg.conditioning:
        cond = dataclasses.replace(cond, known=torch.zeros_like(x), known_mask=torch.ones(batch, frames, device=device))
    inputs = {"x": x, "c_noise": torch.zeros(batch, device=device), "cond": cond}
    # frame_stride / cond_sigma stay None (their defaults): the model validates their values, which meta
    # tensors do not have; the embeddings they feed are tiny.
    return UNet3D(model_cfg), inputs


class _FusedAttentionStandIn(torch.autograd.Function):
    """Shape-only attention that saves what the fused SDPA kernels save for backward (measured on CPU: q, k, v,
    the output, the log-sum-exp per query row, and the mask as an additive float term)."""

    @staticmethod
    def forward(ctx, q, k, v, attn_mask):
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        saved = [q, k, v, out, lse]
        if attn_mask is not None:
            saved.append(attn_mask if attn_mask.is_floating_point() else attn_mask.to(q.dtype))
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx, grad_out):  # never run: the dry run only counts what forward saves
        raise NotImplementedError


def _fused_attention_on_meta():
    """Patches F.scaled_dot_product_attention so that meta tensors take the stand-in above."""
    from unittest import mock

    import torch.nn.functional as F

    real = F.scaled_dot_product_attention

    def sdpa(q, k, v, attn_mask=None, *args, **kwargs):
        if q.is_meta:
            return _FusedAttentionStandIn.apply(q, k, v, attn_mask)
        return real(q, k, v, attn_mask, *args, **kwargs)

    return mock.patch.object(F, "scaled_dot_product_attention", sdpa)


class _MetaScalars:
    """A dispatch mode under which reading a meta tensor as a Python scalar gives 0 / False: the model's input
    checks (e.g. `(stride <= 0).any()`) then pass on shape-only tensors."""

    def __new__(cls):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                aten = torch.ops.aten
                if func in (aten._local_scalar_dense.default, aten.is_nonzero.default):
                    if args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
                        return False if func is aten.is_nonzero.default else 0
                return func(*args, **(kwargs or {}))

        return Mode()


def saved_activation_bytes(model: torch.nn.Module, inputs: dict, half: bool = False) -> int:
    """Bytes autograd saves for backward in one forward pass (each tensor counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        size = t.numel() * (2 if half and t.dtype == torch.float32 else t.element_size())
        if not isinstance(t, torch.nn.Parameter):  # weights are counted separately
            seen[id(t)] = size
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _MetaScalars(), _fused_attention_on_meta():
        out = model(**inputs)
    del out
    return sum(seen.values())


def estimate(cfg, batch_size: int | None = None) -> MemoryEstimate:
    import dataclasses

    if cfg.stage == "control":
        from vidiff.errors import InputError

        raise InputError("--dry-run: no memory estimate for stage control (a frozen U-Net plus a small adapter)")
    model_cfg = cfg.model_config()
    # what the stage actually runs with: the U-Net stages recompute layers when either switch is on; the VAE never
    checkpointing = cfg.stage != "vae" and (cfg.train.gradient_checkpointing or model_cfg.gradient_checkpointing)
    if cfg.stage != "vae":
        model_cfg = dataclasses.replace(model_cfg, gradient_checkpointing=checkpointing)
    batch = batch_size or cfg.train.batch_size
    with torch.device("meta"):
        model, inputs = _inputs(cfg, model_cfg, batch, "meta")
    if cfg.stage == "vae":  # the training forward: encode, decode
        vae, video = model, inputs["video"]
        model = _VAETrainForward(vae)
        inputs = {"video": video}
    model.train()
    set_activation_recompute(model, cfg.train.activation_recompute)
    if cfg.train.freeze:  # frozen parameters keep no gradients and no optimizer moments
        from vidiff.training.finetune import freeze_parameters

        freeze_parameters(model.vae if cfg.stage == "vae" else model, cfg.train.freeze)
    p = sum(t.numel() for t in model.parameters())
    trainable = sum(t.numel() for t in model.parameters() if t.requires_grad)
    act = saved_activation_bytes(model, inputs, half=cfg.train.mixed_precision != "no")
    return MemoryEstimate(parameters=p, weights=4 * p, grads=4 * trainable, optimizer=8 * trainable,
                          ema=4 * p if cfg.train.ema_decay > 0 else 0, activations=act,
                          backward=int(act * BACKWARD_SHARE), batch_size=batch,
                          input_shape=tuple(next(iter(inputs.values())).shape),
                          mixed_precision=cfg.train.mixed_precision,
                          gradient_checkpointing=checkpointing)


class _VAETrainForward(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, video):
        mean, logvar = self.vae.encode_distribution(video)
        return self.vae.decode(mean + logvar)


def format_estimate(e: MemoryEstimate) -> str:
    rows = [("weights (fp32)", e.weights), ("gradients", e.grads), ("AdamW moments", e.optimizer),
            ("EMA copy", e.ema), ("activations", e.activations), ("backward temps", e.backward),
            ("total", e.total)]
    lines = [f"parameters: {e.parameters:,} ({e.parameters / 1e6:.1f}M)",
             f"batch per GPU: {e.batch_size}, input {e.input_shape}, mixed precision {e.mixed_precision}, "
             f"gradient checkpointing {'on' if e.gradient_checkpointing else 'off'}",
             "estimated memory per GPU (DDP):"]
    lines += [f"  {name:<16} {value / GIB:8.2f} GiB" for name, value in rows]
    lines.append("  (backward temps: a third of the activations, measured on CPU (docs/training.md); add ~1-2 GiB "
                 "for the CUDA context,\n   allocator slack and the frozen VAE / text encoder)")
    return "\n".join(lines)
