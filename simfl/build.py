"""Scenario -> engine inputs: look up step costs in profiles, links in network models, partition data."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np

from simfl.catalog import steps_for_samples, trainable_params, transfer_bits
from simfl.config.limits import INT32_MAX, MAX_SIM_TIME_S
from simfl.config.profiles import HardwareProfile, NetworkModel
from simfl.config.scenario import (AsyncFederation, FederationSpec, FleetGroup, Scenario, SpeedSelectionSpec, SpeedSpec,
                                   SyncFederation)
from simfl.errors import ScenarioError
from simfl.hardware.lookup import StepCost, step_cost
from simfl.lora_ranks import ranks_differ
from simfl.partition import dirichlet_counts
from simfl.pricing import check_currencies, price_ranges
from simfl.sim.availability import AlwaysSpec, DiurnalSpec, OnOffSpec, TraceSpec
from simfl.sim.carbon import CarbonCurve
from simfl.sim.inputs import AsyncSpec, GroupSpec, LinkSpec, Population, ServerSpec, SimInputs, SyncSpec
from simfl.sim.selection import SpeedSelection, UniformSelection
from simfl.sim.streams import Streams
from simfl.uncertainty import Z95, Draws
from simfl.sim.variation import Component, LinkMix, LinkSamples, Spread, draw_links
from simfl.training import TrainingConfig


def link_spec(net: NetworkModel) -> LinkSpec:
    return LinkSpec(net.name, net.downlink_bps, net.uplink_bps, net.latency_s,
                    net.energy_per_bit_down_j, net.energy_per_bit_up_j)


@dataclass(frozen=True)
class Built:
    inputs: SimInputs
    warnings: tuple[str, ...]
    estimated_inputs: tuple[dict, ...] = ()  # {field, input, reason}: what the run rests on that nobody measured
    start_hours: tuple[str, ...] = ()  # the start times of inputs.carbon_shifts_s, ISO 8601
    # the inputs replicates draw (simfl/uncertainty.py): (draw key, log-sd, what it is), each once
    uncertain: tuple[tuple[str, float, str], ...] = ()
    price_factors: tuple[tuple[str, float], ...] = ()  # (device, this replicate's multiplier of its ranged price)


def _estimates(field: str, profile: HardwareProfile, cost: StepCost | None, server: bool) -> list[dict]:
    """The inputs of one fleet group (or of the server) that are estimates, each with its reason."""
    out = []
    if cost is not None and cost.estimated_because:
        out.append({"field": field, "input": f"{profile.name} training step time and power, {cost.what}",
                    "reason": "; ".join(cost.estimated_because),
                    **({"log_sd": round(cost.log_sd, 6)} if cost.log_sd is not None else {})})
    if profile.idle_power_w is not None and (profile.idle_power_estimated or profile.estimated):
        out.append({"field": field, "input": f"{profile.name} idle power {profile.idle_power_w:g} W",
                    "reason": profile.idle_power_source or profile.method or "estimated"})
    agg = profile.aggregation
    if server and agg is not None and (agg.estimated or profile.estimated):
        power = f" at {agg.power_w:g} W" if agg.power_w else ""
        out.append({"field": field, "input": f"{profile.name} aggregation {agg.params_per_s:.4g} params/s{power}",
                    "reason": agg.source or profile.method or "estimated"})
    return out


def estimates_warning(estimated: tuple[dict, ...] | list[dict]) -> str | None:
    """One line naming every estimated input; None when the run rests on measurements only."""
    if not estimated:
        return None
    return (f"this run rests on {len(estimated)} estimated input(s), not measurements: "
            + "; ".join(e["input"] for e in estimated) + " (reasons in summary.json estimated_inputs)")


ROUNDS_KEY = "federation.rounds"  # the draw key of rounds-to-target (one per replicate, shared by every point)


def draw_key(device: str, config) -> str:
    """What replicates draw one error for: a device and how it trains, whatever the batch. Spelt the same in every
    process (a set's order depends on the process's hash seed: the LoRA targets are sorted)."""
    parts = [sorted(p) if isinstance(p, frozenset) else p for p in config.at_batch(1).key()]
    return f"{device} {parts}"


# Step costs worked out in this process, by (profile object, configuration): the hardware model costs about 0.6 ms
# a group, and a plan builds every replicate of every point (the same profile objects: data files are validated
# once, simfl/config/load.py). The profile is kept in the value, so its id is not reused while the entry lives.
# Bounded: the oldest goes first. A configuration that fails is never kept: its error comes back every time.
_COSTS: dict[tuple[int, TrainingConfig], tuple[HardwareProfile, StepCost]] = {}
_COSTS_MAX = 1024


def _step_cost(profile: HardwareProfile, config: TrainingConfig) -> StepCost:
    """step_cost(profile, config), once per profile object and configuration (a pure function of the two)."""
    key = (id(profile), config)
    hit = _COSTS.get(key)
    if hit is not None and hit[0] is profile:
        return hit[1]
    cost = step_cost(profile, config)
    if len(_COSTS) >= _COSTS_MAX:
        del _COSTS[next(iter(_COSTS))]
    _COSTS[key] = (profile, cost)
    return cost


def _fleet(scenario: Scenario, streams: Streams, params: list[int], bits: list[int], draws: Draws | None = None,
           uncertain: dict | None = None) -> tuple[list[GroupSpec], np.ndarray, list[dict], list[str]]:
    """Each fleet group's engine spec (its own update: params[gi], bits[gi]), every member's local steps a round,
    and the estimates and warnings the groups' profiles bring (each warning once)."""
    tr = scenario.training
    warnings: list[str] = []
    epochs = [g.local_epochs if g.local_epochs is not None else (None if g.local_steps is not None else tr.local_epochs)
              for g in scenario.fleet]
    samples = _partition(scenario, streams) if any(e is not None for e in epochs) else None
    groups: list[GroupSpec] = []
    estimated: list[dict] = []
    steps_parts = []
    first = 0
    for gi, group in enumerate(scenario.fleet):
        profile = scenario.hardware[group.device]
        config = scenario.training_config(gi)
        batch = config.batch_size
        try:
            cost = _step_cost(profile, config)
            if cost.log_sd is not None:
                key = draw_key(profile.name, config)
                if uncertain is not None:
                    uncertain.setdefault(key, (cost.log_sd, f"{profile.name} step time, {cost.what}"))
                if draws is not None:  # this replicate's draw of the prediction's error
                    cost = replace(cost, step_time_s=cost.step_time_s * draws.multiplier(key, cost.log_sd))
        except ScenarioError as e:
            field = f"fleet[{gi}].batch_size" if group.batch_size else f"fleet[{gi}].device"
            raise ScenarioError(e.message, field=field) from None
        estimated += _estimates(f"fleet[{gi}].device", profile, cost, server=False)
        note = _unmeasured_power(profile, cost)
        if note and note not in warnings:
            warnings.append(note)
        own = None if epochs[gi] is None else samples[first:first + group.count]
        steps_parts.append(_group_steps(scenario, gi, epochs[gi], own, batch))
        first += group.count
        groups.append(_group_spec(scenario, gi, profile, cost, params[gi], bits[gi]))
    return groups, np.concatenate(steps_parts), estimated, warnings


def _partition(scenario: Scenario, streams: Streams) -> np.ndarray:
    """The data partition: each member's samples, a Dirichlet draw from the partition stream."""
    part = scenario.federation.partition
    if part.samples < scenario.population:
        raise ScenarioError(f"{part.samples} samples cannot give each of {scenario.population} clients one",
                            field="federation.partition.samples")
    return dirichlet_counts(part.samples, scenario.population, part.dirichlet_alpha, streams.partition)


def _group_steps(scenario: Scenario, gi: int, epochs: int | None, samples: np.ndarray | None,
                 batch: int) -> np.ndarray:
    """The local steps a round of each member of group gi: its fixed steps, or epochs over its own samples."""
    group = scenario.fleet[gi]
    if epochs is None:
        return np.full(group.count, group.local_steps or scenario.training.local_steps, dtype=np.int32)
    own = np.asarray(samples, dtype=np.int64)
    _check_epoch_steps(scenario, gi, int(own.max()), batch, epochs)
    return steps_for_samples(own, batch, epochs).astype(np.int32)


def _group_spec(scenario: Scenario, gi: int, profile: HardwareProfile, cost: StepCost, params: int,
                bits: int) -> GroupSpec:
    """What the engine needs of fleet group gi: its device's step and power, its link and how they vary."""
    group = scenario.fleet[gi]
    net = scenario.networks[group.network]
    speed, link = _speed_of(group, profile), group.link
    return GroupSpec(
        profile.name, link_spec(net), cost.step_time_s, cost.power_w or 0.0, profile.idle_power_w or 0.0,
        group.cell,
        speed_round=Spread(speed.sigma) if speed.per == "round" and speed.distribution != "fixed" else None,
        link_round=_link_law(group, net) if link.per == "round" else None,
        dropout_prob=group.dropout_prob,
        availability=_availability_spec(group, gi, scenario),
        trainable_params=params, bits_per_transfer=bits)


def _unmeasured_power(profile: HardwareProfile, cost: StepCost) -> str | None:
    """The warning for a client device whose training or idle power nobody measured; None when both were."""
    unmeasured = [what for what, v in (("training power", cost.power_w), ("idle power", profile.idle_power_w))
                  if v is None]
    if not unmeasured:
        return None
    return (f"{profile.name} has no {' or '.join(unmeasured)} measurement: that energy of its clients "
            "is not counted (calibrate with a power backend to include it)")


def _server_spec(scenario: Scenario) -> tuple[ServerSpec, list[str]]:
    """The server's engine spec, and a warning for each of its powers nobody measured."""
    profile = scenario.hardware[scenario.server.device]
    if profile.aggregation is None:
        raise ScenarioError(f"profile {profile.name} has no aggregation entry, so it cannot be the server",
                            field="server.device")
    warnings = []
    if profile.idle_power_w is None:
        warnings.append(f"{profile.name} has no idle power measurement: server idle energy is not counted")
    if profile.aggregation.power_w is None:
        warnings.append(f"{profile.name} has no aggregation power measurement: aggregation energy is not counted")
    spec = ServerSpec(profile.name, link_spec(scenario.networks[scenario.server.network]),
                      profile.idle_power_w or 0.0, profile.aggregation.power_w or 0.0,
                      profile.aggregation.params_per_s)
    return spec, warnings


def _run_estimates(scenario: Scenario, fleet: list[dict]) -> list[dict]:
    """Every estimated input of the run (the fleet's, the server's, rounds from a convergence table), each once,
    under the first field that uses it."""
    fed = scenario.federation
    estimated = fleet + _estimates("server.device", scenario.hardware[scenario.server.device], None, server=True)
    if fed.rounds_from:
        estimated.append({"field": "federation.rounds", "input": f"{fed.rounds} rounds to the target",
                          "reason": fed.rounds_from})
    unique: dict[str, dict] = {}
    for e in estimated:
        unique.setdefault(e["input"], e)
    return list(unique.values())


def build(scenario: Scenario, streams: Streams | None = None, draws: Draws | None = None) -> Built:
    """Resolve a scenario into engine inputs. Draws the data partition, and the members' own speeds and
    links for the run, from their streams (of `streams`, or of the scenario's seed)."""
    streams = streams or Streams.from_seed(scenario.seed)
    check_currencies(scenario)
    m, fed = scenario.model, scenario.federation
    ranks = scenario.lora_ranks  # each group's adapter: its compute, memory and both transfers follow its rank
    params = [trainable_params(m.name, m.finetuning, r, list(m.lora_targets)) for r in ranks]
    bits = [transfer_bits(p, m.bits_per_param) for p in params]  # one update, each way
    uncertain: dict[str, tuple[float, str]] = {}
    groups, steps, estimated, warnings = _fleet(scenario, streams, params, bits, draws, uncertain)
    counts = [g.count for g in scenario.fleet]
    member_group = np.repeat(np.arange(len(groups), dtype=np.int32), counts)
    per_member = _member_draws(scenario, groups, streams)
    server, server_warnings = _server_spec(scenario)
    warnings += server_warnings
    estimated = _run_estimates(scenario, estimated)
    note = estimates_warning(estimated)
    if note:
        warnings.insert(0, note)
    carbon, shifts = carbon_of(scenario)
    tr = scenario.transport
    factors = []
    for device, (value, low, high) in price_ranges(scenario).items():  # a price its source gives as a range
        key = f"price of {device}"
        uncertain[key] = (math.log(high / low) / (2 * Z95), f"{device} price ({value:g}, {low:g} to {high:g})")
        if draws is not None:
            factors.append((device, draws.multiplier(key, uncertain[key][0])))
    rounds = fed.rounds
    if fed.rounds_log_sd:  # rounds to the target, from a convergence table: an estimated input like a step time
        uncertain[ROUNDS_KEY] = (fed.rounds_log_sd, f"rounds to the target ({fed.rounds} from the convergence table)")
        if draws is not None:
            rounds = max(1, round(fed.rounds * draws.multiplier(ROUNDS_KEY, fed.rounds_log_sd)))
    inputs = SimInputs(
        groups=tuple(groups), population=Population(member_group, steps, **per_member), server=server,
        clients_per_round=fed.clients_per_round, clients_selected=fed.clients_selected,
        rounds=rounds, dropout_prob=fed.dropout_prob,
        cells={k: (c.downlink_bps, c.uplink_bps) for k, c in scenario.cells.items()},
        carbon=carbon, carbon_shifts_s=tuple(s for _, s in shifts),
        **({"framing_factor": tr.framing_factor, "per_transfer_s": tr.added_s(max(bits))} if tr else {}),
        stacked_download=m.finetuning == "lora" and m.rank_rule == "stack" and ranks_differ(ranks),
        round_policy=round_policy_of(fed), selection=selection_of(fed),
    )
    _check_durations(scenario, inputs)
    return Built(inputs, tuple(warnings), tuple(estimated), tuple(h for h, _ in shifts),
                 tuple((k, sd, what) for k, (sd, what) in uncertain.items()), tuple(factors))


def round_policy_of(fed: FederationSpec) -> SyncSpec | AsyncSpec:
    """The engine's round policy for the federation's mode."""
    if isinstance(fed, SyncFederation):
        return SyncSpec(fed.deadline_s)
    if isinstance(fed, AsyncFederation):
        return AsyncSpec(fed.concurrency, buffer_size=fed.buffer_size, max_staleness=fed.max_staleness)
    return AsyncSpec(fed.concurrency, max_staleness=fed.max_staleness, window_s=fed.window_s,
                     min_updates=fed.min_updates)


def selection_of(fed: FederationSpec) -> UniformSelection | SpeedSelection:
    """The engine's selection policy for the scenario's `federation.selection`."""
    sel = fed.selection
    if isinstance(sel, SpeedSelectionSpec):
        target_s = sel.target_s if sel.target_s is not None else fed.deadline_s  # (validated: sync has one then)
        return SpeedSelection(target_s, sel.explore, sel.alpha)
    return UniformSelection()


def _check_durations(scenario: Scenario, inputs: SimInputs) -> None:
    """Each group's nominal client-round (download, the most local steps, upload) and an aggregation of K
    updates, from the inputs, must take a finite time the clock can hold: a latency, a step time or a rate
    such as 1e308 is refused here, naming the input, not an inf in the summary (or a clock stuck at inf)."""
    first = 0
    for gi, (group, g) in enumerate(zip(scenario.fleet, inputs.groups)):
        steps = int(inputs.population.steps[first:first + group.count].max())
        first += group.count
        bits = g.bits_per_transfer * inputs.framing_factor
        parts = {"compute": steps * g.step_time_s,
                 "download": bits / g.link.downlink_bps + g.link.latency_s + inputs.per_transfer_s,
                 "upload": bits / g.link.uplink_bps + g.link.latency_s + inputs.per_transfer_s}
        total = sum(parts.values())
        if not total <= MAX_SIM_TIME_S:
            worst = max(parts, key=parts.get)
            field = f"fleet[{gi}].device" if worst == "compute" else f"fleet[{gi}].network"
            raise ScenarioError(
                f"a client-round takes {total:.3g} s here ({steps:,} steps x {g.step_time_s:.3g} s, download "
                f"{parts['download']:.3g} s, upload {parts['upload']:.3g} s at {g.link.downlink_bps:.3g} / "
                f"{g.link.uplink_bps:.3g} bit/s, latency {g.link.latency_s:.3g} s); simfl's clock holds at most "
                f"{MAX_SIM_TIME_S:g} s", field=field)
    server = inputs.server
    bits = inputs.bits_per_transfer * inputs.framing_factor  # the largest group's
    k = max(inputs.clients_per_round, inputs.clients_selected)
    parts = {"aggregation": k * inputs.trainable_params / server.aggregation_params_per_s,
             "transfer": bits / min(server.link.downlink_bps, server.link.uplink_bps) + server.link.latency_s}
    if not sum(parts.values()) <= MAX_SIM_TIME_S:
        field = "server.device" if parts["aggregation"] >= parts["transfer"] else "server.network"
        raise ScenarioError(
            f"a round's server work takes {sum(parts.values()):.3g} s here (aggregating {k:,} updates of "
            f"{inputs.trainable_params:,} parameters at {server.aggregation_params_per_s:.3g} params/s; a transfer "
            f"over {server.link.name} {parts['transfer']:.3g} s); simfl's clock holds at most {MAX_SIM_TIME_S:g} s",
            field=field)


def _check_epoch_steps(scenario: Scenario, gi: int, most_samples: int, batch: int, epochs: int) -> None:
    """Local steps from epochs (epochs x ceil(samples / batch)), computed in Python ints first: in numpy the
    product would wrap (an int32 of 4294967297 epochs is 1) instead of failing."""
    steps = steps_for_samples(most_samples, batch, epochs)
    if steps > INT32_MAX:
        group = scenario.fleet[gi]
        field = f"fleet[{gi}].local_epochs" if group.local_epochs is not None else "training.local_epochs"
        raise ScenarioError(f"{epochs:,} epochs of up to {most_samples:,} samples at batch {batch} is {steps:,} "
                            f"local steps a round for a client of fleet[{gi}]; simfl holds at most {INT32_MAX:,} "
                            "(32 bits)", field=field)


def _speed_of(group: FleetGroup, profile: HardwareProfile) -> SpeedSpec:
    """The group's speed, or its device's measured spread when it gives none."""
    if group.speed is not None:
        return group.speed
    if profile.speed is not None:
        return SpeedSpec(distribution="lognormal", sigma=profile.speed.sigma, per=profile.speed.per)
    return SpeedSpec()


def _link_law(group: FleetGroup, net: NetworkModel) -> Spread | LinkMix | LinkSamples | None:
    v = group.link
    if v.distribution == "fixed":
        return None
    if v.distribution == "lognormal":
        return Spread(v.sigma)
    dist = net.distribution
    if dist.samples is not None:
        return LinkSamples(np.array(dist.samples, dtype=float))
    return LinkMix(tuple(Component(c.weight, tuple(c.log_mean), tuple(tuple(r) for r in c.log_cov))
                         for c in dist.operators))


def _member_draws(scenario: Scenario, groups: list[GroupSpec], streams: Streams) -> dict:
    """Per-member speed and link arrays for groups that vary per client: drawn once, group by group in
    fleet order, from the speed and links streams. Empty when no group varies per client."""
    n = scenario.population
    speed = down = up = latency = None
    first = 0
    for gi, group in enumerate(scenario.fleet):
        sl = slice(first, first + group.count)
        first += group.count
        sp = _speed_of(group, scenario.hardware[group.device])
        if sp.distribution != "fixed" and sp.per == "client":
            if speed is None:
                speed = np.ones(n)
            speed[sl] = Spread(sp.sigma).apply(streams.speed.standard_normal(group.count))
        law = _link_law(group, scenario.networks[group.network]) if group.link.per == "client" else None
        if law is not None:
            if down is None:
                down, up, latency = (np.array([getattr(g.link, a) for g in groups])[
                    np.repeat(np.arange(len(groups)), [g.count for g in scenario.fleet])]
                    for a in ("downlink_bps", "uplink_bps", "latency_s"))
            u, z = draw_links(streams.links, group.count)
            if isinstance(law, Spread):
                mult = law.apply(z[:, 0])
                down[sl], up[sl] = down[sl] * mult, up[sl] * mult
            else:
                down[sl], up[sl], latency[sl] = law.apply(u, z)
    out = {}
    if speed is not None:
        out["speed"] = speed
    if down is not None:
        out.update(downlink_bps=down, uplink_bps=up, latency_s=latency)
    return out


def _availability_spec(group: FleetGroup, gi: int, scenario: Scenario):
    a = group.availability
    if a.kind == "always":
        return AlwaysSpec()
    if a.kind == "trace":
        return TraceSpec(*scenario.data_files.trace(a.file, group.count, f"fleet[{gi}].availability.file"))
    if a.kind == "on_off":
        return OnOffSpec(a.mean_on_s, a.mean_off_s)
    start = scenario.start_time
    offset_h = a.utc_offset_h if a.utc_offset_h is not None else start.utcoffset().total_seconds() / 3600.0
    return DiurnalSpec(a.start_hour, a.end_hour, offset_h, start.timestamp(), a.jitter_h)


def carbon_of(scenario: Scenario) -> tuple[CarbonCurve, list[tuple[str, float]]]:
    """The grid intensity over the run, and the start hours to reprice it at: ("YYYY-MM-DDTHH:00+HH:MM", shift s)
    for each hour of start_time's day (in its own offset) that the carbon file covers. Flat, no hours,
    without a file."""
    acc = scenario.accounting
    if acc.carbon_intensity_file is None:
        return CarbonCurve.flat(acc.carbon_g_per_kwh), []
    start = scenario.start_time
    times, values = scenario.data_files.carbon(acc.carbon_intensity_file, start, "accounting.carbon_intensity_file")
    t0 = start.timestamp()
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = []
    for h in range(24):
        candidate = midnight + timedelta(hours=h)
        if candidate.timestamp() >= times[0]:
            hours.append((candidate.isoformat(), candidate.timestamp() - t0))
    return CarbonCurve(times, values, t0), hours
