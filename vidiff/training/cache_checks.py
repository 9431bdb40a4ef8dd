"""A keyframe or interpolation config against the latent cache it reads (data.kind: latent_cache), from the cache's
index before any weights load: its clips' length and latent size, its frame size, the VAE it was encoded with and
the text encoder of its stored caption embeddings (config_checks.validate runs these; each raises ConfigError that
names the key to change)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vidiff.config import ConfigError

if TYPE_CHECKING:
    from vidiff.training.config import TrainConfig


def check_latent_cache(cfg: TrainConfig) -> tuple[int, ...] | None:
    """Every check of the latent cache data.root against `cfg`; the latents' (C, F, h, w) from its index, or None."""
    from vidiff.data.latent_cache import cache_index, latent_shape_of, latent_space_of

    index = cache_index(cfg.data.root)  # once: an index lists every clip's caption, and can be large
    shape = latent_shape_of(index)
    _check_cache_frames(cfg, shape)
    _check_cache_size(cfg, index)
    _check_cache_vae(cfg, latent_space_of(index))
    _check_cache_text(cfg, index)
    return shape


def _check_cache_frames(cfg: TrainConfig, shape: tuple[int, ...] | None) -> None:
    """The cache's clip length against the layouts the stage draws, read from its index (`shape`, the latents'
    (C, F, h, w)) before any weights load (the stage found it out at its first step). A cache that cannot be read
    is the dataset's to refuse."""
    if shape is None or len(shape) != 4:  # missing or malformed: LatentCacheDataset says what is wrong with it
        return
    frames, h, w = shape[1:]
    levels = len(getattr(cfg.model_config(), "block_out_channels", ()) or ())
    multiple = 2 ** max(levels - 1, 0)
    if h % multiple or w % multiple:  # the U-Net's first forward raised it as a ValueError traceback
        raise ConfigError(f"data.root: the latent cache's latents are {h}x{w}, and the model's {levels} levels "
                          f"(model.block_out_channels) need sides that are multiples of {multiple}; cache another "
                          "--size or use fewer levels")
    c = cfg.conditioning
    if cfg.stage == "keyframes" and c.max_keyframe_span() > frames:
        raise ConfigError(f"data.root: the latent cache's clips have {frames} frames, fewer than the "
                          f"{c.max_keyframe_span()} that the largest keyframe layout spans (conditioning.max_keyframes "
                          "at conditioning.max_keyframe_stride); lower them or cache longer clips (--frames)")
    # the gaps past the clips were never drawn (windows.py keeps them within the clip), while the exported part
    # recorded them as trained (trained_on.yaml: num_frames up to max_gap + 1) and the pipeline filled them
    if cfg.stage == "interpolation" and c.max_gap + 1 > frames:
        raise ConfigError(f"data.root: the latent cache's clips have {frames} frames, fewer than the "
                          f"{c.max_gap + 1} of the largest window (conditioning.max_gap + 1); lower "
                          "conditioning.max_gap or cache longer clips (--frames)")


def _check_cache_size(cfg: TrainConfig, index: dict | None) -> None:
    """data.size against the frame size a latent cache was encoded at (`vidiff data cache --size`, in its index): a
    run on a cache reads no frames, so data.size went only to the exported pipeline.yaml as its height and width, and
    32 set on a cache of 64 px clips made the pipeline generate at a size its part never saw (warned at each call)."""
    size = (index.get("dataset") or {}).get("size") if isinstance(index, dict) else None
    size = [size, size] if isinstance(size, int) else size
    if isinstance(size, list) and len(size) == 2 and size[0] == size[1] and size[0] != cfg.data.size:
        raise ConfigError(f"data.size: {cfg.data.size}, but the latent cache data.root holds {size[0]}x{size[1]} "
                          f"frames (`vidiff data cache --size {size[0]}`); set data.size={size[0]}")


def _check_cache_vae(cfg: TrainConfig, cached: str | None) -> None:
    """`vae` (what the exported part records as its latent space, and what previews decode with) against the VAE
    the latent cache was encoded with (`cached`, its index's record): another one trained the part on one VAE's
    latents and paired it with another VAE's, without a word."""
    from vidiff.pipeline.trained import latent_space_id

    if cached is None or not cfg.vae or not Path(cfg.vae).is_dir():  # not recorded, or checked where it runs
        return
    if latent_space_id(cfg.vae) != cached:
        raise ConfigError(f"vae: {cfg.vae} is not the VAE the latent cache data.root {cfg.data.root} was encoded with "
                          "(another encoder or latent shift / scale); give the `--vae` of its `vidiff data cache`, or "
                          "cache again with this one")


def _check_cache_text(cfg: TrainConfig, index: dict | None) -> None:
    """A latent cache's stored caption embeddings (read by conditioning.captions: dataset) against `text_encoder`:
    another encoder of the same width trained on the cached embeddings while the part recorded the configured one,
    without a word; another width failed at the first step in a traceback."""
    from vidiff.text_folder import same_weights

    if cfg.conditioning.captions != "dataset" or not isinstance(index, dict):
        return  # shapes_grammar encodes every caption afresh with text_encoder
    try:
        width = int(index["shapes"]["context"][-1])
    except Exception:  # noqa: BLE001 - an index without shapes (no shard yet): refused where it is read
        width = None
    dim = getattr(cfg.model_config(), "context_dim", None)
    if width is not None and dim is not None and width != dim:
        raise ConfigError(f"model.context_dim: {dim}, but the latent cache data.root {cfg.data.root} holds "
                          f"{width}-wide caption embeddings (text encoder {index.get('text_encoder')}); set "
                          f"model.context_dim={width} and text_encoder to that encoder, or cache again")
    recorded = index.get("text_encoder")
    if isinstance(recorded, str) and encoder_here(cfg) and same_weights(recorded, cfg.text_encoder) is False:
        raise ConfigError(f"text_encoder: {cfg.text_encoder} is not the encoder the latent cache data.root "
                          f"{cfg.data.root} stored its caption embeddings with ({recorded.split(';kind=')[0]}); the "
                          "part would learn from one encoder's embeddings and be paired with another's: give that "
                          "encoder, or cache again with `vidiff data cache --text`")


def encoder_here(cfg: TrainConfig) -> bool:
    """`text_encoder` can be read now (the default, or a folder that exists); a missing one is said where it loads."""
    return cfg.text_encoder == "default" or Path(cfg.text_encoder).expanduser().is_dir()
