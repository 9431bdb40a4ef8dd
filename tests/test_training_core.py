"""Training building blocks: config, LR schedule, EMA, per-sample randomness, checkpoint files."""
import math
import re
from pathlib import Path

import pytest
import torch

from vidiff.config import ConfigError, from_dict
from vidiff.training import checkpoint as ckpt
from vidiff.training.config import OptimizerSection, TrainConfig, config_hash, validate
from vidiff.training.ema import EMA
from vidiff.training.lr import lr_at
from vidiff.random import SampleDraws, global_sample_ids


def toy_config(**over) -> TrainConfig:
    data = {"stage": "toy", "model": {"dim": 4, "width": 8}, "data": {"kind": "synthetic", "num_samples": 10}}
    data.update(over)
    return validate(from_dict(TrainConfig, data))


def test_unknown_and_bad_keys_are_named():
    with pytest.raises(ConfigError, match="train.max_stepz"):
        from_dict(TrainConfig, {"train": {"max_stepz": 3}})
    with pytest.raises(ConfigError, match="model.depth"):
        toy_config(model={"depth": 3})
    with pytest.raises(ConfigError, match="train.batch_size"):
        toy_config(train={"batch_size": 0})
    with pytest.raises(ConfigError, match="mixed_precision"):
        from_dict(TrainConfig, {"train": {"mixed_precision": "fp8"}})


def test_config_hash_ignores_only_reporting_keys():
    a = toy_config()
    assert config_hash(a) == config_hash(toy_config(output_dir="elsewhere", train={"log_every": 7}))
    # a speed-for-memory switch with the same values: a run may resume with it changed (another machine)
    assert config_hash(a) == config_hash(toy_config(train={"activation_recompute": False}))
    # how long a process waits for the others does not change what they train (a resume may set it)
    assert config_hash(a) == config_hash(toy_config(train={"process_timeout_s": 60}))
    assert config_hash(a) != config_hash(toy_config(optimizer={"lr": 1e-3}))
    grammar = {"captions": "shapes_grammar"}
    assert config_hash(toy_config(conditioning=grammar)) != config_hash(
        toy_config(conditioning={**grammar, "path_captions_from_step": 100}))


def test_a_process_timeout_that_never_ends_is_refused():
    assert toy_config(train={"process_timeout_s": 2.5}).train.process_timeout_s == 2.5
    for bad in (0, -3, 1e300):  # a wait of 0 never ended, 1e300 s overflowed a timedelta
        with pytest.raises(ConfigError, match=r"train.process_timeout_s: must be seconds > 0, at most 1e6, or null "
                           rf"\(the backend's default\), got {re.escape(str(float(bad)))}$"):
            toy_config(train={"process_timeout_s": bad})
    with pytest.raises(ConfigError, match="train.process_timeout_s: expected a finite number, got inf"):
        toy_config(train={"process_timeout_s": float("inf")})


def test_a_collectives_failure_is_told_as_the_other_processes_and_nothing_else_is():
    from vidiff.training.sharding import peer_failure

    gloo = "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1"
    assert peer_failure(RuntimeError(gloo), 2) == "the connection to the others closed"
    assert peer_failure(RuntimeError(gloo), 1) is None  # one process has no others
    waited = "[../gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 8000ms for recv operation to complete"
    assert peer_failure(RuntimeError(waited), 4) == "the others did not answer within 8 s (train.process_timeout_s)"
    assert peer_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"), 2) is None
    nccl = torch.distributed.DistBackendError("NCCL error in: ProcessGroupNCCL.cpp:1, unhandled system error")
    assert peer_failure(nccl, 2).startswith("a collective with the others failed (NCCL error in")


def test_lr_warmup_then_cosine_to_floor():
    o = OptimizerSection(lr=1.0, warmup_steps=10, cosine_decay=True, min_lr_ratio=0.1)
    assert lr_at(0, o, 110) == pytest.approx(0.1)
    assert lr_at(9, o, 110) == pytest.approx(1.0)
    assert lr_at(10, o, 110) == pytest.approx(1.0)
    assert lr_at(60, o, 110) == pytest.approx(0.55)  # halfway: floor + (1 - floor) / 2
    assert lr_at(110, o, 110) == pytest.approx(0.1)


def test_ema_matches_closed_form():
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    ema = EMA(model, decay=0.5)
    expected = 0.0
    for n in range(5):
        model.weight.data.fill_(float(n + 1))
        d = min(0.5, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * (n + 1)
        ema.update(model)
    assert ema.shadow["weight"].item() == pytest.approx(expected, rel=1e-6)


def test_ema_averages_every_parameter_and_copies_buffers_tied_weights_included():
    """The update runs as one foreach call: each float parameter (a tied one under every name) is averaged, a
    buffer is copied, and the shadow loads back into a model."""
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2, bias=True)
            self.b = torch.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight  # tied: state_dict holds it as a.weight and b.weight
            self.norm = torch.nn.BatchNorm1d(2)  # running stats (float) and num_batches_tracked (int) buffers

    model = Tied()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.a.weight.add_(1.0)
        model.a.bias.add_(2.0)
        model.norm.running_mean.fill_(3.0)
        model.norm.num_batches_tracked.fill_(7)
    ema.update(model)
    d = min(0.5, 1 / 10)  # the warm-up decay of the first update
    for name in ("a.weight", "b.weight"):
        torch.testing.assert_close(ema.shadow[name], d * start[name] + (1 - d) * (start[name] + 1.0))
    torch.testing.assert_close(ema.shadow["a.bias"], d * start["a.bias"] + (1 - d) * (start["a.bias"] + 2.0))
    assert torch.equal(ema.shadow["norm.running_mean"], torch.full((2,), 3.0))
    assert int(ema.shadow["norm.num_batches_tracked"]) == 7
    copy = Tied()
    ema.copy_to(copy)
    torch.testing.assert_close(copy.b.weight, ema.shadow["b.weight"])


def test_draws_do_not_depend_on_batch_split():
    ids_one = global_sample_ids(step=3, micro=0, rank=0, batch_size=4, grad_accum=1, world=1)
    ids_two = [global_sample_ids(3, 0, r, 2, 1, 2) for r in range(2)]
    assert ids_one == ids_two[0] + ids_two[1]
    whole = SampleDraws(0, [0] * 4, 3, ids_one).randn((5,), "noise")
    halves = [SampleDraws(0, [0] * 2, 3, ids).randn((5,), "noise") for ids in ids_two]
    assert torch.equal(whole, torch.cat(halves))
    assert not torch.equal(whole, SampleDraws(0, [0] * 4, 3, ids_one).randn((5,), "sigma"))


def test_optimizer_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    for _ in range(3):
        model(torch.randn(4, 3)).square().mean().backward()
        opt.step()
    tensors, meta = ckpt.flatten_optimizer_state(opt.state_dict())
    folder = ckpt.save_checkpoint(tmp_path, 3, {"optimizer": tensors}, {"optimizer": meta}, "h", keep=2)
    _, t, j = ckpt.load_checkpoint(folder)
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=5.0)
    opt2.load_state_dict(ckpt.unflatten_optimizer_state(t["optimizer"], j["optimizer"]))
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for k in a["state"][pid]:
            assert torch.equal(a["state"][pid][k], b["state"][pid][k])


def test_incomplete_and_altered_checkpoints_are_never_picked(tmp_path):
    sd = {"model": {"w": torch.arange(4.0)}}
    ckpt.save_checkpoint(tmp_path, 1, sd, {"state": {"step": 1}}, "h", keep=5)
    ckpt.save_checkpoint(tmp_path, 2, sd, {"state": {"step": 2}}, "h", keep=5)
    # a save killed before its manifest, and one whose file changed after it was written
    (tmp_path / "step_00000003").mkdir()
    (tmp_path / "step_00000003" / "model.safetensors").write_bytes(b"partial")
    (tmp_path / "step_00000002" / "model.safetensors").write_bytes(b"flipped")
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000001"
    (tmp_path / ".tmp-step_00000004-abcd").mkdir()
    ckpt.save_checkpoint(tmp_path, 5, sd, {"state": {"step": 5}}, "h", keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    # temp, manifest-less and altered folders are gone; rotation keeps the newest 2 that verify in full (sizes and
    # sha256), so the altered step 2 never counts toward keep and the good step 1 survives
    assert names == ["step_00000001", "step_00000005"]
    assert all(ckpt.verify(tmp_path / n) for n in names)


def test_a_kill_while_rotation_removes_a_checkpoint_leaves_no_part_of_it_under_its_name(tmp_path, monkeypatch):
    """Rotation removed an old checkpoint in place: a kill after its first file left the rest as step_X, which no
    longer verified (the kill sweep's invariant) and which the next rotation removed warning of a corrupt
    checkpoint. It is renamed to a temp name first."""
    import shutil

    sd = {"model": {"w": torch.arange(4.0)}, "ema": {"w": torch.ones(4)}}
    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, sd, {"state": {"step": step}}, "h", keep=2)
    rmtree = shutil.rmtree

    def killed_after_one_file(folder, *args, **kwargs):
        next(Path(folder).glob("*.safetensors")).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.shutil, "rmtree", killed_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, 3, sd, {"state": {"step": 3}}, "h", keep=2)  # rotation removes step 1
    monkeypatch.setattr(ckpt.shutil, "rmtree", rmtree)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [2, 3]
    assert all(ckpt.verify(folder) for _, folder in ckpt.list_checkpoints(tmp_path))
    ckpt.save_checkpoint(tmp_path, 4, sd, {"state": {"step": 4}}, "h", keep=2)  # the next save clears the rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000003", "step_00000004"]


def test_every_stage_implements_the_stage_protocol():
    from vidiff.training.stage import Stage
    from vidiff.training.stages import LatentDiffusionStage
    from vidiff.training.vae_stage import VAEStage
    from vidiff.training.toy import ToyStage

    for cls in (LatentDiffusionStage, VAEStage, ToyStage):
        for name in ("to", "loss", "export"):
            assert callable(getattr(cls, name)), (cls, name)
    assert not isinstance(object(), Stage)


def test_ranges_and_a_too_short_latent_cache_are_refused_before_anything_loads(tmp_path):
    """train.seed -1 was a traceback deep in the sampler, num_workers -1 one in the DataLoader; a 17-frame latent
    cache under layouts spanning 41 frames was found out at the first step, after the VAE and text encoder loaded."""
    import json

    from vidiff.training.config import load_train_config

    configs = Path(__file__).resolve().parents[1] / "configs"

    for key, value in (("train.seed", -1), ("train.num_workers", -1), ("train.preview_every", -5)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_train_config(configs / "shapes-vae.yaml", [f"{key}={value}"])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 17, 16, 16]}}))
    over = [f"data.root={cache}"]
    with pytest.raises(ConfigError, match="clips have 17 frames, fewer than the 41"):
        load_train_config(configs / "shapes-keyframes.yaml", over)
    load_train_config(configs / "shapes-keyframes.yaml", over + ["conditioning.max_keyframes=4"])  # spans 16
    # a cache of 8-frame clips under gaps up to 8: gap 8 was never drawn, yet the part recorded it as trained
    (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 8, 16, 16]}}))
    with pytest.raises(ConfigError, match=r"clips have 8 frames, fewer than the 9 of the largest window "
                                          r"\(conditioning.max_gap \+ 1\); lower conditioning.max_gap"):
        load_train_config(configs / "shapes-interpolation.yaml", over)
    load_train_config(configs / "shapes-interpolation.yaml", over + ["conditioning.max_gap=7"])
    (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 17, 16, 16]}}))
    # the index is read as the dataset reads it: a FIFO in its place returns at once (it blocked the config load)
    import os
    import subprocess
    import sys

    (cache / "index.json").unlink()
    os.mkfifo(cache / "index.json")
    code = ("from vidiff.training.config import load_train_config as load; "
            f"load({str(configs / 'shapes-keyframes.yaml')!r}, ['data.root={cache}'])")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_data_size_other_than_the_latent_caches_is_refused(tmp_path):
    """A run on a latent cache reads no frames: data.size 32 on a cache of 64 px clips trained the part on 16x16
    latents, and the export wrote height / width 32 to pipeline.yaml, which then generated at 8x8 latents."""
    import json

    from vidiff.training.config import load_train_config

    config = Path(__file__).resolve().parents[1] / "configs" / "shapes-keyframes.yaml"
    cache = tmp_path / "cache"
    cache.mkdir()
    for size in ([64, 64], 64):  # `vidiff data cache --size 64`, and a ShapesDataset's own size
        (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 41, 16, 16]},
                                                      "dataset": {"size": size}}))
        with pytest.raises(ConfigError, match=r"^data.size: 32, but the latent cache data.root holds 64x64 frames "
                                              r"\(`vidiff data cache --size 64`\); set data.size=64$"):
            load_train_config(config, [f"data.root={cache}", "data.size=32"])
        assert load_train_config(config, [f"data.root={cache}"]).data.size == 64


def test_a_data_kind_the_stage_does_not_read_is_refused(tmp_path):
    """The vae stage read `data.kind: latent_cache` as a video folder (it trained on data.root's clips), and the
    control stage ignored `data.kind` and `data.root` altogether (it renders Shapes clips)."""
    from vidiff.training.config import load_train_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    with pytest.raises(ConfigError, match="data.kind: the vae stage reads video_folder or shapes or real_corpus "
                                          "data, not latent_cache"):
        load_train_config(configs / "shapes-vae.yaml", ["data.kind=latent_cache"])
    with pytest.raises(ConfigError, match="data.kind: the control stage reads shapes data, not video_folder"):
        load_train_config(configs / "shapes-control-keyframes.yaml", ["data.kind=video_folder", f"data.root={tmp_path}"])
    assert load_train_config(configs / "shapes-vae.yaml", ["data.kind=shapes"]).data.kind == "shapes"


def test_data_fps_is_checked_with_the_config(tmp_path):
    """data.fps 0 was a ZeroDivisionError traceback at the first clip, -3 an error from inside a DataLoader worker
    after the run folder was made; an fps beside the recipe's stride said "give either stride or fps" without the
    keys."""
    from vidiff.data.video_folder import VideoFolderDataset
    from vidiff.errors import InputError
    from vidiff.training.config import load_train_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    for fps in (0, -3):
        with pytest.raises(ConfigError, match=f"data.fps: must be a frame rate > 0 or null .*got {float(fps)}"):
            load_train_config(configs / "shapes-vae.yaml", [f"data.fps={fps}", "data.stride=1"])
    with pytest.raises(ConfigError, match="data.fps / data.stride: give one of them .*set data.stride=1"):
        load_train_config(configs / "shapes-vae.yaml", ["data.fps=8"])
    assert load_train_config(configs / "shapes-vae.yaml", ["data.fps=8", "data.stride=1"]).data.fps == 8.0
    with pytest.raises(ConfigError, match=r"data.stride 3 takes every 3rd frame\)"):  # was "every 3th frame"
        load_train_config(configs / "shapes-vae.yaml", ["data.fps=8", "data.stride=3"])
    with pytest.raises(InputError, match="fps must be a positive number or None, got 0"):
        VideoFolderDataset(tmp_path, num_frames=2, fps=0)


def test_ordinals_are_english():
    from vidiff.training.config_checks import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 10, 11, 12, 13, 21, 22, 23, 101, 111, 112, 113, 121)] == [
        "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "112th",
        "113th", "121st"]


def test_own_captions_on_the_keyframe_recipe_name_every_grammar_key_at_once():
    """docs/training.md said `--set conditioning.captions=dataset` turns a Shapes recipe to your own captions; on the
    keyframe recipe that was refused for path_captions_from_step, and once that was set, for
    direction_pairs_from_step: one try per key. One error now names both, with the --set values that clear them."""
    from vidiff.training.config import load_train_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "shapes-keyframes.yaml"
    with pytest.raises(ConfigError) as e:
        load_train_config(recipe, ["conditioning.captions=dataset"])
    assert str(e.value).startswith("conditioning.path_captions_from_step and conditioning.direction_pairs_from_step "
                                   "need the Shapes caption grammar")
    assert str(e.value).endswith("--set conditioning.path_captions_from_step=0 "
                                 "--set conditioning.direction_pairs_from_step=null")
    cfg = load_train_config(recipe, ["conditioning.captions=dataset", "conditioning.path_captions_from_step=0",
                                     "conditioning.direction_pairs_from_step=null"])
    assert (cfg.conditioning.captions, cfg.conditioning.direction_pairs_from_step) == ("dataset", None)


def test_preview_settings_are_checked_with_the_config():
    """With train.preview_every set, an empty train.preview_prompts ended the keyframe run at its first preview in a
    torch.stack RuntimeError traceback, and train.preview_steps 0 in an error naming the sampler's num_steps, both
    after training had started."""
    from vidiff.training.config import load_train_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "shapes-keyframes.yaml"
    with pytest.raises(ConfigError, match=r"train.preview_prompts: empty, with train.preview_every 1000"):
        load_train_config(recipe, ["train.preview_prompts=[]"])
    for steps in (0, 5000):
        with pytest.raises(ConfigError, match=rf"train.preview_steps: must be in 1..1000 .*got {steps}"):
            load_train_config(recipe, [f"train.preview_steps={steps}"])
    cfg = load_train_config(recipe, ["train.preview_prompts=[]", "train.preview_steps=0", "train.preview_every=0"])
    assert (cfg.train.preview_prompts, cfg.train.preview_every) == ((), 0)


def test_a_preview_prompt_that_is_not_utf8_is_refused_with_the_config():
    """An emoji escaped as in JSON ("\\ud83d\\ude00") in a YAML double-quoted preview prompt is read as two lone
    surrogates, not text: it passed the config and ended the run at its first preview, after training, in the
    tokenizer's TypeError traceback."""
    from vidiff.training.config import load_train_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "shapes-keyframes.yaml"
    value = r'train.preview_prompts=["a red circle", "a red circle \ud83d\ude00"]'
    with pytest.raises(ConfigError, match=r"train.preview_prompts: not valid UTF-8 text \(undecodable byte at "
                                          r"character 13\)"):
        load_train_config(recipe, [value])
    assert load_train_config(recipe, [value, "train.preview_every=0"]).train.preview_every == 0  # not drawn: no check
    emoji = load_train_config(recipe, [r'train.preview_prompts=["a red circle \U0001F600"]']).train.preview_prompts
    assert emoji == ("a red circle \U0001F600",)


def test_a_frame_size_off_the_vae_grid_is_refused_with_the_config(tmp_path):
    """data.size 62 with a factor-4 VAE was refused at the first step as "video: height and width must be multiples
    of 4", after config.yaml and metrics.jsonl were written (and, in a latent stage, the VAE and text encoder had
    loaded), naming no key."""
    from vidiff.training.config import load_train_config
    from vidiff.vae import AutoencoderKL, VAEConfig

    configs = Path(__file__).resolve().parents[1] / "configs"
    with pytest.raises(ConfigError, match=r"data.size: 62 is not a multiple of the VAE's \(model.block_out_channels\) "
                                          r"downsampling factor 4 \(e.g. 60\)"):
        load_train_config(configs / "shapes-vae.yaml", ["data.size=62"])
    AutoencoderKL(VAEConfig(block_out_channels=(8, 16, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    over = ["data.kind=shapes", f"vae={tmp_path / 'vae'}"]
    with pytest.raises(ConfigError, match=f"data.size: 62 is not a multiple of vae {tmp_path / 'vae'}'s downsampling "
                                          "factor 4"):
        load_train_config(configs / "shapes-interpolation.yaml", over + ["data.size=62"])
    assert load_train_config(configs / "shapes-interpolation.yaml", over + ["data.size=60"]).data.size == 60


def test_a_cache_of_another_text_encoder_or_width_is_refused_with_the_config(tmp_path):
    """A cache encoded with one text encoder trained under another of the same width without a word (the part
    recorded the configured one); another width, or a model.context_dim off the encoder's, was a size-mismatch
    traceback at the first step."""
    import json

    from test_text import _tiny_bert

    from vidiff.text import TextEncoder
    from vidiff.training.config import load_train_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    a, b = _tiny_bert(tmp_path / "a", 0), _tiny_bert(tmp_path / "b", 1)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [4, 41, 16, 16], "context": [77, 32]},
                                                  "text_encoder": TextEncoder.load(a).identifier}))
    own = [f"data.root={cache}", "conditioning.captions=dataset", "conditioning.path_captions_from_step=0",
           "conditioning.direction_pairs_from_step=null", "model.context_dim=32"]
    load_train_config(configs / "shapes-keyframes.yaml", own + [f"text_encoder={a}"])
    with pytest.raises(ConfigError, match=r"text_encoder: .*/b is not the encoder the latent cache data\.root"):
        load_train_config(configs / "shapes-keyframes.yaml", own + [f"text_encoder={b}"])
    with pytest.raises(ConfigError, match=r"model\.context_dim: 384, but the latent cache .* holds 32-wide"):
        load_train_config(configs / "shapes-keyframes.yaml", own[:-1] + [f"text_encoder={a}"])
    # the recipe's grammar captions are encoded afresh: the encoder's own width must match the model's
    with pytest.raises(ConfigError, match=r"model\.context_dim: 384, but the text encoder .*/a gives 32-wide"):
        load_train_config(configs / "shapes-interpolation.yaml", [f"text_encoder={a}"])


def test_a_u_net_that_cannot_take_what_its_latent_stage_feeds_is_refused_with_the_config(tmp_path):
    """model.conditioning: false (the U-Net's default) in a latent stage, model.in_channels off the VAE's or the latent
    cache's channels, and model.out_channels off in_channels were each a traceback at the first step, after the
    models loaded and the run folder was written."""
    import json

    from vidiff.training.config import load_train_config
    from vidiff.vae import AutoencoderKL, VAEConfig

    configs = Path(__file__).resolve().parents[1] / "configs"
    for recipe in ("shapes-keyframes", "shapes-interpolation"):
        with pytest.raises(ConfigError, match=r"^model.conditioning: the (keyframes|interpolation) stage feeds the "
                                              r"U-Net known frames, which it takes only with model.conditioning: true"):
            load_train_config(configs / f"{recipe}.yaml", ["model.conditioning=false"])
    with pytest.raises(ConfigError, match=r"^model.out_channels: 3, but the U-Net predicts latents of its "
                                          r"model.in_channels \(4\); set them equal$"):
        load_train_config(configs / "shapes-interpolation.yaml", ["model.out_channels=3"])
    AutoencoderKL(VAEConfig(latent_channels=8, block_out_channels=(8, 16, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    over = ["data.kind=shapes", f"vae={tmp_path / 'vae'}"]
    with pytest.raises(ConfigError, match=rf"^model.in_channels: 4, but the VAE {tmp_path / 'vae'} gives latents of 8 "
                                          r"channels; set model.in_channels=8 and model.out_channels=8$"):
        load_train_config(configs / "shapes-interpolation.yaml", over)
    assert load_train_config(configs / "shapes-interpolation.yaml",
                             over + ["model.in_channels=8", "model.out_channels=8"]).vae == str(tmp_path / "vae")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.json").write_text(json.dumps({"shapes": {"latents": [8, 41, 16, 16], "context": [32, 384]}}))
    with pytest.raises(ConfigError, match=r"^model.in_channels: 4, but the latent cache data.root .*/cache gives "
                                          r"latents of 8 channels"):
        load_train_config(configs / "shapes-keyframes.yaml", [f"data.root={cache}"])


def test_processes_launched_for_gpus_on_a_cpu_are_told_so(monkeypatch):
    """configs/accelerate/ddp.yaml (8 processes, use_cpu: false) ran as 8 CPU processes on a 2-core machine without
    a word; CPU processes asked for as such, no more than the cores, are not warned of."""
    import os

    from vidiff.training.accelerator import cpu_processes_note

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("ACCELERATE_USE_CPU", "False")
    note = cpu_processes_note(cores + 6, cuda=False)
    assert note.startswith(f"no GPU here: the {cores + 6} processes train on the CPU (the launch was for GPUs")
    assert f"{cores + 6} processes share {cores} CPU cores" in note
    assert cpu_processes_note(8, cuda=True) is None and cpu_processes_note(1, cuda=False) is None
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert cpu_processes_note(cores, cuda=False) is None
    assert "share" in cpu_processes_note(cores + 1, cuda=False)


def test_warnings_are_said_by_the_main_process_only(monkeypatch, capsys):
    """Under `accelerate launch` every process met the same checks and each said them (two copies at 2 processes)."""
    from vidiff import cli

    cli._warned.clear()
    monkeypatch.setenv("RANK", "1")
    cli._say_warning("train.max_steps 6 -> 9")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    cli._say_warning("train.max_steps 6 -> 9")
    assert capsys.readouterr().err == "vidiff: warning: train.max_steps 6 -> 9\n"


def test_a_docs_recipe_missing_from_where_train_runs_says_where_recipes_live(tmp_path, monkeypatch):
    """`vidiff train --config configs/shapes-vae.yaml` from a pip install (no configs/ folder) said only "config
    file not found", though every doc names the recipes so."""
    from vidiff.training.config import load_train_config

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"configs/shapes-vae\.yaml \(the recipes in configs/ come with a clone"):
        load_train_config("configs/shapes-vae.yaml")
    with pytest.raises(ConfigError, match=r"^config file not found: mine\.yaml$"):
        load_train_config("mine.yaml")
