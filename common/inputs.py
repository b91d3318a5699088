"""Reading the text files users hand the suite (split lists, YAML configs, the variant registry), strictly.

- ``read_text(path)``: UTF-8 text, or one InputError line naming the file and the offending byte.
- ``load_yaml(path)``: a YAML file where a key repeated in one mapping is an error (PyYAML's safe_load keeps
  the last one silently: a second ``sdcpc:`` in the registry would replace the first), and so are non-UTF-8
  bytes and syntax errors, each as one line naming the file and the line.
- ``parse_yaml_value(text)``: the same rules for a YAML value given on the command line (``--crop [64,64]``);
  it raises ValueError, so argparse reports a bad value as a usage error.

Every error is raised as ``error`` (default common.cli.InputError): the registry passes its RegistryError,
the experiment planner its PlanError, so each caller keeps its own error type.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from common.cli import InputError


def read_text(path: str | os.PathLike, what: str = "file", error: type[Exception] = InputError) -> str:
    """The file decoded as UTF-8 (a leading BOM is dropped); missing or undecodable: one ``error`` line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: {what} is a directory, not a file") from None
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise error(f"{path}: {what} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *base` keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:        # an unhashable key: PyYAML reports it itself below
                    continue
                if first is not None:
                    raise _DuplicateKey(key, first, key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, again: int):
        super().__init__(f"duplicate key {key!r} on line {again} (first on line {first}): "
                         "a YAML mapping keeps only the last one")


def _first_line(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def loads_yaml(text: str, source: str, error: type[Exception] = InputError) -> Any:
    """Parse YAML text; ``source`` names it in the one-line error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)   # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as e:
        raise error(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        raise error(f"{source}: not valid YAML: {_first_line(e)}") from None


def load_yaml(path: str | os.PathLike, what: str = "YAML file", error: type[Exception] = InputError) -> Any:
    """A YAML file, strictly (see the module docstring); an empty file is None."""
    return loads_yaml(read_text(path, what, error), str(path), error)


class YAMLValueError(ValueError):
    """A bad YAML value on the command line (argparse turns a ValueError from ``type=`` into a usage error)."""


def parse_yaml_value(text: str) -> Any:
    return loads_yaml(text, "value", YAMLValueError)


parse_yaml_value.__name__ = "YAML"   # argparse names the type in its message: "invalid YAML value: '[0,'"
