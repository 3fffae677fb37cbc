"""simfl flower: a Flower app's own ServerApp and strategy, run on a scenario's fleet on simfl's clock
(simfl/flower/), writing what `simfl run` writes."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from simfl.cli.common import app, bad_input, err, out
from simfl.cli.simulate import SET_HELP, overrides_of
from simfl.errors import ScenarioError, short


def _run_config(pairs: list[str] | None) -> dict:
    """--run-config KEY=VALUE pairs, each VALUE read as TOML (as `flwr run --run-config` reads it)."""
    import tomllib

    found = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"expected KEY=VALUE, got {short(pair)}", field="--run-config")
        try:
            found[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            raise ScenarioError(f"{key.strip()}: not a TOML value, got {short(value)} (quote a string)",
                                field="--run-config") from None
    return found


@contextmanager
def _flower_log(path: Path):
    """Flower's own log (every round, its warnings) into `path` instead of the terminal, whose stderr carries
    simfl's one-line errors and warnings only."""
    import logging

    import flwr.app  # noqa: F401  (Flower sets up its logger when first imported)

    logger = logging.getLogger("flwr")
    quieted = [(h, h.level) for h in logger.handlers if isinstance(h, logging.StreamHandler)
               and not isinstance(h, logging.FileHandler)]
    for h, _ in quieted:
        h.setLevel(logging.CRITICAL + 1)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(to_file)
    try:
        yield
    finally:
        logger.removeHandler(to_file)
        to_file.close()
        for h, level in quieted:
            h.setLevel(level)


@app.command()
@bad_input
def flower(
    app_dir: Annotated[Path, typer.Argument(metavar="APP", help="A Flower app's folder (its pyproject.toml).")],
    fleet: Annotated[Path, typer.Option("--fleet", help="Scenario YAML whose fleet, links and server the app runs "
                                                        "on.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>-flower/).")] = None,
    train: Annotated[bool, typer.Option("--train/--cost-only", help="Run the app's ClientApp in-process (real "
                                        "training), or answer with the strategy's own arrays (cost only).")] = False,
    nodes: Annotated[str, typer.Option(help="fleet: every online client is a connected node, the strategy "
                                            "samples; selected: the scenario's selection picks a round's "
                                            "clients_selected nodes.")] = "fleet",
    run_config: Annotated[list[str] | None, typer.Option("--run-config", help="Override the app's config: "
                                                         "KEY=VALUE (TOML), e.g. num-server-rounds=5 "
                                                         "(repeatable).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    plots: Annotated[bool, typer.Option(help="Write timeline.png and energy.png.")] = True,
) -> None:
    """Run a Flower app's strategy on a scenario's fleet on simfl's clock: rounds, time, energy, CO2, money."""
    import importlib.util
    import warnings

    from simfl import load_scenario
    from simfl.report.outdir import OutputDir, default_dir
    from simfl.report.write import write_run_files

    if nodes not in ("fleet", "selected"):
        raise ScenarioError(f"expected fleet or selected, got {short(nodes)}", field="--nodes")
    if importlib.util.find_spec("flwr") is None:
        raise ScenarioError("simfl flower needs Flower, which is not installed here: pip install 'simfl[flower]'")
    if importlib.util.find_spec("flwr.supercore.task_identity") is None:  # the Message API as flwr 1.42 has it
        from importlib.metadata import version

        raise ScenarioError(f"simfl flower needs Flower's Message API as flwr 1.42 has it (the version it is tested "
                            f"with); this is flwr {version('flwr')}: pip install 'flwr>=1.42,<2'")
    from simfl.flower.app import read_app, simulate_flower

    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecations, from the user's app
    flower_app = read_app(app_dir, _run_config(run_config))
    try:
        sc = load_scenario(fleet, overrides_of(set_))
    except ScenarioError as e:
        raise e.with_file(fleet) from None
    target = out_dir or default_dir(flower_app.name, "-flower")
    with OutputDir(target, "run") as tmp, _flower_log(tmp / "flower.log"):
        try:
            result, grid = simulate_flower(flower_app, sc, train=train, nodes=nodes)
        except ScenarioError as e:
            raise e.with_file(fleet) if e.field in ("fleet", "federation.mode") else e from None
        write_run_files(result, tmp, plots=plots)
        (tmp / "flower.json").write_text(json.dumps({
            "app": flower_app.name, "serverapp": flower_app.serverapp, "clientapp": flower_app.clientapp,
            "replies": "clientapp" if train else "cost-only", "nodes": nodes, "config": flower_app.config,
            "rounds": [{"round": r.index + 1, "addressed": r.addressed, "replied": r.replied,
                        "start_s": r.start_s, "end_s": r.end_s} for r in grid.rounds]}, indent=1) + "\n")
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False, highlight=False)
    f = result.summary.figures()
    out.print(f"{flower_app.name} on {sc.name}: {f['rounds_completed']} rounds, {f['sim_time_s'] / 3600:,.4g} h "
              f"simulated, {f['kwh_total']:,.4g} kWh, {f['co2_kg']:,.4g} kg CO2, "
              f"{f['cost_total']:,.4g} {result.summary.currency}", highlight=False)
    out.print(f"wrote {target}/", highlight=False)
