from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from vidiff.config import ConfigError, apply_overrides, from_dict, load_yaml, save_yaml, to_dict


@dataclass(frozen=True)
class Inner:
    width: int = 8  # channels
    kind: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Root:
    lr: float = 1e-4
    levels: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)
    name: Optional[str] = None


def test_round_trip_through_yaml(tmp_path):
    cfg = Root(lr=3e-4, levels=(4, 5, 6), inner=Inner(width=16, kind="b"), name="x")
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(Root, tmp_path / "c.yaml") == cfg


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="inner.depth"):
        from_dict(Root, {"inner": {"depth": 3}})


def test_wrong_types_are_named():
    with pytest.raises(ConfigError, match="inner.width"):
        from_dict(Root, {"inner": {"width": "wide"}})
    with pytest.raises(ConfigError, match="inner.kind"):
        from_dict(Root, {"inner": {"kind": "c"}})
    with pytest.raises(ConfigError, match="lr"):
        from_dict(Root, {"lr": True})
    for bad in (float("inf"), float("-inf"), float("nan")):  # YAML's .inf / -.inf / .nan
        with pytest.raises(ConfigError, match="lr: expected a finite number"):
            from_dict(Root, {"lr": bad})


def test_int_is_accepted_as_float_and_overrides_parse_yaml():
    cfg = from_dict(Root, apply_overrides({"lr": 1}, ["inner.width=32", "levels=[1,1,2]", "name=run"]))
    assert cfg.lr == 1.0 and cfg.inner.width == 32 and cfg.levels == (1, 1, 2) and cfg.name == "run"
    assert to_dict(cfg)["levels"] == [1, 1, 2]
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nonsense"])


def test_a_whole_float_is_an_integer_setting_and_a_fraction_is_refused(tmp_path):
    """YAML reads 1e3 and 1000.0 as floats: `--set train.max_steps=1e3` (and the same in the file) was refused as
    "expected an integer, got 1000.0". A whole float is the integer; 1.5, inf and nan are refused naming the key."""
    from vidiff.training.config import load_train_config

    cfg = from_dict(Root, {"inner": {"width": 1e3}, "levels": [2.0, 3]})
    assert cfg.inner.width == 1000 and type(cfg.inner.width) is int and cfg.levels == (2, 3)
    assert type(cfg.levels[0]) is int and to_dict(cfg)["inner"]["width"] == 1000
    for bad, shown in ((1.5, "1.5"), (float("inf"), "inf"), (float("nan"), "nan")):
        with pytest.raises(ConfigError, match=rf"^inner.width: expected a whole number, got {shown}$"):
            from_dict(Root, {"inner": {"width": bad}})
    with pytest.raises(ConfigError, match=r"^levels\[1\]: expected a whole number, got 2.5$"):
        from_dict(Root, {"levels": [1, 2.5]})
    (tmp_path / "toy.yaml").write_text("stage: toy\noutput_dir: run\nmodel: {dim: 4, width: 8}\n"
                                      "data: {kind: synthetic, num_samples: 1.0e+1}\ntrain: {max_steps: 1e3}\n")
    cfg = load_train_config(tmp_path / "toy.yaml")
    assert (cfg.train.max_steps, cfg.data.num_samples) == (1000, 10) and type(cfg.train.max_steps) is int
    assert load_train_config(tmp_path / "toy.yaml", ["train.max_steps=2e3"]).train.max_steps == 2000
    assert load_train_config(tmp_path / "toy.yaml", ["conditioning.max_keyframes=null"]).conditioning.max_keyframes is None
    with pytest.raises(ConfigError, match=r"^train.max_steps: expected a whole number, got 1.5$"):
        load_train_config(tmp_path / "toy.yaml", ["train.max_steps=1.5"])
    with pytest.raises(ConfigError, match=r"^train.seed: expected an integer, got 'x'$"):
        load_train_config(tmp_path / "toy.yaml", ["train.seed=x"])


def test_yaml_reads_exponent_floats_and_keeps_no_as_a_string():
    from vidiff.config import parse_yaml

    data = parse_yaml("eps: 1e-8\nlr: 3.0E+2\nmode: no\nflag: true\nother: off\nversion: 1.5")
    assert data == {"eps": 1e-8, "lr": 300.0, "mode": "no", "flag": True, "other": "off", "version": 1.5}
    assert from_dict(Root, apply_overrides({}, ["lr=2e-5"])).lr == 2e-5


def test_every_key_of_the_recipes_in_configs_is_named_in_docs_training():
    """docs/training.md, "A recipe's keys": each key the shipped recipes set is named there (the recipes set
    pattern_first_k, min_gap, hidden_channels, grad_clip, num_workers, ... that no page named), and every name there
    is a key of TrainConfig or of a part config it nests, so the table cannot name a key that does not exist."""
    import dataclasses
    import re
    from pathlib import Path

    from vidiff.diffusion import NoiseScheduleConfig
    from vidiff.models import UNet3DConfig
    from vidiff.models.control_adapter import ControlAdapterConfig
    from vidiff.safe_yaml import load_file
    from vidiff.training.config import TrainConfig
    from vidiff.vae import VAEConfig

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "docs/training.md").read_text()
    table = text[text.index("## A recipe's keys"):text.index("## Your own videos")]
    named = set(re.findall(r"`([a-z0-9_]+)`", table))

    def leaves(data, found):
        for key, value in data.items():
            found.add(key)
            if isinstance(value, dict):
                leaves(value, found)
        return found

    recipes = sorted(repo.glob("configs/*.yaml")) + sorted(repo.glob("configs/gpu/*.yaml"))
    assert len(recipes) >= 10
    keys = set().union(*(leaves(load_file(p), set()) for p in recipes))
    assert not keys - named, sorted(keys - named)

    def fields(cls):
        return {f.name for f in dataclasses.fields(cls)}

    known = set().union(*(fields(c) for c in (TrainConfig, UNet3DConfig, VAEConfig, ControlAdapterConfig,
                                               NoiseScheduleConfig)))
    for f in dataclasses.fields(TrainConfig):
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory()):
            known |= fields(type(f.default_factory()))
    assert not named - known, sorted(named - known)
