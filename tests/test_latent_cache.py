"""Latent cache: shards, resume after an interruption, exact read-back, refusal of inconsistent caches."""
import dataclasses
import json

import pytest
import torch
from torch import nn

from vidiff.data.latent_cache import INDEX_NAME, LatentCacheDataset, build_latent_cache
from vidiff.errors import InputError

CAPTIONS = ["a red circle moving left", "a blue square going up", "white triangle, moving down"]


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    latent_channels: int = 2
    frame_chunk: int = 2


class FakeVAE(nn.Module):
    """Deterministic stand-in: a fixed linear map of 2x2-pooled pixels; counts the clips it encodes."""

    def __init__(self, scale: float = 0.5):
        super().__init__()
        self.config = TinyConfig()
        self.weight = nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3) * scale)
        self.clips_encoded = 0

    def encode(self, video, sample=False, generator=None):
        self.clips_encoded += video.shape[0]
        pooled = nn.functional.avg_pool3d(video, (1, 2, 2))  # (B, 3, F, h, w)
        latents = torch.einsum("oc,bcfhw->bofhw", self.weight, pooled)  # (B, 2, F, h, w)
        if sample:
            latents = latents + 0.1 * torch.randn(latents.shape, generator=generator)
        return latents


class FakeText:
    """Deterministic stand-in for TextEncoder: context from the characters of the prompt."""

    identifier = "fake-text;max_length=6"

    def __init__(self):
        self.prompts_encoded = []

    def encode(self, prompts):
        self.prompts_encoded += prompts
        context = torch.zeros(len(prompts), 6, 4)
        mask = torch.zeros(len(prompts), 6, dtype=torch.bool)
        for i, p in enumerate(prompts):
            words = p.split()[:6]
            mask[i, : len(words)] = True
            for j, w in enumerate(words):
                context[i, j] = torch.tensor([len(w), sum(map(ord, w)) / 1000, j, i * 0 + 1.5])
        return context, mask


class FakeClips(torch.utils.data.Dataset):
    """N clips of (3, 4, 8, 8) in [-1, 1], deterministic per index; raises at `fail_at` to simulate a crash."""

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def describe(self):
        return {"kind": "fake", "frames": 4, "size": 8}

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError("simulated interruption")
        g = torch.Generator().manual_seed(i)
        return {"video": torch.rand(3, 4, 8, 8, generator=g) * 2 - 1, "caption": CAPTIONS[i % 3], "path": f"{i}.mp4"}


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("sample", [False, True])
def test_resume_after_interruption_gives_identical_cache(tmp_path, sample):
    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", sample=sample, seed=3, progress=False)
    build_latent_cache(FakeClips(14), FakeVAE(), FakeText(), tmp_path / "a", **kwargs)

    with pytest.raises(RuntimeError, match="simulated"):
        build_latent_cache(FakeClips(14, fail_at=9), FakeVAE(), FakeText(), tmp_path / "b", **kwargs)
    partial = json.loads((tmp_path / "b" / INDEX_NAME).read_text())
    assert [s["file"] for s in partial["shards"]] == ["shard_00000.safetensors", "shard_00001.safetensors"]
    assert not partial["complete"]
    with pytest.raises(InputError, match="incomplete"):
        LatentCacheDataset(tmp_path / "b")

    vae = FakeVAE()
    build_latent_cache(FakeClips(14), vae, FakeText(), tmp_path / "b", **kwargs)
    assert vae.clips_encoded == 14 - 8  # resumed at the first missing shard
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert sorted(_files(tmp_path / "a")) == [INDEX_NAME] + [f"shard_0000{i}.safetensors" for i in range(4)]


class BatchRoundingText(FakeText):
    """Like the real encoder, which runs a batch at its longest prompt: a prompt's numbers carry (here, visibly)
    the batch it was encoded in."""

    def encode(self, prompts):
        context, mask = super().encode(prompts)
        return context + 1e-3 * max(len(p) for p in prompts), mask


def test_a_resumed_build_encodes_captions_as_the_uninterrupted_one(tmp_path):
    """A memo of caption embeddings kept across batches made a resumed build differ: the uninterrupted build took
    a repeated caption from the memo (encoded beside an earlier batch's captions), the resumed process, its memo
    empty, encoded it again beside other captions (the real encoder: about 1e-6 apart, kept by float32 storage)."""
    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", sample=False, seed=3, progress=False)
    build_latent_cache(FakeClips(14), FakeVAE(), BatchRoundingText(), tmp_path / "a", **kwargs)
    with pytest.raises(RuntimeError, match="simulated"):
        build_latent_cache(FakeClips(14, fail_at=9), FakeVAE(), BatchRoundingText(), tmp_path / "b", **kwargs)
    build_latent_cache(FakeClips(14), FakeVAE(), BatchRoundingText(), tmp_path / "b", **kwargs)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_a_build_stopped_right_after_its_first_shard_resumes(tmp_path, monkeypatch):
    """Ctrl-C (or a kill) after shard_00000 is written but before index.json lists it: the next run continues
    and gives the uninterrupted cache (it used to refuse the folder: 'has shard files but no index.json')."""
    import vidiff.output_safety as output_safety

    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", progress=False)
    build_latent_cache(FakeClips(10), FakeVAE(), FakeText(), tmp_path / "a", **kwargs)
    write_bytes = output_safety.write_bytes

    def stopped_after_a_shard(path, data):
        write_bytes(path, data)
        if path.name.startswith("shard_"):
            raise KeyboardInterrupt

    monkeypatch.setattr(output_safety, "write_bytes", stopped_after_a_shard)
    with pytest.raises(KeyboardInterrupt):
        build_latent_cache(FakeClips(10), FakeVAE(), FakeText(), tmp_path / "b", **kwargs)
    monkeypatch.setattr(output_safety, "write_bytes", write_bytes)
    assert json.loads((tmp_path / "b" / INDEX_NAME).read_text())["shards"] == []
    vae = FakeVAE()
    build_latent_cache(FakeClips(10), vae, FakeText(), tmp_path / "b", **kwargs)
    assert vae.clips_encoded == 10  # the unlisted shard is encoded again
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_dataset_returns_exact_tensors(tmp_path, dtype):
    clips, vae, text = FakeClips(7), FakeVAE(), FakeText()
    build_latent_cache(clips, vae, text, tmp_path, shard_size=3, batch_size=2, dtype=dtype, progress=False)
    ds = LatentCacheDataset(tmp_path, verify=True)
    assert len(ds) == 7
    from safetensors.torch import load_file

    written = [load_file(str(tmp_path / f"shard_0000{s}.safetensors")) for s in range(3)]  # shards of 3, 3, 1
    written = {k: torch.cat([w[k] for w in written]) for k in written[0]}
    assert written["latents"].dtype == getattr(torch, dtype) and written["context_mask"].dtype == torch.bool
    assert torch.equal(written["index"], torch.arange(7))
    for i in range(7):
        item = ds[i]
        assert item["latents"].dtype == torch.float32 and item["latents"].shape == (2, 4, 4, 4)
        # Exactly what was written ...
        assert torch.equal(item["latents"], written["latents"][i].float())
        assert torch.equal(item["context"], written["context"][i].float())
        assert torch.equal(item["context_mask"], written["context_mask"][i])
        assert item["caption"] == CAPTIONS[i % 3] and item["index"] == i
        # ... which is the encoders' output for this clip, up to the storage dtype.
        direct = FakeVAE().encode(clips[i]["video"][None])[0].detach()  # (C, F, h, w)
        context, mask = FakeText().encode([CAPTIONS[i % 3]])
        tol = 1e-6 if dtype == "float32" else 2e-3
        torch.testing.assert_close(item["latents"], direct, atol=tol, rtol=tol)
        torch.testing.assert_close(item["context"], context[0], atol=tol, rtol=tol)
        assert torch.equal(item["context_mask"], mask[0])
    # each clip's caption encoded with its batch (a memo across batches made resumed builds differ, below)
    assert sorted(text.prompts_encoded) == sorted(CAPTIONS[i % 3] for i in range(7))
    with pytest.raises(IndexError):
        ds[7]


def test_the_contents_digest_tells_a_cache_built_again_with_other_clips(tmp_path):
    """A training checkpoint records it (training/sample_stream.py: check_same_data): a cache built again in the same
    folder with a clip more, or another caption, was resumed on without a word."""
    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", progress=False)

    def digest(name, clips):
        build_latent_cache(clips, FakeVAE(), FakeText(), tmp_path / name, **kwargs)
        return LatentCacheDataset(tmp_path / name).contents_sha256()

    class Recaptioned(FakeClips):
        def __getitem__(self, i):
            return {**super().__getitem__(i), **({"caption": "a green circle"} if i == 5 else {})}

    same = digest("a", FakeClips(6))
    assert digest("b", FakeClips(6)) == same
    assert len({same, digest("c", FakeClips(7)), digest("d", Recaptioned(6))}) == 3


def test_refuses_inconsistent_cache(tmp_path):
    build_latent_cache(FakeClips(6), FakeVAE(), FakeText(), tmp_path / "a", shard_size=3, progress=False)
    build_latent_cache(FakeClips(5), FakeVAE(), FakeText(), tmp_path / "b", shard_size=3, progress=False)
    LatentCacheDataset(tmp_path / "a")
    # A shard from another cache (2 clips instead of 3): size or shapes no longer match the index.
    (tmp_path / "a" / "shard_00001.safetensors").write_bytes((tmp_path / "b" / "shard_00001.safetensors").read_bytes())
    with pytest.raises(InputError, match="shard_00001"):
        LatentCacheDataset(tmp_path / "a")
    (tmp_path / "a" / "shard_00001.safetensors").unlink()
    with pytest.raises(InputError, match="missing"):
        LatentCacheDataset(tmp_path / "a")
    with pytest.raises(InputError, match="not a latent cache"):
        LatentCacheDataset(tmp_path)


def test_resume_refuses_different_settings(tmp_path):
    build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path, shard_size=2, progress=False)
    with pytest.raises(InputError, match="vae_weights_sha256"):
        build_latent_cache(FakeClips(4), FakeVAE(scale=0.7), FakeText(), tmp_path, shard_size=2, progress=False)
    with pytest.raises(InputError, match=r"dataset.length: 4 in the cache, 5 now"):  # the dataset's own count
        build_latent_cache(FakeClips(5), FakeVAE(), FakeText(), tmp_path, shard_size=2, progress=False)
    with pytest.raises(InputError, match="dtype"):
        build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path, dtype="bfloat16", progress=False)
    # --sample is named, not the batch size it brings into the settings ("None in the cache, 8 now")
    with pytest.raises(InputError, match=r"different sample \(sample \(--sample\): False in the cache, True now\)"):
        build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path, shard_size=2, sample=True, progress=False)


def test_a_bf16_encoder_is_recorded_and_its_latents_are_the_float32_ones_to_bf16_rounding(tmp_path):
    from safetensors.torch import load_file

    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", progress=False)
    build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path / "fp32", **kwargs)
    build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path / "bf16", encode_dtype="bfloat16", **kwargs)
    assert json.loads((tmp_path / "fp32" / INDEX_NAME).read_text())["encode_dtype"] == "float32"
    assert json.loads((tmp_path / "bf16" / INDEX_NAME).read_text())["encode_dtype"] == "bfloat16"
    full, half = (load_file(str(tmp_path / name / "shard_00000.safetensors")) for name in ("fp32", "bf16"))
    assert not torch.equal(full["latents"], half["latents"])  # the autocast reached the encoder
    torch.testing.assert_close(half["latents"], full["latents"], rtol=2 ** -7, atol=2 ** -7)
    assert torch.equal(full["context"], half["context"])  # the text encoder is not under the autocast
    with pytest.raises(InputError, match=r"encode_dtype \(--encode-dtype\)"):  # a resume in other arithmetic: refused
        build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path / "bf16", **kwargs)
    # a cache built before the setting was recorded was built in float32: continued as such, refused in bf16
    index = json.loads((tmp_path / "fp32" / INDEX_NAME).read_text())
    del index["encode_dtype"]
    (tmp_path / "fp32" / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(InputError, match=r"'float32' in the cache, 'bfloat16' now"):
        build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path / "fp32", encode_dtype="bfloat16", **kwargs)
    vae = FakeVAE()
    build_latent_cache(FakeClips(4), vae, FakeText(), tmp_path / "fp32", **kwargs)
    assert vae.clips_encoded == 0  # complete, and taken as it is
    with pytest.raises(InputError, match="encode_dtype must be one of"):
        build_latent_cache(FakeClips(4), FakeVAE(), FakeText(), tmp_path / "x", encode_dtype="float16", **kwargs)


def test_a_refused_resume_names_the_setting_in_one_short_line():
    from vidiff.data.latent_cache import _difference

    windows = [[f"clip_{i:06d}.mp4", 0] for i in range(2000)]
    cached = {"class": "VideoWindows", "root": "runs/a/shapes", "windows": windows}
    message = _difference("dataset", cached, {**cached, "root": "runs/b/shapes"})
    assert message == "dataset.root (--videos): 'runs/a/shapes' in the cache, 'runs/b/shapes' now"
    message = _difference("dataset", cached, {**cached, "windows": windows[:-1]})
    # a clip more changes the captions' digest too: the windows say what changed, the captions only that one did
    message = _difference("dataset", {**cached, "captions_sha256": "a"}, {**cached, "windows": windows + [
        ["sub/new.mp4", 0]], "captions_sha256": "b"})
    assert message.endswith("2000 in the cache, 2001 now; the first that differs, window 2000: none in the cache, "
                            "['sub/new.mp4', 0] now")
    assert _difference("dataset", {**cached, "captions_sha256": "a"}, {**cached, "captions_sha256": "b"}) == \
        "dataset.captions_sha256 (a caption of --videos changed): 'a' in the cache, 'b' now"
    message = _difference("dataset", cached, {**cached, "windows": windows[:-1]})
    assert message.startswith("dataset.windows (where each window of --videos starts;") and len(message) < 250
    assert message.endswith(": 2000 in the cache, 1999 now; the first that differs, window 1999: "
                            "['clip_001999.mp4', 0] in the cache, none now")
    # a cache of back-to-back windows from before each video's tail got a window: the list's first 80 characters
    # are the same, and its length was named first ("dataset.length: 2 in the cache, 3 now", saying nothing)
    before = {**cached, "length": 2, "windows": [["a.mp4", 0], ["b.mp4", 0]]}
    message = _difference("dataset", before, {**cached, "length": 3, "windows": [["a.mp4", 0], ["a.mp4", 25],
                                                                                  ["b.mp4", 0]]})
    assert message.endswith("then one ending at each video's last frame): 2 in the cache, 3 now; the first that "
                            "differs, window 1: ['b.mp4', 0] in the cache, ['a.mp4', 25] now")
    assert _difference("dataset", cached, {**cached, "stride": 2}) == "dataset.stride (--stride): None in the cache, 2 now"
    # a setting is named before the counts that follow from it (the window list, the clip count)
    assert _difference("dataset", {**cached, "num_frames": 4}, {**cached, "num_frames": 6, "windows": windows[:9]}) \
        == "dataset.num_frames (--frames): 4 in the cache, 6 now"
    assert _difference("num_clips", 4, 5) == "num_clips: 4 in the cache, 5 now"


def test_tiny_real_vae_stores_the_mean_and_survives_save_load(tmp_path):
    from vidiff.vae import AutoencoderKL, VAEConfig

    config = VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4, mid_attention=False,
                       latent_channels=4, frame_chunk=3, scaling_factor=0.5, shift_factor=0.1)
    vae = AutoencoderKL(config).eval()
    clips = FakeClips(5)
    # Interrupted with the model in memory, finished with the same weights loaded from a part folder.
    with pytest.raises(RuntimeError, match="simulated"):
        build_latent_cache(FakeClips(5, fail_at=3), vae, FakeText(), tmp_path / "c", shard_size=2,
                           dtype="float32", progress=False)
    vae.save(tmp_path / "vae")
    loaded = AutoencoderKL.load(tmp_path / "vae")
    build_latent_cache(clips, loaded, FakeText(), tmp_path / "c", shard_size=2, dtype="float32", progress=False)
    ds = LatentCacheDataset(tmp_path / "c")
    index = json.loads((tmp_path / "c" / INDEX_NAME).read_text())
    assert index["vae_config"]["block_out_channels"] == [8, 16] and index["text_encoder"] == FakeText.identifier
    for i in range(5):
        with torch.no_grad():
            mean = vae.encode(clips[i]["video"][None])[0]  # (4, 4, 4, 4): scaled mean, no sampling
        assert ds[i]["latents"].shape == (4, 4, 4, 4)
        torch.testing.assert_close(ds[i]["latents"], mean, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_cli_cache_of_a_shapes_folder(tmp_path, capsys):
    """`vidiff data cache` end to end: Shapes mp4s, a saved tiny VAE, the default text encoder (slow to load)."""
    from vidiff.cli import main
    from vidiff.data.shapes_folder import generate_shapes_dataset
    from vidiff.data.video_folder import VideoFolderDataset
    from vidiff.vae import AutoencoderKL, VAEConfig

    generate_shapes_dataset(tmp_path / "clips", 3, frames=8, size=32, progress=False)
    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames", "8",
            "--size", "32", "--out", str(tmp_path / "cache"), "--shard-size", "2", "--no-progress"]
    assert main(args) == 0
    ds = LatentCacheDataset(tmp_path / "cache", verify=True)
    assert len(ds) == 3 and ds[2]["latents"].shape == (4, 8, 16, 16)
    assert ds.captions == [(tmp_path / "clips" / f"clip_00000{i}.txt").read_text().strip() for i in range(3)]
    assert main(args) == 0  # a finished cache is left as it is
    # long videos give many windows: 8-frame clips, windows of 3 at hop 2 start at 0, 2, 4
    windowed = args[:6] + ["--frames", "3", "--size", "32", "--out", str(tmp_path / "windows"), "--hop", "2",
                           "--no-progress"]
    assert main(windowed) == 0
    ds = LatentCacheDataset(tmp_path / "windows", verify=True)
    assert len(ds) == 9 and ds[4]["latents"].shape == (4, 3, 16, 16)
    index = json.loads((tmp_path / "windows" / "index.json").read_text())
    assert [w[1] for w in index["dataset"]["windows"]] == [0, 2, 4] * 3
    vae = AutoencoderKL.load(tmp_path / "vae")
    video = VideoFolderDataset(tmp_path / "clips", num_frames=8, size=(32, 32))[1]["video"]
    with torch.no_grad():  # window 4 is clip 1 from frame 2: the cache holds its latents
        mean = vae.encode(video[None, :, 2:5])[0]
    torch.testing.assert_close(ds[4]["latents"].float(), mean, atol=2e-3, rtol=1e-2)
    # the same clips from another folder: refused, naming the one setting that differs, in a line and not the
    # dataset's whole window list
    import shutil

    shutil.copytree(tmp_path / "clips", tmp_path / "moved")
    capsys.readouterr()
    assert main(args[:2] + ["--videos", str(tmp_path / "moved")] + args[4:]) == 2
    message = capsys.readouterr().err
    assert "dataset.root:" in message and "moved" in message and len(message) < 400, message


def test_cli_cache_resamples_clips_at_several_rates_to_fps(tmp_path, capsys, caplog, monkeypatch):
    """`vidiff data cache` had no --fps: clips at 16 and 8 fps were cached at their own rates without a word."""
    from test_video_folder import counter_clip

    from vidiff import io
    from vidiff.cli import main
    from vidiff.data.latent_cache import build_latent_cache_from_folders
    from vidiff.vae import AutoencoderKL, VAEConfig

    (tmp_path / "clips").mkdir()
    for name, fps in (("fast.mp4", 16), ("slow.mp4", 8)):
        io.write_video(tmp_path / "clips" / name, counter_clip(16, 0), fps=fps)
    AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames", "4",
            "--size", "32", "--no-progress"]
    with caplog.at_level("WARNING", logger="vidiff"):
        assert main(args + ["--out", str(tmp_path / "native")]) == 0
    assert "frame rates differ (8 to 16 fps)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidiff"):
        assert main(args + ["--out", str(tmp_path / "at8"), "--fps", "8"]) == 0
    assert "frame rates differ" not in caplog.text
    index = json.loads((tmp_path / "at8" / INDEX_NAME).read_text())
    assert index["dataset"]["fps"] == 8
    # the 16 fps clip read every other frame: a window spans 7 source frames, the last one ends at frame 15
    assert index["dataset"]["windows"] == [["fast.mp4", 0], ["fast.mp4", 7], ["fast.mp4", 9], ["slow.mp4", 0],
                                           ["slow.mp4", 4], ["slow.mp4", 8], ["slow.mp4", 12]]
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "at8"), "--fps", "12"]) == 2  # resumed at another rate: refused
    assert "dataset.fps (--fps): 8.0 in the cache, 12.0 now" in capsys.readouterr().err

    def no_load(*a, **k):
        raise AssertionError("the VAE's weights were loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    for extra, message in ((["--fps", "0"], "--fps must be a frame rate > 0, got 0.0"),
                           (["--fps", "nan"], "--fps must be a frame rate > 0, got nan")):
        assert main(args + ["--out", str(tmp_path / "bad")] + extra) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --fps not allowed with --stride
        main(args + ["--out", str(tmp_path / "bad"), "--fps", "8", "--stride", "2"])
    with pytest.raises(InputError, match="give either --stride or --fps, not both"):
        build_latent_cache_from_folders(tmp_path / "clips", tmp_path / "vae", "default", 4, 32, tmp_path / "bad",
                                        stride=2, fps=8)
    assert not (tmp_path / "bad").exists()


class SecondBuildMeanwhile(FakeClips):
    """Clips whose clip `at` starts, while the build reading them is under way, a build of the same folder with
    other settings (it must be refused), and a reader of the unfinished cache (told a build is at work)."""

    def __init__(self, n, folder, at):
        super().__init__(n)
        self.folder, self.at, self.refusals = folder, at, []

    def __getitem__(self, i):
        if i == self.at and not self.refusals:
            with pytest.raises(InputError, match=r"another `vidiff data cache` is building a cache in this folder"):
                build_latent_cache(FakeClips(self.n), FakeVAE(), FakeText(), self.folder, shard_size=4, batch_size=2,
                                   sample=True, progress=False)
            with pytest.raises(InputError, match=r"incomplete: a `vidiff data cache` is building it now; wait"):
                LatentCacheDataset(self.folder)
            self.refusals.append(i)
        return super().__getitem__(i)


def test_a_second_build_in_the_same_folder_is_refused_and_the_first_finishes(tmp_path):
    """Two `vidiff data cache --out X` with other settings started together both found no index.json, wrote their
    shards over each other's and both said the cache was ready (it held the last one's, or a mix). The second is
    refused now (a lock on the folder), and a reader of the cache meanwhile is told a build is at work rather than
    "run `vidiff data cache` again" (which that lock would refuse)."""
    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", progress=False)
    build_latent_cache(FakeClips(10), FakeVAE(), FakeText(), tmp_path / "alone", **kwargs)
    clips = SecondBuildMeanwhile(10, tmp_path / "c", at=5)  # in the second shard: the first is listed
    build_latent_cache(clips, FakeVAE(), FakeText(), tmp_path / "c", **kwargs)
    assert clips.refusals == [5]
    built, alone = _files(tmp_path / "c"), _files(tmp_path / "alone")
    assert sorted(built) == sorted(alone) and all(built[k] == alone[k] for k in built if k != INDEX_NAME)
    index = json.loads(built[INDEX_NAME])
    assert index["shards"] == json.loads(alone[INDEX_NAME])["shards"] and index["complete"] and not index["sample"]
    assert len(LatentCacheDataset(tmp_path / "c", verify=True)) == 10


def test_cli_refuses_a_folder_another_build_holds_before_reading_the_clips(tmp_path, capsys, monkeypatch):
    """The lock is asked at the arguments: the second build is refused before it scans --videos and loads the VAE
    (another process holds the folder's lock here, as a running `vidiff data cache` does)."""
    import subprocess
    import sys

    from vidiff.cli import main
    from vidiff.data import video_folder

    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("clips", "vae"):
        (tmp_path / name).mkdir()

    def no_scan(*a, **k):
        raise AssertionError("the video folder was read")

    monkeypatch.setattr(video_folder, "VideoFolderDataset", no_scan)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys\n"
                               f"fd = os.open({str(cache)!r}, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); sys.stdin.readline()\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames",
                "8", "--size", "64", "--out", str(cache), "--no-progress"]
        assert main(args) == 2
    finally:
        holder.communicate("\n", timeout=30)
    err = capsys.readouterr().err.strip()
    assert err == (f"vidiff: error: --out {cache}: another `vidiff data cache` is building a cache in this folder; "
                   "wait for it to end or choose another folder")
    assert list(cache.iterdir()) == []


def test_a_fifo_named_index_json_is_refused_without_blocking(tmp_path):
    import os

    from vidiff.config import ConfigError
    from vidiff.data.latent_cache_dataset import LatentCacheDataset

    os.mkfifo(tmp_path / "index.json")  # opening it for reading would block forever without a writer
    with pytest.raises(ConfigError, match="not a regular file"):
        LatentCacheDataset(tmp_path)


def test_an_error_before_the_first_shard_leaves_no_index(tmp_path):
    """A build that fails on its first clip left a fresh index.json, so the rerun with corrected settings was
    refused ('existing cache was built with a different ...'); a failure after a shard keeps it (resumable)."""
    kwargs = dict(shard_size=4, batch_size=2, dtype="float32", progress=False)
    with pytest.raises(RuntimeError, match="simulated"):
        build_latent_cache(FakeClips(10, fail_at=1), FakeVAE(), FakeText(), tmp_path / "c", **kwargs)
    assert list((tmp_path / "c").iterdir()) == []
    build_latent_cache(FakeClips(6), FakeVAE(), FakeText(), tmp_path / "c", **{**kwargs, "shard_size": 3})
    assert LatentCacheDataset(tmp_path / "c").__len__() == 6


def test_cli_refuses_a_size_off_the_vae_grid_before_loading_it(tmp_path, capsys, monkeypatch):
    from vidiff.cli import main
    from vidiff.vae import AutoencoderKL, VAEConfig

    AutoencoderKL(VAEConfig(block_out_channels=(8, 16, 16), layers_per_block=1, norm_groups=4,
                            mid_attention=False)).save(tmp_path / "vae")
    (tmp_path / "clips").mkdir()

    def no_load(*a, **k):
        raise AssertionError("the VAE's weights were loaded")

    monkeypatch.setattr(AutoencoderKL, "load", no_load)
    args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames", "8",
            "--size", "63", "--out", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 2
    assert "--size 63: must be a multiple of the VAE's downsampling factor 4 (e.g. 60)" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_cli_names_a_missing_folder_or_a_file_given_for_one(tmp_path, capsys):
    """--videos FILE said "video folder FILE does not exist", --vae MISSING "not a model part folder"."""
    from vidiff.cli import main

    (tmp_path / "clips").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"x")
    for videos, vae, message in (("clip.mp4", "clips", "--videos {}: is a file, not a folder"),
                                 ("nope", "clips", "--videos {}: no such folder"),
                                 ("clips", "nope", "--vae {}: no such folder"),
                                 ("clips", "clip.mp4", "--vae {}: is a file, not a folder")):
        args = ["data", "cache", "--videos", str(tmp_path / videos), "--vae", str(tmp_path / vae), "--frames", "8",
                "--size", "64", "--out", str(tmp_path / "cache"), "--no-progress"]
        assert main(args) == 2
        bad = videos if message.startswith("--videos") else vae
        assert message.format(tmp_path / bad) in capsys.readouterr().err
    # --text said "text encoder folder not found: nope", naming no option, and only after the VAE had loaded
    for text, message in (("nope", "--text {}: no such folder"), ("clip.mp4", "--text {}: is a file, not a folder")):
        args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "clips"), "--text",
                str(tmp_path / text), "--frames", "8", "--size", "64", "--out", str(tmp_path / "cache"), "--no-progress"]
        assert main(args) == 2
        assert capsys.readouterr().err == f"vidiff: error: {message.format(tmp_path / text)}\n"
    assert not (tmp_path / "cache").exists()


def test_cli_refuses_a_cache_written_into_its_own_video_folder(tmp_path, capsys):
    """--out equal to --videos wrote index.json and the shards among the clips it read."""
    from vidiff.cli import main

    (tmp_path / "clips").mkdir()
    (tmp_path / "vae").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "clips")
    args = ["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames", "8",
            "--size", "64", "--out", str(tmp_path / "link"), "--no-progress"]
    assert main(args) == 2
    assert f"--out {tmp_path / 'link'}: is the --videos folder" in capsys.readouterr().err
    assert list((tmp_path / "clips").iterdir()) == []


def test_a_training_vae_other_than_the_caches_is_refused(tmp_path):
    """A keyframe / interpolation run on a latent cache with `vae:` naming another VAE than `vidiff data cache
    --vae` trained on one VAE's latents and recorded the other's latent space in trained_on.yaml, so the pipeline
    paired the part with a VAE whose latents it never saw, without a word. The cache records its VAE's latent space
    and the config load refuses another one."""
    from vidiff.cli import main
    from vidiff.config import ConfigError
    from vidiff.data.shapes_folder import generate_shapes_dataset
    from vidiff.pipeline.trained import latent_space_id
    from vidiff.training.config import load_train_config
    from vidiff.vae import AutoencoderKL, VAEConfig

    generate_shapes_dataset(tmp_path / "clips", 2, frames=8, size=32, progress=False)
    for i, name in enumerate(("vae", "other")):
        torch.manual_seed(i)
        AutoencoderKL(VAEConfig(block_out_channels=(8, 16), layers_per_block=1, norm_groups=4,
                                mid_attention=False)).save(tmp_path / name)
    assert main(["data", "cache", "--videos", str(tmp_path / "clips"), "--vae", str(tmp_path / "vae"), "--frames", "8",
                 "--size", "32", "--out", str(tmp_path / "cache"), "--no-progress"]) == 0
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert index["latent_space"] == latent_space_id(tmp_path / "vae") != latent_space_id(tmp_path / "other")
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "configs" / "shapes-interpolation.yaml"
    over = [f"data.root={tmp_path / 'cache'}", "data.size=32", "conditioning.max_gap=7"]  # 8 frames of 32 px
    with pytest.raises(ConfigError, match=f"vae: {tmp_path / 'other'} is not the VAE the latent cache data.root "
                                          f"{tmp_path / 'cache'} was encoded with"):
        load_train_config(recipe, over + [f"vae={tmp_path / 'other'}"])
    assert load_train_config(recipe, over + [f"vae={tmp_path / 'vae'}"]).vae == str(tmp_path / "vae")


def test_a_window_that_cannot_be_read_is_listed_with_the_clip_in_its_place(tmp_path, caplog):
    """A clip cut inside a packet counts more packets than frames decode, so windows are planned past its end; each
    such window holds the next clip's first window (the video-folder dataset's replacement), and index.json said it
    held the cut clip's: it lists the stand-ins now, and the build says so."""
    import av
    from test_io_formats import _faststart_clip

    from vidiff.data.video_folder import VideoFolderDataset, VideoWindows
    from vidiff.io import count_frames

    clips = tmp_path / "clips"
    clips.mkdir()
    _faststart_clip(tmp_path / "whole.mp4", 40)
    with av.open(str(tmp_path / "whole.mp4")) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    cut = packets[20][0] + packets[20][1] // 2  # inside packet 20: 21 packets, fewer frames decode
    (clips / "a_cut.mp4").write_bytes((tmp_path / "whole.mp4").read_bytes()[:cut])
    _faststart_clip(clips / "b_whole.mp4", 8)
    (clips / "a_cut.txt").write_text("a red circle moving left")
    (clips / "b_whole.txt").write_text("a blue square going up")
    windows = VideoWindows(VideoFolderDataset(clips, num_frames=4, size=(8, 8), scan_workers=1))
    decoded = count_frames(clips / "a_cut.mp4")
    past_the_end = {str(j) for j, (i, start) in enumerate(windows.windows) if i == 0 and start + 4 > decoded}
    assert past_the_end, (windows.windows, decoded)
    with caplog.at_level("WARNING"):
        build_latent_cache(windows, FakeVAE(), FakeText(), tmp_path / "cache", shard_size=4, progress=False)
    index = json.loads((tmp_path / "cache" / INDEX_NAME).read_text())
    replaced = {k: v for shard in index["shards"] for k, v in shard.get("replaced", {}).items()}
    assert set(replaced) == past_the_end and all(v == ["b_whole.mp4", 0] for v in replaced.values())
    captions = LatentCacheDataset(tmp_path / "cache").captions
    assert [captions[int(k)] for k in replaced] == ["a blue square going up"] * len(replaced)
    assert f"{len(replaced)} window(s) could not be read and hold another clip's window" in caplog.text


def test_a_bf16_encoder_where_the_cpu_would_emulate_it_falls_back_to_float32_with_a_warning(tmp_path, monkeypatch):
    """`vidiff data cache --encode-dtype bfloat16` on a CPU without native bf16 kernels would encode tens of times
    slower than float32: it says so, encodes in float32, and index.json records float32."""
    from pathlib import Path

    import vidiff.cpu_precision as cpu_precision
    from vidiff.data.latent_cache import build_latent_cache_from_folders
    from vidiff.data.shapes_folder import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "clips", 2, frames=4, progress=False)
    vae = Path(__file__).resolve().parents[1] / "vidiff" / "bundled" / "shapes" / "vae"
    monkeypatch.setattr(cpu_precision, "cpu_has_fast", lambda dtype: False)
    with pytest.warns(UserWarning, match=r"--encode-dtype bfloat16: this CPU has no native bfloat16 kernels"):
        build_latent_cache_from_folders(tmp_path / "clips", vae, "default", 4, 64, tmp_path / "cache",
                                        progress=False, encode_dtype="bfloat16")
    assert json.loads((tmp_path / "cache" / INDEX_NAME).read_text())["encode_dtype"] == "float32"
    with pytest.raises(InputError, match="--encode-dtype must be one of"):
        build_latent_cache_from_folders(tmp_path / "clips", vae, "default", 4, 64, tmp_path / "c2",
                                        progress=False, encode_dtype="half")
