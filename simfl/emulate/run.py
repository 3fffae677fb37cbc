"""simfl emulate: a scenario's rounds run for real with Flower on the emulated network, against simfl's
prediction of the same rounds, phase by phase.

The emulation follows the prediction's own draws: each round takes the clients simfl selected, with their
local steps, and closes at the K-th completed upload or the deadline. Clients train for real (`compute:
train`, real LoRA steps of the scenario's T5 on this CPU, one pinned core each, as the profile was
calibrated) or sleep the profile's step time (`sleep`, to emulate another device's network and timing).
The emulation adds no delay (this kernel has no netem), so the prediction is made with every latency 0.
What it cannot emulate faithfully is refused in one line (emulable).
"""

from __future__ import annotations

import os

from simfl.catalog import BUILTIN_MODELS, T5Architecture, get_architecture
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError

MAX_CLIENTS = 16  # processes (a Flower client and its worker each) this emulation runs at once
PHASES = ("download", "compute", "upload")


def emulable(sc: Scenario, compute: str = "train") -> None:
    """One line naming what the emulation does not do, when the scenario needs it."""
    fed = sc.federation
    why = []
    if fed.mode != "sync":
        why.append(f"mode {fed.mode} (the emulation runs synchronous rounds)")
    if fed.dropout_prob:
        why.append("dropout")
    for i, g in enumerate(sc.fleet):
        if g.availability.kind != "always" or g.dropout_prob:
            why.append(f"fleet[{i}]'s availability or dropout")
        if g.link.per == "round" and g.link.distribution != "fixed":  # the shaping is set once, for the run
            why.append(f"fleet[{i}]'s links drawn each round")
        if compute == "train" and sc.hardware[g.device].device_class != "cpu":
            why.append(f"fleet[{i}].device {g.device!r} with --compute train: clients train on this CPU, so their "
                       "profile must be this CPU's (cpu-1core-epyc-emulate), or use --compute sleep")
    if compute == "train" and sc.model.config is not None and sc.model.name not in BUILTIN_MODELS:
        why.append(f"model.config {sc.model.config} with --compute train: the clients' workers build the models "
                   "simfl ships (use --compute sleep for this one)")
    if sc.population > MAX_CLIENTS:
        why.append(f"{sc.population} clients: at most {MAX_CLIENTS} here")
    if compute == "train":
        cores = len(os.sched_getaffinity(0))
        if fed.clients_selected > cores:
            why.append(f"{fed.clients_selected} clients training at once on {cores} cores: each needs a core of "
                       "its own to run at its profile's speed")
        if not isinstance(get_architecture(sc.model.name), T5Architecture) or sc.model.finetuning != "lora" \
                or sc.training.method != "backprop":
            why.append(f"{sc.model.name} {sc.model.finetuning} {sc.training.method} with --compute train "
                       "(it trains LoRA T5 models with backprop)")
    if why:
        raise ScenarioError("not emulated: " + "; ".join(dict.fromkeys(why)), field="scenario")


def without_latency(sc: Scenario) -> Scenario:
    nets = {k: v.model_copy(update={"latency_s": 0.0, "distribution": None}) for k, v in sc.networks.items()}
    return sc.model_copy(update={"networks": nets})


def plan_of(sc: Scenario, predicted, compute: str):
    """The Flower processes' plan from simfl's prediction: its selections, steps and round rules."""
    from simfl.emulate.rounds import Plan

    inputs, clients = predicted.inputs, predicted.clients
    steps = inputs.population.steps
    rounds = []
    for _, rows in clients.groupby("round", sort=True):
        ids = rows["client"].tolist()
        # what a sleeping client sleeps: its predicted compute (this round's speed draw included), or, where
        # simfl cut it first, the whole of it at its nominal speed
        sleep_s = [c.compute_end_s - c.compute_start_s if c.status == "completed" else inputs.client(c.client).compute_s
                   for c in rows.itertuples()]
        rounds.append({"selected": ids, "steps": [int(steps[c]) for c in ids], "compute_s": sleep_s,
                       "k": inputs.clients_per_round, "deadline_s": inputs.deadline_s})
    train = None
    if compute == "train":
        lr = sc.train.client_lr if sc.train else 1.0  # the seed paper's client SGD
        train = {"arch": sc.model.name, "lora_r": sc.model.lora_r, "lora_targets": list(sc.model.lora_targets),
                 "seq_len": sc.training.seq_len, "target_len": sc.training.target_len,
                 "batch_size": sc.training.batch_size, "lr": lr, "seed": sc.seed, "examples": 2000}
    plan = Plan(params=inputs.trainable_params, rounds=rounds, train=train)
    if sc.train and sc.train.optimizers:  # the scenario's first server optimizer; FedAvg without one
        name, params = next(iter(sc.train.optimizers.items()))
        plan.server_optimizer = {"optimizer": name, "hyper": params.model_dump()}
    return plan


def compare(log: list[dict], predicted, framing: float = 1.0) -> dict:
    """Measured against predicted: each round's duration and phases, the totals, and bytes on the wire.

    A round lasts from its configuration to its aggregate (measured) or from its start to its end (simfl).
    Phases are compared for the client-rounds that went through them in both; the total runs from the first
    measured round's configuration to the last aggregate, so the time between rounds counts too.
    """
    from simfl.emulate.rounds import phases

    pred_rounds, pred_clients = predicted.rounds, predicted.clients
    measured = {(p["round"] - 1, p["client"]): p for p in phases(log)}
    rounds, per_phase = [], {ph: [] for ph in PHASES}
    for entry, p in zip(log[1:], pred_rounds.itertuples()):
        r = entry["round"] - 1  # simfl's round index
        rows = pred_clients[pred_clients["round"] == r]
        clients = []
        for c in rows.itertuples():
            m = measured.get((r, c.client), {})
            row = {"client": c.client, "status_predicted": c.status, "status_measured": m.get("status"),
                   "aggregated": m.get("aggregated")}
            pred = {"download": c.download_end_s - c.download_start_s, "compute": c.compute_end_s - c.compute_start_s,
                    "upload": c.upload_end_s - c.upload_start_s}
            for ph in PHASES:
                row[f"{ph}_predicted_s"] = pred[ph] if pred[ph] == pred[ph] else None  # NaN: never got there
                row[f"{ph}_measured_s"] = m.get(f"{ph}_s")
                # a phase both finished: in simfl a cut client's phase ends at the cut, so only completed ones
                if c.status == "completed" and m.get("aggregated") and row[f"{ph}_measured_s"] is not None:
                    per_phase[ph].append((row[f"{ph}_measured_s"], pred[ph]))
            clients.append(row)
        sent0, recv0 = entry["server_nic_bytes"]
        sent1, recv1 = entry["server_nic_bytes_closed"]
        rounds.append({
            "round": r, "measured_s": entry["aggregated_s"] - entry["configure_s"], "predicted_s": p.end_s - p.start_s,
            "completed_measured": sum(bool(c["aggregated"]) for c in clients), "completed_predicted": p.clients_completed,
            "wire_bytes_down": sent1 - sent0, "wire_bytes_up": recv1 - recv0,
            "model_bytes_down": p.bits_down / 8 * framing, "model_bytes_up": p.bits_up / 8 * framing,
            "clients": clients})
    for x in rounds:
        x["error_pct"] = pct_error(x["measured_s"], x["predicted_s"])
    total_m = log[-1]["aggregated_s"] - log[1]["configure_s"]
    total_p = float(pred_rounds["end_s"].iloc[-1] - pred_rounds["start_s"].iloc[0])
    wire = sum(x["wire_bytes_down"] + x["wire_bytes_up"] for x in rounds)
    model = sum(x["model_bytes_down"] + x["model_bytes_up"] for x in rounds)
    return {"rounds": rounds,
            "mape_round_pct": mape([(x["measured_s"], x["predicted_s"]) for x in rounds]),
            "error_total_pct": pct_error(total_m, total_p), "measured_total_s": total_m, "predicted_total_s": total_p,
            "phases": {ph: {"mape_pct": mape(pairs), "n": len(pairs),
                            "measured_mean_s": sum(m for m, _ in pairs) / len(pairs) if pairs else None,
                            "predicted_mean_s": sum(q for _, q in pairs) / len(pairs) if pairs else None}
                       for ph, pairs in per_phase.items()},
            "wire_bytes": wire, "model_bytes": model, "wire_to_model": wire / model if model else None}


def pct_error(measured: float, predicted: float) -> float:
    """100 (measured / predicted - 1): positive when the run took longer than predicted."""
    return 100 * (measured / predicted - 1)


def mape(pairs: list[tuple[float, float]]) -> float | None:
    """Mean absolute percentage error of (measured, predicted) pairs, relative to the measured value."""
    return 100 * sum(abs(m - p) / m for m, p in pairs) / len(pairs) if pairs else None


def predict(sc: Scenario, rounds: int):
    """simfl's prediction of `rounds` rounds as the emulation runs them: every latency 0 (no netem)."""
    import simfl

    sc0 = without_latency(sc)
    return simfl.simulate(sc0.model_copy(update={"federation": sc0.federation.model_copy(update={"rounds": rounds})}))


def measure(predicted, plan, limit_s: float | None = None) -> list[dict]:
    """Run the plan's rounds for real on the network of the predicted run's clients and server: the log."""
    from simfl.emulate.netns import ClientLink, Topology
    from simfl.emulate.rounds import flower_rounds

    inputs = predicted.inputs
    specs = [inputs.client(i) for i in range(inputs.population_size)]
    links = [ClientLink(s.link.downlink_bps, s.link.uplink_bps, s.cell) for s in specs]
    server = inputs.server.link
    limit_s = limit_s or 300 + 3 * float(predicted.rounds["end_s"].iloc[-1])
    with Topology(links, server.uplink_bps, server.downlink_bps, cells=dict(inputs.cells)) as topo:
        return flower_rounds(topo, plan, timeout_s=limit_s)


def emulate(sc: Scenario, rounds: int, compute: str = "train") -> dict:
    """Run `rounds` measured rounds (after a warm-up round in which the clients connect) and predict them."""
    from simfl.emulate.profile import check_clients_profile
    from simfl.emulate.rounds import flower_python

    emulable(sc, compute)
    check_clients_profile(sc, compute)  # real compute with a profile another host measured: refused
    flower_python()  # Flower installed: fail before building anything
    predicted = predict(sc, rounds)
    log = measure(predicted, plan_of(sc, predicted, compute))
    return result_of(sc, compute, compare(log, predicted, predicted.inputs.framing_factor))


def result_of(sc: Scenario, compute: str, comparison: dict) -> dict:
    """emulation.json: the comparison with what was emulated and how."""
    return {"scenario": sc.name, "compute": compute, "clients": sc.population, **comparison,
            "transport": sc.transport.model_dump() if sc.transport else None,
            "notes": ["the emulation adds no delay (no netem): predicted with every latency 0",
                      "clients " + ("trained real LoRA steps on one pinned core each" if compute == "train"
                                    else "slept the profile's step time x local steps"),
                      "round 0 (clients connecting) is not compared",
                      "wire bytes are the server's Ethernet frames both ways (TCP/IP, gRPC, Flower messages, acks) "
                      "while the round was open; model bytes are simfl's bits / 8 (x framing_factor)"]}
