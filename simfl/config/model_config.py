"""`model: {config: NAME_OR_PATH}`: find a config.json, read it safely, build and register its architecture."""

from __future__ import annotations

import json
from pathlib import Path

from simfl.config.datadirs import available_files, search_dirs
from simfl.errors import ScenarioError, short
from simfl.hf_config import architecture_from_config, register
from simfl.safeio import TABLE_MAX_BYTES, read_text

MODEL_CONFIG_DIR = "model_configs"


def find_model_config(ref: str, near: Path | None) -> Path | None:
    """A path (has a slash or ends in .json), or a bare name NAME for model_configs/NAME.json in the data folders
    (SIMFL_DATA_PATH, beside the scenario and above, the working directory, the project's)."""
    if "/" in ref or ref.endswith(".json"):
        p = Path(ref)
        if not p.is_absolute() and near is not None and (near / p).exists():
            return near / p
        return p
    for d in search_dirs(MODEL_CONFIG_DIR, near):
        if (d / f"{ref}.json").is_file():
            return d / f"{ref}.json"
    return None


def default_name(ref: str, path: Path) -> str:
    """The model's name when the scenario gives none: a bare name as written; a path's file name, or its folder's
    when the file is the usual config.json (models/Qwen2.5-7B/config.json: qwen2.5-7b)."""
    if "/" not in ref and not ref.endswith(".json"):
        return ref
    stem = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    return stem.lower()


def load_model_config(ref: object, near: Path | None, name: str | None = None, field: str = "model.config"):
    """(the architecture, the path it was read from, its name) for `ref`, registered in the catalog under `name`
    (default: default_name). Anything wrong is one ScenarioError naming `field`."""
    if not isinstance(ref, str) or not ref:
        raise ScenarioError(f"expected a model config name or path, got {short(ref)}", field=field)
    path = find_model_config(ref, near)
    if path is None:
        names = ", ".join(p.stem for p in available_files(MODEL_CONFIG_DIR, "*.json", near))
        raise ScenarioError(f"unknown model config {short(ref)}; shipped: {names}", field=field)
    text = read_text(path, field=field, what="model config", max_bytes=TABLE_MAX_BYTES)
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path} is not JSON: {e.msg} at line {e.lineno}", field=field) from None
    name = name or default_name(ref, path)
    try:
        arch = register(architecture_from_config(cfg, name, source=str(path)))
    except ValueError as e:
        raise ScenarioError(f"{path}: {e}", field=field) from None
    return arch, path, name


def resolve_model_config(raw: dict, file: Path) -> None:
    """A scenario's model.config: its architecture registered under model.name (given, or default_name), and the
    config's path made absolute so that the resolved scenario finds it from anywhere."""
    model = raw.get("model")
    if not isinstance(model, dict) or model.get("config") is None:
        return
    name = model.get("name") if isinstance(model.get("name"), str) and model.get("name") else None
    _, path, name = load_model_config(model["config"], file.parent, name)
    model["name"] = name
    model["config"] = str(path.resolve())
