"""The GPU recipes (configs/gpu/*.yaml): attention backends for CUDA, the noise settings that worked on Shapes, and
a scaled-down copy of each (same stage, diffusion, conditioning and bf16 mixed precision; a small U-Net on Shapes
latents of the bundled VAE) that trains 200 steps with falling loss on this CPU."""
from pathlib import Path

import pytest
import yaml

from scaled_recipes import check_falling_loss, scaled_down
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


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_scaled_down_recipe_trains_with_falling_loss(recipe, shapes_latents, tmp_path):
    from vidiff.training.loop import train

    overrides = scaled_down(recipe, shapes_latents) + [f"output_dir={tmp_path}"]
    cfg = load_train_config(REPO / f"configs/gpu/{recipe}.yaml", overrides)
    assert cfg.train.mixed_precision == "bf16" and cfg.model_config().temporal_attention_backend == "sdpa"
    first, last = check_falling_loss(read_metrics(train(cfg) / "metrics.jsonl"))
    print(f"{recipe} scaled down, 200 steps bf16: first 30 steps {first:.4f}, last 50 steps {last:.4f}")
    assert (tmp_path / "export" / "model.safetensors").is_file()
