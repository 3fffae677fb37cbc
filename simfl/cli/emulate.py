"""simfl emulate: a scenario's rounds run for real (Flower on namespaced, shaped links) against simfl's
prediction. Needs root; see simfl/emulate/run.py for what it emulates."""

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
    compute: Annotated[str, typer.Option(help="train: real LoRA steps on this CPU (a profile calibrated here); "
                                              "sleep: simfl's predicted compute, slept (any device).")] = "train",
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run the scenario's rounds for real and compare each with simfl's prediction (emulation.json)."""
    from simfl import load_scenario
    from simfl.emulate.netns import check_can_emulate
    from simfl.emulate.run import emulable, emulate as run_emulation
    from simfl.errors import ScenarioError
    from simfl.report.emulation import emulation_plot
    from simfl.report.outdir import OutputDir, default_dir

    if compute not in ("train", "sleep"):
        raise ScenarioError(f"expected train or sleep, got {compute!r}", field="--compute")
    check_can_emulate()
    sc = load_scenario(scenario, overrides_of(set_))
    emulable(sc, compute)
    target = out_dir or default_dir(sc.name, "-emulate")
    with OutputDir(target, "emulate") as folder:
        err.print(f"emulating {sc.name}: {sc.population} clients, {rounds} measured rounds", highlight=False)
        result = run_emulation(sc, rounds, compute)
        (folder / "emulation.json").write_text(json.dumps(result, indent=2) + "\n")
        emulation_plot(result, folder / "emulation.png")
    for r in result["rounds"]:
        out.print(f"round {r['round']}: measured {r['measured_s']:.3f} s, predicted {r['predicted_s']:.3f} s "
                  f"({r['error_pct']:+.1f} %)", highlight=False)
    for ph, e in result["phases"].items():
        if e["n"]:
            out.print(f"{ph}: measured {e['measured_mean_s']:.3f} s, predicted {e['predicted_mean_s']:.3f} s on average "
                      f"(MAPE {e['mape_pct']:.1f} %, {e['n']} client-rounds)", highlight=False)
    out.print(f"round MAPE {result['mape_round_pct']:.1f} %, total {result['error_total_pct']:+.1f} %; "
              f"bytes on the wire / model: {result['wire_to_model']:.3f}", highlight=False)
    out.print(f"wrote {target}/", highlight=False)
