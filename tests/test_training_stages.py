import dataclasses
"""The real stages on tiny models: conditioning draws, frame selection, VAE / diffusion losses through the loop."""
import pytest
import torch
from safetensors.torch import load_file

from vidiff.config import from_dict
from vidiff.training import conditioning as cond
from vidiff.training.config import ConditioningSection, TrainConfig, validate
from vidiff.training.logging import read_metrics
from vidiff.training.loop import train
from vidiff.random import SampleDraws

TINY_UNET = {"in_channels": 4, "out_channels": 4, "block_out_channels": [16, 32], "layers_per_block": 1,
             "attention_levels": [False, True], "mid_attention": False, "num_head_channels": 16,
             "context_dim": 384, "conditioning": True, "use_frame_stride": True, "use_cond_sigma": True,
             "norm_groups": 8}
TINY_VAE = {"latent_channels": 4, "block_out_channels": [16, 16, 16], "layers_per_block": 1, "norm_groups": 8,
            "mid_attention": False}


def draws(n, step=0):
    return SampleDraws(0, [0] * n, step, list(range(n)))


def test_patterns_and_dropout():
    c = ConditioningSection(pattern_none=0, pattern_first=0, pattern_first_k=1, pattern_random_subset=0,
                            max_first_k=2, drop_cond_prob=0.0)
    m = cond.keyframe_masks(draws(64), 4, c)
    k = m.sum(1)
    assert set(k.tolist()) == {1.0, 2.0} and bool((m[:, 0] == 1).all())
    assert torch.equal(m, m.cummin(dim=1).values)  # a prefix of known frames
    subset = ConditioningSection(pattern_none=0, pattern_first=0, pattern_first_k=0, pattern_random_subset=1)
    m = cond.keyframe_masks(draws(200), 4, subset)
    assert (m.sum(1) < 4).all() and 0.3 < m.mean() < 0.6
    dropped = cond.keyframe_masks(draws(8), 4, ConditioningSection(pattern_none=0, drop_cond_prob=1.0))
    assert dropped.abs().sum() == 0
    ends = cond.interpolation_masks(draws(3), 5, ConditioningSection(drop_cond_prob=0.0))
    assert ends.tolist() == [[1, 0, 0, 0, 1]] * 3


def test_known_frame_augmentation():
    latents = torch.randn(3, 4, 5, 2, 2)
    mask = torch.tensor([[1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0]]).float()
    c, sigma = cond.augment_known(latents, mask, draws(3), max_sigma=0.2)
    assert sigma[1] == 0 and 0 < sigma[0] <= 0.2
    assert c[1].abs().sum() == 0 and c[0, :, 1:4].abs().sum() == 0
    err = (c[0, :, 0] - latents[0, :, 0]).std()
    assert 0.3 * sigma[0] < err < 3 * sigma[0]  # the added noise has the drawn level


def test_drop_text_uses_null_encoding():
    ctx, m = torch.randn(4, 3, 2), torch.ones(4, 3, dtype=torch.bool)
    null = (torch.zeros(1, 3, 2), torch.tensor([[True, False, False]]))
    out, om = cond.drop_text(ctx, m, null, draws(4), prob=1.0)
    assert out.abs().sum() == 0 and om.sum() == 4
    out, om = cond.drop_text(ctx, m, null, draws(4), prob=0.0)
    assert torch.equal(out, ctx)


class LatentClips(torch.utils.data.Dataset):
    """Latents whose value is the frame index, so a test can see which frames were picked."""

    def __init__(self, n=6, frames=16):
        self.n, self.frames = n, frames

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        lat = torch.arange(self.frames, dtype=torch.float32)[None, :, None, None].expand(4, -1, 4, 4) / 8
        g = torch.Generator().manual_seed(i)
        noisy = lat + 0.05 * torch.randn(lat.shape, generator=g)
        noisy[0] = lat[0]  # channel 0 carries the exact frame index
        return {"latents": noisy, "context": torch.randn(7, 384, generator=g),
                "context_mask": torch.ones(7, dtype=torch.bool), "caption": f"clip {i}"}


def latent_cfg(tmp_path, stage, **over):
    data = {"stage": stage, "output_dir": str(tmp_path / stage), "model": TINY_UNET,
            "data": {"kind": "latent_cache", "root": "unused", "num_frames": 16},
            "conditioning": {"num_keyframes": 4, "keyframe_stride": 5, "min_gap": 2, "max_gap": 5},
            "optimizer": {"lr": 1e-3, "warmup_steps": 2},
            "train": {"max_steps": 3, "batch_size": 2, "log_every": 1, "checkpoint_every": 100}}
    data.update(over)
    return validate(from_dict(TrainConfig, data))


@pytest.fixture(scope="module")
def null_text():
    return torch.zeros(1, 7, 384), torch.zeros(1, 7, dtype=torch.bool)


@pytest.mark.parametrize("stage_name", ["keyframes", "interpolation"])
def test_frame_selection(tmp_path, stage_name, null_text):
    from vidiff.training.stages import LatentDiffusionStage

    stage = LatentDiffusionStage(latent_cfg(tmp_path, stage_name), dataset=LatentClips(frames=16))
    lat = torch.stack([LatentClips(frames=16)[i]["latents"] for i in range(8)])
    for step in range(5):
        x0, mask, stride, idx = stage._frames(lat, draws(8, step), step)
        frame_ids = (x0[:, 0, :, 0, 0] * 8).round()  # (B, F) picked frame indices
        assert torch.equal(idx.to(frame_ids.dtype), frame_ids)
        steps = frame_ids[:, 1:] - frame_ids[:, :-1]
        if stage_name == "keyframes":
            assert x0.shape[2] == 4 and bool((steps == 5).all()) and stride == 5.0
        else:
            gap = x0.shape[2] - 1
            assert 2 <= gap <= 5 and bool((steps == 1).all()) and stride == 1.0
            assert bool((mask.sum(1) <= 2).all())
        assert frame_ids.min() >= 0 and frame_ids.max() <= 15


@pytest.mark.parametrize("stage_name", ["keyframes", "interpolation"])
def test_latent_stage_trains_and_exports(tmp_path, stage_name, null_text):
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.parts import load_part_config, load_part_weights
    from vidiff.training.stages import LatentDiffusionStage

    cfg = latent_cfg(tmp_path, stage_name)
    stage = LatentDiffusionStage(cfg, dataset=LatentClips())
    stage.null_text = null_text  # a test without the text encoder: "" encodes to zeros here
    run = train(cfg, stage=stage)
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 3 and all(r["skipped"] == 0 for r in rows)
    net = UNet3D(load_part_config(run / "export", UNet3DConfig))
    net.load_state_dict(load_part_weights(run / "export"))  # strict: the export is exactly the U-Net


def test_vae_stage_loss_and_training(tmp_path):
    from vidiff.training.vae_stage import VAEStage
    from vidiff.vae import AutoencoderKL, VAEConfig

    class Clips(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"video": torch.rand(3, 2, 16, 16, generator=g) * 2 - 1, "caption": "", "index": i}

    cfg = validate(from_dict(TrainConfig, {
        "stage": "vae", "output_dir": str(tmp_path / "vae"), "model": TINY_VAE,
        "data": {"kind": "video_folder", "root": "unused", "num_frames": 2, "size": 16},
        "loss": {"kl_weight": 0.0, "l1_weight": 1.0},
        "optimizer": {"lr": 2e-3, "warmup_steps": 1, "cosine_decay": False},
        "train": {"max_steps": 2, "batch_size": 2, "log_every": 1, "checkpoint_every": 100}}))
    stage = VAEStage(cfg, dataset=Clips())
    # with zero posterior noise and no KL the loss is the L1 of the mean's reconstruction
    video = torch.stack([Clips()[i]["video"] for i in range(2)])
    vae = stage.model.vae
    loss = stage.model(video, torch.zeros(2, 4, 2, 4, 4))
    with torch.no_grad():
        want = (vae.decode(vae.encode(video)) - video).abs().flatten(1).mean(1)
    torch.testing.assert_close(loss.detach(), want)
    # sample_posterior: false decodes the mean, so any posterior noise gives that same loss
    mean_stage = VAEStage(dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, sample_posterior=False)),
                          dataset=Clips())
    mean_stage.model.vae.load_state_dict(vae.state_dict())
    noisy = mean_stage.model(video, torch.randn(2, 4, 2, 4, 4))
    torch.testing.assert_close(noisy.detach(), want)
    assert not torch.allclose(stage.model(video, torch.randn(2, 4, 2, 4, 4)).detach(), want)
    run = train(cfg, stage=stage)
    assert len(read_metrics(run / "metrics.jsonl")) == 2
    AutoencoderKL.load(run / "export")
    assert isinstance(AutoencoderKL.load(run / "export").config, VAEConfig)


@pytest.mark.parametrize("stage_name", ["keyframes", "interpolation"])
def test_real_stage_overfits_one_batch(tmp_path, stage_name, null_text):
    """The model learns: the real stage's loss on one fixed batch (same clips, frames, noise levels, noise and
    conditioning draws every step) falls by more than 10x in 150 AdamW steps of a tiny U-Net."""
    from vidiff.training.stages import LatentDiffusionStage

    torch.manual_seed(0)
    stage = LatentDiffusionStage(latent_cfg(tmp_path, stage_name), dataset=LatentClips())
    stage.null_text = null_text
    batch = {k: torch.stack([LatentClips()[i][k] for i in range(4)]) for k in ("latents", "context", "context_mask")}
    opt = torch.optim.AdamW(stage.model.parameters(), lr=2e-3)
    fixed = draws(4, step=3)  # the same draws every step: one batch to memorise
    losses = []
    for _ in range(150):
        loss = stage.loss(stage.model, batch, fixed, 3).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first / 10, (first, last)


def test_an_export_written_by_a_resume_at_the_end_records_the_latent_size(tmp_path, null_text):
    """A run killed after its last checkpoint but before export/ was in place (or whose export/ was deleted) is
    finished by `--resume auto`, which runs no step: the stage never saw a batch, and trained_on.yaml said
    `latent_size: null`, so the pipeline no longer warned of keyframes at a size the part was not trained at."""
    import shutil

    from vidiff.pipeline.trained import read_trained_on
    from vidiff.training.stages import LatentDiffusionStage

    cfg = latent_cfg(tmp_path, "keyframes")
    stage = LatentDiffusionStage(cfg, dataset=LatentClips())
    stage.null_text = null_text
    run = train(cfg, stage=stage)
    assert read_trained_on(run / "export").latent_size == (4, 4)
    first = (run / "export" / "trained_on.yaml").read_text()
    shutil.rmtree(run / "export")
    stage = LatentDiffusionStage(cfg, dataset=LatentClips())
    stage.null_text = null_text
    train(cfg, resume="auto", stage=stage)
    assert read_trained_on(run / "export").latent_size == (4, 4)
    assert (run / "export" / "trained_on.yaml").read_text() == first


def test_a_missing_vae_stops_a_latent_cache_run_before_its_first_step(tmp_path, null_text):
    """Read from a latent cache, a latent stage touched its `vae` first at the export, after the whole training:
    a folder that is not there (configs/shapes-one-stage.yaml run outside the repository) was a FileNotFoundError
    traceback at the end and no export. It is now one line before the first step, and nothing is trained."""
    from vidiff.errors import InputError
    from vidiff.training.stages import LatentDiffusionStage

    cfg = latent_cfg(tmp_path, "keyframes", vae=str(tmp_path / "no-such-vae"))
    with pytest.raises(InputError, match=r"VAE part folder .*no-such-vae: no such folder$"):
        LatentDiffusionStage(cfg, dataset=LatentClips())
    assert not (tmp_path / "keyframes").exists()


def test_init_weights_of_another_model_or_a_run_folder_is_named_in_one_line(tmp_path):
    """A part of other widths was named by a tensor the model lacks ("weights the model does not have:
    ['down.1.0.res.skip.bias', ...]"), a run folder was a FileNotFoundError traceback once the model was built."""
    from vidiff.errors import InputError
    from vidiff.models import UNet3D, UNet3DConfig
    from vidiff.parts import save_part
    from vidiff.training.stages import LatentDiffusionStage

    part = from_dict(UNet3DConfig, TINY_UNET)
    save_part(tmp_path / "run" / "export", part, UNet3D(part).state_dict())
    (tmp_path / "run" / "config.yaml").write_text("stage: keyframes\n")  # a run folder: the training config
    export = str(tmp_path / "run" / "export")

    def stage(**model):
        return LatentDiffusionStage(latent_cfg(tmp_path, "keyframes", model={**TINY_UNET, **model},
                                               init_weights=export), dataset=LatentClips())

    with pytest.raises(InputError) as e:
        stage(block_out_channels=[16, 16], pooled_text=True)
    # the widths, not pooled_text: it only adds layers, which keep their initialisation
    assert str(e.value) == (f"init_weights {export}: a part of another model, its weights cannot start this one "
                            "(block_out_channels: [16, 32] in the part, [16, 16] in this run)")
    with pytest.raises(InputError, match=r"num_head_channels: 16 in the part, 8 in this run\)$"):
        stage(num_head_channels=8)
    started = stage(pooled_text=True).model.denoiser.net.state_dict()
    assert torch.equal(started["conv_in.weight"], load_file(f"{export}/model.safetensors")["conv_in.weight"])
    with pytest.raises(InputError, match=r"run: a training run folder, not a part folder; its exported part is "
                                         r".*run/export$"):
        LatentDiffusionStage(latent_cfg(tmp_path, "keyframes", init_weights=str(tmp_path / "run")),
                             dataset=LatentClips())


def test_a_data_root_that_is_no_latent_cache_is_named_as_data_root(tmp_path):
    """`nope: not a latent cache (missing index.json)` did not say which setting pointed at the folder."""
    from vidiff.errors import InputError
    from vidiff.training.stages import LatentDiffusionStage

    (tmp_path / "nope").mkdir()
    cfg = latent_cfg(tmp_path, "keyframes", data={"kind": "latent_cache", "root": str(tmp_path / "nope"),
                                                  "num_frames": 16})
    with pytest.raises(InputError, match=r"^data.root: .*nope: not a latent cache \(missing index.json\)"):
        LatentDiffusionStage(cfg)


class CaptionedClips(LatentClips):
    """LatentClips whose stored captions name a Shapes colour, shape and direction (for shapes_grammar captions)."""

    CAPTIONS = ("a red circle moving left", "a blue square moving up", "a yellow triangle moving down",
                "a white square moving right")

    def __getitem__(self, i):
        return {**super().__getitem__(i), "caption": self.CAPTIONS[i % len(self.CAPTIONS)]}


def test_grammar_captions_resume_to_the_same_weights(tmp_path):
    """The text encoder runs on a step's longest caption, so a caption's embedding differs in float rounding with
    the captions beside it. The stage's encoder kept a prompt cache: a caption first encoded before the checkpoint
    was taken from it later in the uninterrupted run, and encoded afresh in its own step's batch by a resumed run,
    whose weights then drifted (the keyframe recipe resumed at step 6: 339 of 493 tensors off by up to 1.2e-7 at
    step 10). A fresh stage stands for the resumed process here; the stage now encodes every step's captions."""
    import shutil

    from safetensors.torch import load_file

    from vidiff.training.stages import LatentDiffusionStage

    cfg = latent_cfg(tmp_path, "keyframes", conditioning={
        "num_keyframes": 4, "keyframe_stride": 5, "captions": "shapes_grammar", "plain_caption_prob": 0.5},
        train={"max_steps": 6, "batch_size": 3, "log_every": 1, "checkpoint_every": 1, "keep_checkpoints": 6})
    run = train(cfg, stage=LatentDiffusionStage(cfg, dataset=CaptionedClips(n=8)))
    resumed = tmp_path / "resumed"  # the run as if stopped after its step-3 checkpoint
    shutil.copytree(run, resumed)
    for step in (4, 5, 6):
        shutil.rmtree(resumed / "checkpoints" / f"step_{step:08d}")
    cfg = dataclasses.replace(cfg, output_dir=str(resumed))
    train(cfg, resume="auto", stage=LatentDiffusionStage(cfg, dataset=CaptionedClips(n=8)))
    want, got = (load_file(folder / "checkpoints" / "step_00000006" / "model.safetensors") for folder in (run, resumed))
    assert want.keys() == got.keys()
    assert [k for k in want if not torch.equal(want[k], got[k])] == []


def test_stored_captions_the_grammar_cannot_read_stop_the_run_before_its_first_step(tmp_path):
    """A latent cache of Shapes clips and one clip of the user's own: with conditioning.captions=shapes_grammar the
    run stopped at the step that first drew that clip (minutes in on a large cache); the stored captions are read
    when the stage is built now."""
    from vidiff.errors import InputError
    from vidiff.training.stages import LatentDiffusionStage

    class Stored(CaptionedClips):  # lists its captions, as a latent cache and a video folder do
        def __init__(self, extra):
            super().__init__(n=len(self.CAPTIONS) * 2 + len(extra))
            self.captions = [self[i]["caption"] for i in range(len(self.CAPTIONS) * 2)] + list(extra)

    cfg = latent_cfg(tmp_path, "interpolation", conditioning={"min_gap": 2, "max_gap": 5, "captions": "shapes_grammar"})
    with pytest.raises(InputError) as e:
        LatentDiffusionStage(cfg, dataset=Stored(["a white cockatoo", "", "a white cockatoo"]))
    assert str(e.value) == ("conditioning.captions=shapes_grammar: 3 of 11 captions of data.root name no Shapes "
                            "colour, shape and direction (e.g. 'a white cockatoo'); for your own captions set "
                            "conditioning.captions=dataset (docs/training.md, 'Your own videos')")
    LatentDiffusionStage(cfg, dataset=Stored(["a green triangle moving up"]))
    LatentDiffusionStage(latent_cfg(tmp_path, "interpolation"), dataset=Stored(["a white cockatoo"]))  # its own
