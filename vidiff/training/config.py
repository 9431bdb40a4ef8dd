"""The typed training config: one root (`TrainConfig`) nesting one frozen dataclass per concern.

Loaded from YAML with `load_train_config(path, overrides)`; unknown keys are errors naming the dotted key.
The `model` and `diffusion.noise` sections are kept as mappings here and validated against the model's own
config class (UNet3DConfig or VAEConfig, chosen by `stage`) by `model_config()` / `noise_config()`, so that
this file stays importable before the model modules are.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from vidiff.config import ConfigError, apply_overrides, from_dict, to_dict
from vidiff.training.config_checks import validate  # noqa: F401  (public here: from vidiff.training.config import validate)

Stage = Literal["vae", "keyframes", "interpolation", "toy", "control"]


@dataclass(frozen=True)
class DiffusionSection:
    parameterization: Literal["eps", "v", "x0"] = "v"  # what the network predicts
    sigma_data: float = 1.0  # standard deviation of the (scaled) latents
    min_snr_gamma: Optional[float] = 5.0  # min-SNR-gamma loss weighting (Hang et al. 2023); null = off
    anchor: Literal["none", "known_blend", "known_flow"] = "none"  # known_blend: learn x0 - blend of known frames (anchor.py)
    noise: dict[str, Any] = field(default_factory=dict)  # vidiff.diffusion NoiseScheduleConfig fields


@dataclass(frozen=True)
class DataSection:
    # shapes: Shapes clips rendered in memory (vidiff/data/shapes_dataset.py); synthetic: toy stage only;
    # real_corpus: a prepared real-footage corpus (`tools/real_interp.py prep`), random crops for the VAE stage;
    # window_cache: windows of real footage encoded under crops / flips / time strides (`tools/real_interp.py
    # cache`), for the interpolation stage (vidiff/data/real_footage.py, real_windows.py)
    kind: Literal["video_folder", "latent_cache", "shapes", "synthetic", "real_corpus", "window_cache"] = "video_folder"
    root: str = ""  # the folder of that kind (unused by shapes and synthetic)
    num_frames: int = 16  # frames per clip read from disk (full frame rate)
    size: int = 64  # square frame size in pixels
    fps: Optional[float] = None  # resample clips to this frame rate; null = native
    stride: int = 1  # read every `stride`-th frame (give stride or fps, not both)
    num_samples: int = 256  # synthetic and shapes: dataset length
    shapes_seed: int = 1  # shapes: the generator seed (the bundled pipeline's clips use 1; evaluation 1000)


@dataclass(frozen=True)
class ConditioningSection:
    # probabilities of the known-frame patterns (normalised): none / first / first_k / random_subset
    pattern_none: float = 0.25
    pattern_first: float = 0.35
    pattern_first_k: float = 0.2
    pattern_random_subset: float = 0.2
    # share of samples whose frames are known outside a region (box, moving box or blob of latent pixels; region
    # edits). Keyframes: a fifth pattern beside the four above; interpolation: the frames between the two ends
    pattern_region: float = 0.0
    max_first_k: int = 2  # first_k draws k in 1..max_first_k (capped at num_model_frames - 1)
    drop_text_prob: float = 0.1  # classifier-free guidance: replace text by the encoding of ""
    drop_cond_prob: float = 0.1  # classifier-free guidance: forget all known frames
    cond_noise_max_sigma: float = 0.2  # known frames get noise with sigma ~ U(0, max); that sigma is an input
    num_keyframes: int = 4  # keyframe stage: frames the model sees
    keyframe_stride: int = 5  # keyframe stage: full-rate frames between neighbouring keyframes
    min_gap: int = 2  # interpolation stage: smallest gap (window = gap + 1 frames)
    max_gap: int = 5  # interpolation stage: largest gap
    # interpolation stage: how a step's gap is drawn from min_gap..max_gap: "uniform", or "proportional" (gap g with
    # probability proportional to g: the long gaps, the hardest to fill, get more of the steps)
    gap_weighting: Literal["uniform", "proportional"] = "uniform"
    # keyframe stage, layouts as a training input: one (K, stride) per step, drawn from (seed, step), K uniform in
    # [min_keyframes, max_keyframes] and the stride in [min_keyframe_stride, max_keyframe_stride] (null: the fixed
    # num_keyframes / keyframe_stride). The clips must span (max_keyframes - 1) * max_keyframe_stride + 1 frames.
    min_keyframes: Optional[int] = None
    max_keyframes: Optional[int] = None
    min_keyframe_stride: Optional[int] = None
    max_keyframe_stride: Optional[int] = None
    default_layout_prob: float = 0.0  # share of steps at exactly (num_keyframes, keyframe_stride) instead
    # keyframe stage: how K is drawn in the other steps: "uniform", or "proportional" (K with probability
    # proportional to K). Under train.max_batch_frames a step of K keyframes holds about 1/K as many clips, so
    # "proportional" gives each K about the same number of training clips: the long layouts get more of them
    keyframe_count_weighting: Literal["uniform", "proportional"] = "uniform"
    # captions the model learns from: the dataset's own ("dataset"), or for Shapes clips one caption per sample
    # drawn from the caption grammar (vidiff/data/captions.py) for the attributes the clip's caption names
    captions: Literal["dataset", "shapes_grammar"] = "dataset"
    plain_caption_prob: float = 0.2  # shapes_grammar: share of captions that are exactly the plain template
    # shapes_grammar: the first step whose captions may say the motion as a path ("from left to right"); before it
    # they name only where the object goes, so a model learning from nothing first learns the sign of each word
    path_captions_from_step: int = 0
    # keyframe stage, shapes_grammar: from this step on (null: never) half of each batch is the other half played
    # backwards with the opposite direction in its caption, sharing its draws and first keyframe
    # (vidiff/training/direction_pairs.py)
    direction_pairs_from_step: Optional[int] = None

    def keyframe_counts(self) -> tuple[int, int]:
        """(min, max) keyframe count the keyframe stage trains on."""
        return (self.min_keyframes or self.num_keyframes, self.max_keyframes or self.num_keyframes)

    def keyframe_strides(self) -> tuple[int, int]:
        """(min, max) keyframe stride the keyframe stage trains on."""
        return (self.min_keyframe_stride or self.keyframe_stride, self.max_keyframe_stride or self.keyframe_stride)

    def max_keyframe_span(self) -> int:
        """Frames of the longest keyframe window: what the training clips must hold."""
        return (self.keyframe_counts()[1] - 1) * self.keyframe_strides()[1] + 1


@dataclass(frozen=True)
class ControlSection:
    """stage control (vidiff/training/control_stage.py): a structure-control adapter for the frozen U-Net `base`."""

    stage: Literal["keyframes", "interpolation"] = "keyframes"  # which U-Net the adapter serves
    map_kinds: tuple[str, ...] = ("silhouette", "blob")  # drawn uniformly per sample
    paths: tuple[str, ...] = ("axis", "straight", "diagonal", "curved", "stop_and_go")  # control_maps.PATH_KINDS
    clip_frames: int = 16  # frames of each rendered clip (keyframes: K at the stride from it; interpolation: a window)
    first_known_prob: float = 0.3  # keyframes: share of samples with the first keyframe known (else none)
    direction_word_prob: float = 0.5  # axis paths: share of captions that also say the direction


@dataclass(frozen=True)
class OptimizerSection:
    lr: float = 2e-4  # peak AdamW learning rate
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.01
    eps: float = 1e-8
    warmup_steps: int = 100  # linear warm-up from 0 over this many optimizer steps
    cosine_decay: bool = True  # cosine decay from peak to min_lr_ratio * lr at max_steps
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global gradient norm; <= 0 disables clipping


@dataclass(frozen=True)
class LossSection:
    kl_weight: float = 1e-6  # vae stage: weight of the KL term
    l1_weight: float = 1.0  # vae stage: reconstruction L1
    l2_weight: float = 0.0  # vae stage: reconstruction L2
    edge_weight: float = 0.0  # vae stage: L1 on spatial finite differences (sharper edges)
    # vae stage: decode a posterior sample (true) or the posterior mean (false). Small CPU runs learn far faster
    # from the mean: at the start the sample noise (std ~1) swamps the still-small latent means.
    sample_posterior: bool = True
    # vae stage, for a temporal decoder: L1 on the frame-to-frame change of the reconstruction error (flicker)
    temporal_weight: float = 0.0
    # vae stage: Gaussian noise of std ~ U(0, max) added to the scaled latents before decoding, so the decoder
    # also renders the imperfect latents a sampler hands it (0 = off)
    latent_noise_max: float = 0.0


@dataclass(frozen=True)
class DecodedLossSection:
    """Interpolation with `diffusion.anchor: known_flow`: learn from the frames the pipeline returns instead of
    from latents (vidiff/training/decoded_loss.py)."""
    enabled: bool = False
    sigma: float = 10.0  # the noise level the pipeline's single Euler step starts from (its sigma_max)
    vae: Optional[str] = None  # the VAE part whose decoder the pipeline decodes with; null = `vae`
    carry: bool = True  # add the keyframe residual carried along the flow, as fill_between does (carry_residual)


@dataclass(frozen=True)
class TrainSection:
    max_steps: int = 1000  # optimizer steps (loop iterations) in the run
    batch_size: int = 4  # samples per process per micro-step
    grad_accum: int = 1  # micro-steps per optimizer step
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False  # U-Net stages: recompute each layer in backward (the VAE stage refuses it)
    # blocks recompute GroupNorm+SiLU and the GEGLU gate in backward (less memory); false on a CPU with memory to
    # spare makes the Shapes recipes' steps 10-16% faster, same values (vidiff/models/recompute.py)
    activation_recompute: bool = True
    # latent stages: at most this many model frames per micro-step (samples x window length); a step whose drawn
    # window is long trains on fewer samples, so the cost of a step stays about that of the short windows. None: off
    max_batch_frames: Optional[int] = None
    ema_decay: float = 0.999  # 0 disables EMA (EMA weights then equal the model)
    seed: int = 0  # every random draw derives from (seed, epoch, step, global sample id)
    log_every: int = 10  # steps between metrics.jsonl lines
    checkpoint_every: int = 500  # steps between checkpoints (a final one is always written)
    keep_checkpoints: int = 2  # newest checkpoints kept
    preview_every: int = 0  # steps between preview GIFs; 0 = never
    preview_prompts: tuple[str, ...] = ("a red circle moving left", "a blue square moving up")
    preview_steps: int = 20  # sampling steps for previews
    max_nonfinite_in_a_row: int = 5  # abort after this many skipped (inf/NaN) steps in a row
    num_workers: int = 0  # DataLoader worker processes per rank
    # several processes: seconds one waits for the others at a collective before the run stops, naming it (a
    # process that hangs); null: the backend's default, 30 minutes for gloo (CPU), 10 for NCCL
    process_timeout_s: Optional[float] = None
    # parameter-name prefixes of the model part kept fixed, e.g. [encoder, quant_conv] to fine-tune a VAE's
    # decoder on the latent space the diffusion models were trained in
    freeze: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    stage: Stage = "keyframes"
    output_dir: str = "runs/default"  # the run folder
    model: dict[str, Any] = field(default_factory=dict)  # UNet3DConfig (latent stages) or VAEConfig (vae stage)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    data: DataSection = field(default_factory=DataSection)
    conditioning: ConditioningSection = field(default_factory=ConditioningSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    loss: LossSection = field(default_factory=LossSection)
    decoded_loss: DecodedLossSection = field(default_factory=DecodedLossSection)
    control: ControlSection = field(default_factory=ControlSection)
    train: TrainSection = field(default_factory=TrainSection)
    text_encoder: str = "default"  # text encoder folder, or "default" (embedded MiniLM)
    vae: Optional[str] = None  # frozen VAE part folder (latent stages without a latent cache; previews)
    # part folder whose weights start the model (fine-tuning); parameters it lacks (new temporal layers) keep
    # their initialisation. vae stage: its latent shift / scale are kept when the encoder is frozen
    init_weights: Optional[str] = None
    base: Optional[str] = None  # stage control: the frozen U-Net part folder the adapter is trained for

    def model_config(self):
        """The typed model config for this stage (validated: unknown keys raise, naming `model.<key>`)."""
        if self.stage == "vae":
            from vidiff.vae import VAEConfig as cls
        elif self.stage == "toy":
            from vidiff.training.toy import ToyConfig as cls
        elif self.stage == "control":
            from vidiff.models.control_adapter import ControlAdapterConfig as cls
        else:
            from vidiff.models import UNet3DConfig as cls
        return from_dict(cls, self.model, "model")

    def noise_config(self):
        from vidiff.diffusion import NoiseScheduleConfig

        return from_dict(NoiseScheduleConfig, self.diffusion.noise, "diffusion.noise")


def load_train_config(path: str | Path, overrides: list[str] | None = None, *,
                      folders_here: bool = True) -> TrainConfig:
    path = Path(path).expanduser()  # "~/recipe.yaml", as the other readers take "~"
    if not os.path.lexists(path):
        hint = ""
        if path.parts and path.parts[0] == "configs":  # the docs' recipes: a pip install has no configs/ folder
            hint = (" (the recipes in configs/ come with a clone of the vidiff repository and are read from its root; "
                    "an installed package holds the bundled pipelines, not the training configs)")
        raise ConfigError(f"config file not found: {path}{hint}")
    from vidiff.safe_yaml import load_file  # a folder, FIFO or device is refused there, without blocking

    data = load_file(path)
    if data is None or data == {}:  # empty: every key would be its default, and the first check to fail says little
        raise ConfigError(f"{path}: the config is empty; start from one in configs/ (e.g. configs/shapes-vae.yaml)")
    data = apply_overrides(data, overrides or [])
    return validate(home_expanded(from_dict(TrainConfig, data)), folders_here=folders_here)


def load_run_config(path: str | Path) -> TrainConfig:
    """The config a run folder's config.yaml records, typed and its paths read as `load_train_config` reads them,
    but not checked against the folders it names: export and resume read no start part, latent cache or base part,
    and those may have moved since (`vidiff export` of a fine-tuned run was refused as "init_weights: part folder not
    found" when run away from where the training ran, or after the start part was deleted)."""
    from vidiff.safe_yaml import load_file

    data = load_file(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: not a run's config (a mapping of keys to values)")
    try:
        return home_expanded(from_dict(TrainConfig, data))
    except ConfigError as e:  # export reads several runs: say whose
        raise ConfigError(f"{path}: {e}") from None


def home_expanded(cfg: TrainConfig) -> TrainConfig:
    """The recipe's paths with a leading "~" read as the home folder, as the CLI and the library's readers take it:
    `output_dir: ~/runs/x` trained into a folder "./~" and then stopped on a traceback at the export, which the part
    writer wrote to the home folder; `vae: ~/vae` was refused as "~/vae: model.safetensors not found"."""
    from dataclasses import replace

    def home(path: str | None) -> str | None:
        return path and os.path.expanduser(path)

    return replace(cfg, output_dir=home(cfg.output_dir), text_encoder=home(cfg.text_encoder), vae=home(cfg.vae),
                   init_weights=home(cfg.init_weights), base=home(cfg.base),
                   data=replace(cfg.data, root=home(cfg.data.root)),
                   decoded_loss=replace(cfg.decoded_loss, vae=home(cfg.decoded_loss.vae)))


HASH_IGNORED = ("output_dir", "train.num_workers", "train.log_every", "train.preview_every", "train.activation_recompute",
                "train.process_timeout_s")


def config_hash(cfg: TrainConfig, ignore: tuple[str, ...] = HASH_IGNORED) -> str:
    """sha256 of the settings that decide the training trajectory; keys in `ignore` (where the run lives, how
    often it reports) may change on resume without --force."""
    data = to_dict(cfg)
    if cfg.decoded_loss == DecodedLossSection():  # runs from before the section existed keep their hash
        data.pop("decoded_loss")
    if cfg.train.max_batch_frames is None:  # likewise for runs from before the key existed
        data["train"].pop("max_batch_frames")
    for key, default in (("path_captions_from_step", 0), ("gap_weighting", "uniform"),
                         ("keyframe_count_weighting", "uniform"), ("direction_pairs_from_step", None)):  # likewise
        if getattr(cfg.conditioning, key) == default:
            data["conditioning"].pop(key)
    for key in ignore:
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
