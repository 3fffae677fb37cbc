"""Scenario -> engine inputs: look up step costs in profiles, links in network models, partition data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simfl.catalog import steps_for_samples, trainable_params, transfer_bits
from simfl.config.profiles import HardwareProfile, NetworkModel
from simfl.config.scenario import Scenario
from simfl.costs import interpolate
from simfl.errors import ScenarioError
from simfl.fl.partition import dirichlet_counts
from simfl.sim.inputs import ClientSpec, LinkSpec, ServerSpec, SimInputs


@dataclass(frozen=True)
class StepCost:
    step_time_s: float
    power_w: float | None  # None: the profile has no power measurement for this configuration
    warning: str | None = None


def step_cost(profile: HardwareProfile, model: str, finetuning: str, method: str, seq_len: int,
              batch_size: int, perturbations: int | None = None) -> StepCost:
    """Step time and power at a batch size, from the profile's points for this configuration.

    Between measured batch sizes: linear interpolation. Beyond them: the nearest
    segment extended, with a warning. At or above a measured OOM: an error.
    """
    what = f"{model} {finetuning} {method} seq_len {seq_len}"
    if method == "forward_gradient":
        what += f" perturbations {perturbations}"
    points = [p for p in profile.training
              if (p.model, p.finetuning, p.method, p.seq_len) == (model, finetuning, method, seq_len)
              and (method != "forward_gradient" or p.perturbations == perturbations)]
    if not points:
        covered = sorted({f"{p.model} {p.finetuning} {p.method} seq_len {p.seq_len}"
                          + (f" perturbations {p.perturbations}" if p.perturbations else "") for p in profile.training})
        raise ScenarioError(f"profile {profile.name} has no training entry for {what}; it covers: "
                            + ("; ".join(covered) or "nothing"))
    oom = sorted(p.batch_size for p in points if p.oom)
    if oom and batch_size >= oom[0]:
        raise ScenarioError(f"{profile.name} cannot train {what} at batch {batch_size}: "
                            f"out of memory (measured OOM at batch {oom[0]})")
    ok = sorted((p for p in points if not p.oom), key=lambda p: p.batch_size)
    if not ok:
        raise ScenarioError(f"profile {profile.name} has only OOM entries for {what}")
    xs = [p.batch_size for p in ok]
    step_s, extrapolated = interpolate(xs, [p.step_time_s for p in ok], batch_size)
    power_w = None
    if all(p.power_w is not None for p in ok):
        power_w, _ = interpolate(xs, [p.power_w for p in ok], batch_size)
    warning = None
    if extrapolated:
        warning = (f"{profile.name}: batch {batch_size} for {what} is outside the measured "
                   f"batch sizes {xs}; step time and power are extrapolated")
    if step_s <= 0 or (power_w is not None and power_w <= 0):
        raise ScenarioError(f"{profile.name}: extrapolating {what} to batch {batch_size} gives a "
                            f"non-positive step time or power; measure closer to it")
    return StepCost(step_s, power_w, warning)


def link_spec(net: NetworkModel) -> LinkSpec:
    return LinkSpec(net.name, net.downlink_bps, net.uplink_bps, net.latency_s,
                    net.energy_per_bit_down_j, net.energy_per_bit_up_j)


@dataclass(frozen=True)
class Built:
    inputs: SimInputs
    warnings: tuple[str, ...]


def build(scenario: Scenario, rng: np.random.Generator) -> Built:
    """Resolve a scenario into engine inputs. Draws the data partition from `rng` first."""
    m, tr, fed = scenario.model, scenario.training, scenario.federation
    params = trainable_params(m.name, m.finetuning, m.lora_r, list(m.lora_targets))
    warnings: list[str] = []
    samples = None
    if tr.local_epochs is not None:
        part = fed.partition
        if part.samples < scenario.population:
            raise ScenarioError(f"{part.samples} samples cannot give each of {scenario.population} clients one",
                                field="federation.partition.samples")
        samples = dirichlet_counts(part.samples, scenario.population, part.dirichlet_alpha, rng)
    clients: list[ClientSpec] = []
    for gi, group in enumerate(scenario.fleet):
        profile = scenario.hardware[group.device]
        try:
            cost = step_cost(profile, m.name, m.finetuning, tr.method, tr.seq_len, tr.batch_size, tr.perturbations)
        except ScenarioError as e:
            raise ScenarioError(e.message, field=f"fleet[{gi}].device") from None
        if cost.warning and cost.warning not in warnings:
            warnings.append(cost.warning)
        unmeasured = [what for what, v in (("training power", cost.power_w), ("idle power", profile.idle_power_w))
                      if v is None]
        if unmeasured:
            note = (f"{profile.name} has no {' or '.join(unmeasured)} measurement: that energy of its clients "
                    "is not counted (calibrate with a power backend to include it)")
            if note not in warnings:
                warnings.append(note)
        link = link_spec(scenario.networks[group.network])
        for _ in range(group.count):
            cid = len(clients)
            steps = tr.local_steps if samples is None else steps_for_samples(
                int(samples[cid]), tr.batch_size, tr.local_epochs)
            clients.append(ClientSpec(cid, profile.name, link, steps, cost.step_time_s, cost.power_w or 0.0,
                                      profile.idle_power_w or 0.0, group.cell))
    server_profile = scenario.hardware[scenario.server.device]
    if server_profile.aggregation is None:
        raise ScenarioError(f"profile {server_profile.name} has no aggregation entry, so it cannot be the server",
                            field="server.device")
    if server_profile.idle_power_w is None:
        warnings.append(f"{server_profile.name} has no idle power measurement: server idle energy is not counted")
    server = ServerSpec(server_profile.name, link_spec(scenario.networks[scenario.server.network]),
                        server_profile.idle_power_w or 0.0, server_profile.aggregation.power_w,
                        server_profile.aggregation.params_per_s)
    inputs = SimInputs(
        clients=tuple(clients), server=server, trainable_params=params,
        bits_per_transfer=transfer_bits(params, m.bits_per_param),
        clients_per_round=fed.clients_per_round, clients_selected=fed.clients_selected,
        rounds=fed.rounds, deadline_s=fed.deadline_s, dropout_prob=fed.dropout_prob,
        cells={k: (c.downlink_bps, c.uplink_bps) for k, c in scenario.cells.items()},
    )
    return Built(inputs, tuple(warnings))
