"""Sweep and plan files: which scenario, which fields vary over which values, what to minimise under what."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from simfl.config.base import StrictModel
from simfl.config.overrides import parse_path
from simfl.errors import ScenarioError


def _check_axes(axes: dict[str, list]) -> dict[str, list]:
    for path, values in axes.items():
        try:
            parse_path(path)
        except ScenarioError as e:
            raise ValueError(e.message.replace("--set: ", "")) from None
        if not values:
            raise ValueError(f"{path}: give at least one value")
    return axes


class SweepSpec(StrictModel):
    scenario: str = Field(min_length=1, description="Scenario YAML, relative to this file.")
    replicates: int = Field(1, ge=1, description="Seeds seed..seed+N-1 at every point: mean and 95 % CI.")
    axes: dict[str, list[Any]] = Field(min_length=1, description="Field path -> values; the product is swept.")

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: dict[str, list]) -> dict[str, list]:
        return _check_axes(v)


class Bound(StrictModel):
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _some(self) -> "Bound":
        if self.max is None and self.min is None:
            raise ValueError("give max, min or both")
        return self


class SearchSpec(StrictModel):
    method: Literal["auto", "exhaustive", "optuna"] = Field(
        "auto", description="auto: every point when there are at most max_points, else optuna's TPE sampler.")
    max_points: int = Field(200, ge=1, description="auto: the largest space evaluated exhaustively.")
    trials: int = Field(100, ge=1, description="optuna: points evaluated.")
    seed: int = Field(0, description="optuna's sampler seed.")


class PlanSpec(StrictModel):
    scenario: str = Field(min_length=1, description="Scenario YAML, relative to this file.")
    choose: dict[str, list[Any]] = Field(min_length=1, description="Decision variables: field path -> choices.")
    minimize: str = Field(min_length=1, description="A summary figure, e.g. cost_total or energy_j.total.")
    subject_to: dict[str, Bound] = Field(default_factory=dict, description="Summary figure -> {max, min}.")
    replicates: int = Field(1, ge=1, description="With more than one, constraints hold at the 95th "
                                                 "percentile (max) or 5th (min) of the replicates.")
    search: SearchSpec = Field(default_factory=SearchSpec)

    @field_validator("choose")
    @classmethod
    def _choices(cls, v: dict[str, list]) -> dict[str, list]:
        return _check_axes(v)


def load_spec(path: Path, cls: type[SweepSpec] | type[PlanSpec]):
    from simfl.config.load import read_yaml, validation_error

    raw = read_yaml(path, "sweep file" if cls is SweepSpec else "plan file")
    if not isinstance(raw, dict):
        raise ScenarioError(f"expected a mapping at the top level, got {type(raw).__name__}", file=path)
    try:
        spec = cls.model_validate(raw)
    except ValidationError as e:
        raise validation_error(e, path) from None
    scenario = Path(spec.scenario)
    scenario = scenario if scenario.is_absolute() else path.parent / scenario
    if not os.path.lexists(scenario):  # a FIFO, a folder, a dangling link: load_scenario says which
        raise ScenarioError(f"scenario file {spec.scenario} not found (relative to {path})", file=path,
                            field="scenario")
    from simfl.config.load import load_scenario

    load_scenario(scenario)  # a bad base scenario is one error now, not the same error at every point
    return spec, scenario


def points(axes: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis slowest."""
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


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
