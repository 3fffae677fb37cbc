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


_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\*)\]")
EVERY = "*"  # fleet[*].device: the field in every item of the list
# A referenced data file's fields, by the name the scenario gives it: devices.NAME.FIELD (or hardware.NAME.FIELD)
# patches a hardware profile, networks.NAME.FIELD a network model, after they are read and before they are checked
PATCH_TABLES = {"devices": "hardware", "hardware": "hardware", "networks": "networks"}


def parse_path(path: str) -> list[str | int]:
    """'fleet[0].count' -> ['fleet', 0, 'count'], 'fleet[*].device' -> ['fleet', '*', 'device'],
    'networks.lte-up5.uplink_bps' -> ['networks', 'lte-up5', 'uplink_bps'] (a data file's name, dashes and all);
    a malformed path is a ScenarioError naming it."""
    head, _, rest = path.partition(".")
    if head in PATCH_TABLES and rest:
        name, _, fields = rest.partition(".")
        if name and fields:
            return [head, name, *parse_path(fields)]
    parts: list[str | int] = []
    for i, piece in enumerate(path.split(".")):
        pos, tokens = 0, []
        for m in _TOKEN.finditer(piece):
            if m.start() != pos or (m.group(1) and tokens):
                break
            index = m.group(2)
            tokens.append(m.group(1) if m.group(1) else EVERY if index == EVERY else int(index))
            pos = m.end()
        if not piece or pos != len(piece) or not isinstance(tokens[0], str) or tokens[0] == EVERY:
            raise ScenarioError(f"not a field path: {short(path)} (fields separated by dots, list items as [i] or "
                                "[*] for every item, e.g. fleet[0].count, fleet[*].device, networks.lte.uplink_bps)",
                                field="--set")
        parts += tokens
    return parts


def is_patch(path: str) -> bool:
    """Whether PATH patches a referenced data file (devices.NAME.FIELD, networks.NAME.FIELD)."""
    return path.partition(".")[0] in PATCH_TABLES and len(parse_path(path)) >= 3


def split_patches(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the scenario's own overrides, the patches of its data files)."""
    own = {k: v for k, v in overrides.items() if not is_patch(k)}
    return own, {k: v for k, v in overrides.items() if is_patch(k)}


def apply_patches(raw: dict, patches: dict[str, Any], how: str = "--set", strict: bool = True) -> None:
    """Set each devices.NAME.FIELD / networks.NAME.FIELD in the resolved data file the scenario names NAME (its
    hardware or networks table, filled by the loader); the file's source says what was patched. A NAME the
    scenario does not use is a PathError naming the ones it does; not `strict` (a sweep's point, where another
    axis chooses the devices), the patch does nothing there."""
    for path, value in patches.items():
        table, name, *rest = parse_path(path)
        entries = raw.get(PATCH_TABLES[table])
        kind = "device" if PATCH_TABLES[table] == "hardware" else "network"
        if not strict and (not isinstance(entries, dict) or name not in entries):
            continue
        if not isinstance(entries, dict) or name not in entries:
            used = ", ".join(sorted(entries)) if isinstance(entries, dict) and entries else "none"
            raise PathError(f"the scenario uses no {kind} {short(name)}; it uses: {used}", field=path)
        entry = entries[name]
        apply_overrides(entry, {_join(rest): value})
        if isinstance(entry.get("source"), str):
            entry["source"] = f"{entry['source']}; patched: {_join(rest)} = {short(value)} ({how})"


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
    schema then says whether it exists); a list index must exist; [*] sets the rest of the path in every item of
    the list; a path through a scalar is an error."""
    for path, value in overrides.items():
        parts = parse_path(path)
        _set(raw, parts, 0, value, path)


def _set(node: Any, parts: list[str | int], depth: int, value: Any, path: str) -> None:
    key = parts[depth]
    where = _show(parts[:depth]) or "the scenario"
    last = depth == len(parts) - 1
    if key == EVERY:
        if not isinstance(node, list):
            raise PathError(f"{where} is not a list", field=path)
        for i in range(len(node)):
            if last:
                node[i] = copy.deepcopy(value)
            else:
                _set(node[i], parts, depth + 1, value, path)
        return
    if isinstance(key, int):
        if not isinstance(node, list):
            raise PathError(f"{where} is not a list", field=path)
        if key >= len(node):
            raise PathError(f"{where} has {len(node)} item(s); there is no [{key}]", field=path)
    elif not isinstance(node, dict):
        raise PathError(f"{where} is not a mapping, so it has no field {key!r}", field=path)
    if last:
        # a copy: the same value object set at several points (a sweep's axis value), or a later override
        # reaching into it (a `fleet` axis, then `fleet[0].network`), must not change the others
        node[key] = copy.deepcopy(value)
        return
    if isinstance(node, dict) and key not in node:
        node[key] = [] if isinstance(parts[depth + 1], int) or parts[depth + 1] == EVERY else {}
    _set(node[key], parts, depth + 1, value, path)


def _join(parts: list[str | int]) -> str:
    return _show(parts)


def _show(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
