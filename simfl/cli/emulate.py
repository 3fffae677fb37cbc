"""simfl emulate: a scenario's rounds run for real (Flower on namespaced, shaped links) against simfl's
prediction. Needs root; see simfl/emulate/run.py for what it emulates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from simfl.cli.common import app, bad_input, err, out
from simfl.cli.simulate import SET_HELP, overrides_of


@app.command()
@bad_input
def emulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    rounds: Annotated[int, typer.Option(min=1, help="Rounds measured (after one in which clients connect).")] = 3,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>-emulate/).")] = None,
    compute: Annotated[str, typer.Option(help="train: real LoRA steps on this CPU (a profile calibrated here); "
                                              "sleep: simfl's predicted compute, slept (any device).")] = "train",
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Calibrate the clients' profile on this machine "
                                            "first (as make fidelity does) and predict with it; needed with "
                                            "--compute train when another host measured the profile.")] = False,
) -> None:
    """Run the scenario's rounds for real and compare each with simfl's prediction (emulation.json)."""
    from simfl import load_scenario
    from simfl.emulate.netns import check_can_emulate
    from simfl.emulate.profile import check_clients_profile, calibrated_scenario
    from simfl.emulate.run import emulable, emulate as run_emulation
    from simfl.errors import ScenarioError
    from simfl.report.emulation import emulation_plot
    from simfl.report.outdir import OutputDir, default_dir

    if compute not in ("train", "sleep"):
        raise ScenarioError(f"expected train or sleep, got {compute!r}", field="--compute")
    check_can_emulate()
    sc = load_scenario(scenario, overrides_of(set_))
    emulable(sc, compute)
    if calibrate and compute != "train":
        raise ScenarioError("calibrates real steps for --compute train; sleeping clients take the profile's step "
                            "times as they are", field="--calibrate")
    if not calibrate:
        check_clients_profile(sc, compute)  # before anything is written
    target = out_dir or default_dir(sc.name, "-emulate")
    with OutputDir(target, "emulate") as folder:
        if calibrate:
            err.print(f"calibrating {', '.join(dict.fromkeys(g.device for g in sc.fleet))} on this machine first",
                      highlight=False)
            sc = calibrated_scenario(sc, folder / "calibration")
        profile = check_clients_profile(sc, compute)
        err.print(_profile_line(profile), highlight=False)
        err.print(f"emulating {sc.name}: {sc.population} clients, {rounds} measured rounds", highlight=False)
        result = {**run_emulation(sc, rounds, compute), "profile": profile}
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
    out.print(_profile_line(result["profile"]), highlight=False)
    out.print(f"wrote {target}/", highlight=False)


def _profile_line(profile: dict) -> str:
    """Which profile predicts: the shipped one (measured on this kind of host), one calibrated here, or slept."""
    devices = ", ".join(profile["devices"])
    if profile["predicted_with"] == "slept":
        return f"profile: {devices}, its step times slept (--compute sleep)"
    how = "calibrated here just now" if profile["predicted_with"] == "calibrated-here" else \
        "as shipped, measured on this kind of host"
    return f"profile: {devices} {how} ({profile['host']})"
