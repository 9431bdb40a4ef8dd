"""The one YAML loader of vidiff: pipeline.yaml, part config.yaml, training recipes and `--set` values.

A `yaml.SafeLoader` subclass (plain data only) that also refuses what makes a small file dangerous:

- explicit tags of any kind (`!!python/object`, `!!binary`, `!custom`): configs are plain data;
- more than MAX_ALIASES aliases, a document that expands to more than MAX_NODES nodes once aliases are
  followed (the "billion laughs" bomb), an alias that refers to its own ancestor, nesting deeper than MAX_DEPTH;
- files that are not UTF-8, not regular files (a FIFO would block), or larger than MAX_BYTES.

YAML 1.1 surprises are removed: `1e-8` is a float (not a string); only true/false are booleans (so
`mixed_precision: no` stays the string "no"); `1:00` (base 60) and `010` (octal) stay strings; a key given twice in
one mapping is refused (the last one won). Every refusal is a ConfigError with a one-line message that names
the file (or `--set` item) and quotes at most ~200 characters of it.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from vidiff.config import ConfigError
from vidiff.limits import short_repr

MAX_BYTES = 4 << 20  # a config file larger than 4 MiB is not a config file
MAX_DEPTH = 64  # nesting of mappings / sequences, with aliases followed
MAX_ALIASES = 256  # alias uses (*name) in one document
MAX_NODES = 100_000  # nodes of the document with every alias expanded

_LOADER = None


def _loader_class():
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class SafeConfigLoader(yaml.SafeLoader):
        """SafeLoader with no tags, bounded aliases / expansion / depth, and config-friendly scalars."""

        def __init__(self, stream):
            super().__init__(stream)
            self._aliases = 0
            self._depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _Refused(f"more than {MAX_ALIASES} aliases", event.start_mark)
            elif getattr(event, "tag", None) not in (None, "!"):
                raise _Refused(f"tag {short_repr(event.tag, 60)} is not allowed (configs are plain data)",
                               event.start_mark)
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node, deep=False):
            # `height: 64` then `height: 48` kept the last without a word; a merge key (<<) may still be overridden
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Refused(f"key {short_repr(key, 60)} appears twice in one mapping", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

        def construct_document(self, node):
            _check_expansion(node)
            return super().construct_document(node)

    # YAML 1.1's own bool, int and float forms go; those below come back without its base-60 numbers
    # (`--set train.max_steps=1:00` trained 60 steps) and leading-zero octal (`010` was 8)
    retyped = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    resolvers = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        resolvers[first] = [(tag, rx) for tag, rx in entries if tag not in retyped]
    SafeConfigLoader.yaml_implicit_resolvers = resolvers
    SafeConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[0-1_]+)$"),
        list("-+0123456789"),
    )
    SafeConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."),
    )
    SafeConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    SafeConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    _LOADER = SafeConfigLoader
    return _LOADER


class _Refused(Exception):
    def __init__(self, why: str, mark=None):
        super().__init__(why)
        self.why, self.mark = why, mark


def _children(node) -> list:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _check_expansion(root) -> None:
    """Refuses a node graph that expands past MAX_NODES / MAX_DEPTH or contains a cycle (iterative, linear)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    started: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            started.discard(key)
            if size[key] > MAX_NODES:
                raise _Refused(f"expands to more than {MAX_NODES} values once aliases are followed", node.start_mark)
            if depth[key] > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels once aliases are followed", node.start_mark)
            continue
        if key in size:
            continue
        if key in started:
            raise _Refused("an alias refers to a value that contains it (recursive)", node.start_mark)
        started.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in started:
                raise _Refused("an alias refers to a value that contains it (recursive)", kid.start_mark)
            if id(kid) not in size:
                stack.append((kid, False))


def _where(where: str, mark) -> str:
    return f"{where} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else where


def loads(text: str | bytes, where: str = "YAML") -> Any:
    """Parses one YAML document under the rules above; ConfigError with a one-line message otherwise."""
    import yaml

    if isinstance(text, bytes):
        text = decode_utf8(text, where)
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_BYTES} bytes; not a config")
    try:
        return yaml.load(text, Loader=_loader_class())
    except _Refused as e:
        raise ConfigError(f"{_where(where, e.mark)}: {e.why}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{_where(where, mark)}: not valid YAML ({short_repr(problem, 120)[1:-1]})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None


def decode_utf8(data: bytes, where: str) -> str:
    wide = _wide_unicode(data)
    if wide:  # Excel's "Unicode Text" and Notepad's "UTF-16": refused as "byte 0xff at offset 0", naming no encoding
        raise ConfigError(f"{where}: {wide} text, not UTF-8; save it again as UTF-8 (Excel: \"CSV UTF-8\"; an "
                          f"editor: encoding UTF-8; or iconv -f {wide} -t UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def _wide_unicode(data: bytes) -> str | None:
    """"UTF-16" or "UTF-32" where the bytes start with that byte-order mark (as Windows writes them), else None."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    return None


def read_text(path: str | os.PathLike, what: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; never blocks on a FIFO or device."""
    from vidiff.output_safety import shown

    path = Path(path)
    label = what or shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{label}: cannot open ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # before fdopen: it refuses a folder with IsADirectoryError naming the fd
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(f"{label}: {kind}")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise ConfigError(f"{label}: {st.st_size} bytes, larger than the {max_bytes}-byte limit for a config")
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise ConfigError(f"{label}: cannot read ({e.strerror})") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{label}: larger than the {max_bytes}-byte limit for a config")
    return decode_utf8(data, label)


def load_file(path: str | os.PathLike, what: str | None = None) -> Any:
    """Reads and parses a YAML file (see `read_text` and `loads`)."""
    from vidiff.output_safety import shown

    label = what or shown(Path(path))
    return loads(read_text(path, label), label)
