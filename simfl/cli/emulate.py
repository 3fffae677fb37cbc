"""simfl emulate: a scenario's rounds run for real (Flower on namespaced, shaped links) against simfl's
prediction. Needs root; see simfl/emulate/run.py for what it emulates so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from simfl.cli.common import _bad_input, app, err, out
from simfl.cli.simulate import SET_HELP, overrides_of


@app.command()
@_bad_input
def emulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    rounds: Annotated[int, typer.Option(min=1, help="Rounds measured (after one in which clients connect).")] = 3,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>-emulate/).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run the scenario's rounds for real and compare each with simfl's prediction (emulation.json)."""
    from simfl import load_scenario
    from simfl.emulate.netns import check_can_emulate
    from simfl.emulate.run import emulable, emulate as run_emulation
    from simfl.report.outdir import OutputDir, default_dir

    check_can_emulate()
    sc = load_scenario(scenario, overrides_of(set_))
    emulable(sc)
    target = out_dir or default_dir(sc.name, "-emulate")
    with OutputDir(target, "emulate") as folder:
        err.print(f"emulating {sc.name}: {sc.population} clients, {rounds} measured rounds", highlight=False)
        result = run_emulation(sc, rounds)
        (folder / "emulation.json").write_text(json.dumps(result, indent=2) + "\n")
    for r in result["rounds"]:
        out.print(f"round {r['round']}: measured {r['measured_s']:.3f} s, predicted {r['predicted_s']:.3f} s "
                  f"({100 * (r['measured_s'] / r['predicted_s'] - 1):+.1f} %)", highlight=False)
    out.print(f"round MAPE {result['mape_round_pct']:.1f} %, total {result['error_total_pct']:+.1f} %", highlight=False)
    out.print(f"wrote {target}/", highlight=False)
