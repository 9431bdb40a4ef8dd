"""The checks of a training config that its types cannot express (ranges, settings that go together, folders that
must exist), each raising ConfigError that names the dotted key. `validate` runs on every loaded config
(`load_train_config`) before anything is built."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from vidiff.bundled_paths import where_installed
from vidiff.config import ConfigError
from vidiff.limits import MAX_BATCH, MAX_FRAMES, MAX_SIDE, MAX_STEPS
from vidiff.training.cache_checks import check_latent_cache, encoder_here

if TYPE_CHECKING:
    from vidiff.training.config import TrainConfig


# the data kinds each stage reads (the control stage renders its own Shapes clips; toy draws synthetic vectors)
STAGE_DATA = {"vae": ("video_folder", "shapes", "real_corpus"), "keyframes": ("latent_cache", "video_folder", "shapes"),
              "interpolation": ("latent_cache", "window_cache", "video_folder", "shapes"), "control": ("shapes",),
              "toy": ("synthetic",)}


def validate(cfg: TrainConfig, *, folders_here: bool = True) -> TrainConfig:
    """Checks values the types cannot express; raises ConfigError naming the key. `folders_here=False` (`--dry-run`,
    a plan that may be for another machine) leaves out the start part's folder, which the dry run warns of."""
    t, o, c, d = cfg.train, cfg.optimizer, cfg.conditioning, cfg.data
    positive = {
        "train.max_steps": t.max_steps, "train.batch_size": t.batch_size, "train.grad_accum": t.grad_accum,
        "train.log_every": t.log_every, "train.checkpoint_every": t.checkpoint_every,
        "train.keep_checkpoints": t.keep_checkpoints, "train.max_nonfinite_in_a_row": t.max_nonfinite_in_a_row,
        "data.num_frames": d.num_frames, "data.size": d.size, "data.stride": d.stride,
        "conditioning.num_keyframes": c.num_keyframes, "conditioning.keyframe_stride": c.keyframe_stride,
        "conditioning.min_gap": c.min_gap,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}: must be >= 1, got {value}")
    # a batch or frame far past memory hung (a DataLoader filling a batch of 10**8 from 8 clips) or asked for
    # hundreds of GiB at the first step
    for key, value, hi in (("train.batch_size", t.batch_size, MAX_BATCH), ("data.size", d.size, MAX_SIDE),
                           ("data.num_frames", d.num_frames, MAX_FRAMES)):
        if value > hi:
            raise ConfigError(f"{key}: must be at most {hi}, got {value}")
    for key, value, hi in (("train.seed", t.seed, 2**63 - 1), ("train.num_workers", t.num_workers, 256),
                           ("train.preview_every", t.preview_every, None), ("train.preview_steps", t.preview_steps, None)):
        if value < 0 or (hi is not None and value > hi):
            raise ConfigError(f"{key}: must be in 0..{hi}, got {value}" if hi else f"{key}: must be >= 0, got {value}")
    # 0 never ended a wait; 1e300 overflowed the timedelta handed to the process group
    if t.process_timeout_s is not None and not 0 < t.process_timeout_s <= 1e6:
        raise ConfigError(f"train.process_timeout_s: must be seconds > 0, at most 1e6, or null (the backend's "
                          f"default), got {t.process_timeout_s}")
    if d.fps is not None and not d.fps > 0:  # 0 divided by zero at the first clip, -3 failed in a loader worker
        raise ConfigError(f"data.fps: must be a frame rate > 0 or null (read at the clips' own rate), got {d.fps}")
    if d.fps is not None and d.stride != 1:
        raise ConfigError(f"data.fps / data.stride: give one of them (data.fps {d.fps} resamples in time, data.stride "
                          f"{d.stride} takes every {ordinal(d.stride)} frame); set data.stride=1 to read at an fps")
    for key in ("kl_weight", "l1_weight", "l2_weight", "edge_weight", "temporal_weight", "latent_noise_max"):
        if getattr(cfg.loss, key) < 0:
            raise ConfigError(f"loss.{key}: must be >= 0, got {getattr(cfg.loss, key)}")
    if cfg.stage == "toy" and (cfg.init_weights is not None or t.freeze):
        raise ConfigError("init_weights / train.freeze: the toy stage has no part to start from or freeze")
    if t.preview_every and cfg.stage == "keyframes":  # the keyframe stage draws previews; found at the first one
        if not t.preview_prompts:  # a RuntimeError traceback from torch.stack
            raise ConfigError(f"train.preview_prompts: empty, with train.preview_every {t.preview_every}; give "
                              "prompts, or train.preview_every=0 for no previews")
        from vidiff.errors import InputError
        from vidiff.pipeline.request import prompts_and_seeds

        try:  # the text encoder's TypeError traceback at the first preview (a Latin-1 byte in --set), after training
            prompts_and_seeds(list(t.preview_prompts), 0, "train.preview_prompts")
        except InputError as e:
            raise ConfigError(str(e)) from None
        if not 1 <= t.preview_steps <= MAX_STEPS:  # was refused naming the sampler's num_steps
            raise ConfigError(f"train.preview_steps: must be in 1..{MAX_STEPS} with train.preview_every "
                              f"{t.preview_every}, got {t.preview_steps}")
    if t.max_batch_frames is not None and t.max_batch_frames < 1:
        raise ConfigError(f"train.max_batch_frames: must be >= 1 or null, got {t.max_batch_frames}")
    if t.max_batch_frames is not None and cfg.stage not in ("keyframes", "interpolation"):
        raise ConfigError("train.max_batch_frames: only the keyframe and interpolation stages draw window lengths")
    if cfg.stage == "vae" and t.gradient_checkpointing:
        raise ConfigError("train.gradient_checkpointing: the VAE stage does not support it (U-Net stages only)")
    if folders_here and cfg.init_weights is not None and not Path(cfg.init_weights).is_dir():
        raise ConfigError(f"init_weights: part folder not found: {cfg.init_weights}{where_installed(cfg.init_weights)}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay: must be in [0, 1), got {t.ema_decay}")
    if o.lr <= 0:
        raise ConfigError(f"optimizer.lr: must be > 0, got {o.lr}")
    if o.eps <= 0 or o.weight_decay < 0 or o.warmup_steps < 0:
        raise ConfigError("optimizer.eps must be > 0, optimizer.weight_decay and optimizer.warmup_steps >= 0; got "
                          f"{o.eps}, {o.weight_decay}, {o.warmup_steps}")
    for i, beta in enumerate(o.betas):
        if not 0.0 <= beta < 1.0:
            raise ConfigError(f"optimizer.betas[{i}]: must be in [0, 1), got {beta}")
    if not 0.0 <= o.min_lr_ratio <= 1.0:
        raise ConfigError(f"optimizer.min_lr_ratio: must be in [0, 1], got {o.min_lr_ratio}")
    if c.max_gap < c.min_gap:
        raise ConfigError(f"conditioning.max_gap ({c.max_gap}) < conditioning.min_gap ({c.min_gap})")
    for name, value in (("min_keyframes", c.min_keyframes), ("max_keyframes", c.max_keyframes),
                        ("min_keyframe_stride", c.min_keyframe_stride), ("max_keyframe_stride", c.max_keyframe_stride)):
        if value is not None and value < 1:
            raise ConfigError(f"conditioning.{name}: must be >= 1, got {value}")
    for what, (lo, hi), fixed in (("keyframes", c.keyframe_counts(), "num_keyframes"),
                                  ("keyframe_stride", c.keyframe_strides(), "keyframe_stride")):
        if not lo <= getattr(c, fixed) <= hi:
            raise ConfigError(f"conditioning.min_{what} / max_{what}: the range {lo}..{hi} must hold "
                              f"conditioning.{fixed} ({getattr(c, fixed)}), the pipeline's default layout")
    if not 0.0 <= c.default_layout_prob <= 1.0:
        raise ConfigError(f"conditioning.default_layout_prob: must be in [0, 1], got {c.default_layout_prob}")
    probs = (c.pattern_none, c.pattern_first, c.pattern_first_k, c.pattern_random_subset, c.pattern_region)
    if min(probs) < 0 or sum(probs) <= 0:
        raise ConfigError("conditioning.pattern_*: probabilities must be >= 0 with a positive sum")
    if cfg.stage == "interpolation" and c.pattern_region > 1:
        raise ConfigError(f"conditioning.pattern_region: for interpolation a share in [0, 1], got {c.pattern_region}")
    for key in ("drop_text_prob", "drop_cond_prob", "plain_caption_prob"):
        if not 0.0 <= getattr(c, key) <= 1.0:
            raise ConfigError(f"conditioning.{key}: must be in [0, 1]")
    if c.gap_weighting != "uniform" and cfg.stage != "interpolation":
        raise ConfigError(f"conditioning.gap_weighting: only the interpolation stage draws gaps (stage is {cfg.stage!r})")
    if c.keyframe_count_weighting != "uniform" and cfg.stage != "keyframes":
        raise ConfigError("conditioning.keyframe_count_weighting: only the keyframe stage draws keyframe counts "
                          f"(stage is {cfg.stage!r})")
    if c.path_captions_from_step < 0:
        raise ConfigError(f"conditioning.path_captions_from_step: must be >= 0, got {c.path_captions_from_step}")
    # the keys only the grammar's captions serve, and the value that turns each off: named all at once (the
    # keyframe recipe sets both)
    grammar_only = {key: off for key, off in (("path_captions_from_step", 0), ("direction_pairs_from_step", None))
                    if getattr(c, key) != off}
    if grammar_only and c.captions != "shapes_grammar":
        keys = " and ".join(f"conditioning.{key}" for key in grammar_only)
        verb = "need" if len(grammar_only) > 1 else "needs"
        sets = " ".join(f"--set conditioning.{key}={'null' if off is None else off}"
                        for key, off in grammar_only.items())
        raise ConfigError(f"{keys} {verb} the Shapes caption grammar (only it says paths and directions), and "
                          f"conditioning.captions is {c.captions!r}; for your own captions also give {sets}")
    if c.direction_pairs_from_step is not None and c.direction_pairs_from_step < 0:
        raise ConfigError(f"conditioning.direction_pairs_from_step: must be >= 0 (or null: never), got "
                          f"{c.direction_pairs_from_step}")
    if c.direction_pairs_from_step is not None and (cfg.stage != "keyframes" or c.captions != "shapes_grammar"):
        raise ConfigError("conditioning.direction_pairs_from_step: pairs clips with their time reversal and the opposite "
                          "direction word, which only the keyframe stage with conditioning.captions: shapes_grammar "
                          f"knows (stage {cfg.stage!r}, captions {c.captions!r})")
    if c.direction_pairs_from_step is not None:
        # a pair is made within one process's micro-batch: of 1 sample (batch_size 1 per GPU, or 1 left by the frame
        # budget at the longest layout) no pair is made, and the steps trained without one, unsaid
        longest = max(c.num_keyframes, c.max_keyframes or 0)
        kept = t.batch_size if t.max_batch_frames is None else min(t.batch_size, max(1, t.max_batch_frames // longest))
        if kept < 2:
            why = (f"train.batch_size is {t.batch_size}" if t.batch_size < 2 else
                   f"train.max_batch_frames {t.max_batch_frames} keeps 1 sample of {longest} keyframes")
            raise ConfigError(f"conditioning.direction_pairs_from_step: pairs are made within each process's "
                              f"micro-batch and need 2 samples in it, but {why}; give train.batch_size >= 2 per "
                              f"process (and train.max_batch_frames >= {2 * longest})")
    if d.kind == "real_corpus" and cfg.stage != "vae":
        raise ConfigError("data.kind: real_corpus feeds the VAE stage (crops of frames); the interpolation stage "
                          "reads a window_cache built from the corpus")
    if d.kind == "window_cache" and cfg.stage != "interpolation":
        raise ConfigError(f"data.kind: window_cache feeds the interpolation stage only (stage is {cfg.stage!r})")
    if d.kind == "window_cache" and cfg.diffusion.anchor == "known_flow" and not cfg.vae:
        raise ConfigError("vae: the flow anchor (diffusion.anchor: known_flow) encodes the warped window ends with "
                          "the frozen VAE the window cache was built with; give its part folder")
    if d.kind not in STAGE_DATA[cfg.stage]:  # any other kind was read as a video folder, or not read at all
        raise ConfigError(f"data.kind: the {cfg.stage} stage reads {' or '.join(STAGE_DATA[cfg.stage])} data, "
                          f"not {d.kind}")
    shape = None
    if d.kind == "latent_cache" and cfg.stage in ("keyframes", "interpolation"):
        shape = check_latent_cache(cfg)
    if cfg.stage == "keyframes" and d.kind != "latent_cache":
        need = c.max_keyframe_span()
        if need > d.num_frames:
            raise ConfigError(f"data.num_frames ({d.num_frames}) < {need} frames that the largest keyframe layout "
                              f"(conditioning.max_keyframes at conditioning.max_keyframe_stride) spans")
    if cfg.stage == "interpolation" and d.kind not in ("latent_cache", "window_cache") and c.max_gap + 1 > d.num_frames:
        raise ConfigError(f"data.num_frames ({d.num_frames}) < conditioning.max_gap + 1")
    if cfg.stage in ("keyframes", "interpolation") and d.kind in ("video_folder", "shapes") and not cfg.vae:
        raise ConfigError(f"vae: a latent stage reading {d.kind} clips needs a frozen VAE part folder (or use "
                          "data.kind=latent_cache)")
    if d.kind == "shapes" and d.num_samples < 1:
        raise ConfigError(f"data.num_samples: must be >= 1, got {d.num_samples}")
    if (cfg.stage == "toy") != (d.kind == "synthetic"):
        raise ConfigError("data.kind: 'synthetic' goes with stage 'toy' only")
    if cfg.stage == "control":
        _validate_control(cfg)
    if cfg.decoded_loss.enabled:
        _validate_decoded_loss(cfg)
    try:
        cfg.model_config()  # validates the model section against the stage's model config
    except ConfigError as e:  # name the section the key sits in, unless from_dict already did ("model.x")
        raise ConfigError(str(e) if "model." in str(e) else f"model.{e}") from None
    if cfg.stage in ("keyframes", "interpolation", "control"):
        cfg.noise_config()
    if cfg.stage in ("keyframes", "interpolation"):
        _check_latent_model(cfg, shape)
    _check_frame_size(cfg)
    if cfg.stage in ("keyframes", "interpolation", "control"):
        _check_text_width(cfg)
    return cfg


def _check_latent_model(cfg: TrainConfig, cached: tuple[int, ...] | None) -> None:
    """The U-Net's inputs and outputs against what a latent stage feeds it: known frames, and latents of the cache's
    (`cached`: its (C, F, h, w)) or the VAE's channels. Each failed at the first step, after the models loaded and
    the run folder was written, in a traceback ("this model has conditioning=False", "x must be (B, 8, F, h, w)",
    "net returned shape (2, 3, 4, 16, 16)")."""
    from vidiff.models.vae import VAEConfig
    from vidiff.parts import load_part_config

    model = cfg.model_config()
    if not model.conditioning:
        raise ConfigError(f"model.conditioning: the {cfg.stage} stage feeds the U-Net known frames, which it takes "
                          "only with model.conditioning: true")
    if model.out_channels != model.in_channels:
        raise ConfigError(f"model.out_channels: {model.out_channels}, but the U-Net predicts latents of its "
                          f"model.in_channels ({model.in_channels}); set them equal")
    if cached is not None and len(cached) == 4:
        channels, source = cached[0], f"the latent cache data.root {cfg.data.root}"
    elif cfg.data.kind in ("video_folder", "shapes") and cfg.vae and Path(cfg.vae).is_dir():
        channels, source = load_part_config(cfg.vae, VAEConfig).latent_channels, f"the VAE {cfg.vae}"
    else:  # a window cache, or a VAE not on this machine: said where it is read
        return
    if model.in_channels != channels:
        raise ConfigError(f"model.in_channels: {model.in_channels}, but {source} gives latents of {channels} "
                          f"channels; set model.in_channels={channels} and model.out_channels={channels}")


def _check_text_width(cfg: TrainConfig) -> None:
    """The text encoder's width against the model's model.context_dim: another one failed at the first step, after
    the model was built, in a size-mismatch traceback. Read from the encoder's config.json, nothing loaded."""
    from vidiff.text_folder import config_width

    if not encoder_here(cfg):
        return  # said where it is loaded
    width, dim = config_width(cfg.text_encoder), getattr(cfg.model_config(), "context_dim", None)
    if width is not None and dim is not None and width != dim:
        raise ConfigError(f"model.context_dim: {dim}, but the text encoder {cfg.text_encoder} gives {width}-wide "
                          f"context; set model.context_dim={width} (or give a {dim}-wide text_encoder)")


def _check_frame_size(cfg: TrainConfig) -> None:
    """data.size against the downsampling factor of the VAE the frames go through (the first step refused it as
    "video: height and width must be multiples of 4", after the run folder was written and the models loaded)."""
    from vidiff.models.vae import VAEConfig
    from vidiff.parts import load_part_config

    d = cfg.data
    if cfg.stage == "vae":
        factor, what = cfg.model_config().downsample_factor, "the VAE's (model.block_out_channels)"
    elif d.kind in ("video_folder", "shapes") and cfg.stage != "toy" and cfg.vae and Path(cfg.vae).is_dir():
        factor, what = load_part_config(cfg.vae, VAEConfig).downsample_factor, f"vae {cfg.vae}'s"
    else:  # latents cached (their size is checked against the model above), or a VAE folder not on this machine
        return
    if d.size % factor:
        raise ConfigError(f"data.size: {d.size} is not a multiple of {what} downsampling factor {factor} (e.g. "
                          f"{d.size // factor * factor or factor})")


def _validate_decoded_loss(cfg: TrainConfig) -> None:
    e = cfg.decoded_loss
    if cfg.stage != "interpolation" or cfg.diffusion.anchor != "known_flow":
        raise ConfigError("decoded_loss.enabled: only for stage interpolation with diffusion.anchor: known_flow "
                          f"(got stage {cfg.stage!r}, anchor {cfg.diffusion.anchor!r})")
    if not (math.isfinite(e.sigma) and e.sigma > 0):
        raise ConfigError(f"decoded_loss.sigma: must be a finite number > 0, got {e.sigma}")
    folder = e.vae or cfg.vae
    if not folder or not Path(folder).is_dir():
        raise ConfigError(f"decoded_loss.vae (or vae): the VAE part folder to decode with was not found: {folder}"
                          f"{where_installed(folder)}")


def _validate_control(cfg: TrainConfig) -> None:
    from vidiff.data.control_maps import MAP_KINDS, PATH_KINDS

    c = cfg.control
    for key, folder in (("base", cfg.base), ("vae", cfg.vae)):
        if not folder or not Path(folder).is_dir():
            raise ConfigError(f"{key}: stage control needs a part folder (the frozen U-Net / VAE), got {folder!r}"
                              f"{where_installed(folder)}")
    if not c.map_kinds or set(c.map_kinds) - set(MAP_KINDS) or not c.paths or set(c.paths) - set(PATH_KINDS):
        raise ConfigError(f"control.map_kinds / control.paths: non-empty subsets of {MAP_KINDS} / {PATH_KINDS}")
    set_by_base = {"block_out_channels", "downsample_factor", "map_kinds", "base_sha256"} & set(cfg.model)
    if set_by_base:
        raise ConfigError(f"model.{sorted(set_by_base)[0]}: set from the base part, the VAE and control.map_kinds")
    if not (0 <= c.first_known_prob <= 1 and 0 <= c.direction_word_prob <= 1):
        raise ConfigError("control.first_known_prob / control.direction_word_prob: must be in [0, 1]")
    k = cfg.conditioning
    need = (k.num_keyframes - 1) * k.keyframe_stride + 1 if c.stage == "keyframes" else k.max_gap + 1
    if c.clip_frames < need:
        raise ConfigError(f"control.clip_frames ({c.clip_frames}) < {need} frames the {c.stage} window spans")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 111th: "every 3th frame" read wrong."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
