"""The GPU recipes (configs/gpu/*.yaml) scaled down to a 32/64 U-Net on 64 px Shapes latents, keeping the stage,
diffusion, conditioning probabilities and bf16: shared by tests/test_gpu_recipes.py (CPU) and tests/test_cuda.py."""
from pathlib import Path


def scaled_down(recipe: str, latents: Path, text_encoder="default", steps: int = 200,
                checkpoint_every: int = 1000, gradient_checkpointing: bool = False) -> list[str]:
    """Overrides for configs/gpu/<recipe>.yaml (output_dir left to the caller)."""
    overrides = ["model.block_out_channels=[32,64]", "model.layers_per_block=1", "model.attention_levels=[false,true]",
                 "model.num_head_channels=32", "model.context_dim=384", "model.norm_groups=16",
                 f"text_encoder={text_encoder}", "vae=null", f"data.root={latents}", "data.num_frames=16",
                 "data.size=64", "data.kind=latent_cache", "train.batch_size=4", "train.grad_accum=1",
                 f"train.gradient_checkpointing={str(gradient_checkpointing).lower()}", "train.num_workers=0",
                 f"train.max_steps={steps}", "train.log_every=10", f"train.checkpoint_every={checkpoint_every}",
                 "train.preview_every=0", "train.ema_decay=0.99", "optimizer.lr=1e-3", "optimizer.warmup_steps=20"]
    if recipe.startswith("keyframes"):
        return overrides + ["conditioning.num_keyframes=4", "conditioning.keyframe_stride=5"]
    return overrides + ["conditioning.max_gap=8"]


def check_falling_loss(rows: list[dict], steps: int = 200) -> tuple[float, float]:
    """Asserts every step was taken and the last 50 steps' loss is under 0.7x the first 30's; returns both."""
    losses = [r["loss"] for r in rows]
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert rows[-1]["step"] == steps and sum(r["skipped"] for r in rows) == 0
    assert last < 0.7 * first, losses
    return first, last
