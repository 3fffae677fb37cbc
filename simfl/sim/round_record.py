"""Writing down one aggregation: its client jobs' rows and the round's record, energy and CO2 included.

Shared by the round policies. A synchronous round's jobs all start with it and the completed ones are
aggregated; an asynchronous aggregation's row covers the jobs that ended since the previous aggregation
and the buffered updates it aggregated, which may have ended earlier.
"""

from __future__ import annotations

from simfl.costs import granularity
from simfl.sim.accounting import client_round_energy_j, round_spans, server_round_energy_j
from simfl.sim.job import STALE, STATUSES, Work
from simfl.sim.records import NAN, RoundRecord


def record_round(engine, index: int, start_s: float, end_s: float, aggregation_s: float, works: list[Work],
                 aggregated: list[Work], wait_s: float = 0.0, synchronous: bool = True) -> None:
    """Append round `index` (start_s to end_s, ending with an aggregation of aggregation_s seconds) to the
    engine's records: one client row per job in `works` (the jobs written down with it), and the round's
    record, whose update figures (completed, t_comp, staleness) are those of `aggregated`. Granularity G
    (t_comp / t_comm) is a synchronous round's: an asynchronous row's updates started before it, so its
    t_comp_s, t_comm_s and G are NaN."""
    records = engine.records
    bits_down = bits_up = e_net_sum = e_compute_sum = e_idle_sum = 0.0
    counts = dict.fromkeys(STATUSES, 0)
    by_group: dict[int, int] = {}
    rows = []
    for w in works:
        spec, status = w.spec, w.status
        # idle over the job's own span: from its start (the round's, in synchronous rounds) to its stop
        e_compute, e_idle, e_net = client_round_energy_j(spec, w.compute_s, w.end_s - w.download_start_s,
                                                         w.bits_down, w.bits_up)
        rows.append((  # the fields of ClientRound, in order
            index, spec.client_id, spec.device, spec.link.name, spec.group, spec.cell or "", status,
            w.download_start_s, w.download_end_s, w.compute_start_s, w.compute_end_s, w.upload_start_s,
            w.upload_end_s, w.end_s, w.compute_s, w.bits_down, w.bits_up, e_compute, e_idle, e_net,
            w.version, w.into, w.staleness,
        ))
        counts[status] += 1
        by_group[spec.group] = by_group.get(spec.group, 0) + 1
        records.group_bits[spec.group] += w.bits_down + w.bits_up
        if spec.cell:
            records.cell_bits[(spec.cell, "down")] += w.bits_down
            records.cell_bits[(spec.cell, "up")] += w.bits_up
        bits_down += w.bits_down
        bits_up += w.bits_up
        e_net_sum += e_net
        e_compute_sum += e_compute
        e_idle_sum += e_idle
    records.clients.extend(rows, counts)
    records.selected_by_group.update(by_group)
    done_by_group: dict[int, int] = {}
    for w in aggregated:
        done_by_group[w.spec.group] = done_by_group.get(w.spec.group, 0) + 1
    records.aggregated_by_group.update(done_by_group)
    # the longest compute among the updates aggregated
    t_comp_s = max((w.compute_s for w in aggregated), default=0.0) if synchronous else NAN
    duration_s = end_s - start_s
    t_comm_s = duration_s - t_comp_s
    # G is undefined for a round that aggregated nothing: no fine-tuning time was used.
    g = granularity(t_comp_s, t_comm_s) if aggregated and synchronous else NAN
    staleness = [w.staleness for w in aggregated]
    # The server is on while it waits for a client to come online, too.
    e_server = server_round_energy_j(engine.inputs.server, duration_s + wait_s, aggregation_s)
    co2_g = _co2_g(engine, works, start_s, end_s, aggregation_s, wait_s,
                   e_net_sum + e_compute_sum + e_idle_sum + e_server)
    records.rounds.append(RoundRecord(
        index, start_s, end_s, len(works), len(aggregated), counts["dropped"], counts["late"], counts["surplus"],
        counts["offline"], wait_s, aggregation_s, t_comp_s, t_comm_s, g,
        bits_down, bits_up, e_net_sum, e_compute_sum, e_idle_sum, e_server, co2_g, counts[STALE],
        sum(staleness) / len(staleness) if staleness else NAN, max(staleness, default=NAN),
    ))


def _co2_g(engine, works: list[Work], start_s: float, end_s: float, aggregation_s: float, wait_s: float,
           total_j: float) -> float:
    """The round's CO2: at a flat intensity from its joules; otherwise joule by joule at the intensity of
    the instant it was spent (accounting.round_spans), and at each other start time asked for."""
    inputs, records = engine.inputs, engine.records
    carbon = inputs.carbon
    if carbon is None:
        return NAN
    if carbon.constant and not inputs.carbon_shifts_s:
        return carbon.flat_grams(total_j)
    spans = round_spans(works, start_s, end_s, aggregation_s, wait_s, inputs.server, engine.server_latency_s)
    shifts = inputs.carbon_shifts_s
    if not records.co2_g_by_shift:
        records.co2_g_by_shift = [0.0] * len(shifts)
    for i, shift_s in enumerate(shifts):
        records.co2_g_by_shift[i] += carbon.grams(*spans, shift_s)
    return carbon.grams(*spans)
