"""Sweep and plan files: which scenario, which fields vary over which values, what to minimise under what."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from simfl.config.base import StrictModel
from simfl.config.limits import MAX_POINTS, Int64, Seed32, work_error
from simfl.config.overrides import EVERY, PATCH_TABLES, is_patch, parse_path
from simfl.errors import ScenarioError, short


def _check_axes(axes: dict[str, list]) -> dict[str, list]:
    for path, values in axes.items():
        try:
            parse_path(path)  # (a tie's label is a plain name, which parses too)
        except ScenarioError as e:
            raise ValueError(e.message.replace("--set: ", "")) from None
        if not values:
            raise ValueError(f"{path}: give at least one value")
        first: dict[str, int] = {}
        for i, v in enumerate(values):
            j = first.setdefault(point_key(v), i)
            if j != i:  # the same point twice; and a plan's search could not tell the two apart
                raise ValueError(f"{path}: {short(v)} is given twice (values [{j}] and [{i}])")
    return axes


def _check_size(what: str, n: int, replicates: int) -> None:
    """Simulations asked for, from the lengths of the axes (nothing listed yet): at most MAX_POINTS."""
    if n * replicates > MAX_POINTS:
        raise ValueError(f"{what}: {n:,} points x {replicates:,} replicates = "
                         + work_error("simulations", n * replicates, MAX_POINTS, "each point is a whole run"))


TIE_DESCRIPTION = ("Label -> field paths: an axis named by the label sets every one of its paths to the axis' value "
                   "(tie: {device: [fleet[0].device, server.device]}, then device: [a, b] as an axis).")


EPISTEMIC_DESCRIPTION = ("With replicates, each also draws every predicted step time's error, the same draw for a "
                         "device in the same replicate of every point (false: the seeds' spread only).")


def _check_ties(tie: dict[str, list[str]], axes: dict[str, list], field: str) -> None:
    """Each tie is a label no path takes, used as an axis, tying at least two valid paths of no other axis and of no
    other tie."""
    tied: dict[str, str] = {}
    for label, paths in tie.items():
        if label not in axes:
            raise ValueError(f"tie.{label}: no axis of {field} is named {label!r}")
        if _schema_problem(parse_path(label)) is None:
            raise ValueError(f"tie.{label}: {label} is a field of the scenario; name the tie something else")
        for path in paths:
            if path in tied and tied[path] != label:
                raise ValueError(f"tie.{label}: {path} is tied by {tied[path]} too")
            tied[path] = label
        if len(paths) < 2:
            raise ValueError(f"tie.{label}: tie at least two paths (one path is an axis of its own)")
        for path in paths:
            try:
                parse_path(path)
            except ScenarioError as e:
                raise ValueError(f"tie.{label}: {e.message}") from None
            if path in axes:
                raise ValueError(f"tie.{label}: {path} is also an axis of its own")


def axis_paths(axes: dict[str, list], tie: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each axis and the field paths it sets: its own name, or the paths of its tie."""
    return {name: list(tie.get(name, [name])) for name in axes}


class SweepSpec(StrictModel):
    scenario: str = Field(min_length=1, description="Scenario YAML, relative to this file.")
    replicates: Int64 = Field(1, ge=1, description="Seeds seed..seed+N-1 at every point: mean and 95 % CI.")
    axes: dict[str, list[Any]] = Field(min_length=1, description="Field path (or a tie's label) -> values; the "
                                                                 "product is swept.")
    tie: dict[str, list[str]] = Field(default_factory=dict, description=TIE_DESCRIPTION)
    epistemic: bool = Field(True, description=EPISTEMIC_DESCRIPTION)

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: dict[str, list]) -> dict[str, list]:
        return _check_axes(v)

    @model_validator(mode="after")
    def _size(self) -> "SweepSpec":
        _check_ties(self.tie, self.axes, "axes")
        _check_size("axes", space_size(self.axes), self.replicates)
        return self


P_TARGET = "p_target_by_deadline"  # a plan's own figure: the share of replicates that reach the target in time


class Bound(StrictModel):
    max: float | None = None
    min: float | None = None
    deadline_h: float | None = Field(None, gt=0, description=f"{P_TARGET} only: the deadline, in hours.")

    @model_validator(mode="after")
    def _some(self) -> "Bound":
        if self.max is None and self.min is None:
            raise ValueError("give max, min or both")
        return self


class SearchSpec(StrictModel):
    method: Literal["auto", "exhaustive", "optuna"] = Field(
        "auto", description="auto: every point when there are at most max_points, else optuna's TPE sampler.")
    max_points: Int64 = Field(200, ge=1, description="auto: the largest space evaluated exhaustively.")
    trials: Int64 = Field(100, ge=1, description="optuna: points evaluated.")
    seed: Seed32 = Field(0, description="optuna's sampler seed.")


class PlanSpec(StrictModel):
    scenario: str = Field(min_length=1, description="Scenario YAML, relative to this file.")
    choose: dict[str, list[Any]] = Field(min_length=1, description="Decision variables: field path (or a tie's "
                                                                   "label) -> choices.")
    tie: dict[str, list[str]] = Field(default_factory=dict, description=TIE_DESCRIPTION)
    epistemic: bool = Field(True, description=EPISTEMIC_DESCRIPTION)
    minimize: str = Field(min_length=1, description="A summary figure, e.g. cost_total or energy_j.total.")
    subject_to: dict[str, Bound] = Field(default_factory=dict, description="Summary figure -> {max, min}.")
    replicates: Int64 = Field(1, ge=1, description="With more than one, constraints hold at the 95th "
                                                 "percentile (max) or 5th (min) of the replicates.")
    search: SearchSpec = Field(default_factory=SearchSpec)

    @field_validator("choose")
    @classmethod
    def _choices(cls, v: dict[str, list]) -> dict[str, list]:
        return _check_axes(v)

    @property
    def method(self) -> str:
        """The search this plan runs: exhaustive or optuna (auto resolved by the size of the space)."""
        s = self.search
        return s.method if s.method != "auto" else ("exhaustive" if space_size(self.choose) <= s.max_points
                                                    else "optuna")

    @model_validator(mode="after")
    def _probability_bound(self) -> "PlanSpec":
        for figure, bound in self.subject_to.items():
            if figure != P_TARGET:
                if bound.deadline_h is not None:
                    raise ValueError(f"subject_to.{figure}: deadline_h belongs to {P_TARGET} only")
                continue
            if bound.deadline_h is None or bound.min is None or bound.max is not None or not 0 < bound.min <= 1:
                raise ValueError(f"subject_to.{P_TARGET}: give {{min: a probability in (0, 1], deadline_h: hours}} "
                                 f"(got {bound.model_dump(exclude_none=True)})")
            if self.replicates < 2:
                raise ValueError(f"subject_to.{P_TARGET} is a share of replicates: give replicates (20 or more)")
        return self

    @model_validator(mode="after")
    def _size(self) -> "PlanSpec":
        _check_ties(self.tie, self.choose, "choose")
        if self.method == "exhaustive":
            _check_size("choose", space_size(self.choose), self.replicates)
        else:
            _check_size("search.trials", self.search.trials, self.replicates)
        return self


def load_spec(path: Path, cls: type[SweepSpec] | type[PlanSpec]):
    """The spec and its base scenario (a config.load.ScenarioSource), both checked."""
    from simfl.config.load import read_yaml, validation_error

    raw = read_yaml(path, "sweep file" if cls is SweepSpec else "plan file")
    if not isinstance(raw, dict):
        raise ScenarioError(f"expected a mapping at the top level, got {type(raw).__name__}", file=path)
    try:
        spec = cls.model_validate(raw)
    except ValidationError as e:
        raise validation_error(e, path, model=cls) from None
    scenario = Path(spec.scenario)
    scenario = scenario if scenario.is_absolute() else path.parent / scenario
    if not os.path.lexists(scenario):  # a FIFO, a folder, a dangling link: load_scenario says which
        raise ScenarioError(f"scenario file {spec.scenario} not found (relative to {path})", file=path,
                            field="scenario")
    from simfl.config.load import ScenarioSource

    source = ScenarioSource.read(scenario, spec.tie, lenient_patches=True,  # read and parsed once: each point loads
                                 epistemic=spec.epistemic)
    source.load()  # a bad base scenario is one error now, not the same error at every point
    axes = spec.axes if isinstance(spec, SweepSpec) else spec.choose
    field = "axes" if isinstance(spec, SweepSpec) else "choose"
    tied = axis_paths(axes, spec.tie)
    check_paths({p: axes[name] for name, paths in tied.items() for p in paths}, source, path, field)
    return spec, source


def check_paths(axes: dict[str, list], source, file: Path, field: str) -> None:
    """Every axis names a field of the scenario schema (set in the file or not) and, through a list, an item the
    scenario (a config.load.ScenarioSource) has: else every point would be invalid for the same reason, so it is
    refused before any runs."""
    from simfl.config.load import NETWORK_DIR, PROFILE_DIR, available, find_data_file
    from simfl.config.overrides import PathError, apply_overrides

    raw, scenario = source.raw, source.file
    for path, values in axes.items():
        parts = parse_path(path)
        if is_patch(path):  # a data file's field: its schema's, and a file the scenario uses (checked at load)
            table = PATCH_TABLES[parts[0]]
            problem = _schema_problem(parts[2:], PATCH_SCHEMAS[table]())
            kind = PROFILE_DIR if table == "hardware" else NETWORK_DIR
            if problem is None and not isinstance((raw.get(table) or {}).get(parts[1]), dict) \
                    and find_data_file(str(parts[1]), kind, scenario.parent) is None:
                names = ", ".join(p.stem for p in available(kind, scenario.parent))
                problem = f"no {kind[:-1].replace('_', ' ')} is named {parts[1]!r}; there are: {names}"
            if problem:
                raise ScenarioError(f"{path} is not a field of the scenario's data files: {problem}", file=file,
                                    field=field)
            continue
        problem = _schema_problem(parts)
        if problem is None and not any(_is_prefix(parse_path(other), parts) for other in axes if other != path):
            try:  # (an axis above this one, such as `fleet` for `fleet[0].network`, may give the items it needs)
                apply_overrides(copy.deepcopy(raw), {path: values[0]})
            except PathError as e:
                problem = f"in {scenario.name}, {e.message}"
        if problem:
            raise ScenarioError(f"{path} is not a field of the scenario: {problem}", file=file, field=field)


def _is_prefix(a: list, b: list) -> bool:
    return len(a) < len(b) and b[:len(a)] == a


def _hardware_profile():
    from simfl.config.profiles import HardwareProfile

    return HardwareProfile


def _network_model():
    from simfl.config.profiles import NetworkModel

    return NetworkModel


PATCH_SCHEMAS = {"hardware": _hardware_profile, "networks": _network_model}


def _schema_problem(parts: list[str | int], root=None) -> str | None:
    """None when the path names a field of the scenario schema (or of `root`, a data file's); else what is wrong,
    with the nearest name."""
    from simfl.config.scenario import Scenario

    kinds = [root or Scenario]
    for depth, key in enumerate(parts):
        where = "the scenario" if depth == 0 else _show(parts[:depth])
        nxt, names = [], []
        for tp in kinds:
            for t in _members(tp):
                origin = typing.get_origin(t)
                if isinstance(t, type) and issubclass(t, BaseModel):
                    names += list(t.model_fields)
                    if isinstance(key, str) and key in t.model_fields:
                        nxt.append(t.model_fields[key].annotation)
                elif origin is list and (isinstance(key, int) or key == EVERY):
                    nxt.append(typing.get_args(t)[0])
                elif origin is dict and isinstance(key, str):
                    nxt.append(typing.get_args(t)[1])
        if not nxt:
            if isinstance(key, int):
                return f"{where} is not a list"
            if not names:
                return f"{where} is a value, so it has no field {key!r}"
            close = difflib.get_close_matches(key, names, n=1)
            return f"{where} has no field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        kinds = nxt
    return None


def _members(tp) -> list:
    """The types a field may hold: Annotated and Optional unwrapped, each member of a union."""
    if typing.get_origin(tp) is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in _members(a)]
    return [tp]


def _show(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def space_size(axes: dict[str, list]) -> int:
    return math.prod(len(v) for v in axes.values())


class Space(Sequence):
    """Every combination of the axes' values, the first axis slowest, computed point by point when asked for:
    a space of 10^9 points costs nothing until its points are listed."""

    def __init__(self, axes: dict[str, list]):
        self.axes = axes
        self.names = list(axes)
        self.size = space_size(axes)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not isinstance(i, int):
            raise TypeError("a space is indexed by point number")
        if not -self.size <= i < self.size:
            raise IndexError(i)
        return {n: self.axes[n][j] for n, j in zip(self.names, self.indices(i % self.size))}

    def indices(self, i: int) -> tuple[int, ...]:
        """Point i as the index of each axis' value."""
        out = []
        for n in reversed(self.names):
            i, j = divmod(i, len(self.axes[n]))
            out.append(j)
        return tuple(reversed(out))

    def point_of(self, indices: tuple[int, ...]) -> int:
        """The point number of one index per axis (the inverse of indices)."""
        i = 0
        for n, j in zip(self.names, indices):
            i = i * len(self.axes[n]) + j
        return i

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (Space, list)) else NotImplemented


def points(axes: dict[str, list]) -> Space:
    """Every combination of the axes' values, the first axis slowest."""
    return Space(axes)


def fingerprint(spec_path: Path, scenario: Path) -> str:
    """What a sweep's results depend on: its file, its scenario, every hardware profile and network model the
    scenario could name, and simfl's version. A resumed sweep reuses results only when this is unchanged."""
    from importlib.metadata import version

    from simfl.config.load import NETWORK_DIR, PROFILE_DIR, available

    h = hashlib.sha256(version("simfl").encode())
    files = [spec_path, scenario, *available(PROFILE_DIR, scenario.parent), *available(NETWORK_DIR, scenario.parent)]
    for f in files:
        h.update(b"\0" + str(f.resolve()).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def point_key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)
