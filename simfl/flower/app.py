"""A Flower app from its own files: its pyproject.toml's ServerApp, ClientApp and run config, run on a scenario's
fleet through the simulated Grid; the result is a `simfl run` result (api.SimResult)."""

from __future__ import annotations

import importlib
import sys
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from simfl.api import SimResult
from simfl.build import build
from simfl.config.scenario import Scenario
from simfl.errors import RunFailed, ScenarioError, short
from simfl.sim.streams import Streams
from simfl.summary import summarize

# The app config key Flower's templates (and FlowerTune's) give the number of rounds: the scenario's
# federation.rounds is set from it, so the run's summary counts the rounds the app asks for.
ROUNDS_KEY = "num-server-rounds"


@dataclass(frozen=True)
class FlowerApp:
    """What simfl reads of a Flower app's pyproject.toml."""
    folder: Path
    name: str
    serverapp: str  # "module:attribute"
    clientapp: str
    config: dict  # [tool.flwr.app.config], nested tables flattened to dotted keys as Flower does

    @property
    def rounds(self) -> int | None:
        n = self.config.get(ROUNDS_KEY)
        return n if isinstance(n, int) and not isinstance(n, bool) else None


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_app(folder: Path, overrides: dict | None = None) -> FlowerApp:
    """The app in `folder` (its pyproject.toml), its config with `overrides` (--run-config) applied; one line
    naming the file and the key when something is missing or wrong."""
    toml = Path(folder) / "pyproject.toml"
    if not toml.is_file():
        raise ScenarioError("has no pyproject.toml: give a Flower app's folder", file=folder)
    try:
        doc = tomllib.loads(toml.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"not valid TOML: {str(e).splitlines()[0]}", file=toml) from None
    app = doc.get("tool", {}).get("flwr", {}).get("app", {})
    components = app.get("components", {}) if isinstance(app, dict) else {}
    refs = {}
    for key in ("serverapp", "clientapp"):
        ref = components.get(key) if isinstance(components, dict) else None
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise ScenarioError(f"expected \"module:attribute\", got {short(ref)}", file=toml,
                                field=f"tool.flwr.app.components.{key}")
        refs[key] = ref
    config = _flatten(app.get("config", {}) if isinstance(app.get("config", {}), dict) else {})
    for k, v in (overrides or {}).items():
        if k not in config:
            raise ScenarioError(f"the app's config has no key {short(k)} (known: {', '.join(sorted(config))})",
                                field="--run-config")
        config[k] = v
    name = doc.get("project", {}).get("name", Path(folder).resolve().name)
    rounds = config.get(ROUNDS_KEY)
    if rounds is not None and (not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1):
        raise ScenarioError(f"expected a positive integer, got {short(rounds)}", file=toml,
                            field=f"tool.flwr.app.config.{ROUNDS_KEY}")
    return FlowerApp(Path(folder), str(name), refs["serverapp"], refs["clientapp"], config)


@contextmanager
def _on_path(folder: Path):
    """The app's folder first on sys.path while its modules load (as `flwr run` does)."""
    where = str(Path(folder).resolve())
    sys.path.insert(0, where)
    try:
        yield
    finally:
        if where in sys.path:
            sys.path.remove(where)


def load_object(app: FlowerApp, key: str):
    """The object `app`'s component `key` names, or one line saying why it cannot be loaded."""
    ref = getattr(app, key)
    module, attribute = ref.split(":")
    field = f"tool.flwr.app.components.{key}"
    with _on_path(app.folder):
        try:
            obj = importlib.import_module(module)
        except ImportError as e:
            raise ScenarioError(f"cannot import {module}: {e}", file=app.folder / "pyproject.toml",
                                field=field) from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ScenarioError(f"{module} has no {attribute}", file=app.folder / "pyproject.toml", field=field)
        obj = getattr(obj, part)
    return obj


def _where(error: BaseException, folder: Path) -> str:
    """ " (at FILE:LINE)" of the innermost frame of `error` in the app's folder, or ""."""
    import traceback

    root = str(Path(folder).resolve())
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(root)]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def fleet_scenario(app: FlowerApp, scenario: Scenario) -> Scenario:
    """The scenario the app runs on: its rounds the app's num-server-rounds where the app says."""
    if app.rounds is None or app.rounds == scenario.federation.rounds:
        return scenario
    return scenario.model_copy(update={"federation": scenario.federation.model_copy(update={"rounds": app.rounds})})


def simulate_flower(app: FlowerApp, scenario: Scenario, train: bool = False, nodes: str = "fleet"):
    """Run the app's ServerApp on the scenario's fleet (SimulatedGrid): cost-only replies, or with `train` its
    ClientApp in-process. Returns (SimResult as `simfl run` makes it, the grid with its round log)."""
    from flwr.app import Context, RecordDict

    from simfl.flower.grid import RUN_ID, SERVER_NODE_ID, SimulatedGrid, task_identity

    scenario = fleet_scenario(app, scenario)
    streams = Streams.from_seed(scenario.seed)  # one set, built from and then run on, as api.simulate does
    built = build(scenario, streams)
    server_app = load_object(app, "serverapp")
    client_app = load_object(app, "clientapp") if train else None
    grid = SimulatedGrid(scenario, built, streams, nodes=nodes, client_app=client_app, run_config=dict(app.config))
    with _on_path(app.folder), task_identity(RUN_ID, SERVER_NODE_ID):
        try:
            server_app(grid, Context(RUN_ID, SERVER_NODE_ID, {}, RecordDict(), dict(app.config)))
        except (ScenarioError, KeyboardInterrupt):
            raise
        except Exception as e:  # the app's own failure: one line, where in the app it happened
            raise RunFailed(f"the Flower app failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            f"{_where(e, app.folder)}") from None
    grid.finish()
    played = len(grid.rounds)
    if played != scenario.federation.rounds:  # the strategy stopped early (or ran longer): the summary says so
        scenario = scenario.model_copy(update={"federation": scenario.federation.model_copy(
            update={"rounds": max(played, 1)})})
        built = replace(built, inputs=replace(built.inputs, rounds=max(played, 1)))
    records = grid.engine.records
    return SimResult(scenario, summarize(scenario, built, records), records, built.inputs), grid
