"""The GPU recipes (configs/gpu/*.yaml): attention backends for CUDA, the noise settings that worked on Shapes, and
a scaled-down copy of each (same stage, diffusion, conditioning and bf16 mixed precision; a small U-Net on Shapes
latents of the bundled VAE) that trains 200 steps with falling loss on this CPU."""
from pathlib import Path

import pytest
import yaml

from vidiff.training.config import load_train_config
from vidiff.training.logging import read_metrics

REPO = Path(__file__).resolve().parents[1]
RECIPES = ["keyframes-256", "interpolation-256"]
SHAPES = {"keyframes-256": "shapes-keyframes.yaml", "interpolation-256": "shapes-interpolation.yaml"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_uses_cuda_attention_and_the_shapes_noise(recipe):
    cfg = load_train_config(REPO / f"configs/gpu/{recipe}.yaml")
    model = cfg.model_config()
    assert model.attention_backend == "sdpa" and model.temporal_attention_backend == "sdpa"
    shapes = yaml.safe_load((REPO / "configs" / SHAPES[recipe]).read_text())["diffusion"]
    noise = cfg.noise_config()
    assert (noise.p_mean, noise.p_std) == (shapes["noise"]["p_mean"], shapes["noise"]["p_std"])
    assert cfg.diffusion.min_snr_gamma == shapes["min_snr_gamma"]
    assert cfg.train.mixed_precision == "bf16"
    if recipe.startswith("keyframes"):
        assert model.pooled_text and model.frame_position and cfg.conditioning.pattern_first == 0.55


@pytest.fixture(scope="module")
def shapes_latents(tmp_path_factory):
    from vidiff.data.latent_cache import build_latent_cache
    from vidiff.data.shapes_dataset import ShapesDataset
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(REPO / "vidiff/bundled/shapes/vae").eval()
    return build_latent_cache(ShapesDataset(11, 48, 16, 64), vae, TextEncoder.load("default"),
                              tmp_path_factory.mktemp("latents"), dtype="float32", progress=False)


def scaled_down(recipe: str, cache: Path, out: Path) -> list[str]:
    """Overrides that keep the recipe's stage, diffusion, conditioning probabilities and precision."""
    common = ["model.block_out_channels=[32,64]", "model.layers_per_block=1", "model.attention_levels=[false,true]",
              "model.num_head_channels=32", "model.context_dim=384", "model.norm_groups=16", "text_encoder=default",
              "vae=null", f"data.root={cache}", "data.num_frames=16", "data.size=64", "data.kind=latent_cache",
              "train.batch_size=4", "train.grad_accum=1", "train.gradient_checkpointing=false", "train.num_workers=0",
              "train.max_steps=200", "train.log_every=10", "train.checkpoint_every=1000", "train.preview_every=0",
              "train.ema_decay=0.99", "optimizer.lr=1e-3", "optimizer.warmup_steps=20", f"output_dir={out}"]
    if recipe.startswith("keyframes"):
        return common + ["conditioning.num_keyframes=4", "conditioning.keyframe_stride=5"]
    return common + ["conditioning.max_gap=8"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_scaled_down_recipe_trains_with_falling_loss(recipe, shapes_latents, tmp_path):
    from vidiff.training.loop import train

    cfg = load_train_config(REPO / f"configs/gpu/{recipe}.yaml", scaled_down(recipe, shapes_latents, tmp_path))
    assert cfg.train.mixed_precision == "bf16" and cfg.model_config().temporal_attention_backend == "sdpa"
    rows = read_metrics(train(cfg) / "metrics.jsonl")
    losses = [r["loss"] for r in rows]
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    print(f"{recipe} scaled down, 200 steps bf16: first 30 steps {first:.4f}, last 50 steps {last:.4f}")
    assert rows[-1]["step"] == 200 and sum(r["skipped"] for r in rows) == 0
    assert last < 0.7 * first, losses
    assert (tmp_path / "export" / "model.safetensors").is_file()
