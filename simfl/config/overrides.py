"""Overrides of a scenario's fields by path (`federation.clients_per_round`, `fleet[0].count`), applied to
the raw mapping before it is validated, so an overridden value is checked exactly like one in the file."""

from __future__ import annotations

import copy
import re
from typing import Any

from simfl.errors import ScenarioError, short
from simfl.safeio import load_yaml

class PathError(ScenarioError):
    """A path the scenario cannot take: through an item its list does not have, or into a plain value."""


_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """'fleet[0].count' -> ['fleet', 0, 'count']; a malformed path is a ScenarioError naming it."""
    parts: list[str | int] = []
    for i, piece in enumerate(path.split(".")):
        pos, tokens = 0, []
        for m in _TOKEN.finditer(piece):
            if m.start() != pos or (m.group(1) and tokens):
                break
            tokens.append(m.group(1) if m.group(1) else int(m.group(2)))
            pos = m.end()
        if not piece or pos != len(piece) or not isinstance(tokens[0], str):
            raise ScenarioError(f"not a field path: {short(path)} (fields separated by dots, list items as [i], "
                                "e.g. fleet[0].count)", field="--set")
        parts += tokens
    return parts


def parse_assignment(text: str) -> tuple[str, Any]:
    """'PATH=VALUE' from the command line; VALUE is read as YAML by the files' own loader (20 is a number,
    [q, v] a list, 1e9 a number, keys unique, aliases and nesting bounded)."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ScenarioError(f"expected PATH=VALUE, got {short(text)}", field="--set")
    if not value.strip():
        return path.strip(), ""
    try:
        return path.strip(), load_yaml(value)
    except ScenarioError as e:
        raise ScenarioError(f"{path.strip()}: cannot read {short(value)} as a value ({e.message})",
                            field="--set") from None


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> None:
    """Set each PATH of `overrides` in the raw scenario mapping. A mapping key that is absent is added (the
    schema then says whether it exists); a list index must exist; a path through a scalar is an error."""
    for path, value in overrides.items():
        parts = parse_path(path)
        node: Any = raw
        for depth, key in enumerate(parts):
            where = _show(parts[:depth]) or "the scenario"
            last = depth == len(parts) - 1
            if isinstance(key, int):
                if not isinstance(node, list):
                    raise PathError(f"{where} is not a list", field=path)
                if key >= len(node):
                    raise PathError(f"{where} has {len(node)} item(s); there is no [{key}]", field=path)
            elif not isinstance(node, dict):
                raise PathError(f"{where} is not a mapping, so it has no field {key!r}", field=path)
            if last:
                # a copy: the same value object set at several points (a sweep's axis value), or a later
                # override reaching into it (a `fleet` axis, then `fleet[0].network`), must not change the others
                node[key] = copy.deepcopy(value)
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = [] if isinstance(parts[depth + 1], int) else {}
                node = node[key]


def _show(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
