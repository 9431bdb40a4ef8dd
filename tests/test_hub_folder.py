"""Which weights file of a Hub-layout folder is read (vidiff/hub_folder.py): the names are what transformers' and
diffusers' save_pretrained write; the files here are stand-ins, only their names and the index's JSON matter."""
import json

import pytest

from vidiff.errors import InputError
from vidiff.hub_folder import find_weights, is_pipeline_root


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"x")


def _index(folder, name, shards):
    (folder / name).write_text(json.dumps({"metadata": {}, "weight_map": {f"t{i}": s for i, s in enumerate(shards)}}))


def test_a_variant_file_is_read_before_its_index_as_the_plain_name_is(tmp_path):
    """transformers loads model.fp16.safetensors where both it and the fp16 index are present; the index was taken,
    so the digest named other files than those loaded."""
    _touch(tmp_path, "model.fp16.safetensors", "model.fp16-00001-of-00002.safetensors",
           "model.fp16-00002-of-00002.safetensors")
    _index(tmp_path, "model.safetensors.index.fp16.json",
           ["model.fp16-00001-of-00002.safetensors", "model.fp16-00002-of-00002.safetensors"])
    found = find_weights(tmp_path, "model")
    assert found.path.name == "model.fp16.safetensors" and found.variant == "fp16"
    _touch(tmp_path, "model.safetensors")
    assert find_weights(tmp_path, "model").path.name == "model.safetensors"  # the plain name first


def test_diffusers_older_variant_index_name_is_found(tmp_path):
    """diffusion_pytorch_model.safetensors.fp16.index.json (diffusers' older name for a sharded variant, which it
    still loads) was "missing diffusion_pytorch_model.safetensors"."""
    shards = ["diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
              "diffusion_pytorch_model.fp16-00002-of-00002.safetensors"]
    _touch(tmp_path, *shards)
    _index(tmp_path, "diffusion_pytorch_model.safetensors.fp16.index.json", shards)
    found = find_weights(tmp_path, "diffusion_pytorch_model")
    assert found.variant == "fp16" and [p.name for p in found.files()] == shards


def test_an_index_that_names_no_shard_is_refused(tmp_path):
    _index(tmp_path, "model.safetensors.index.json", [])
    with pytest.raises(InputError, match="the shard index names no shard"):
        find_weights(tmp_path, "model").files()


def test_a_pipeline_root_is_one_without_a_model_config(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    assert is_pipeline_root(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert not is_pipeline_root(tmp_path)
