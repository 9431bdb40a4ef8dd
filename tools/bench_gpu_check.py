"""The prepared GPU check behind tools/gpu_check.sh (docs/training.md, "The GPU check").

On a CUDA machine, in one process:
  1. train_bf16: training steps (forward, backward, AdamW; bf16 autocast, fp32 master weights and moments) of the
     256 px keyframe recipe's U-Net (configs/gpu/keyframes-256.yaml, latents (2, 4, 16, 32, 32), context
     (2, 77, 768)) beside diffusers' UNet3DConditionModel at the same widths (320, 640, 1280, 1280), two layers per
     block, cross-attention 768: samples/s and peak allocated memory of each, no gradient checkpointing on either
     (diffusers' UNet3D has none);
  2. attention: the same vidiff training step with attention_backend (spatial and temporal) "xformers" instead of
     "sdpa", when xformers imports and runs there;
  3. generate_bf16: the bundled Shapes pipeline in bf16 against fp32 on the same device (text to video, 4 prompts,
     fixed seeds): mean PSNR of the uint8 frames, passing at >= 35 dB;
then one summary line. A GPU machine without the default text encoder's package (88 MB, more than a small transfer
carries) is given the prompts' embeddings computed beforehand with the real encoder:
  python tools/bench_gpu_check.py --write-text-embeddings FILE      # here, where the package is installed
  python tools/bench_gpu_check.py --text-embeddings FILE            # there: the encoder is replaced by that table
Without CUDA every part is skipped by name and the script exits 0 after a CPU sanity check (the recipe's --dry-run
estimate). Exit status 1 when a part ran and failed its bar.
"""
from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RECIPE = REPO / "configs" / "gpu" / "keyframes-256.yaml"
BUNDLE = REPO / "vidiff" / "bundled" / "shapes"
PROMPTS = ["a red circle moving left", "a blue square moving up", "a green triangle moving right",
           "a white circle moving down"]


def _vidiff_step_fn(batch: int, frames: int, device, backend: str = "sdpa", recompute: bool = False):
    from vidiff.diffusion.cond import Cond
    from vidiff.models import UNet3D
    from vidiff.training.config import load_train_config

    overrides = [f"model.attention_backend={backend}", f"model.temporal_attention_backend={backend}",
                 f"model.gradient_checkpointing={str(recompute).lower()}"]
    net = UNet3D(load_train_config(RECIPE, overrides).model_config()).to(device)
    cond = Cond(context=torch.randn(batch, 77, 768, device=device),
                context_mask=torch.ones(batch, 77, dtype=torch.bool, device=device),
                known=torch.zeros(batch, 4, frames, 32, 32, device=device),
                known_mask=torch.zeros(batch, frames, device=device),
                frame_stride=torch.full((batch,), 5.0, device=device), cond_sigma=torch.zeros(batch, device=device))
    return net, lambda x, t: net(x, t, cond)


def _diffusers_step_fn(batch: int, frames: int, device):
    from diffusers import UNet3DConditionModel

    net = UNet3DConditionModel(
        in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3, cross_attention_dim=768,
        attention_head_dim=64).to(device)
    context = torch.randn(batch, 77, 768, device=device)
    return net, lambda x, t: net(x, t * 1000, encoder_hidden_states=context).sample


def train_bf16(which: str, steps: int, batch: int = 2, frames: int = 16) -> dict:
    """samples/s and peak memory of bf16-autocast training steps of one model ("vidiff", "vidiff-recompute" (the
    recipe's gradient checkpointing), "vidiff-xformers", "diffusers")."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    if which == "diffusers":
        net, forward = _diffusers_step_fn(batch, frames, device)
    else:
        net, forward = _vidiff_step_fn(batch, frames, device, "xformers" if which.endswith("xformers") else "sdpa",
                                       recompute=which.endswith("recompute"))
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5, fused=True)
    x = torch.randn(batch, 4, frames, 32, 32, device=device)  # (B, C, F, h, w)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = forward(x, torch.rand(batch, device=device))
        loss = (out.float() - x).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(2):  # warm-up: kernels chosen, moments allocated
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = {"params_M": sum(p.numel() for p in net.parameters()) / 1e6, "samples_per_s": batch * steps / dt,
           "peak_GiB": torch.cuda.max_memory_allocated() / 2**30, "loss_finite": bool(torch.isfinite(loss))}
    del net, optimizer, forward
    torch.cuda.empty_cache()
    return out


class PrecomputedText:
    """Stands in for the text encoder: the embeddings of known prompts, read from a table (see the docstring)."""

    def __init__(self, table: dict[str, torch.Tensor]):
        self.table, self.device = table, torch.device("cpu")
        self.dim, self.identifier = next(iter(table.values())).shape[-1], "precomputed default embeddings"

    def to(self, device):
        self.device = torch.device(device)
        return self

    def encode(self, prompts: list[str]):
        missing = [p for p in prompts if "context/" + p not in self.table]
        if missing:
            raise KeyError(f"no precomputed embedding for {missing}")
        context = torch.stack([self.table["context/" + p] for p in prompts]).to(self.device)
        return context, torch.stack([self.table["mask/" + p] for p in prompts]).to(self.device)


def write_text_embeddings(path: str) -> None:
    from safetensors.torch import save_file

    from vidiff.text import TextEncoder

    encoder, table = TextEncoder.load("default"), {}
    for prompt in PROMPTS + [""]:
        context, mask = encoder.encode([prompt])
        table["context/" + prompt], table["mask/" + prompt] = context[0].contiguous(), mask[0].contiguous()
    save_file(table, path)
    print(f"wrote {len(PROMPTS) + 1} prompts' embeddings ({encoder.identifier}) to {path}")


def use_text_embeddings(path: str) -> None:
    """Makes TextEncoder.load (which the pipeline loader calls) return PrecomputedText."""
    from safetensors.torch import load_file

    from vidiff.text import TextEncoder

    stand_in = PrecomputedText(load_file(path))
    TextEncoder.load = staticmethod(lambda *args, **kwargs: stand_in)


def generate_bf16() -> dict:
    from vidiff import VideoPipeline

    if "dtype" not in inspect.signature(VideoPipeline.from_pretrained).parameters:
        return {"skipped": "VideoPipeline.from_pretrained has no dtype argument in this checkout"}
    clips = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        pipe = VideoPipeline.from_pretrained(BUNDLE, device="cuda", dtype=dtype)
        t0 = time.perf_counter()
        clips[name] = [pipe.text_to_video(p, seed=100 + i, progress=False)[0] for i, p in enumerate(PROMPTS)]
        clips[name + "_s"] = (time.perf_counter() - t0) / len(PROMPTS)
        del pipe
    psnrs = []
    for a, b in zip(clips["fp32"], clips["bf16"]):
        mse = (a.float() - b.float()).square().mean().item()
        psnrs.append(99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse))
    return {"psnr_dB": sum(psnrs) / len(psnrs), "min_psnr_dB": min(psnrs), "fp32_s": clips["fp32_s"],
            "bf16_s": clips["bf16_s"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    p.add_argument("--text-embeddings", metavar="FILE", help="precomputed prompt embeddings in place of the encoder")
    p.add_argument("--write-text-embeddings", metavar="FILE", help="write the prompts' embeddings and exit")
    args = p.parse_args()
    if args.write_text_embeddings:
        write_text_embeddings(args.write_text_embeddings)
        return 0
    if args.text_embeddings:
        use_text_embeddings(args.text_embeddings)
    t0 = time.perf_counter()
    if not torch.cuda.is_available():
        from vidiff.training.config import load_train_config
        from vidiff.training.dryrun import estimate

        e = estimate(load_train_config(RECIPE))
        print(f"gpu_check: CUDA not available: skipped train_bf16 (vidiff UNet3D vs diffusers UNet3DConditionModel, "
              f"keyframes-256) and generate_bf16 (bundled pipeline bf16 vs fp32); CPU check: keyframes-256 dry run "
              f"{e.parameters / 1e6:.0f}M parameters, {e.total / 2**30:.1f} GiB per GPU estimated "
              f"({time.perf_counter() - t0:.0f} s)")
        return 0
    from vidiff.models.attention import AttentionBackendError

    results, ok = {}, True
    runs = ["vidiff", "vidiff-recompute", "diffusers"]
    try:
        import xformers.ops  # noqa: F401

        runs.insert(1, "vidiff-xformers")
    except ImportError:
        print("attention: xformers not installed: skipped the xformers training step", flush=True)
    for which in runs:
        try:
            r = results[which] = train_bf16(which, args.steps)
        except AttentionBackendError as e:  # e.g. an xformers wheel built for another torch / CUDA
            print(f"attention: {which} skipped: {str(e).splitlines()[0]}", flush=True)
            torch.cuda.empty_cache()
            continue
        print(f"train_bf16 {which}: {r['params_M']:.0f}M params, {r['samples_per_s']:.2f} samples/s, "
              f"peak {r['peak_GiB']:.1f} GiB", flush=True)
        ok &= r["loss_finite"]
    g = results["generate"] = generate_bf16()
    print(f"generate_bf16: {g}", flush=True)
    if "skipped" not in g:
        ok &= g["psnr_dB"] >= 35.0
    v, d = results["vidiff"], results["diffusers"]
    from vidiff.training.config import load_train_config
    from vidiff.training.dryrun import estimate

    e, rc = estimate(load_train_config(RECIPE)), results["vidiff-recompute"]
    with_ema = rc["peak_GiB"] + e.ema / 2**30  # the bench keeps no EMA; the recipe's estimate counts one
    print(f"dry-run estimate of the recipe (gradient checkpointing, EMA): {e.total / 2**30:.1f} GiB; measured with "
          f"checkpointing {rc['peak_GiB']:.1f} GiB + EMA {e.ema / 2**30:.1f} GiB = {with_ema:.1f} GiB", flush=True)
    x = results.get("vidiff-xformers")
    xf = (f"vidiff with xformers attention {x['samples_per_s']:.2f} samples/s {x['peak_GiB']:.1f} GiB "
          f"({x['samples_per_s'] / v['samples_per_s']:.2f}x sdpa); " if x else "")
    gen = (f"generation bf16 vs fp32 {g['psnr_dB']:.1f} dB (>= 35: {'pass' if g['psnr_dB'] >= 35 else 'FAIL'})"
           if "skipped" not in g else f"generation skipped ({g['skipped']})")
    print(f"gpu_check: {torch.cuda.get_device_name()}: train bf16 keyframes-256 vidiff {v['samples_per_s']:.2f} "
          f"samples/s {v['peak_GiB']:.1f} GiB (with checkpointing {rc['samples_per_s']:.2f} samples/s "
          f"{rc['peak_GiB']:.1f} GiB), diffusers UNet3D {d['samples_per_s']:.2f} samples/s "
          f"{d['peak_GiB']:.1f} GiB ({v['samples_per_s'] / d['samples_per_s']:.2f}x); {xf}{gen}; "
          f"{'OK' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
