"""Sharded training (FSDP2 through `accelerate launch` with configs/accelerate/fsdp.yaml, gloo on CPU) and the
refusal of a launch whose processes did not join one group (training/sharding.py)."""
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
import yaml

from vidiff.errors import InputError
from vidiff.training.logging import read_metrics
from vidiff.training.sharding import check_processes

REPO = Path(__file__).resolve().parents[1]
STEPS, KILL_AT = 30, 17


# ---- the world-size check -----------------------------------------------------------------------------

def _accelerator(n, kind="DistributedType.NO"):
    return types.SimpleNamespace(num_processes=n, distributed_type=kind)


def test_world_size_mismatch_is_refused_with_both_numbers():
    with pytest.raises(InputError) as e:
        check_processes(_accelerator(1), {"WORLD_SIZE": "2"})
    msg = str(e.value)
    assert "WORLD_SIZE=2" in msg and "set up 1" in msg and "--multi_gpu" in msg and "\n" not in msg
    check_processes(_accelerator(2, "DistributedType.MULTI_CPU"), {"WORLD_SIZE": "2"})  # agree: no error
    check_processes(_accelerator(1), {})  # no launcher: one process
    cpu_launch = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    with pytest.raises(InputError, match="started one process, whatever --num_processes asked"):
        check_processes(_accelerator(1), cpu_launch)  # `accelerate launch --num_processes 2 --cpu`
    check_processes(_accelerator(1), {"ACCELERATE_USE_CPU": "True"})  # `accelerate launch --cpu`: one, as asked
    with pytest.raises(InputError, match="DeepSpeed"):
        check_processes(_accelerator(2, "DistributedType.DEEPSPEED"), {"WORLD_SIZE": "2"})
    with pytest.raises(InputError, match="DeepSpeed"):  # on CPU Accelerate ignores the request and sets up DDP
        check_processes(_accelerator(2, "DistributedType.MULTI_CPU"), {"WORLD_SIZE": "2",
                                                                      "ACCELERATE_USE_DEEPSPEED": "true"})


def test_train_refuses_before_writing_anything(tmp_path, monkeypatch):
    from accelerate import Accelerator

    from vidiff.config import from_dict
    from vidiff.training.config import TrainConfig, validate
    from vidiff.training.loop import train

    Accelerator(cpu=True)  # the single-process state first, then the launcher's claim of two processes
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = validate(from_dict(TrainConfig, {"stage": "toy", "output_dir": str(tmp_path / "run"),
                                           "data": {"kind": "synthetic", "num_samples": 8},
                                           "train": {"max_steps": 2, "batch_size": 2}}))
    with pytest.raises(InputError, match="WORLD_SIZE=2"):
        train(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("env, refusal", [
    ({"FSDP_VERSION": "1", "FSDP_SYNC_MODULE_STATES": "true"}, "fsdp_version: 1: `vidiff train` shards with FSDP2"),
    ({"FSDP_VERSION": "2", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}, "fsdp_cpu_ram_efficient_loading: true: .*load the text encoder in one process only"),
    ({"FSDP_VERSION": "2", "FSDP_OFFLOAD_PARAMS": "true"}, "fsdp_offload_params: parameter offloading"),
])
def test_fsdp_settings_the_loop_does_not_take_are_refused_before_accelerate_acts_on_them(tmp_path, monkeypatch, env,
                                                                                        refusal):
    """An FSDP accelerate config with fsdp_version: 1 (Accelerate's launcher then sets sync_module_states) stopped in
    Accelerator() with a RuntimeError traceback ("FSDP parameter initialization with `sync_module_states=True` is not
    supported on cpu"), not with the refusal by name. With fsdp_version 2, fsdp_cpu_ram_efficient_loading: true
    (`accelerate launch --use_fsdp`'s default) passed Accelerate, and transformers left the text encoder's weights
    unloaded in every process but local rank 0."""
    from vidiff.config import from_dict
    from vidiff.training.config import TrainConfig, validate
    from vidiff.training.loop import train

    for key, value in {"ACCELERATE_USE_FSDP": "true", **env}.items():
        monkeypatch.setenv(key, value)
    cfg = validate(from_dict(TrainConfig, {"stage": "toy", "output_dir": str(tmp_path / "run"),
                                           "data": {"kind": "synthetic", "num_samples": 8},
                                           "train": {"max_steps": 2, "batch_size": 2}}))
    with pytest.raises(InputError, match=f"^{refusal}"):
        train(cfg)
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # refused before Accelerate looks for the package
    with pytest.raises(InputError, match="^DeepSpeed is not supported by `vidiff train`"):
        train(cfg)


# ---- FSDP vs DDP on the keyframe stage, kill -9 and resume ---------------------------------------------

TINY_UNET = {"in_channels": 4, "out_channels": 4, "block_out_channels": [16, 32], "layers_per_block": 1,
             "attention_levels": [False, True], "mid_attention": True, "num_head_channels": 16,
             "context_dim": 384, "conditioning": True, "use_frame_stride": True, "use_cond_sigma": True,
             "norm_groups": 8, "temporal_attention_backend": "math"}


class _Clips(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def describe(self):
        return {"kind": "test-fsdp", "frames": 8, "size": 16}

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"video": torch.rand(3, 8, 16, 16, generator=g) * 2 - 1,
                "caption": ["a red circle moving left", "a blue square moving up"][i % 2]}


class _PoolVAE(torch.nn.Module):
    """4 latent channels from 2x2-pooled pixels through a fixed linear map."""

    config = {"latent_channels": 4}

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, 12).reshape(4, 3))

    def encode(self, video, sample=False, generator=None):
        pooled = torch.nn.functional.avg_pool3d(video, (1, 2, 2))  # (B, 3, F, 8, 8)
        return torch.einsum("oc,bcfhw->bofhw", self.weight, pooled)  # (B, 4, F, 8, 8)


def _write_config(path: Path, out: Path, cache: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "stage": "keyframes", "output_dir": str(out), "model": TINY_UNET,
        "data": {"kind": "latent_cache", "root": str(cache), "num_frames": 8, "size": 16},
        "conditioning": {"num_keyframes": 4, "keyframe_stride": 2},
        "optimizer": {"lr": 2e-3, "warmup_steps": 3},
        "train": {"max_steps": STEPS, "batch_size": 2, "log_every": 1, "checkpoint_every": KILL_AT,
                  "keep_checkpoints": 3, "ema_decay": 0.9, "seed": 3}}))
    return path


def _launch(args: list[str], cfg: Path, extra: list[str] = (), *, port: int, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", *args, "--main_process_port", str(port), "-m", "vidiff.train", "--config", str(cfg), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _finish(proc) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def _fsdp_config(path: Path) -> Path:
    """configs/accelerate/fsdp.yaml for 2 CPU processes, fp32, with groups small enough to shard the U-Net's blocks."""
    cfg = yaml.safe_load((REPO / "configs/accelerate/fsdp.yaml").read_text())
    cfg.update(num_processes=2, mixed_precision="no")
    cfg["fsdp_config"]["fsdp_min_num_params"] = 20000
    path.write_text(yaml.safe_dump(cfg))
    return path


def _kill_tree(pid: int) -> None:
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for p in reversed(procs):  # workers first, so none outlives its parent
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_fsdp_matches_ddp_and_resumes_exactly(tmp_path, free_port):
    from vidiff.data.latent_cache import build_latent_cache
    from vidiff.text import TextEncoder

    cache = build_latent_cache(_Clips(), _PoolVAE(), TextEncoder.load("default"), tmp_path / "cache",
                               dtype="float32", progress=False)
    fsdp = ["--config_file", str(_fsdp_config(tmp_path / "accelerate-fsdp.yaml"))]
    ddp = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no"]
    runs = {name: _write_config(tmp_path / f"{name}.yaml", tmp_path / name, cache) for name in
            ("ddp", "fsdp", "killed")}
    out = _finish(_launch(ddp, runs["ddp"], port=free_port()))
    out = _finish(_launch(fsdp, runs["fsdp"], port=free_port()))
    assert "FSDP2 over 2 processes" in out and "0 groups" not in out, out[-2000:]

    killed = _launch(fsdp, runs["killed"], port=free_port())
    mark = tmp_path / "killed" / "checkpoints" / f"step_{KILL_AT:08d}" / "manifest.json"
    deadline = time.time() + 600
    while not mark.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    _kill_tree(killed.pid)  # kill -9 the launcher and every worker (torchrun gives them their own sessions)
    killed.communicate()
    logged = read_metrics(tmp_path / "killed" / "metrics.jsonl")
    assert KILL_AT <= logged[-1]["step"] < STEPS, "the run ended before it could be killed"
    out = _finish(_launch(fsdp, runs["killed"], ["--resume", "auto"], port=free_port()))
    assert f"step_{KILL_AT:08d} at step {KILL_AT}" in out, out[-2000:]

    d, f, k = (read_metrics(tmp_path / n / "metrics.jsonl") for n in ("ddp", "fsdp", "killed"))
    assert [r["step"] for r in d] == [r["step"] for r in f] == [r["step"] for r in k] == list(range(1, STEPS + 1))
    assert {r["processes"] for r in f} == {2}
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(d, f)) <= 1e-4
    assert max(abs(a["grad_norm"] - b["grad_norm"]) for a, b in zip(d, f)) <= 1e-3
    assert [r["loss"] for r in k[KILL_AT:]] == [r["loss"] for r in f[KILL_AT:]]  # bit for bit after the resume
    assert f[-1]["loss"] != f[0]["loss"]

    # the checkpoints hold full (gathered) tensors, and the exported EMA part matches the DDP-trained one
    final = _weights(tmp_path / "fsdp" / "checkpoints" / f"step_{STEPS:08d}")
    assert final.keys() == _weights(tmp_path / "ddp" / "checkpoints" / f"step_{STEPS:08d}").keys()
    exported = {n: _weights(tmp_path / n / "export") for n in ("ddp", "fsdp", "killed")}
    assert exported["fsdp"].keys() == exported["ddp"].keys() and len(exported["ddp"]) > 20
    for name, ref in exported["ddp"].items():
        assert exported["fsdp"][name].shape == ref.shape
        assert (exported["fsdp"][name] - ref).abs().max() <= 1e-5, name
        assert torch.equal(exported["killed"][name], exported["fsdp"][name]), name
    print(f"FSDP vs DDP, {STEPS} steps: max loss difference {max(abs(a['loss'] - b['loss']) for a, b in zip(d, f)):.3g}, "
          f"max exported difference {max((exported['fsdp'][n] - r).abs().max().item() for n, r in exported['ddp'].items()):.3g}; "
          f"killed after step {logged[-1]['step']}, resumed from {KILL_AT}: losses of steps {KILL_AT + 1}-{STEPS} equal")


def test_a_self_sharded_model_is_not_handed_to_accelerate(monkeypatch):
    """On GPUs `accelerate launch` with fsdp.yaml puts Accelerate in FSDP2 mode, whose prepare() refuses an
    optimizer without its model (seen on an H200: "When using FSDP2, a model and optimizer must be passed
    together"); on CPU the same launch is MULTI_CPU and accepted it, so CPU runs never saw the refusal. Here
    Accelerate's rule is applied on CPU."""
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer

    from vidiff.training.accelerator import prepare_for_accelerate

    accelerator = Accelerator(cpu=True)
    real_prepare = accelerator.prepare

    def fsdp2_prepare(*objects):
        if not any(isinstance(o, torch.nn.Module) for o in objects):
            raise ValueError("When using FSDP2, a model and optimizer must be passed together")
        return real_prepare(*objects)

    monkeypatch.setattr(accelerator, "prepare", fsdp2_prepare)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    same, wrapped = prepare_for_accelerate(accelerator, model, optimizer, sharded=True)
    assert same is model and isinstance(wrapped, AcceleratedOptimizer) and wrapped.optimizer is optimizer
    prepared, wrapped = prepare_for_accelerate(accelerator, model, torch.optim.AdamW(model.parameters()), False)
    assert isinstance(wrapped, AcceleratedOptimizer) and accelerator.unwrap_model(prepared) is model
