"""A pipeline with a user's own text-encoder folder: save_pretrained writes a pipeline.yaml that names that folder
from wherever the pipeline is loaded (pipeline.yaml's relative paths are read from the pipeline folder)."""
import dataclasses
import shutil

import pytest
import torch
import yaml

from vidiff.errors import InputError


def _tiny_clip(folder):
    from transformers import CLIPTextConfig, CLIPTextModel

    from vidiff.text import default_model_folder

    torch.manual_seed(0)
    CLIPTextModel(CLIPTextConfig(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=101,
                                 eos_token_id=102)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(default_model_folder() / name, folder / name)


def _encoder_line(pipe_folder):
    return yaml.safe_load((pipe_folder / "pipeline.yaml").read_text())["text_encoder"]


def test_a_saved_pipeline_finds_its_user_encoder_from_anywhere(tmp_path, monkeypatch, load_tool):
    from vidiff.pipeline import VideoPipeline
    from vidiff.text import TextEncoder

    tool = load_tool("make_random_pipeline")
    vae, kf, it = tool.random_parts(tiny=True, seed=0, context_dim=32)
    work = tmp_path / "work"
    work.mkdir()
    _tiny_clip(work / "enc")
    monkeypatch.chdir(work)  # the user names the encoder relative to where they are
    config = dataclasses.replace(tool.pipeline_config(steps=2), text_encoder="enc")
    VideoPipeline(config, vae, kf, it, TextEncoder.load("enc")).save_pretrained("A")
    assert _encoder_line(work / "A") == str(work / "enc")  # was "enc": read as A/enc, "not found"
    monkeypatch.chdir(tmp_path)
    loaded = VideoPipeline.from_pretrained(work / "A")
    assert loaded.text_encoder.folder == work / "enc"

    # an encoder shipped inside the pipeline folder stays relative there, and is named absolute from a copy saved
    # elsewhere (it was "enc" again: C/enc, not found)
    shutil.copytree(work / "enc", work / "A" / "enc")
    (work / "A" / "pipeline.yaml").write_text((work / "A" / "pipeline.yaml").read_text().replace(str(work / "enc"),
                                                                                                 "enc"))
    shipped = VideoPipeline.from_pretrained(work / "A")
    shipped.save_pretrained(work / "A")
    assert _encoder_line(work / "A") == "enc"
    shipped.save_pretrained(tmp_path / "C")
    assert _encoder_line(tmp_path / "C") == str(work / "A" / "enc")
    again = VideoPipeline.from_pretrained(tmp_path / "C")
    prompt = ["a red circle moving left"]
    assert torch.equal(again.text_encoder.encode(prompt)[0], loaded.text_encoder.encode(prompt)[0])

    shutil.rmtree(work / "A" / "enc")  # a save naming a folder that is gone would not load: refused, nothing written
    with pytest.raises(InputError, match=r"save_pretrained: the text encoder folder .*A/enc is no longer there"):
        shipped.save_pretrained(tmp_path / "D")
    assert not (tmp_path / "D").exists()
