"""simfl emulate, first form: a scenario's rounds run for real with Flower on the emulated network, against
simfl's prediction of the same rounds.

What it emulates today: every client takes part in every round (population = K, no over-selection,
deadline, dropout or availability), links fixed per client, and compute as the profile's step time x local
steps (a sleep: real LoRA steps are still to come). The emulation adds no delay (this kernel has no netem),
so the prediction is made with every latency set to 0.
"""

from __future__ import annotations

from simfl.build import _speed_of
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError


def emulable(sc: Scenario) -> None:
    """One line naming what this first form of emulation does not do yet, when the scenario needs it."""
    fed = sc.federation
    why = []
    if sc.population != fed.clients_per_round:
        why.append(f"a population ({sc.population}) other than K ({fed.clients_per_round}): every client must "
                   "take part in every round")
    if fed.over_selection or fed.deadline_s is not None or fed.dropout_prob:
        why.append("over-selection, a deadline or dropout")
    for i, g in enumerate(sc.fleet):
        if g.availability.kind != "always" or g.dropout_prob:
            why.append(f"fleet[{i}]'s availability or dropout")
        drawn_links = g.link.per == "round" and g.link.distribution != "fixed"
        speed = _speed_of(g, sc.hardware[g.device])
        drawn_speeds = speed.per == "round" and speed.distribution != "fixed"
        if drawn_links or drawn_speeds:
            why.append(f"fleet[{i}]'s links or speeds drawn each round")
    if sc.population > 16:
        why.append(f"{sc.population} clients: at most 16 processes here")
    if why:
        raise ScenarioError("not emulated yet: " + "; ".join(dict.fromkeys(why)), field="scenario")


def without_latency(sc: Scenario) -> Scenario:
    nets = {k: v.model_copy(update={"latency_s": 0.0, "distribution": None}) for k, v in sc.networks.items()}
    return sc.model_copy(update={"networks": nets})


def emulate(sc: Scenario, rounds: int) -> dict:
    """Run `rounds` measured rounds (after one warm-up round in which the clients connect) and predict them."""
    import simfl
    from simfl.build import build
    from simfl.emulate.netns import ClientLink, Topology
    from simfl.emulate.rounds import flower_python, flower_rounds

    emulable(sc)
    flower_python()  # Flower installed: fail before building anything
    sc0 = without_latency(sc)
    sc0 = sc0.model_copy(update={"federation": sc0.federation.model_copy(update={"rounds": rounds + 1})})
    inputs = build(sc0).inputs
    specs = [inputs.client(i) for i in range(inputs.population_size)]
    links = [ClientLink(s.link.downlink_bps, s.link.uplink_bps, s.cell) for s in specs]
    server = inputs.server.link
    with Topology(links, server.uplink_bps, server.downlink_bps, cells=dict(inputs.cells)) as topo:
        log = flower_rounds(topo, rounds + 1, inputs.trainable_params, [s.compute_s for s in specs])
    predicted = simfl.simulate(sc0).rounds
    out = []
    for r, p in zip(log[1:], predicted.itertuples()):  # the first round also waits for the clients to connect
        measured_s = r["aggregated_s"] - r["configure_s"]
        out.append({"round": r["round"], "measured_s": measured_s, "predicted_s": p.end_s - p.start_s})
    mape = 100 * sum(abs(x["measured_s"] / x["predicted_s"] - 1) for x in out) / len(out)
    total_m, total_p = sum(x["measured_s"] for x in out), sum(x["predicted_s"] for x in out)
    return {"scenario": sc.name, "rounds": out, "mape_round_pct": mape,
            "error_total_pct": 100 * (total_m / total_p - 1), "measured_total_s": total_m,
            "predicted_total_s": total_p, "transport": sc.transport.model_dump() if sc.transport else None,
            "notes": ["the emulation adds no delay (no netem): predicted with every latency 0",
                      "compute is the profile's step time x local steps, slept: real LoRA steps are to come",
                      "round 0 (clients connecting) is not compared"]}
