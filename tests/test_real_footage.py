"""The real-footage data of the real-interp recipe: the corpus refuses held-out clips, VAE crops are deterministic
per (seed, epoch, index), and the window cache lists every window of every sequence with its source frames."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidiff.data.real_footage import (
    HELD_OUT, RealFrameDataset, center_square, crop_resize, prepare_corpus, read_manifest,
)
from vidiff.data.real_windows import WindowCacheDataset, build_window_cache, camera_variants
from vidiff.errors import InputError
from vidiff.io import write_video


class _NullText:
    identifier = "stub"

    def encode(self, prompts):
        return torch.zeros(len(prompts), 2, 4), torch.ones(len(prompts), 2, dtype=torch.bool)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    samples = root / "samples"
    samples.mkdir()
    gen = torch.Generator().manual_seed(0)
    write_video(samples / "a.mp4", torch.randint(0, 256, (23, 48, 64, 3), generator=gen, dtype=torch.uint8), fps=25)
    write_video(samples / "b.mp4", torch.randint(0, 256, (12, 40, 40, 3), generator=gen, dtype=torch.uint8), fps=10)
    manifest = prepare_corpus(samples, root / "corpus", short_side=32, clips=("a.mp4", "b.mp4"), stills=False)
    return root / "corpus", manifest


def test_prepare_refuses_held_out_clips(tmp_path):
    for name in HELD_OUT:
        with pytest.raises(InputError, match="held out"):
            prepare_corpus(tmp_path, tmp_path / "c", clips=("vtest.avi", name), stills=False)


def test_corpus_is_shrunk_to_the_short_side(corpus):
    folder, manifest = corpus
    clips = {c["name"]: c for c in manifest["clips"]}
    assert clips["a.mp4"]["size"] == [32, 43] and clips["a.mp4"]["frames"] == 23
    assert np.load(folder / "a.mp4.npy").shape == (23, 32, 43, 3)
    assert clips["b.mp4"]["size"] == [32, 32]


def test_crop_resize_is_an_area_mean():
    frames = torch.arange(16, dtype=torch.uint8).view(1, 4, 4, 1).expand(1, 4, 4, 3).contiguous()
    out = crop_resize(frames, 0, 0, 4, 2)
    assert out[0, :, :, 0].tolist() == [[2, 4], [10, 12]]  # 2x2 means 2.5, 4.5, 10.5, 12.5 rounded half to even
    assert center_square(torch.zeros(2, 10, 30, 3, dtype=torch.uint8), 5).shape == (2, 5, 5, 3)


def test_vae_items_are_deterministic_per_epoch_and_index(corpus):
    folder, _ = corpus
    data = RealFrameDataset(folder, size=16, seed=3, length=10, still_prob=0.0)
    item = data[4]
    assert item["video"].shape == (3, 1, 16, 16) and -1 <= item["video"].min() and item["video"].max() <= 1
    assert torch.equal(data[4]["video"], item["video"])
    other = RealFrameDataset(folder, size=16, seed=3, length=10, still_prob=0.0)
    assert torch.equal(other[4]["video"], item["video"])
    data.set_epoch(1)
    assert not torch.equal(data[4]["video"], item["video"])


def test_clip_items_are_consecutive_frames_under_one_crop(tmp_path):
    # frame t of each clip is flat grey 8 t, so an item's frames tell which source frames they were cut from
    samples = tmp_path / "samples"
    samples.mkdir()
    for name, fps in (("fast.mp4", 25), ("slow.mp4", 10)):
        ramp = (torch.arange(20, dtype=torch.uint8) * 8).view(20, 1, 1, 1).expand(20, 40, 48, 3).contiguous()
        write_video(samples / name, ramp, fps=fps)
    prepare_corpus(samples, tmp_path / "corpus", short_side=32, clips=("fast.mp4", "slow.mp4"), stills=False)
    data = RealFrameDataset(tmp_path / "corpus", size=16, seed=0, length=40, still_prob=0.0, num_frames=5)
    steps = set()
    for i in range(40):
        video = data[i]["video"]  # (3,5,16,16) in [-1,1]
        assert video.shape == (3, 5, 16, 16)
        levels = (video + 1) * 127.5
        assert float((levels - levels.mean(dim=(0, 2, 3), keepdim=True)).abs().max()) <= 2  # each frame flat
        step = levels.mean(dim=(0, 2, 3)).diff() / 8  # source frames between neighbouring item frames
        assert torch.allclose(step, step.round(), atol=0.3) and len(set(step.round().tolist())) == 1
        steps.add(int(step[0].round()))
    assert steps == {1, 2}  # every second frame sometimes (the 25 fps clip), never more
    with pytest.raises(InputError, match="shorter than num_frames"):
        RealFrameDataset(tmp_path / "corpus", num_frames=21)


def test_window_cache_lists_every_window_with_its_source_frames(corpus, tmp_path):
    from vidiff.vae import AutoencoderKL, VAEConfig

    folder, manifest = corpus
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 8), layers_per_block=1, norm_groups=4, latent_channels=2,
                                  mid_attention=False)).eval()
    out = build_window_cache(folder, vae, tmp_path / "w", size=16, window=5, hop=2, variants=3, seed=0,
                             text_encoder=_NullText(), progress=False)
    index = json.loads((out / "windows.json").read_text())
    expected = 0
    for seq in index["sequences"]:
        clip = next(c for c in manifest["clips"] if c["name"] == seq["clip"])
        assert seq["frames"] == list(range(0, clip["frames"], seq["time_stride"]))
        assert seq["time_stride"] == 1 or clip["fps"] >= 20  # strides of 2 only for clips of 20 fps or more
        expected += (len(seq["frames"]) - 5) // 2 + 1
    assert len(index["sequences"]) == 6 and len(index["windows"]) == expected
    # safetensors' save_file made the cache 0600; it has the mode open() gives, like the index beside it
    from vidiff.output_safety import current_umask

    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {oct(0o666 & ~current_umask())}
    data = WindowCacheDataset(out, seed=0, reverse_prob=0.0)
    clip, frames = data.frame_indices(1)
    seq = index["sequences"][index["windows"][1][0]]
    assert clip == seq["clip"] and frames == seq["frames"][2:7]
    item = data[1]
    assert item["latents"].shape == (2, 5, 8, 8) and item["caption"] == ""
    # the stored latents are the VAE's (scaled) posterior means of the variant's pixels
    var = seq
    pixels = torch.from_numpy(np.load(folder / f"{clip}.npy"))[frames[0]:frames[-1] + 1:var["time_stride"]]
    pixels = crop_resize(pixels, var["top"], var["left"], var["side"], 16)
    if var["flip"]:
        pixels = pixels.flip(2)
    video = pixels.permute(3, 0, 1, 2).float()[None] / 127.5 - 1
    with torch.no_grad():
        assert torch.allclose(item["latents"], vae.encode(video)[0].half().float(), atol=1e-3)
    reversed_data = WindowCacheDataset(out, seed=0, reverse_prob=1.0)
    assert torch.equal(reversed_data[1]["latents"], item["latents"].flip(1))


def test_camera_variant_zero_is_the_centre_square():
    clip = {"name": "x", "size": [30, 50], "fps": 30.0}
    v = camera_variants(clip, 4, 16, seed=0)
    assert v[0] == {"clip": "x", "variant": 0, "top": 0, "left": 10, "side": 30, "flip": False, "time_stride": 1}
    assert all(16 <= x["side"] <= 30 and x["top"] + x["side"] <= 30 and x["left"] + x["side"] <= 50 for x in v)
    assert camera_variants(clip, 4, 16, seed=0) == v


def test_window_cache_with_pixels_keeps_the_frames_each_window_encodes(corpus, tmp_path):
    from vidiff.vae import AutoencoderKL, VAEConfig

    folder, _ = corpus
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 8), layers_per_block=1, norm_groups=4, latent_channels=2,
                                  mid_attention=False)).eval()
    out = build_window_cache(folder, vae, tmp_path / "w", size=16, window=5, hop=2, variants=2, seed=0,
                             text_encoder=_NullText(), progress=False, pixels=True)
    data = WindowCacheDataset(out, seed=0, reverse_prob=0.0)
    clip, frames = data.frame_indices(3)
    seq = data.index["sequences"][data.index["windows"][3][0]]
    pixels = torch.from_numpy(np.load(folder / f"{clip}.npy"))[frames[0]:frames[-1] + 1:seq["time_stride"]]
    pixels = crop_resize(pixels, seq["top"], seq["left"], seq["side"], 16)
    if seq["flip"]:
        pixels = pixels.flip(2)
    item = data[3]
    assert item["pixels"].dtype == torch.uint8 and torch.equal(item["pixels"], pixels)
    reversed_item = WindowCacheDataset(out, seed=0, reverse_prob=1.0)[3]
    assert torch.equal(reversed_item["pixels"], pixels.flip(0))  # reversed with its latents
    assert "pixels" not in WindowCacheDataset(build_window_cache(
        folder, vae, tmp_path / "w2", size=16, window=5, hop=2, variants=1, seed=0, text_encoder=_NullText(),
        progress=False))[0]


def test_a_rerun_stopped_halfway_leaves_no_corpus_or_cache_to_read(corpus, tmp_path, monkeypatch):
    """Rewriting a corpus or a window cache in place and stopping before the end left the old manifest / index
    over new arrays; now the folder is refused by name until a run completes."""
    from vidiff.vae import AutoencoderKL, VAEConfig

    folder, _ = corpus
    vae = AutoencoderKL(VAEConfig(block_out_channels=(8, 8), layers_per_block=1, norm_groups=4, latent_channels=2,
                                  mid_attention=False)).eval()
    out = build_window_cache(folder, vae, tmp_path / "w", size=16, window=5, hop=2, variants=1, seed=0,
                             text_encoder=_NullText(), progress=False)
    assert len(WindowCacheDataset(out)) > 0

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("safetensors.torch.save_file", stopped)
    with pytest.raises(KeyboardInterrupt):
        build_window_cache(folder, vae, out, size=16, window=5, hop=1, variants=1, seed=0, text_encoder=_NullText(),
                           progress=False)
    with pytest.raises(InputError, match="not a window cache"):
        WindowCacheDataset(out)

    samples = tmp_path / "samples"
    samples.mkdir()
    write_video(samples / "a.mp4", torch.zeros(6, 32, 32, 3, dtype=torch.uint8), fps=10)
    prepare_corpus(samples, tmp_path / "c", short_side=16, clips=("a.mp4",), stills=False)
    monkeypatch.setattr("numpy.save", stopped)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(samples, tmp_path / "c", short_side=24, clips=("a.mp4",), stills=False)
    with pytest.raises(InputError, match="not a prepared corpus"):
        read_manifest(tmp_path / "c")


def test_the_real_recipe_trains_through_vidiff_train(corpus, tmp_path):
    """configs/real-vae.yaml and real-interpolation.yaml, scaled down, run by `vidiff train` on a prepared corpus
    (data.kind real_corpus) and a window cache (window_cache), as tools/real_interp.py runs them."""
    pytest.importorskip("cv2")  # the flow anchor
    from vidiff.cli import main
    from vidiff.data.real_windows import build_window_cache
    from vidiff.training.logging import read_metrics
    from vidiff.vae import AutoencoderKL

    folder, _ = corpus
    repo = Path(__file__).resolve().parents[1]
    small = ["train.max_steps=4", "train.log_every=2", "train.checkpoint_every=4", "train.mixed_precision=no",
             "train.batch_size=2", "data.size=16"]
    vae_args = ["model.block_out_channels=[8,16,16]", "model.norm_groups=4", "model.latent_channels=4"]
    assert main(["train", "--config", str(repo / "configs/real-vae.yaml"), *[f"--set={o}" for o in [
        *small, *vae_args, f"data.root={folder}", f"output_dir={tmp_path / 'vae'}"]]]) == 0
    vae = AutoencoderKL.load(tmp_path / "vae" / "export").eval()
    with torch.no_grad():
        cache = build_window_cache(folder, vae, tmp_path / "windows", size=16, window=9, hop=4, variants=1, seed=0,
                                   pixels=True, progress=False)
    it_args = ["model.in_channels=4", "model.out_channels=4", "model.block_out_channels=[16,32]",
               "model.num_head_channels=16", "model.norm_groups=8"]
    assert main(["train", "--config", str(repo / "configs/real-interpolation.yaml"), *[f"--set={o}" for o in [
        *small, *it_args, f"data.root={cache}", f"vae={tmp_path / 'vae' / 'export'}",
        f"output_dir={tmp_path / 'it'}"]]]) == 0
    rows = read_metrics(tmp_path / "it" / "metrics.jsonl")
    assert rows[-1]["step"] == 4 and all(np.isfinite(r["loss"]) for r in rows)
    assert (tmp_path / "it" / "export" / "model.safetensors").is_file()
    # a cache without pixels cannot feed the flow anchor: refused by name before training
    no_pixels = build_window_cache(folder, vae, tmp_path / "w2", size=16, window=9, hop=4, variants=1, seed=0,
                                   text_encoder=_NullText(), progress=False)
    assert main(["train", "--config", str(repo / "configs/real-interpolation.yaml"), *[f"--set={o}" for o in [
        *small, *it_args, f"data.root={no_pixels}", f"vae={tmp_path / 'vae' / 'export'}",
        f"output_dir={tmp_path / 'it2'}"]]]) == 2
