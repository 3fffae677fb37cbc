"""Synchronous rounds over arrays: the same records as sync_rounds on SimPy, without a process per client.

When no shared link can bind (engine._contention_free: every transfer is latency + bits / cap) and
no client's availability ends, a synchronous round is a closed form. Each selected client i has

    t_d = start + (latency + down_bits / down_cap)        its download ends
    t_c = t_d + compute_s                                 its compute ends
    t_u = t_c + (latency + up_bits / up_cap)              its upload lands

computed with the same float operations, in the same order, as SimPy's timeouts
(`now + delay`), so the instants are the same to the bit. What the SimPy engine decides by
the order of its events is decided here by sorting the same events by the same key. SimPy
runs events by (time, priority, creation order), and in a round the creation order is:

1. at the round's start, in selection order, each client's dropout timer; then the
   deadline timer;
2. each job's events: a download timer made when the job starts (in selection order), a
   compute timer made when the download ends, an upload timer made when the compute ends.
   So among events at one instant, a job event made earlier comes first: uploads landing
   together run in the order of (t_c, t_d, selection position).

So at one instant dropouts come first, then the deadline, then job events, and a dropout
that falls exactly on the end of one of its own client's phases stops the client in that
phase. The round closes (round.closed) at the K-th upload, at the last stop, or at the
deadline; every event of that instant made before it still runs before the closed event
does: an upload landing in that instant after the K-th (or at the deadline) is cut with its
bits counted, and a phase ending in that instant has ended when its client is cut.

A round is eligible when that order is the whole story (`unsupported` says why not,
and the engine then runs SimPy): synchronous rounds, transfers contention-free, every
member always online, no per-round link draw, and every phase taking time (a phase of
0 s, or too short to move the clock at its instant, makes a timer in the same instant
whose place depends on more than the key above; a round that meets one at run time
is handed back to SimPy from the start, the streams rewound). Selection, per-round speed
draws, dropout draws and FLoRA stacked downloads use the same streams in the same order
as sync_rounds.SyncRounds; round and client records, energy, CO2 at each instant and every
counter are the same sums in the same order (tests/test_arrays.py compares them record
for record).
"""

from __future__ import annotations

import numpy as np

from simfl.costs import J_PER_KWH
from simfl.sim.availability import AlwaysSpec
from simfl.sim.inputs import SyncSpec
from simfl.sim.job import COMPLETED, DROPPED, LATE, STATUSES, SURPLUS
from simfl.sim.records import CLIENT_FIELDS, NAN, RoundRecord

_INF = float("inf")


class Unsupported(Exception):
    """A round the array kernel cannot reproduce exactly: the engine runs SimPy instead."""


def unsupported(engine) -> str | None:
    """Why the array kernel cannot run `engine`'s inputs (None: it can)."""
    inputs = engine.inputs
    if not isinstance(inputs.round_policy, SyncSpec):
        return "asynchronous aggregation"
    if not engine.contention_free:
        return "a shared link may bind: transfers are flows"
    if engine.availability is not None or not all(isinstance(g.availability, AlwaysSpec) for g in inputs.groups):
        return "availability models"
    if any(g.link_round is not None for g in inputs.groups):
        return "links drawn each round"
    if len(inputs.population) and int(inputs.population.steps.min()) <= 0:
        return "a member with no local steps (a 0 s compute)"
    if any(g.step_time_s <= 0 for g in inputs.groups):
        return "a 0 s step"
    return None


class ArrayRounds:
    """Every round of a synchronous run, as arrays; fills engine.records as SyncRounds would."""

    def __init__(self, engine):
        self.engine = engine
        inputs = self.inputs = engine.inputs
        self.policy = engine.policy  # its selection, speed sigmas and dropout probabilities
        groups = inputs.groups
        pop = inputs.population
        self.group = pop.group
        self.server_latency_s = engine.server_latency_s
        self.framing = inputs.framing_factor
        self.g_step_s = np.array([g.step_time_s for g in groups], dtype=float)
        self.g_bits = np.array([g.bits_per_transfer for g in groups], dtype=np.int64)
        self.g_bits_f = self.g_bits.astype(float)
        self.g_params = np.array([g.trainable_params for g in groups], dtype=np.int64)
        self.g_compute_w = np.array([g.compute_power_w for g in groups], dtype=float)
        self.g_idle_w = np.array([g.idle_power_w for g in groups], dtype=float)
        self.g_e_down = np.array([g.link.energy_per_bit_down_j for g in groups], dtype=float)
        self.g_e_up = np.array([g.link.energy_per_bit_up_j for g in groups], dtype=float)
        self.g_device = [g.device for g in groups]
        self.g_network = [g.link.name for g in groups]
        self.g_cell = [g.cell or "" for g in groups]
        # the slowest of each group's route resources at full capacity (JobPolicy._nominal_work_s)
        cap = engine.net.capacity_bps
        self.g_route_down = np.array([min(cap[r] for r in route[1]) for route in engine.routes])
        self.g_route_up = np.array([min(cap[r] for r in route[2]) for route in engine.routes])
        self.now = 0  # where the next round starts (SimPy's clock starts at the int 0, which records show)
        self.stack_bits: float | None = None  # FLoRA: the last aggregation's stack, once there is one
        self.stopped_because = ""

    # -- the run -----------------------------------------------------------------------

    def run(self) -> int:
        """Run rounds until the last, or until one this kernel cannot reproduce exactly; returns the index of
        the first round not run (inputs.rounds when all ran). Then `now`, `stack_bits` and the streams are
        where SimPy goes on from, and `stopped_because` says why."""
        eng, inputs = self.engine, self.inputs
        log = eng.records.clients
        policy, streams = self.policy, eng.streams
        rngs = (streams.selection, streams.speed, streams.dropout)  # the streams a round draws from
        k_round = inputs.clients_per_round
        deadline_s = inputs.deadline_s
        pending = []  # rounds' client columns not yet handed to the log
        pending_rows = 0
        for index in range(inputs.rounds):
            start = self.now
            states = [r.bit_generator.state for r in rngs]
            chosen = policy.select(inputs.population_size, inputs.clients_selected)
            try:
                cols, end, stack = self._round(index, start, chosen, k_round, deadline_s, self.stack_bits)
            except Unsupported as e:
                for r, state in zip(rngs, states):
                    r.bit_generator.state = state
                self.stopped_because = str(e)
                self._hand_over(pending)
                return index
            if inputs.stacked_download and stack is not None:
                self.stack_bits = stack
            self.now = end
            pending.append(cols)
            pending_rows += len(chosen)
            if pending_rows >= log.chunk_rows:
                self._hand_over(pending)
                pending, pending_rows = [], 0
            if eng.on_round is not None:
                eng.on_round(index)
        self._hand_over(pending)
        return inputs.rounds

    def _hand_over(self, pending: list[dict]) -> None:
        if not pending:
            return
        cols = {name: [v for c in pending for v in c[name]] for name in CLIENT_FIELDS} if len(pending) > 1 \
            else pending[0]
        counts = {}
        for c in pending:
            for s, n in c["_counts"].items():
                counts[s] = counts.get(s, 0) + n
        self.engine.records.clients.extend_columns(cols, counts)

    def _round(self, index: int, start: float, chosen: np.ndarray, k_round: int, deadline_s: float | None,
               stack_bits: float | None):
        inputs, policy, streams = self.inputs, self.policy, self.engine.streams
        pop = inputs.population
        n = len(chosen)
        g = self.group[chosen]
        framing = self.framing
        down_bps, up_bps, own_latency_s = inputs.links_of(chosen)
        latency_s = own_latency_s + self.server_latency_s
        step_s = self.g_step_s[g]
        if pop.speed is not None:
            step_s = step_s * pop.speed[chosen]
        if policy._speed_sigma is not None:  # one standard normal per selected client (streams.py)
            step_s = step_s * np.exp(policy._speed_sigma[g] * streams.speed.standard_normal(n))
        compute_s = pop.steps[chosen] * step_s
        up_payload = self.g_bits_f[g]
        down_payload = up_payload if stack_bits is None else np.full(n, float(stack_bits))
        down_wire = down_payload * framing
        up_wire = up_payload * framing
        # the instants of SimPy's timeouts: now + delay, delay computed first
        t_d = start + (latency_s + down_wire / down_bps)
        t_c = t_d + compute_s
        t_u = t_c + (latency_s + up_wire / up_bps)
        if not (np.all(t_d > start) and np.all(t_c > t_d) and np.all(t_u > t_c)):
            raise Unsupported("a phase too short to move the clock")
        deadline_at = _INF
        if deadline_s is not None:
            deadline_at = start + deadline_s
            if not deadline_at > start:
                raise Unsupported("a deadline too short to move the clock")
        # each client's own stop: its upload, or its dropout's failure point when that comes first (ties: the
        # dropout, whose timer was made at the round's start)
        stop_t = t_u
        dropped = None
        if policy._dropout:
            draws = streams.dropout.random((n, 2))  # (coin, failure fraction), whatever p is
            fails = draws[:, 0] < policy._dropout_probs[g]
            if fails.any():
                gr = self.group[chosen]
                nominal = ((latency_s + down_payload * framing / np.minimum(down_bps, self.g_route_down[gr]))
                           + compute_s) + (latency_s + up_payload * framing / np.minimum(up_bps, self.g_route_up[gr]))
                t_f = start + draws[:, 1] * nominal
                dropped = fails & (t_f <= t_u)
                if dropped.any():
                    stop_t = np.where(dropped, t_f, t_u)
                else:
                    dropped = None
        # the events in SimPy's order: (time, class, t_c, t_d, position); class 0 a dropout, 1 the deadline,
        # 2 an upload
        pos = np.arange(n)
        if dropped is None:
            cls = np.full(n, 2)
            order = np.lexsort((pos, t_d, t_c, stop_t))
        else:
            cls = np.where(dropped, 0, 2)
            key_c = np.where(dropped, 0.0, t_c)
            key_d = np.where(dropped, 0.0, t_d)
            order = np.lexsort((pos, key_d, key_c, cls, stop_t))
        ev_t = stop_t[order]
        uploads = np.cumsum(cls[order] == 2)
        k = min(k_round, n)
        # the first event at which the round closes: the K-th upload, or the n-th stop
        hit = np.flatnonzero(uploads >= k)
        close_j = int(hit[0]) if len(hit) else n - 1
        t_close = float(ev_t[close_j])
        cut = SURPLUS
        if deadline_at <= t_close:
            # the deadline runs after the dropouts of its instant and before its job events: `before` events
            # precede it; when that is not past the closing event, the deadline closes the round
            before = int(np.searchsorted(ev_t, deadline_at, side="left"))
            while before < n and ev_t[before] == deadline_at and cls[order[before]] == 0:
                before += 1
            if before <= close_j:
                close_j, t_close, cut = before - 1, deadline_at, LATE
        # stopped on their own: events up to close_j; an upload of the closing instant after it is cut
        # with its bits; every other client is cut at t_close in the phase it is in then
        own = np.zeros(n, dtype=bool)
        own[order[:close_j + 1]] = True
        return self._records(index, start, chosen, g, n, latency_s, down_bps, up_bps, down_wire, up_wire,
                             compute_s, t_d, t_c, t_u, stop_t, own, dropped, t_close, cut)

    def _records(self, index, start, chosen, g, n, latency_s, down_bps, up_bps, down_wire, up_wire, compute_s,
                 t_d, t_c, t_u, stop_t, own, dropped, t_close, cut):
        """The round's client columns (returned) and its round record and counters (appended)."""
        eng, inputs = self.engine, self.inputs
        records = eng.records
        framing = self.framing
        drop = own & dropped if dropped is not None else None
        completed = own if drop is None else own & ~drop
        # when each client stopped: its own event, or the close (an upload landing in the closing instant
        # after the close ran whole: its end is t_u == t_close either way)
        s = np.where(own, stop_t, t_close)
        landed = ~own & (t_u == t_close)
        done = completed | landed  # the whole upload arrived
        if drop is None:
            in_down = ~done & (s < t_d)
            in_comp = ~done & ~in_down & (s < t_c)
        else:  # a dropout on the end of its own phase stops the client in it; a cut at that instant does not
            in_down = ~done & np.where(drop, s <= t_d, s < t_d)
            in_comp = ~done & ~in_down & np.where(drop, s <= t_c, s < t_c)
        in_up = ~done & ~in_down & ~in_comp
        before_up = in_down | in_comp
        download_end = np.where(in_down, s, t_d)
        compute_start = np.where(in_down, NAN, t_d)
        compute_end = np.where(in_down, NAN, np.where(in_comp, s, t_c))
        upload_start = np.where(before_up, NAN, t_c)
        upload_end = np.where(before_up, NAN, np.where(in_up, s, t_u))
        end_s = np.where(done, t_u, s)
        comp_s = np.where(in_down, 0.0, np.where(in_comp, s - t_d, compute_s))
        bits_down = np.where(in_down, np.minimum(down_wire, np.maximum(0.0, (s - start) - latency_s) * down_bps),
                             down_wire) / framing
        bits_up = np.where(in_up, np.minimum(up_wire, np.maximum(0.0, (s - t_c) - latency_s) * up_bps) / framing,
                           np.where(done, up_wire / framing, 0.0))
        e_compute = self.g_compute_w[g] * comp_s
        idle_w = self.g_idle_w[g]
        e_idle = idle_w * ((end_s - start) - comp_s)
        e_net = bits_down * self.g_e_down[g] + bits_up * self.g_e_up[g]
        # statuses: completed, dropped, or the cut (late or surplus)
        code = np.full(n, STATUSES.index(cut))
        code[completed] = 0
        if drop is not None:
            code[drop] = STATUSES.index(DROPPED)
        counts = dict.fromkeys(STATUSES, 0)
        for c, m in zip(*np.unique(code, return_counts=True)):
            counts[STATUSES[int(c)]] = int(m)
        n_done = counts[COMPLETED]
        # aggregation: the completed uploads' groups' params at the server's rate
        params = int(self.g_params[g[completed]].sum()) if n_done else 0
        agg_s = params / inputs.server.aggregation_params_per_s
        end = t_close + agg_s
        # the round's sums, client by client in selection order (as record_round adds them)
        sums = np.cumsum(np.stack([bits_down, bits_up, e_net, e_compute, e_idle]), axis=1)[:, -1].tolist()
        sum_down, sum_up, sum_net, sum_compute, sum_idle = sums
        t_comp_s = float(comp_s[completed].max()) if n_done else 0.0
        duration_s = end - start
        t_comm_s = duration_s - t_comp_s
        gran = (t_comp_s / t_comm_s if t_comm_s > 0 else _INF) if n_done else NAN
        server = inputs.server
        wait_s = start - start  # the server waited for no one (0 in round 0, as SimPy's int clock gives)
        e_server = server.aggregation_power_w * agg_s + server.idle_power_w * ((duration_s + wait_s) - agg_s)
        carbon = inputs.carbon
        if carbon is None:
            co2 = NAN
        elif carbon.constant and not inputs.carbon_shifts_s:
            co2 = (sum_net + sum_compute + sum_idle + e_server) * carbon.flat_g_per_kwh / J_PER_KWH
        else:
            co2 = self._co2_g(start, end, agg_s, wait_s, g, latency_s, comp_s, compute_start, compute_end,
                              end_s, download_end, upload_start, upload_end, bits_down, bits_up)
        # counters over the run, added to client by client as record_round does
        group_list = g.tolist()
        by_group: dict[int, int] = {}
        for gi in group_list:
            by_group[gi] = by_group.get(gi, 0) + 1
        records.selected_by_group.update(by_group)
        if n_done:
            done_by_group: dict[int, int] = {}
            for gi in g[completed].tolist():
                done_by_group[gi] = done_by_group.get(gi, 0) + 1
            records.aggregated_by_group.update(done_by_group)
        moved = bits_down + bits_up
        if len(by_group) == 1:
            _accumulate(records.group_bits, group_list[0], moved)
        else:
            for gi in by_group:
                _accumulate(records.group_bits, gi, moved[g == gi])
        cells = [self.g_cell[gi] for gi in by_group if self.g_cell[gi]]
        if cells:
            cell_of = np.array(self.g_cell, dtype=object)[g]
            for cell in dict.fromkeys(cells):
                sel = cell_of == cell
                _accumulate(records.cell_bits, (cell, "down"), bits_down[sel])
                _accumulate(records.cell_bits, (cell, "up"), bits_up[sel])
        records.rounds.append(RoundRecord(
            index, start, end, n, n_done, counts["dropped"], counts["late"], counts["surplus"], counts["offline"],
            wait_s, agg_s, t_comp_s, t_comm_s, gran, sum_down, sum_up, sum_net, sum_compute, sum_idle, e_server,
            co2, 0, 0.0 if n_done else NAN, 0.0 if n_done else NAN))
        # the client columns, as Python values (the rows SimPy's jobs would have written)
        if len(by_group) == 1:
            gi = group_list[0]
            device, network, cell = [self.g_device[gi]] * n, [self.g_network[gi]] * n, [self.g_cell[gi]] * n
        else:
            device = [self.g_device[gi] for gi in group_list]
            network = [self.g_network[gi] for gi in group_list]
            cell = [self.g_cell[gi] for gi in group_list]
        status_names = [STATUSES[c] for c in code.tolist()] if n_done < n else [COMPLETED] * n
        cols = {
            "round": [index] * n, "client": chosen.tolist(), "device": device, "network": network,
            "group": group_list, "cell": cell, "status": status_names,
            "download_start_s": [start] * n, "download_end_s": download_end.tolist(),
            "compute_start_s": compute_start.tolist(), "compute_end_s": compute_end.tolist(),
            "upload_start_s": upload_start.tolist(), "upload_end_s": upload_end.tolist(), "end_s": end_s.tolist(),
            "compute_s": comp_s.tolist(), "bits_down": bits_down.tolist(), "bits_up": bits_up.tolist(),
            "energy_compute_j": e_compute.tolist(), "energy_idle_j": e_idle.tolist(),
            "energy_network_j": e_net.tolist(), "version_downloaded": [index] * n,
            "version_aggregated": np.where(completed, index + 1, -1).tolist(),
            "staleness": np.where(completed, 0.0, NAN).tolist(),
            "_counts": counts,
        }
        stack = float(int(self.g_bits[g[completed]].sum())) if n_done else None
        return cols, end, stack

    def _co2_g(self, start, end, agg_s, wait_s, g, latency_s, comp_s, compute_start, compute_end, end_s,
               download_end, upload_start, upload_end, bits_down, bits_up) -> float:
        """accounting.round_spans as arrays: the same joules over the same intervals, in the same order, priced
        by the carbon curve (and at each other start time asked for)."""
        inputs, records = self.inputs, self.engine.records
        carbon, server = inputs.carbon, inputs.server
        idle_w, compute_w = self.g_idle_w[g], self.g_compute_w[g]
        computed = comp_s > 0
        job = np.full(len(g), start)
        e = np.stack([np.where(computed, compute_w * comp_s, idle_w * (end_s - job)),
                      np.where(computed, idle_w * (compute_start - job), 0.0),
                      np.where(computed, idle_w * (end_s - compute_end), 0.0),
                      bits_down * self.g_e_down[g], bits_up * self.g_e_up[g]], axis=1)
        a = np.stack([np.where(computed, compute_start, job), np.where(computed, job, 0.0),
                      np.where(computed, compute_end, 0.0), np.minimum(job + latency_s, download_end),
                      np.minimum(upload_start + latency_s, upload_end)], axis=1)
        b = np.stack([np.where(computed, compute_end, end_s), np.where(computed, compute_start, 0.0),
                      np.where(computed, end_s, 0.0), download_end, upload_end], axis=1)
        keep = e > 0  # round_spans puts only positive joules
        agg_start = end - agg_s
        e_srv = [server.idle_power_w * (agg_start - (start - wait_s)), server.aggregation_power_w * agg_s]
        a_srv, b_srv = [start - wait_s, agg_start], [agg_start, end]
        srv = [i for i in range(2) if e_srv[i] > 0]
        e = np.concatenate([e[keep], [e_srv[i] for i in srv]])
        a = np.concatenate([a[keep], [a_srv[i] for i in srv]])
        b = np.concatenate([b[keep], [b_srv[i] for i in srv]])
        shifts = inputs.carbon_shifts_s
        if not records.co2_g_by_shift:
            records.co2_g_by_shift = [0.0] * len(shifts)
        for i, shift_s in enumerate(shifts):
            records.co2_g_by_shift[i] += carbon.grams(e, a, b, shift_s)
        return carbon.grams(e, a, b)


def _accumulate(counter, key, values: np.ndarray) -> None:
    """counter[key] += each value in turn (the same float sums as adding client by client)."""
    if not len(values):
        return
    if key in counter:
        values = np.concatenate([[counter[key]], values])
    counter[key] = float(np.cumsum(values)[-1])
