"""Typed configuration: frozen dataclasses loaded from YAML / dicts, where an unknown key is an error.

Every component declares one dataclass (a comment on each field says what it means and its unit); a root
config nests them. No class paths in strings: the code that reads a config decides what to build.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from vidiff.limits import MAX_VALUE_CHARS, short_repr, whole

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the dotted key."""


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {_short(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {_short(value)} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {_short(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            inner = args[0] if args else Any
            items = [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(value)}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(value)}")
        if not math.isfinite(value):  # YAML's .inf / .nan: no setting of ours means anything at infinity
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        return float(value)
    if hint is int:
        if isinstance(value, float):  # 1e3 and 1000.0 are floats to YAML: a count written so
            count = whole(value)
            if count is None:
                raise ConfigError(f"{where}: expected a whole number, got {_short(value)}")
            return count
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {_short(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(value)}")
        return value
    return value


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Builds dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError naming the key."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__} {_short(data, 80)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted((set(data) - set(fields)), key=str)
    if unknown:
        prefix = f"{where}." if where else ""
        shown = ", ".join(_short(prefix + str(k), 80).strip("'\"") for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ConfigError(
            f"unknown config key(s) {shown}{more} for {cls.__name__}; known keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _check_type(value, hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {e}") from None
    except ConfigError as e:
        # a __post_init__ check names its key only ("norm_groups: 3 does not divide ..."): say where it sits, or
        # a pipeline's error did not say which of its part config.yaml files held it
        message = str(e)
        if not where or message.startswith(where):
            raise
        key = re.match(r"[A-Za-z_][\w/]*:", message)
        raise ConfigError(f"{where}.{message}" if key else f"{where}: {message}") from None


def to_dict(cfg: Any) -> Any:
    """Plain dict / list form of a config (tuples become lists), suitable for YAML or JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def parse_yaml(text: str | bytes, where: str = "YAML") -> Any:
    """Parses YAML with the project's one safe loader (vidiff/safe_yaml.py: plain data, no tags, bounded
    aliases / size / depth, `1e-8` a float, only true/false booleans). Invalid YAML is a one-line ConfigError."""
    from vidiff.safe_yaml import loads

    return loads(text, where)


def load_yaml(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Loads `cls` from a YAML file, then applies `key.sub=value` overrides (values parsed as YAML)."""
    from vidiff.safe_yaml import load_file

    path = Path(path).expanduser()  # "~/recipe.yaml", as the other readers take "~"
    if not os.path.lexists(path):
        raise ConfigError(f"config file not found: {_short(str(path))}")
    data = load_file(path) or {}  # a folder, FIFO or device is refused there, without blocking
    return from_dict(cls, apply_overrides(data, overrides or []))


def save_yaml(cfg: Any, path: str | Path) -> None:
    """Atomically: a run stopped while writing its config.yaml kept a truncated one, which its resume refused."""
    import yaml

    from vidiff.output_safety import write_text

    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Returns a copy of `data` with each `a.b.c=value` applied; the value is parsed as YAML (3, 1e-4, true, [1,2])."""
    import copy

    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a mapping of keys to values, got {type(data).__name__}")
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {_short(item)} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {_short(item)}: empty key")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {_short(item)}: {_short(part)} is not a section")
        node[parts[-1]] = parse_yaml(raw, where=f"--set {_short(key.strip(), 80)}")
    return data


def _short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A user value quoted in an error: its repr, at most `limit` characters."""
    return short_repr(value, limit)


def replace(cfg: T, **changes: Any) -> T:
    return dataclasses.replace(cfg, **changes)
