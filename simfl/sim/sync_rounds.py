"""The synchronous K-of-N round policy: select, run the jobs, close at the K-th upload or the deadline,
aggregate, record."""

from __future__ import annotations

import numpy as np
import simpy

from simfl.costs import granularity, transfer_time_s
from simfl.sim.accounting import client_round_energy_j, round_spans, server_round_energy_j
from simfl.sim.carbon import J_PER_KWH
from simfl.sim.inputs import ClientSpec
from simfl.sim.job import COMPLETED, DROPPED, LATE, OFFLINE, STATUSES, SURPLUS, Work, client_job
from simfl.sim.records import NAN, RoundRecord
from simfl.sim.selection import UniformSelection
from simfl.sim.streams import Streams
from simfl.sim.variation import Spread, draw_links


class Round:
    """Closes (fires `closed`) at the K-th upload, when every client has stopped, or at the deadline.

    `cut` is the status of clients still working when it closes: surplus after the K-th
    upload, late at the deadline.
    """

    def __init__(self, env: simpy.Environment, k: int, selected: int):
        self.closed = env.event()
        self.k = k
        self.selected = selected
        self.uploads = 0
        self.stopped = 0
        self.cut = SURPLUS

    def client_stopped(self, uploaded: bool) -> None:
        self.uploads += uploaded
        self.stopped += 1
        if not self.closed.triggered and (self.uploads >= self.k or self.stopped >= self.selected):
            self.closed.succeed()

    def deadline(self, _ev: simpy.Event) -> None:
        if not self.closed.triggered:
            self.cut = LATE
            self.closed.succeed()


class SyncRounds:
    """Today's rounds: `rounds` of them, one after another, each K of `clients_selected`."""

    def __init__(self, engine, streams: Streams, selection=None):
        self.engine = engine
        self.streams = streams
        self.selection = selection or UniformSelection()
        groups, run_p = engine.inputs.groups, engine.inputs.dropout_prob
        self._dropout_probs = np.array([run_p if g.dropout_prob is None else g.dropout_prob for g in groups])
        self._dropout = bool(np.any(self._dropout_probs > 0))
        sigmas = np.array([g.speed_round.sigma if g.speed_round is not None else 0.0 for g in groups])
        self._speed_sigma = sigmas if any(g.speed_round is not None for g in groups) else None
        self._link_groups = [(gi, g.link_round) for gi, g in enumerate(groups) if g.link_round is not None]

    def run(self):
        """The main SimPy process."""
        eng = self.engine
        for index in range(eng.inputs.rounds):
            ran = yield from self._round(index)
            if not ran:
                eng.records.notes.append(
                    f"the run stopped after {index} of {eng.inputs.rounds} rounds: at t = {eng.env.now:g} s no "
                    "client is available and none ever will be again (see the availability models)")
                return
            if eng.on_round is not None:
                eng.on_round(index)

    def _nominal_work_s(self, spec: ClientSpec) -> float:
        """The client's round work alone on its path: where a dropout's failure point is drawn.

        Each transfer runs at the slowest of its own link, its cell and the server link
        (every shared resource on its route at full capacity, as if no other client used it).
        """
        eng = self.engine
        bits = eng.inputs.bits_per_transfer * eng.inputs.framing_factor
        server_latency_s, down_res, up_res, _, _ = eng.routes[spec.group]
        latency_s = spec.link.latency_s + server_latency_s
        cap = eng.net.capacity_bps
        down_bps = min(spec.link.downlink_bps, *(cap[r] for r in down_res))
        up_bps = min(spec.link.uplink_bps, *(cap[r] for r in up_res))
        return (transfer_time_s(bits, down_bps, latency_s) + spec.compute_s
                + transfer_time_s(bits, up_bps, latency_s))

    @staticmethod
    def _stop(w: Work, cause: str) -> None:
        """Stop a client still working (a dropout's failure point, or the end of its availability)."""
        if w.proc is not None and w.proc.is_alive and not w.status:
            w.proc.interrupt(cause)

    def _available(self):
        """The members online now, waiting for the next to come online when none is. Returns None when
        none ever will be again."""
        eng = self.engine
        avail, env = eng.availability, eng.env
        ids = avail.available_ids(env.now)
        while not len(ids):
            t_next = avail.next_start(env.now)
            if t_next == float("inf"):
                return None
            yield env.timeout(t_next - env.now)
            ids = avail.available_ids(env.now)
        return ids

    def _round(self, index: int):
        """One round; returns False when it could not start (no client will ever be available)."""
        eng = self.engine
        env, inputs = eng.env, eng.inputs
        ready_s = env.now
        if eng.availability is None:
            chosen = self.selection.select(self.streams.selection, inputs.population_size, inputs.clients_selected)
            until = None
        else:
            ids = yield from self._available()
            if ids is None:
                return False
            chosen = self.selection.select_from(self.streams.selection, ids, inputs.clients_selected)
            until = eng.availability.until(chosen, env.now)
        start_s = env.now
        rnd = Round(env, min(inputs.clients_per_round, len(chosen)), len(chosen))
        specs = self._clients(chosen)
        p = self._dropout_probs[inputs.population.group[chosen]] if self._dropout else None
        # (coin, failure fraction) for every selected client, drawn whatever p is (see streams.py)
        draws = self.streams.dropout.random((len(chosen), 2)) if p is not None else None
        works = []
        for i, spec in enumerate(specs):
            w = Work(spec)
            w.proc = env.process(client_job(env, eng.transfers, w, eng.routes[spec.group], rnd))
            if draws is not None and draws[i, 0] < p[i]:
                fail_after_s = float(draws[i, 1]) * self._nominal_work_s(spec)
                env.timeout(fail_after_s).callbacks.append(lambda _ev, w=w: self._stop(w, DROPPED))
            if until is not None and until[i] != float("inf"):
                env.timeout(float(until[i]) - start_s).callbacks.append(lambda _ev, w=w: self._stop(w, OFFLINE))
            works.append(w)
        if inputs.deadline_s is not None:
            env.timeout(inputs.deadline_s).callbacks.append(rnd.deadline)
        yield rnd.closed
        for w in works:
            if w.proc.is_alive and not w.status:
                w.proc.interrupt(rnd.cut)
        aggregation_s = rnd.uploads * inputs.trainable_params / inputs.server.aggregation_params_per_s
        # Always yield, even for 0 s: the interrupts above are urgent events and must be
        # handled (clients record where they stopped) before this round is written down.
        yield env.timeout(aggregation_s)
        self._record(index, start_s, env.now, aggregation_s, works, start_s - ready_s)
        return True

    def _clients(self, chosen: np.ndarray) -> list[ClientSpec]:
        """The selected members as working clients, with this round's speed and link draws (streams.py)."""
        inputs = self.engine.inputs
        if self._speed_sigma is None and not self._link_groups:  # nothing varies by round
            return [inputs.client(cid) for cid in chosen.tolist()]
        n = len(chosen)
        speed = links = None
        if self._speed_sigma is not None:
            speed = np.exp(self._speed_sigma[inputs.population.group[chosen]] * self.streams.speed.standard_normal(n))
        if self._link_groups:
            links = self._round_links(chosen)
        out = []
        for i, cid in enumerate(chosen.tolist()):
            link = None if links is None or not links[3][i] else (float(links[0][i]), float(links[1][i]),
                                                                  float(links[2][i]))
            out.append(inputs.client(cid, 1.0 if speed is None else float(speed[i]), link))
        return out

    def _round_links(self, chosen: np.ndarray):
        """(downlink, uplink, latency, drawn) per selected client: the draws of groups whose links vary by round."""
        inputs = self.engine.inputs
        u, z = draw_links(self.streams.links, len(chosen))
        group = inputs.population.group[chosen]
        down, up, lat = inputs.links_of(chosen)
        drawn = np.zeros(len(chosen), dtype=bool)
        for gi, law in self._link_groups:
            sel = group == gi
            if not sel.any():
                continue
            drawn |= sel
            if isinstance(law, Spread):
                m = law.apply(z[sel, 0])
                down[sel], up[sel] = down[sel] * m, up[sel] * m
            else:
                down[sel], up[sel], lat[sel] = law.apply(u[sel], z[sel])
        return down, up, lat, drawn

    def _record(self, index: int, start_s: float, end_s: float, aggregation_s: float, works: list[Work],
                wait_s: float) -> None:
        records = self.engine.records
        bits_down = bits_up = e_net_sum = e_compute_sum = e_idle_sum = 0.0
        counts = dict.fromkeys(STATUSES, 0)
        by_group: dict[int, int] = {}
        done_by_group: dict[int, int] = {}
        rows = []
        t_comp_s = 0.0  # the longest compute among the clients whose updates are aggregated
        for w in works:
            spec, status = w.spec, w.status
            e_compute, e_idle, e_net = client_round_energy_j(spec, w.compute_s, w.end_s - start_s,
                                                             w.bits_down, w.bits_up)
            rows.append((  # the fields of ClientRound, in order
                index, spec.client_id, spec.device, spec.link.name, spec.group, spec.cell or "", status, *w.t,
                w.end_s, w.compute_s, w.bits_down, w.bits_up, e_compute, e_idle, e_net,
            ))
            counts[status] += 1
            by_group[spec.group] = by_group.get(spec.group, 0) + 1
            if status == COMPLETED:
                t_comp_s = max(t_comp_s, w.compute_s)
                done_by_group[spec.group] = done_by_group.get(spec.group, 0) + 1
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
        records.aggregated_by_group.update(done_by_group)
        duration_s = end_s - start_s
        t_comm_s = duration_s - t_comp_s
        # G is undefined for a round that aggregated nothing: no fine-tuning time was used.
        g = granularity(t_comp_s, t_comm_s) if counts[COMPLETED] else NAN
        # The server is on while it waits for a client to come online, too.
        e_server = server_round_energy_j(self.engine.inputs.server, duration_s + wait_s, aggregation_s)
        co2_g = self._co2_g(works, start_s, end_s, aggregation_s, wait_s,
                            e_net_sum + e_compute_sum + e_idle_sum + e_server)
        records.rounds.append(RoundRecord(
            index, start_s, end_s, len(works), counts[COMPLETED], counts[DROPPED], counts[LATE], counts[SURPLUS],
            counts[OFFLINE], wait_s, aggregation_s, t_comp_s, t_comm_s, g,
            bits_down, bits_up, e_net_sum, e_compute_sum, e_idle_sum, e_server, co2_g,
        ))

    def _co2_g(self, works: list[Work], start_s: float, end_s: float, aggregation_s: float, wait_s: float,
               total_j: float) -> float:
        """The round's CO2: at a flat intensity from its joules; otherwise joule by joule at the intensity of
        the instant it was spent (accounting.round_spans), and at each other start time asked for."""
        inputs, records = self.engine.inputs, self.engine.records
        carbon = inputs.carbon
        if carbon is None:
            return NAN
        if carbon.constant and not inputs.carbon_shifts_s:
            return total_j * carbon.flat_g_per_kwh / J_PER_KWH
        spans = round_spans(works, start_s, end_s, aggregation_s, wait_s, inputs.server, self.engine.server_latency_s)
        shifts = inputs.carbon_shifts_s
        if not records.co2_g_by_shift:
            records.co2_g_by_shift = [0.0] * len(shifts)
        for i, shift_s in enumerate(shifts):
            records.co2_g_by_shift[i] += carbon.grams(*spans, shift_s)
        return carbon.grams(*spans)
