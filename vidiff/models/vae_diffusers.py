"""The diffusers AutoencoderKL folder format (config.json + diffusion_pytorch_model.safetensors): its config keys
mapped to VAEConfig, its weights read (safetensors only, sharded or not), older attention key names renamed.
A user's Stable Diffusion VAE loads through here; an architecture choice vidiff does not build is an error."""
from __future__ import annotations

import json
from pathlib import Path

from vidiff.errors import InputError
from vidiff.hub_folder import find_weights, refuse_pipeline_root
from vidiff.config import ConfigError
from vidiff.models.vae import DIFFUSERS_SCALING_DEFAULT, DIFFUSERS_WEIGHTS, VAEConfig, load_state


def load_diffusers_vae(cls, folder: str | Path, frame_chunk: int | None = None):
    """An AutoencoderKL (class `cls`) with the config and weights of a diffusers folder, on the CPU."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"VAE folder not found: {folder}")
    config_path = folder / "config.json"
    refuse_pipeline_root(folder, "vae")  # a Stable Diffusion repository's root
    if not config_path.is_file():
        raise InputError(f"{folder}: missing config.json (not a diffusers AutoencoderKL folder)")
    try:
        raw = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{config_path}: not valid JSON ({e})") from None
    config = vae_config_from_diffusers(raw, where=str(config_path))
    if frame_chunk is not None:
        from vidiff.config import replace

        config = replace(config, frame_chunk=frame_chunk)
    state = _read_diffusers_weights(folder)  # checks the files before building the model
    model = cls(config)
    load_state(model, convert_legacy_diffusers_keys(state), str(folder))
    return model


# ---- diffusers format --------------------------------------------------------------------------------------
_IGNORED_DIFFUSERS_KEYS = {"_class_name", "_diffusers_version", "_name_or_path", "force_upcast"}
_MAPPED_DIFFUSERS_KEYS = {  # diffusers config.json key -> VAEConfig field
    "in_channels": "in_channels", "out_channels": "out_channels", "latent_channels": "latent_channels",
    "block_out_channels": "block_out_channels", "layers_per_block": "layers_per_block",
    "norm_num_groups": "norm_groups", "mid_block_add_attention": "mid_attention",
    "use_quant_conv": "use_quant_conv", "use_post_quant_conv": "use_post_quant_conv",
    "scaling_factor": "scaling_factor", "shift_factor": "shift_factor", "sample_size": "sample_size",
}


def vae_config_from_diffusers(raw: dict, where: str = "config.json") -> VAEConfig:
    """Maps a diffusers AutoencoderKL config.json to VAEConfig; an architecture choice we do not build raises."""
    from vidiff.config import from_dict

    if raw.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise InputError(f"{where}: _class_name is {raw['_class_name']!r}; only 'AutoencoderKL' is supported")
    unknown = sorted(set(raw) - _IGNORED_DIFFUSERS_KEYS - set(_MAPPED_DIFFUSERS_KEYS)
                     - {"act_fn", "down_block_types", "up_block_types", "latents_mean", "latents_std"})
    if unknown:
        raise InputError(f"{where}: unsupported AutoencoderKL config key(s) {', '.join(unknown)}")
    if raw.get("act_fn", "silu") != "silu":
        raise InputError(f"{where}: act_fn {raw['act_fn']!r} is not supported (only 'silu')")
    for key, block in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        bad = [t for t in raw.get(key, [block]) if t != block]
        if bad:
            raise InputError(f"{where}: {key} contains {bad[0]!r}; only {block!r} is supported")
    for key in ("latents_mean", "latents_std"):
        if raw.get(key) is not None:
            raise InputError(f"{where}: {key} (per-channel latent statistics) is not supported; "
                             "only scalar scaling_factor / shift_factor")
    widths = raw.get("block_out_channels", [64])
    for key in ("down_block_types", "up_block_types"):
        if key in raw and len(raw[key]) != len(widths):
            raise InputError(f"{where}: {key} has {len(raw[key])} entries but block_out_channels has {len(widths)}")
    # Defaults are diffusers' own, so a config.json that omits a key means what it means there.
    data = {"block_out_channels": [64], "layers_per_block": 1, "norm_groups": 32, "sample_size": 32,
            "scaling_factor": DIFFUSERS_SCALING_DEFAULT}
    for key, field in _MAPPED_DIFFUSERS_KEYS.items():
        if key in raw:
            data[field] = raw[key]
    if data.get("shift_factor") is None:
        data["shift_factor"] = 0.0
    if isinstance(data["sample_size"], (list, tuple)):  # informational only; keep the larger side
        data["sample_size"] = max(data["sample_size"])
    try:
        return from_dict(VAEConfig, data, where=where)
    except ConfigError as e:
        raise InputError(str(e)) from None


def _read_diffusers_weights(folder: Path) -> dict:
    """All tensors of the folder's safetensors weights: one file, its shards, or only a variant (`.fp16.`)."""
    from safetensors.torch import load_file

    weights = find_weights(folder, DIFFUSERS_WEIGHTS.removesuffix(".safetensors"))
    if weights is not None:
        state = {}
        for path in weights.files():
            state.update(load_file(str(path)))
        return state
    if (folder / "diffusion_pytorch_model.bin").is_file():
        import shlex

        where = json.dumps(str(folder))
        code = f"from diffusers import AutoencoderKL as M; M.from_pretrained({where}).save_pretrained({where})"
        raise InputError(f"{folder}: only diffusion_pytorch_model.bin (a pickle) is present; vidiff loads safetensors "
                         f"only. Convert it once to {DIFFUSERS_WEIGHTS}, in an environment that trusts the file: "
                         f"python -c {shlex.quote(code)}")
    raise InputError(f"{folder}: missing {DIFFUSERS_WEIGHTS}")


_LEGACY_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_legacy_diffusers_keys(state: dict) -> dict:
    """Renames the attention parameters of older diffusers checkpoints (`attentions.0.query.weight` ->
    `attentions.0.to_q.weight`, `proj_attn` -> `to_out.0`) and flattens 1x1-conv attention weights to linear."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) >= 4 and parts[-4] == "attentions" and parts[-2] in _LEGACY_ATTENTION_NAMES:
            key = ".".join(parts[:-2] + [_LEGACY_ATTENTION_NAMES[parts[-2]], parts[-1]])
        if ".attentions." in key and key.endswith(".weight") and value.ndim == 4 and "group_norm" not in key:
            value = value[:, :, 0, 0]  # (out, in, 1, 1) conv weight -> (out, in) linear weight
        out[key] = value
    return out
