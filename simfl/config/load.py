"""Loading scenario and data files: safe YAML, reference resolution, one-line errors."""

from __future__ import annotations

import copy
import difflib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from simfl.config.model_config import resolve_model_config
from simfl.config.overrides import (PATCH_TABLES, apply_overrides, apply_patches, is_patch, parse_path,
                                    split_patches)
from simfl.config.datadirs import NETWORK_DIR, PACKAGE_DATA, PROFILE_DIR, REPO_ROOT, available, search_dirs
from simfl.config.profiles import HardwareProfile, NetworkModel
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError, short
from simfl.safeio import TABLE_MAX_BYTES, YAML_MAX_BYTES, load_yaml, read_text

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, what: str = "scenario file") -> Any:
    """Parse a YAML file (see simfl.safeio: a regular UTF-8 file of at most 8 MB, the safe loader, duplicate
    keys refused, 1e9 read as a number, aliases and nesting bounded)."""
    return load_yaml(read_text(path, what=what, max_bytes=YAML_MAX_BYTES), path)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_of(tp) -> type[BaseModel] | None:
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _tags(model: type[BaseModel]) -> set:
    """What pydantic puts in an error's location for a member of a union: the member's Literal values (a
    discriminated union's tag, e.g. 'diurnal') or its class name."""
    tags = {model.__name__}
    for f in model.model_fields.values():
        if get_origin(f.annotation) is Literal:
            tags.update(get_args(f.annotation))
    return tags


def _walk(tp, loc: tuple) -> tuple[type[BaseModel], tuple] | None:
    """The model class at the end of a pydantic error location, through lists, dicts and unions, with the
    location as the user wrote it (a union's member tag left out); None where it cannot be followed."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, UnionType):
        members = [get_args(m)[0] if get_origin(m) is Annotated else m for m in get_args(tp) if m is not type(None)]
        if loc:
            for m in members:
                if _model_of(m) and loc[0] in _tags(m):
                    return _walk(m, loc[1:])
        for m in members:
            found = _walk(m, loc)
            if found:
                return found
        return None
    model = _model_of(tp)
    if not loc:
        return (model, ()) if model else None
    part, rest = loc[0], loc[1:]
    if model is not None:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = _walk(field.annotation, rest) if field is not None else None
    elif get_origin(tp) in (list, tuple, set, frozenset) and isinstance(part, int):
        inner = _walk(get_args(tp)[0], rest)
    elif get_origin(tp) is dict:
        inner = _walk(get_args(tp)[1], rest)
    else:
        return None
    return (inner[0], (part, *inner[1])) if inner else None


def _where(model: type[BaseModel] | None, loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """(the location as the user wrote it, the model holding its last part) for an error's location."""
    if model is None or not loc:
        return loc, model
    whole = _walk(model, loc)  # an error of a whole model (a validator's): its location ends at the model
    if whole and len(whole[1]) < len(loc):  # ... and named a union member's tag, which the user never wrote
        return whole[1], whole[0]
    found = _walk(model, loc[:-1])
    return ((*found[1], loc[-1]), found[0]) if found else (loc, None)


def _unknown_key(key: object, holder: type[BaseModel] | None) -> str:
    """An unknown key, named, with the closest field of the model it was given in."""
    if holder is None:
        return f"unknown field {short(key)}"
    fields = [name for name, f in holder.model_fields.items() if not f.exclude]  # exclude: a tag the YAML gives apart
    close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
    if close:
        return f"unknown field {short(key)}; did you mean {close[0]!r}?"
    return f"unknown field {short(key)}; the fields here are {', '.join(fields)}"


def validation_error(e: ValidationError, file: Path, prefix: str = "",
                     model: type[BaseModel] | None = None) -> ScenarioError:
    """One pydantic error as one line naming the field and the value. An unknown key comes first: a
    misspelt required field is also reported missing, and the missing field is not what the user has to
    fix. Given the `model` validated, an unknown key is named with the closest field of the model it was
    given in, and a union member's tag is left out of the field (fleet[0].availability.start_hour)."""
    errors = e.errors()
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc, holder = _where(model, tuple(err["loc"]))
    field = _loc(loc)
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    if err["type"] == "extra_forbidden" and loc:
        return ScenarioError(_unknown_key(loc[-1], holder), file=file, field=field)
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if err["type"] == "union_tag_invalid":  # a discriminated union's tag (kind, mode) names no member
        ctx = err.get("ctx", {})
        what = ctx.get("discriminator", "").strip("'")
        what = what if what.isidentifier() else "mode"  # a callable discriminator (federation: its mode)
        return ScenarioError(f"{what} {short(ctx.get('tag'))} is not one of {ctx.get('expected_tags')}",
                             file=file, field=field or None)
    if err["type"] == "missing" or isinstance(value, dict):
        return ScenarioError(msg, file=file, field=field or None)
    return ScenarioError(f"{msg} (got {short(value)})", file=file, field=field or None)


# Data files validated in this process, by (class, path, device, inode, size, mtime_ns); frozen models, so one
# instance serves every caller. Bounded: the oldest goes first.
_MODELS: dict[tuple, BaseModel] = {}
_MODELS_MAX = 256


def load_model(cls: type[M], path: Path) -> M:
    """Read and validate one data file (hardware profile or network model), once per process while the file is
    unchanged: a sweep's points name the same profiles again and again, and a point that changes none of them
    reads none (one stat each). An edited or replaced file is read again; a file that fails is never kept, so
    its error comes back every time."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        st = None  # read_text says what is wrong
    regular = st is not None and stat.S_ISREG(st.st_mode)
    key = (cls, str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) if regular else None
    model = _MODELS.get(key) if key else None
    if model is None:
        what = "hardware profile" if cls is HardwareProfile else "network model"
        model = _model_of_text(cls, path, read_text(path, what=what, max_bytes=YAML_MAX_BYTES))
        if key:
            if len(_MODELS) >= _MODELS_MAX:
                del _MODELS[next(iter(_MODELS))]
            _MODELS[key] = model
    return model


def _model_of_text(cls: type[M], path: Path, text: str) -> M:
    """The validated model of a data file's text."""
    raw = load_yaml(text, path)
    if not isinstance(raw, dict):
        raise ScenarioError(f"expected a mapping, got {type(raw).__name__}", file=path)
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise validation_error(e, path, model=cls) from None


def _exists(p: Path, test=Path.exists) -> bool:
    try:
        return test(p)
    except (OSError, ValueError):  # a name too long, a path through a file, a NUL in the name: not there
        return False


def _is_regular(p: Path) -> bool:
    """A regular file (or a link to one): a FIFO, a device or a folder named like a profile is not one, and
    is never opened (opening a FIFO blocks)."""
    try:
        return stat.S_ISREG(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def find_data_file(ref: str, kind: str, near: Path | None, exclude: Path | None = None) -> Path | None:
    """A reference is a path (has a slash or ends in .yaml) or a bare name in a data folder."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        p = Path(ref)
        if not p.is_absolute() and near is not None and _exists(near / p):
            return near / p
        return p if _exists(p) or os.path.islink(p) else None  # a dangling link: read_text says so
    for d in search_dirs(kind, near, beside=True):
        for ext in (".yaml", ".yml"):
            p = d / f"{ref}{ext}"
            # the scenario itself is never its own profile: a scenario lte.yaml naming `network: lte`
            if _is_regular(p) and not (exclude is not None and _same_file(p, exclude)):
                return p
    return None


def _resolve(raw: dict, key: str, refs: list[tuple[str, str]], cls: type[BaseModel], kind: str,
             file: Path, found: dict | None = None) -> None:
    table = raw.setdefault(key, {}) or {}
    if not isinstance(table, dict):
        raise ScenarioError(f"expected a mapping, got {type(table).__name__}", file=file, field=key)
    raw[key] = table
    for field, ref in refs:
        if not isinstance(ref, str) or ref in table:
            continue  # a wrong type is reported by the schema; inline entries win
        path = found.get((kind, ref)) if found is not None else None
        if path is None:
            path = find_data_file(ref, kind, file.parent, exclude=file)
            # a bare name only (a path is looked up where it says, at no cost); a name found nowhere is looked for
            # again, so that its error is the same at every point
            if found is not None and path is not None and "/" not in ref and not ref.endswith((".yaml", ".yml")):
                found[(kind, ref)] = path
        what = kind[:-1].replace('_', ' ')
        if path is None:
            names = ", ".join(p.stem for p in available(kind, file.parent))
            raise ScenarioError(f"unknown {what} {short(ref)}; available: {names}", file=file, field=field)
        if path.is_dir():  # anything else that is not a regular file, read_text names
            raise ScenarioError(f"{short(ref)} is a folder, not a {what} file", file=file, field=field)
        table[ref] = load_model(cls, path)  # validated already: the scenario's schema takes the instance as it is


def _rounds_from_training(raw: dict, file: Path) -> None:
    """federation.rounds: {from_training: SUMMARY.json, run: NAME} -> that run's rounds to target."""
    fed = raw.get("federation")
    ref = fed.get("rounds") if isinstance(fed, dict) else None
    if not isinstance(ref, dict):
        return
    field = "federation.rounds"
    if "convergence" in ref:
        from simfl.convergence import resolve_rounds

        training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
        try:
            fed["rounds"], fed["rounds_from"], sd = resolve_rounds(ref, fed, training.get("local_steps"), file)
            if sd is not None:
                fed["rounds_log_sd"] = sd
        except ScenarioError as e:
            raise e.with_file(file) from None
        return
    if set(ref) != {"from_training", "run"}:
        raise ScenarioError("give a number, {from_training: SUMMARY.json, run: NAME}, or {convergence: TABLE.csv}",
                            file=file, field=field)
    if not isinstance(ref["from_training"], str) or not isinstance(ref["run"], str):
        raise ScenarioError(f"from_training and run must be text: a file name and a run name (got "
                            f"{short(ref['from_training'])}, {short(ref['run'])})", file=file, field=field)
    path = Path(ref["from_training"])
    path = path if path.is_absolute() else file.parent / path
    try:
        text = read_text(path, field=field, what="training summary", max_bytes=TABLE_MAX_BYTES)
    except ScenarioError as e:
        raise e.with_file(file) from None
    try:
        runs = json.loads(text)["runs"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ScenarioError(f"{path} is not a simfl train summary (JSON with a runs mapping)", file=file,
                            field=field) from None
    if not isinstance(runs, dict):
        raise ScenarioError(f"{path}: runs must be a mapping of run name to its figures (got a "
                            f"{type(runs).__name__})", file=file, field=field)
    run = runs.get(ref["run"])
    if run is None:
        raise ScenarioError(f"{path} has no run {short(ref['run'])}; it has {', '.join(map(str, runs))}", file=file,
                            field=field)
    if not isinstance(run, dict):
        raise ScenarioError(f"{path}: run {short(ref['run'])} must be a mapping (got {short(run)})", file=file,
                            field=field)
    rounds = run.get("rounds_to_target")
    if rounds is None:
        raise ScenarioError(f"run {short(ref['run'])} in {path} did not reach its target val loss", file=file,
                            field=field)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ScenarioError(f"{path}: run {short(ref['run'])}: rounds_to_target must be a whole number of rounds "
                            f">= 1 (got {short(rounds)})", file=file, field=field)
    fed["rounds"] = rounds


def load_scenario(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read a scenario file, apply `overrides` ({"fleet[0].count": 400, ...}), resolve its devices and
    networks, validate it all."""
    return ScenarioSource.read(path).load(overrides)


@dataclass(frozen=True)
class ScenarioSource:
    """A scenario file read and parsed once. Each `load(overrides)` applies the overrides to a copy of the parsed
    mapping (config/overrides.py), then resolves and validates it as load_scenario does, so a sweep's point is
    exactly the file with its overrides, errors included, without reading and parsing the file again. Plain
    data: it pickles to a process pool or Ray."""
    file: Path
    raw: Any  # the file's YAML, parsed and not yet resolved
    tie: dict[str, list[str]] | None = None  # a sweep's or plan's ties: label -> the field paths it sets
    # a sweep's or plan's points: a patch of a device or network the point does not use does nothing there
    lenient_patches: bool = False
    # a sweep's or plan's replicates also draw each predicted step time's error (simfl/uncertainty.py)
    epistemic: bool = True
    # (data folder, name) -> the file a bare device or network name was found as, by the loads of this source in this
    # process: looking a name up stats every candidate folder, most of a point's load. The file itself is still
    # read through load_model, which reads it again when it changes. Not part of the source's value or its pickle.
    found: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, path: str | os.PathLike, tie: dict[str, list[str]] | None = None,
             lenient_patches: bool = False, epistemic: bool = True) -> "ScenarioSource":
        file = Path(path)
        return cls(file, read_yaml(file), tie or None, lenient_patches, epistemic)

    def untie(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The overrides with each tie's label replaced by every path it ties (each gets the value)."""
        tie = self.tie or {}
        out: dict[str, Any] = {}
        for key, value in overrides.items():
            for path in tie.get(key, [key]):
                out[path] = value
        return out

    def load(self, overrides: dict[str, Any] | None = None) -> Scenario:
        overrides = self.untie(overrides or {})
        return _scenario_of(copy.deepcopy(self.raw), self.file, overrides,  # each load changes its own copy
                            strict_patches=not self.lenient_patches, found=self.found)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "found": {}}  # where names were found here says nothing about another machine


def _scenario_of(raw: Any, file: Path, overrides: dict[str, Any] | None, strict_patches: bool = True,
                 found: dict | None = None) -> Scenario:
    """A parsed scenario file with its overrides applied, devices and networks resolved, validated."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"expected a mapping at the top level, got {type(raw).__name__}", file=file)
    own, patches = split_patches(overrides or {})
    file_patches = raw.pop("patch", None) or {}
    if not isinstance(file_patches, dict) or not all(isinstance(k, str) and is_patch(k) for k in file_patches):
        raise ScenarioError("expected a mapping of devices.NAME.FIELD or networks.NAME.FIELD to values, got "
                            f"{short(file_patches)}", file=file, field="patch")
    if own:
        try:
            apply_overrides(raw, own)
        except ScenarioError as e:
            raise (e if e.field == "--set" else e.with_file(file)) from None
    _rounds_from_training(raw, file)
    resolve_model_config(raw, file)
    fleet = raw.get("fleet") if isinstance(raw.get("fleet"), list) else []
    server = raw.get("server") if isinstance(raw.get("server"), dict) else {}
    groups = [(i, g) for i, g in enumerate(fleet) if isinstance(g, dict)]
    device_refs = [(f"fleet[{i}].device", g.get("device")) for i, g in groups]
    network_refs = [(f"fleet[{i}].network", g.get("network")) for i, g in groups]
    device_refs.append(("server.device", server.get("device")))
    network_refs.append(("server.network", server.get("network")))
    _resolve(raw, "hardware", device_refs, HardwareProfile, PROFILE_DIR, file, found)
    _resolve(raw, "networks", network_refs, NetworkModel, NETWORK_DIR, file, found)
    _patch(raw, file_patches, "the scenario's patch", file, strict_patches)
    _patch(raw, patches, "--set", file, strict_patches)
    _files_near(raw, file)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        raise validation_error(e, file, model=Scenario) from None
    try:
        check_files(scenario)
    except ScenarioError as e:
        raise e.with_file(file) from None
    return scenario


def _patch(raw: dict, patches: dict[str, Any], how: str, file: Path, strict: bool = True) -> None:
    """Patch the resolved data files (config/overrides.apply_patches): each patched one becomes its own mapping,
    validated with the scenario like any inline entry, and written so into scenario.resolved.yaml."""
    for path in patches:
        table, name = PATCH_TABLES[parse_path(path)[0]], parse_path(path)[1]
        entry = raw.get(table, {}).get(name) if isinstance(raw.get(table), dict) else None
        if isinstance(entry, BaseModel):  # a cached, validated file: patched as a copy of its own
            raw[table][name] = entry.model_dump(mode="json", exclude_none=True)
    try:
        apply_patches(raw, patches, how, strict)
    except ScenarioError as e:
        raise (e if how == "--set" else e.with_file(file)) from None


def _files_near(raw: dict, file: Path) -> None:
    """Data files named in the scenario (availability traces, the carbon series) are relative to it: made
    absolute here, so that the resolved scenario reads them from anywhere."""
    def near(value):
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str((file.parent / value).resolve())
        return value

    for g in raw.get("fleet") if isinstance(raw.get("fleet"), list) else []:
        a = g.get("availability") if isinstance(g, dict) else None
        if isinstance(a, dict) and "file" in a:
            a["file"] = near(a["file"])
    acc = raw.get("accounting")
    if isinstance(acc, dict) and "carbon_intensity_file" in acc:
        acc["carbon_intensity_file"] = near(acc["carbon_intensity_file"])


def check_files(scenario: Scenario) -> None:
    """Read every data file the scenario names, so that a bad row is reported before anything runs; what they
    hold stays with the scenario (scenario.data_files), for build."""
    files = scenario.data_files
    for i, g in enumerate(scenario.fleet):
        if g.availability.kind == "trace":
            files.trace(g.availability.file, g.count, f"fleet[{i}].availability.file")
    acc = scenario.accounting
    if acc.carbon_intensity_file is not None:
        files.carbon(acc.carbon_intensity_file, scenario.start_time, "accounting.carbon_intensity_file")


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as YAML; it loads again on its own (profiles inline)."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    if scenario.accounting.carbon_intensity_file is not None:
        data["accounting"].pop("carbon_g_per_kwh", None)  # the file replaces it; both would not load
    return yaml.safe_dump(data, sort_keys=False)
