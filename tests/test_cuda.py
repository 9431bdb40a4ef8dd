"""What must hold on a CUDA device (`pytest -m gpu`; skipped where CUDA is absent, as in CI).

Self-contained: a tiny random BERT text encoder with a tiny word-piece vocabulary is written here, so these run on
a GPU machine that has torch and transformers but not the default MiniLM package. Checked: the pipeline on CUDA
gives the CPU's clip (its noise is drawn on the CPU), every attention backend agrees with the fp32 reference in
bf16, and the scaled-down GPU recipes train in bf16 on CUDA with falling loss and resume from a checkpoint.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from scaled_recipes import check_falling_loss, scaled_down
from vidiff.training.config import load_train_config
from vidiff.training.logging import read_metrics

REPO = Path(__file__).resolve().parents[1]
WORDS = "a the red green blue white yellow circle square triangle ball box moving left right up down".split()

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).square().mean().item()
    return 99.0 if mse == 0 else 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory) -> Path:
    """A 384-wide (the default encoder's width), one-layer random BERT saved as safetensors with its tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=5 + len(WORDS), hidden_size=384, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=80)
    BertModel(cfg).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory, load_tool, text_folder) -> Path:
    import yaml

    folder = load_tool("make_random_pipeline").write_random_pipeline(tmp_path_factory.mktemp("pipe") / "p", tiny=True,
                                                                      steps=4)
    cfg = yaml.safe_load((folder / "pipeline.yaml").read_text())
    cfg["text_encoder"] = str(text_folder)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def test_text_to_video_on_cuda_is_the_cpu_clip(tiny_pipeline):
    from vidiff import VideoPipeline

    clips = {}
    for device in ("cpu", "cuda"):
        pipe = VideoPipeline.from_pretrained(tiny_pipeline, device=device)
        clips[device] = pipe.text_to_video("a red circle moving left", seed=3, progress=False)[0]
    assert clips["cuda"].device.type == "cpu" and clips["cuda"].dtype == torch.uint8
    assert clips["cuda"].shape == clips["cpu"].shape == (16, 64, 64, 3)
    # TF32 is off by default for matmuls; cuDNN convolutions may differ from the CPU's in the last bits only
    assert psnr(clips["cuda"], clips["cpu"]) > 40.0


def test_bf16_pipeline_runs_on_cuda_near_fp32(tiny_pipeline):
    from vidiff import VideoPipeline

    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        pipe = VideoPipeline.from_pretrained(tiny_pipeline, device="cuda", dtype=dtype)
        out[dtype] = pipe.text_to_video(["a blue square moving up", "a green ball moving down"], seed=[1, 2],
                                        progress=False)[0]
    assert out[torch.bfloat16].shape == (2, 16, 64, 64, 3)
    # random weights amplify rounding more than trained ones (the bundled bar, 35 dB, is in tools/bench_gpu_check.py)
    assert psnr(out[torch.bfloat16], out[torch.float32]) > 25.0


def test_frames_given_on_the_gpu_are_taken_like_cpu_frames(tiny_pipeline):
    """User frames, images and masks may be CUDA tensors (the API says so): extend, edit (masked), fill and animate
    give what the same CPU inputs give (they met CPU-held frames in a subtraction, a cat or .numpy())."""
    from vidiff import VideoPipeline

    pipe = VideoPipeline.from_pretrained(tiny_pipeline, device="cuda")
    clip = pipe.text_to_video("a red circle moving left", seed=1, progress=False)[0]  # CPU uint8 (16,64,64,3)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[16:48, 16:48] = True
    calls = {
        "extend": lambda f, m: pipe.extend_video(f[-8:], "a red circle", num_frames=4, seed=2, progress=False)[0],
        "edit": lambda f, m: pipe.edit_video(f, "a blue circle", mask=m, seed=2, progress=False)[0],
        "fill": lambda f, m: pipe.fill_between(f[[0, 5, 10]], 5, seed=2),
        "animate": lambda f, m: pipe.image_to_video(f[0], "a red circle", seed=2, progress=False)[0],
    }
    for name, call in calls.items():
        on_cpu, on_gpu = call(clip, mask), call(clip.cuda(), mask.cuda())
        # the same computation on the same GPU; only run-to-run rounding of CUDA kernels may differ
        assert on_gpu.device.type == "cpu" and on_gpu.shape == on_cpu.shape and psnr(on_gpu, on_cpu) > 40.0, name


@pytest.mark.parametrize("backend", ["sdpa", "math", "xformers"])
def test_attention_backend_in_bf16_matches_fp32_reference(backend):
    from vidiff.models.attention import AttentionBackendError, attention

    if backend == "xformers":
        pytest.importorskip("xformers")
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, 300, 64, device="cuda", generator=g) for _ in range(3))
    ref = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1) @ v
    try:
        got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), backend=backend)
    except AttentionBackendError as e:  # an xformers built for another torch / CUDA: refused by name, as it should
        assert backend == "xformers", e
        pytest.skip(str(e).splitlines()[0])
    assert got.dtype == torch.bfloat16 and got.shape == ref.shape
    torch.testing.assert_close(got.float(), ref, atol=2e-2, rtol=2e-2)


@pytest.fixture(scope="module")
def tiny_latents(tmp_path_factory, text_folder) -> Path:
    from vidiff.data.latent_cache import build_latent_cache
    from vidiff.data.shapes_dataset import ShapesDataset
    from vidiff.text import TextEncoder
    from vidiff.vae import AutoencoderKL

    vae = AutoencoderKL.load(REPO / "vidiff/bundled/shapes/vae").eval()
    return build_latent_cache(ShapesDataset(11, 48, 16, 64), vae, TextEncoder.load(text_folder),
                              tmp_path_factory.mktemp("latents"), dtype="float32", progress=False)


@pytest.mark.parametrize("recipe", ["keyframes-256", "interpolation-256"])
def test_scaled_down_gpu_recipe_trains_in_bf16_on_cuda(recipe, tiny_latents, text_folder, tmp_path):
    from vidiff.training.loop import train

    overrides = scaled_down(recipe, tiny_latents, text_folder, checkpoint_every=100, gradient_checkpointing=True)
    cfg = load_train_config(REPO / f"configs/gpu/{recipe}.yaml", overrides + [f"output_dir={tmp_path / 'run'}"])
    run = train(cfg)
    rows = read_metrics(run / "metrics.jsonl")
    first, last = check_falling_loss(rows)
    print(f"{recipe} scaled down on {torch.cuda.get_device_name()}: 200 bf16 steps, loss {first:.4f} -> {last:.4f}")
    assert (run / "export" / "model.safetensors").is_file()
    # resumed from step 100 on the GPU (weights, moments and EMA come back from CPU tensors): the next logged
    # window is the uninterrupted run's, up to CUDA's run-to-run rounding
    from vidiff.training import checkpoint as ckpt

    resumed_cfg = load_train_config(REPO / f"configs/gpu/{recipe}.yaml", overrides + [f"output_dir={tmp_path / 'r'}"])
    resumed = read_metrics(train(resumed_cfg, resume=str(run / "checkpoints" / ckpt.step_dir_name(100)))
                           / "metrics.jsonl")
    want = {r["step"]: r["loss"] for r in rows}
    first = min(step for step in want if step > 100)
    assert resumed[0]["step"] == first and resumed[-1]["step"] == 200
    assert resumed[0]["loss"] == pytest.approx(want[first], rel=0.02)


def test_fsdp_launch_on_one_gpu_trains_and_exports(tiny_latents, text_folder, tmp_path, free_port):
    """`accelerate launch` with configs/accelerate/fsdp.yaml for one process on CUDA: NCCL, bf16, the loop's own
    FSDP2 sharding (DTensor parameters, EMA and checkpoints gathered to full tensors)."""
    import os
    import subprocess
    import sys

    import yaml

    launch_cfg = yaml.safe_load((REPO / "configs/accelerate/fsdp.yaml").read_text())
    launch_cfg.update(num_processes=1)
    launch_cfg["fsdp_config"]["fsdp_min_num_params"] = 20000  # small enough to shard the tiny U-Net's blocks
    (tmp_path / "fsdp.yaml").write_text(yaml.safe_dump(launch_cfg))
    overrides = scaled_down("keyframes-256", tiny_latents, text_folder, steps=40, checkpoint_every=20,
                            gradient_checkpointing=True)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "fsdp.yaml"),
           "--main_process_port", str(free_port()), "-m", "vidiff.train",
           "--config", str(REPO / "configs/gpu/keyframes-256.yaml"), f"--set=output_dir={tmp_path / 'run'}",
           *[f"--set={o}" for o in overrides]]
    out = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path])),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert rows[-1]["step"] == 40 and sum(r["skipped"] for r in rows) == 0
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "run" / "export" / "model.safetensors")
    assert weights and all(torch.isfinite(w).all() for w in weights.values())


def _moving(frames: int, step: int, size: int) -> torch.Tensor:
    """uint8 (frames,size,size,3): a smooth picture moving `step` px left per frame (test_decoded_loss.py has the same
    picture, but that module needs OpenCV to import, which a bare GPU machine lacks)."""
    x = torch.arange(size + step * (frames - 1), dtype=torch.float64)
    y = torch.arange(size, dtype=torch.float64)[:, None]
    pic = torch.stack([128 + 90 * torch.sin(x / 5 + y / 7), 128 + 80 * torch.cos(y / 4 - x / 9),
                       128 + 60 * torch.sin((x + y) / 6)], dim=-1)
    return torch.stack([pic[:, i * step:i * step + size] for i in range(frames)]).round().to(torch.uint8)


@pytest.mark.parametrize("decoded", [False, True])
def test_flow_anchored_interpolation_scores_cuda_batches_like_cpu_batches(flow_pipe, text_folder, decoded,
                                                                          monkeypatch):
    """`diffusion.anchor: known_flow` (configs/real-interpolation.yaml) computes optical flow on the batch's pixel
    frames, which the loop hands over on the GPU: the stage's loss there is the CPU's for the same draws. Where
    OpenCV is absent (a bare GPU machine) a zero flow stands in for it: the path of the frames is the same."""
    import dataclasses as dc
    import importlib.util

    if importlib.util.find_spec("cv2") is None:
        monkeypatch.setattr("vidiff.optical_flow.dis_flow", lambda a, b: np.zeros((*a.shape[:2], 2), np.float32))
        monkeypatch.setattr("vidiff.optical_flow.backward_warp", lambda image, flow: image.astype(np.float32))

    from vidiff.models import UNet3DConfig
    from vidiff.parts import load_part_config
    from vidiff.random import SampleDraws
    from vidiff.training.config import TrainConfig, from_dict, validate
    from vidiff.training.stages import latent_stage
    from vidiff.vae import AutoencoderKL

    net = dc.asdict(load_part_config(flow_pipe / "interpolation", UNet3DConfig))
    cfg = validate(from_dict(TrainConfig, {
        "stage": "interpolation", "data": {"kind": "latent_cache", "root": "x"}, "model": net,
        "diffusion": {"anchor": "known_flow", "sigma_data": 0.3}, "vae": str(flow_pipe / "vae"),
        "text_encoder": str(text_folder), "init_weights": str(flow_pipe / "interpolation"), "decoded_loss": {"enabled": decoded},
        "conditioning": {"min_gap": 2, "max_gap": 4, "drop_cond_prob": 0.0, "drop_text_prob": 0.0}}))
    vae = AutoencoderKL.load(flow_pipe / "vae").eval()
    pixels = torch.stack([_moving(5, 1, 32), _moving(5, 2, 32)])  # (2,5,32,32,3)
    with torch.no_grad():
        latents = torch.cat([vae.encode_frames(p) for p in pixels])
    losses = {}
    for device in ("cpu", "cuda"):
        stage = latent_stage(cfg, dataset=[]).to(device)
        stage.model.to(device)
        context, mask = stage.text_encoder().encode(["", ""])
        batch = {"latents": latents.to(device), "pixels": pixels.to(device), "context": context.to(device),
                 "context_mask": mask.to(device), "caption": ["", ""]}
        loss = stage.loss(stage.model, batch, SampleDraws(0, [0, 0], 3, [0, 1]), 3)
        loss.sum().backward()
        losses[device] = loss.detach().cpu()
    assert torch.isfinite(losses["cuda"]).all() and (losses["cuda"] > 0).all()
    torch.testing.assert_close(losses["cuda"], losses["cpu"], rtol=1e-2, atol=1e-4)


def test_prompt_cache_follows_the_pipeline_to_the_gpu(tiny_pipeline):
    """A prompt encoded on the CPU, then the pipeline moved: a batch of that prompt and a new one runs on CUDA."""
    from vidiff import VideoPipeline

    prompts = ["a red circle moving left", "a blue square moving up"]
    on_cpu = VideoPipeline.from_pretrained(tiny_pipeline).text_to_video(prompts, seed=3, progress=False)[0]
    pipe = VideoPipeline.from_pretrained(tiny_pipeline)
    pipe.text_to_video(prompts[0], seed=3, progress=False)  # prompts[0] cached on the CPU, prompts[1] new
    pipe.to("cuda")
    on_gpu = pipe.text_to_video(prompts, seed=3, progress=False)[0]
    assert on_gpu.shape == on_cpu.shape and psnr(on_gpu, on_cpu) > 40.0
