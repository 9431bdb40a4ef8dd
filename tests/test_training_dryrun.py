"""--dry-run: the meta-device estimate matches a real forward / backward of a scaled-down copy on CPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidiff.config import apply_overrides
from vidiff.training.config import load_train_config
from vidiff.training.dryrun import _inputs, estimate, format_estimate, saved_activation_bytes

REPO = Path(__file__).resolve().parents[1]
# Temporal attention "math" (the recipe says sdpa, for CUDA): on CPU, SDPA with the learned relative-position bias
# (an attention mask that needs a gradient) falls back to its math path, which saves other tensors than the fused
# kernels that the dry run's stand-in models; vidiff's own math path runs the same on meta tensors and on CPU.
SMALL = ["model.temporal_attention_backend=math", "model.block_out_channels=[32,64,64,64]", "model.num_head_channels=32", "data.size=256",
         "train.gradient_checkpointing=false",
         "conditioning.num_keyframes=8", "train.batch_size=1", "train.mixed_precision=no", "model.context_dim=64"]


def test_gpu_recipe_dry_run_prints_figures():
    cfg = load_train_config(REPO / "configs/gpu/keyframes-256.yaml")
    e = estimate(cfg)
    assert e.parameters > 100_000_000 and e.input_shape == (2, 4, 16, 32, 32)
    assert e.optimizer == 2 * e.weights and e.activations > 0
    assert "AdamW moments" in format_estimate(e)


def test_dry_run_says_which_folders_the_run_would_stop_on(tmp_path, capsys):
    from vidiff.cli import main

    (tmp_path / "vae").mkdir()
    args = ["train", "--config", str(REPO / "configs/shapes-interpolation.yaml"), "--dry-run",
            "--set", f"data.root={tmp_path / 'nope'}", "--set", f"vae={tmp_path / 'vae'}"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"data.root: {tmp_path / 'nope'} does not exist here" in err and "vae:" not in err


def test_dry_run_of_a_fine_tune_whose_start_part_is_not_here_estimates_and_warns(tmp_path, capsys):
    """configs/shapes-vae-temporal.yaml before its start part (runs/shapes-vae/export) exists: the dry run was refused
    ("init_weights: part folder not found") where its own check meant to warn, as it does for a missing data.root;
    a run is still refused."""
    from vidiff.cli import main

    args = ["train", "--config", str(REPO / "configs/shapes-vae-temporal.yaml"),
            "--set", f"init_weights={tmp_path / 'nope'}", "--set", f"output_dir={tmp_path / 'run'}"]
    assert main(args + ["--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "parameters:" in out and f"init_weights: {tmp_path / 'nope'} does not exist here" in err
    assert main(args) == 2
    assert f"init_weights: part folder not found: {tmp_path / 'nope'}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("batch", ["-3", "0", "100000"])
def test_dry_run_batch_outside_its_range_is_one_line(capsys, batch):
    """-3 was a traceback (a tensor of negative size), 0 silently meant the config's batch."""
    from vidiff.cli import main

    args = ["train", "--config", str(REPO / "configs/shapes-vae.yaml"), "--dry-run", "--dry-run-batch", batch]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--dry-run-batch must be in [1, 65536], got {batch}" in err, err


def test_meta_estimate_equals_real_saved_activations():
    cfg = load_train_config(REPO / "configs/gpu/keyframes-256.yaml", SMALL)
    e = estimate(cfg)
    torch.manual_seed(0)
    model, inputs = _inputs(cfg, cfg.model_config(), 1, "cpu")
    inputs["x"].normal_(), inputs["c_noise"].normal_()
    for name, value in inputs["cond"].items().items():  # features random; masks stay as they are
        if name in ("context", "known"):
            value.normal_()
    model.train()
    assert saved_activation_bytes(model, inputs) == e.activations
    assert sum(p.numel() for p in model.parameters()) == e.parameters


SMALL_INTERPOLATION = ["model.temporal_attention_backend=math", "model.block_out_channels=[32,64,64,64]", "data.size=256", "conditioning.max_gap=8",
                       "train.gradient_checkpointing=false", "train.batch_size=1", "train.mixed_precision=no",
                       "model.context_dim=64"]

MEASURE = """
import json, re, sys, torch
sys.path.insert(0, {repo!r})
from vidiff.training.config import load_train_config
from vidiff.training.dryrun import _inputs

def kib(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

cfg = load_train_config({config!r}, {overrides!r})
before = kib("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
model, inputs = _inputs(cfg, cfg.model_config(), cfg.train.batch_size, "cpu")
model.train()
ema = {{k: v.detach().clone().float() for k, v in model.state_dict().items()}}
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
model(**inputs).square().mean().backward()
optimizer.step()  # the moments appear here
print(json.dumps({{"peak_growth": (kib("VmHWM") - before) * 1024}}))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc/self/clear_refs")
@pytest.mark.parametrize("recipe, overrides", [("keyframes-256", SMALL), ("interpolation-256", SMALL_INTERPOLATION)])
def test_estimate_within_a_quarter_of_the_measured_peak(tmp_path, recipe, overrides):
    """Peak RSS growth of a real training step (fresh process: model, EMA, AdamW, forward, backward, step) of a
    scaled-down GPU recipe against the dry run's total."""
    config = str(REPO / f"configs/gpu/{recipe}.yaml")
    script = tmp_path / "measure.py"
    script.write_text(MEASURE.format(repo=str(REPO), config=config, overrides=overrides))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    measured = json.loads(out.stdout.strip().splitlines()[-1])["peak_growth"]
    e = estimate(load_train_config(config, overrides))
    assert e.activations > 0.5 * measured  # the case is dominated by what the estimate measures, not by constants
    # the issue asks for 25%; 15% holds (1% and 4% measured) and fails without the backward temporaries (21%)
    assert abs(e.total - measured) <= 0.15 * measured, (measured, e.total)


def test_activation_recompute_switch_reaches_the_estimate():
    on = estimate(load_train_config(REPO / "configs/shapes-keyframes.yaml", ["train.activation_recompute=true"]))
    off = estimate(load_train_config(REPO / "configs/shapes-keyframes.yaml", ["train.activation_recompute=false"]))
    # the normalised tensors and GEGLU gates are kept for backward once the blocks stop recomputing them
    assert off.activations > 1.2 * on.activations
    assert (off.weights, off.optimizer) == (on.weights, on.optimizer)


def test_a_misspelled_model_key_is_named_once(capsys):
    """It read "model.unknown config key(s) model.latent_channel": the section was prefixed twice."""
    from vidiff.cli import main

    assert main(["train", "--config", str(REPO / "configs/shapes-vae.yaml"), "--dry-run",
                 "--set", "model.latent_channel=4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidiff: error: unknown config key(s) model.latent_channel for VAEConfig"), err


def test_dry_run_takes_the_latent_size_from_the_cache_or_the_vae(tmp_path, capsys):
    """It took data.size over the VAE's factor whatever the cache held (a 32 px cache's 8 x 8 latents as 16 x 16),
    and a factor of 8 without a word when the VAE folder was not there (the Shapes recipe's 16 x 16 as 8 x 8)."""
    import json

    from vidiff.cli import main

    base = ["train", "--config", str(REPO / "configs/shapes-keyframes.yaml"), "--dry-run"]
    assert main([*base, "--set", f"vae={REPO / 'vidiff/bundled/shapes/vae'}"]) == 0
    assert "input (8, 4, 9, 16, 16)" in capsys.readouterr().out
    (tmp_path / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 41, 12, 12]}}))
    assert main([*base, "--set", f"vae={REPO / 'vidiff/bundled/shapes/vae'}", "--set", f"data.root={tmp_path}"]) == 0
    assert "input (8, 4, 9, 12, 12)" in capsys.readouterr().out
    (tmp_path / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 41, 6, 6]}}))  # a traceback before
    assert main([*base, "--set", f"data.root={tmp_path}"]) == 2
    assert "latents are 6x6, and the model's 3 levels" in capsys.readouterr().err
    assert main([*base, "--set", f"vae={tmp_path / 'nope'}"]) == 0
    assert "latents assumed data.size / 8 (8 x 8)" in capsys.readouterr().err
