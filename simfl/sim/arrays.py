"""Synchronous rounds over arrays: the same records as sync_rounds on SimPy, without a process per client.

When no shared link can bind (engine._contention_free: every transfer is latency + bits / cap), a
synchronous round is a closed form. Each selected client i has

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

When the server link or a cell may bind, each direction's flows are shared max-min, round by round,
over arrays (shared_link.share: a round's flows are all known when it starts, and all stopped when it
closes). The instants then come from the sharing, not from `now + delay`, so those records equal
SimPy's up to float residue (instants within clock.DONE_S, the resolution at which both judge a flow
done; statuses and counts the same but where two events fall within residue of each other, which
the two clocks may order either way), not to the bit. Two orders differ from rounds without sharing:
at the deadline's instant a flow's last bit is an event of its link's timer, and its client resumes
one event later, after the close, so a download ending there is cut in its download (_phases); and
with cells, SimPy's general flow network ends the flows of one instant in the order they joined the
link, not the order their uploads were started (_round's sort).

A run is eligible when that order is the whole story (`unsupported` says why not, and the
engine then runs SimPy): synchronous rounds, no per-round link draw, every member with local
steps. Availability models are asked what SimPy asks them, at the same
instants (who is online at a round's start, when the next comes online while none is, when each
selected client's interval ends); the end of a client's interval is a timer made at the round's
start, after its dropout's, so it stops the client as a dropout does, with status offline. A phase too short to move the
clock at its instant (a timer in the same instant, whose place depends on more than the key
above) is found at run time: SimPy runs the rest of the run from that round's start, the
streams rewound to it.

Rounds in which nothing but the clock carries over (no FLoRA stack, CO2 at a flat intensity or
none, one aggregation time per update, no link that may bind) run in blocks (`_block`): every
draw and duration of the
block as (rounds, clients) arrays, a short loop for the starts, then every record from arrays.
The others run one round at a time (`_round`). Selection, per-round speed draws and dropout
draws use the same streams in the same order as sync_rounds.SyncRounds (a block draws a round's
numbers after the previous round's, as one call); round and client records, energy, CO2 at each
instant and every counter are the same sums in the same order (tests/test_arrays.py compares
them record for record).
"""

from __future__ import annotations

import numpy as np

from simfl.sim.inputs import SyncSpec
from simfl.sim.job import COMPLETED, DROPPED, LATE, OFFLINE, STATUSES, SURPLUS
from simfl.sim.records import CLIENT_FIELDS, NAN, RoundRecord
from simfl.sim.shared_link import share

_INF = float("inf")
# Rounds run as one block of arrays hold at most this many client-rounds, and at most a chunk of the log's.
BLOCK_ROWS = 65_536


class Unsupported(Exception):
    """A round the array kernel cannot reproduce exactly: the engine runs SimPy instead."""


def unsupported(engine) -> str | None:
    """Why the array kernel cannot run `engine`'s inputs (None: it can)."""
    inputs = engine.inputs
    if not isinstance(inputs.round_policy, SyncSpec):
        return "asynchronous aggregation"
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
        # A server link or cells that may bind: each direction's flows are shared max-min, round by round
        # (shared_link.share); otherwise every transfer is latency + bits / cap.
        self.shared = not engine.contention_free
        self.cap_down, self.cap_up = cap[("server", "down")], cap[("server", "up")]
        # cells under the server link: each group's cell (an index; -1: none) and each cell's capacity
        cell_names = list(inputs.cells)
        self.g_cell_index = np.array([cell_names.index(g.cell) if g.cell else -1 for g in groups], dtype=np.int64)
        self.cell_down = np.array([cap[("cell-down", c)] for c in cell_names], dtype=float)
        self.cell_up = np.array([cap[("cell-up", c)] for c in cell_names], dtype=float)
        self.any_cell = bool(np.any(self.g_cell_index >= 0))
        # Many rounds at once (_block) when nothing carries from one round to the next but the clock: every
        # member always online, no FLoRA stack, CO2 at a flat intensity (or none), and every group's update
        # aggregating in the same time.
        carbon = inputs.carbon
        self.batch = (not self.shared and engine.availability is None and not inputs.stacked_download
                      and len({g.trainable_params for g in groups}) == 1
                      and (carbon is None or (carbon.constant and not inputs.carbon_shifts_s)))
        self.now = 0  # where the next round starts (SimPy's clock starts at the int 0, which records show)
        self.stack_bits: float | None = None  # FLoRA: the last aggregation's stack, once there is one
        self.stopped_because = ""
        self.rounds_in_blocks = 0  # (tests check that a run fit for blocks ran in them)

    # -- the run -----------------------------------------------------------------------

    def run(self) -> int:
        """Run rounds until the last, or until one this kernel cannot reproduce exactly; returns the index of
        the first round not run (inputs.rounds when all ran). Then `now`, `stack_bits` and the streams are
        where SimPy goes on from, and `stopped_because` says why."""
        rounds = self.inputs.rounds
        # a block holds at most a chunk of the log's rows (or BLOCK_ROWS): memory stays flat as rounds go
        per_block = max(1, min(BLOCK_ROWS, self.engine.records.clients.chunk_rows) // self.inputs.clients_selected)
        index = 0
        while index < rounds:
            last = min(rounds, index + per_block)
            if self.batch and self._block(index, last):
                self.rounds_in_blocks += last - index
            else:
                stopped = self._round_by_round(index, last)
                if stopped < last or stopped == rounds:  # handed to SimPy, or ended (no client ever again)
                    return stopped
            index = last
        return rounds

    def _round_by_round(self, first: int, last: int) -> int:
        """Rounds first..last-1 one at a time; returns the index of the first not run (last when all ran), or
        inputs.rounds when the run stopped early (no client will ever be online again: a note says so)."""
        eng, inputs = self.engine, self.inputs
        log = eng.records.clients
        policy, streams = self.policy, eng.streams
        rngs = (streams.selection, streams.speed, streams.dropout)  # the streams a round draws from
        k_round = inputs.clients_per_round
        deadline_s = inputs.deadline_s
        pending = []  # rounds' client columns not yet handed to the log
        pending_rows = 0
        avail = eng.availability
        for index in range(first, last):
            ready = start = self.now
            states = [r.bit_generator.state for r in rngs]
            until = None
            if avail is None:
                chosen = policy.select(inputs.population_size, inputs.clients_selected)
            else:  # JobPolicy._available: the members online now, waiting for the next to come online if none is
                ids = avail.available_ids(start)
                while not len(ids):
                    t_next = avail.next_start(start)
                    if t_next == _INF:
                        eng.records.notes.append(
                            f"the run stopped after {index} of {inputs.rounds} rounds: at t = {start:g} s no "
                            "client is available and none ever will be again (see the availability models)")
                        self._hand_over(pending)
                        return inputs.rounds
                    start = start + (t_next - start)  # SimPy's now + delay
                    ids = avail.available_ids(start)
                chosen = policy.select(ids, inputs.clients_selected)
                until = avail.until(chosen, start)
            try:
                cols, end, stack = self._round(index, start, chosen, k_round, deadline_s, self.stack_bits, ready,
                                               until)
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
        return last

    def _block(self, first: int, last: int) -> bool:
        """Rounds first..last-1 at once: every draw and every duration as (rounds, clients) arrays, then one short
        loop for the rounds' starts (each starts when the previous one's aggregation ends), then every record
        from arrays. Returns False, with nothing written and the streams as they were, when a round needs the
        round-by-round path (a phase too short to move the clock, or a close the loop and the records disagree
        on, which the checks below would catch)."""
        eng, inputs, policy = self.engine, self.inputs, self.policy
        streams = eng.streams
        rngs = (streams.selection, streams.speed, streams.dropout)
        states = [r.bit_generator.state for r in rngs]
        pop = inputs.population
        b_n, n = last - first, inputs.clients_selected
        k = min(inputs.clients_per_round, n)
        chosen = np.stack([policy.select(inputs.population_size, n) for _ in range(b_n)]) if b_n > 1 else \
            policy.select(inputs.population_size, n)[None, :]
        flat = chosen.ravel()
        g = self.group[flat]
        down_bps, up_bps, own_latency_s = inputs.links_of(flat)
        latency_s = own_latency_s + self.server_latency_s
        step_s = self.g_step_s[g]
        if pop.speed is not None:
            step_s = step_s * pop.speed[flat]
        if policy._speed_sigma is not None:  # the same numbers as one standard_normal(n) per round
            step_s = step_s * np.exp(policy._speed_sigma[g] * streams.speed.standard_normal(b_n * n))
        compute_s = pop.steps[flat] * step_s
        payload = self.g_bits_f[g]
        framing = self.framing
        down_wire = payload * framing
        up_wire = down_wire
        d_s = (latency_s + down_wire / down_bps).reshape(b_n, n)
        c_s = compute_s.reshape(b_n, n)
        u_s = (latency_s + up_wire / up_bps).reshape(b_n, n)
        fails = f_s = None
        if policy._dropout:  # the same numbers as one random((n, 2)) per round
            draws = streams.dropout.random((b_n * n, 2))
            fails = (draws[:, 0] < policy._dropout_probs[g]).reshape(b_n, n)
            nominal = ((latency_s + payload * framing / np.minimum(down_bps, self.g_route_down[g])) + compute_s) \
                + (latency_s + payload * framing / np.minimum(up_bps, self.g_route_up[g]))
            f_s = (draws[:, 1] * nominal).reshape(b_n, n)
        # the starts, one round after another: when each closes (the K-th upload, the last stop, or the
        # deadline) and how many uploads it aggregates
        deadline_s = inputs.deadline_s
        per_update = int(self.g_params[0])
        rate = inputs.server.aggregation_params_per_s
        starts, closes, ends, aggs, dones, kinds = [], [], [], [], [], []
        start = self.now
        for b in range(b_n):
            t_u = ((start + d_s[b]) + c_s[b]) + u_s[b]  # t_d, t_c, t_u as SimPy's clock adds them
            last_stop = None
            ups = t_u
            if fails is not None and fails[b].any():
                t_f = start + f_s[b]
                dropper = fails[b] & (t_f <= t_u)
                if dropper.any():
                    ups = t_u[~dropper]
                    last_stop = float(np.where(dropper, t_f, t_u).max())
            n_up = len(ups)
            if n_up >= k:  # the K-th upload closes it (ties among uploads do not move the instant)
                close = float(ups.max()) if k == n_up else float(np.partition(ups, k - 1)[k - 1])
                kind, done = 0, k
            else:  # the last client to stop closes it
                close = last_stop if last_stop is not None else float(t_u.max())
                kind, done = 1, n_up
            if deadline_s is not None:
                at = start + deadline_s
                if not at > start:
                    return self._restore(rngs, states)
                if at <= close:  # at its own instant the deadline runs before any upload
                    close, kind, done = at, 2, int(np.count_nonzero(ups < at))
            agg_s = (done * per_update) / rate
            starts.append(start)
            closes.append(close)
            aggs.append(agg_s)
            dones.append(done)
            kinds.append(kind)
            start = close + agg_s
            ends.append(start)
        # every client of every round, as arrays
        s_col = np.array(starts, dtype=float)[:, None]
        t_close = np.array(closes)[:, None]
        t_d = s_col + d_s
        t_c = t_d + c_s
        t_u = t_c + u_s
        if not (np.all(t_d > s_col) and np.all(t_c > t_d) and np.all(t_u > t_c)):
            return self._restore(rngs, states)  # a phase too short to move the clock: round by round
        kinds_a = np.array(kinds)
        if fails is not None:
            t_f = s_col + f_s
            dropper = fails & (t_f <= t_u)
            uploader = ~dropper
            stop_t = np.where(dropper, t_f, t_u)
        else:
            dropper, uploader, stop_t = None, np.ones((b_n, n), dtype=bool), t_u
        completed = uploader & (t_u < t_close)
        tie = uploader & (t_u == t_close)
        completed |= tie & (kinds_a == 1)[:, None]  # closed by the last stop: every upload is its own
        tied = np.flatnonzero((tie & (kinds_a == 0)[:, None]).ravel())
        if len(tied):  # closed by the K-th upload: of the uploads in its instant, the first ones in SimPy's order
            rows = tied // n
            tc, td = t_c.ravel()[tied], t_d.ravel()[tied]
            same_row = rows[1:] == rows[:-1]
            in_order = (tc[1:] > tc[:-1]) | ((tc[1:] == tc[:-1]) & (td[1:] >= td[:-1]))
            if not np.all(in_order | ~same_row):  # (identical clients tie in position order already)
                order = np.lexsort((td, tc, rows))  # stable: then by position
                tied, rows = tied[order], rows[order]
                same_row = rows[1:] == rows[:-1]
            row_first = np.concatenate([[0], np.flatnonzero(~same_row) + 1])
            rank = np.arange(len(tied)) - np.repeat(row_first, np.diff(np.append(row_first, len(tied))))
            need = k - np.count_nonzero(completed, axis=1)
            completed.ravel()[tied[rank < need[rows]]] = True
        n_done = np.count_nonzero(completed, axis=1)
        if n_done.tolist() != dones:
            return self._restore(rngs, states)  # not expected: the loop and the records disagree
        if dropper is not None:
            drop = dropper & (t_f <= t_close)
            own = completed | drop
        else:
            drop, own = None, completed
        (download_end, compute_start, compute_end, upload_start, upload_end, end_s, comp_s, bits_down,
         bits_up) = _phases(s_col, t_d, t_c, t_u, stop_t, own, drop, completed, t_close, latency_s.reshape(b_n, n),
                            down_bps.reshape(b_n, n), up_bps.reshape(b_n, n), down_wire.reshape(b_n, n),
                            up_wire.reshape(b_n, n), c_s, framing)
        g2 = g.reshape(b_n, n)
        e_compute = self.g_compute_w[g2] * comp_s
        e_idle = self.g_idle_w[g2] * ((end_s - s_col) - comp_s)
        e_net = bits_down * self.g_e_down[g2] + bits_up * self.g_e_up[g2]
        # statuses: completed (0), dropped, or the round's cut (late if the deadline closed it, else surplus)
        code = np.where(kinds_a == 2, STATUSES.index(LATE), STATUSES.index(SURPLUS))[:, None].repeat(n, axis=1)
        code[completed] = 0
        if drop is not None:
            code[drop] = STATUSES.index(DROPPED)
        # the rounds' sums, client by client in selection order (as record_round adds them)
        sums = np.cumsum(np.stack([bits_down, bits_up, e_net, e_compute, e_idle]), axis=2)[:, :, -1].tolist()
        t_comp = np.where(completed, comp_s, -_INF).max(axis=1).tolist()
        status_counts = [np.count_nonzero(code == i, axis=1).tolist() for i in range(4)]
        records = eng.records
        server, carbon = inputs.server, inputs.carbon
        for b in range(b_n):
            index, start, end, agg_s, done = first + b, starts[b], ends[b], aggs[b], dones[b]
            sum_down, sum_up, sum_net, sum_compute, sum_idle = (sums[i][b] for i in range(5))
            t_comp_s = t_comp[b] if done else 0.0
            duration_s = end - start
            t_comm_s = duration_s - t_comp_s
            gran = (t_comp_s / t_comm_s if t_comm_s > 0 else _INF) if done else NAN
            wait_s = start - start
            e_server = server.aggregation_power_w * agg_s + server.idle_power_w * ((duration_s + wait_s) - agg_s)
            if carbon is None:
                co2 = NAN
            else:
                co2 = carbon.flat_grams(sum_net + sum_compute + sum_idle + e_server)
            records.rounds.append(RoundRecord(
                index, start, end, n, done, status_counts[1][b], status_counts[2][b], status_counts[3][b], 0,
                wait_s, agg_s, t_comp_s, t_comm_s, gran, sum_down, sum_up, sum_net, sum_compute, sum_idle,
                e_server, co2, 0, 0.0 if done else NAN, 0.0 if done else NAN))
        # counters over the run, their keys in the order clients first met them
        moved = (bits_down + bits_up).ravel()
        _count(records.selected_by_group, g)
        _count(records.aggregated_by_group, g[completed.ravel()])
        groups_met = _first_met(g)
        if len(groups_met) == 1:
            _accumulate(records.group_bits, groups_met[0], moved)
        else:
            for gi in groups_met:
                _accumulate(records.group_bits, gi, moved[g == gi])
        if any(self.g_cell[gi] for gi in groups_met):
            cell_of = np.array(self.g_cell, dtype=object)[g]
            flat_down, flat_up = bits_down.ravel(), bits_up.ravel()
            for cell in dict.fromkeys(self.g_cell[gi] for gi in groups_met if self.g_cell[gi]):
                sel = cell_of == cell
                _accumulate(records.cell_bits, (cell, "down"), flat_down[sel])
                _accumulate(records.cell_bits, (cell, "up"), flat_up[sel])
        # the client columns, as Python values
        rows = b_n * n
        if len(groups_met) == 1:
            gi = groups_met[0]
            device, network, cell = [self.g_device[gi]] * rows, [self.g_network[gi]] * rows, [self.g_cell[gi]] * rows
            group_col = np.full(rows, gi, dtype=np.int64)
        else:
            group_col = g.astype(np.int64)
            device = np.array(self.g_device, dtype=object)[g].tolist()
            network = np.array(self.g_network, dtype=object)[g].tolist()
            cell = np.array(self.g_cell, dtype=object)[g].tolist()
        index_col = np.repeat(np.arange(first, last, dtype=np.int64), n)
        # (a list: SimPy's clock is the int 0 before anything happened, which round 0's rows show)
        download_start = [x for x in starts for _ in range(n)]
        flat_code = code.ravel()
        counts = dict.fromkeys(STATUSES, 0)
        for i, c in enumerate(np.bincount(flat_code, minlength=4).tolist()):
            counts[STATUSES[i]] += c
        completed_flat = completed.ravel()
        status = [COMPLETED] * rows if counts[COMPLETED] == rows else np.array(STATUSES, dtype=object)[flat_code].tolist()
        # numeric columns stay arrays (int64, float64): the log and its readers take them as they are
        cols = {
            "round": index_col, "client": flat.astype(np.int64), "device": device, "network": network,
            "group": group_col, "cell": cell, "status": status,
            "download_start_s": download_start, "download_end_s": download_end.ravel(),
            "compute_start_s": compute_start.ravel(), "compute_end_s": compute_end.ravel(),
            "upload_start_s": upload_start.ravel(), "upload_end_s": upload_end.ravel(),
            "end_s": end_s.ravel(), "compute_s": comp_s.ravel(),
            "bits_down": bits_down.ravel(), "bits_up": bits_up.ravel(),
            "energy_compute_j": e_compute.ravel(), "energy_idle_j": e_idle.ravel(),
            "energy_network_j": e_net.ravel(), "version_downloaded": index_col,
            "version_aggregated": np.where(completed_flat, index_col + 1, -1),
            "staleness": np.where(completed_flat, 0.0, NAN),
        }
        records.clients.extend_columns(cols, counts)
        self.now = ends[-1]
        if eng.on_round is not None:
            for index in range(first, last):
                eng.on_round(index)
        return True

    @staticmethod
    def _restore(rngs, states) -> bool:
        for r, state in zip(rngs, states):
            r.bit_generator.state = state
        return False

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
               stack_bits: float | None, ready: float, until: np.ndarray | None):
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
        deadline_at = _INF
        if deadline_s is not None:
            deadline_at = start + deadline_s
            if not deadline_at > start:
                raise Unsupported("a deadline too short to move the clock")
        # each client's timers made at the round's start: its dropout's failure point and the end of its
        # availability; the earlier one (the dropout on a tie: its timer was made first) stops it if it comes
        # no later than its upload (its timer was made before the upload's)
        stop0 = np.full(n, _INF)
        offline = None
        if policy._dropout:
            draws = streams.dropout.random((n, 2))  # (coin, failure fraction), whatever p is
            fails = draws[:, 0] < policy._dropout_probs[g]
            if fails.any():
                gr = self.group[chosen]
                nominal = ((latency_s + down_payload * framing / np.minimum(down_bps, self.g_route_down[gr]))
                           + compute_s) + (latency_s + up_payload * framing / np.minimum(up_bps, self.g_route_up[gr]))
                stop0 = np.where(fails, start + draws[:, 1] * nominal, _INF)
        if until is not None:
            ends = until != _INF
            if ends.any():
                t_off = np.where(ends, start + (np.where(ends, until, 0.0) - start), _INF)
                offline = t_off < stop0
                stop0 = np.where(offline, t_off, stop0)
        if self.shared:  # each direction shared max-min on the server link; inf: the client stopped first
            cells = self.g_cell_index[g] if self.any_cell else None
            t_d = self._share_down(start + latency_s, down_wire, down_bps, stop0, cells)[0]
            t_c = t_d + compute_s
            t_u = self._share_up(t_c + latency_s, up_wire, up_bps, stop0, cells)[0]
            d_ok, u_ok = np.isfinite(t_d), np.isfinite(t_u)
            if not (np.all(t_d[d_ok] > start) and np.all(t_c[d_ok] > t_d[d_ok]) and np.all(t_u[u_ok] > t_c[u_ok])):
                raise Unsupported("a phase too short to move the clock")
        else:  # the instants of SimPy's timeouts: now + delay, delay computed first
            t_d = start + (latency_s + down_wire / down_bps)
            t_c = t_d + compute_s
            t_u = t_c + (latency_s + up_wire / up_bps)
            if not (np.all(t_d > start) and np.all(t_c > t_d) and np.all(t_u > t_c)):
                raise Unsupported("a phase too short to move the clock")
        dropped = stop0 <= t_u
        if dropped.any():
            stop_t = np.where(dropped, stop0, t_u)
            if offline is not None:
                offline &= dropped
        else:
            dropped, offline, stop_t = None, None, t_u
        # the events in SimPy's order: (time, class, t_c, t_d, position); class 0 a dropout, 1 the deadline,
        # 2 an upload
        pos = np.arange(n)
        # (with cells, SimPy's flows cross two resources and end, in one instant, in the order they began on
        # the link (flows.FlowNetwork), not the order their uploads were started (FairLink): by t_c + latency,
        # then by when the event that began them was made: the latency's timer at t_c, or with no latency the
        # compute's timer at t_d)
        if self.shared and self.any_cell:
            begun, made = t_c + latency_s, np.where(latency_s > 0, t_c, t_d)
        else:
            begun = made = np.zeros(n)
        if dropped is None:
            cls = np.full(n, 2)
            order = np.lexsort((pos, t_d, t_c, made, begun, stop_t))
        else:
            cls = np.where(dropped, 0, 2)
            key_c = np.where(dropped, 0.0, t_c)
            key_d = np.where(dropped, 0.0, t_d)
            key_b = np.where(dropped, 0.0, begun)
            key_m = np.where(dropped, 0.0, made)
            order = np.lexsort((pos, key_d, key_c, key_m, key_b, cls, stop_t))
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
        moved = None
        if self.shared:  # the wire bits each client had moved in the phase it stopped in, when it stopped
            s = np.where(own, stop_t, t_close)
            moved_down = moved_up = None
            if np.any(s <= t_d):  # (every client _phases puts in download, and more)
                moved_down = self._share_down(start + latency_s, down_wire, down_bps, stop0, cells, t_close)[1]
            if np.any((t_c <= s) & (s <= t_u)):  # (every client _phases puts in upload, and more)
                moved_up = self._share_up(t_c + latency_s, up_wire, up_bps, stop0, cells, t_close)[1]
            moved = (moved_down, moved_up)
        return self._records(index, start, chosen, g, n, latency_s, down_bps, up_bps, down_wire, up_wire,
                             compute_s, t_d, t_c, t_u, stop_t, own, dropped, t_close, cut, ready, offline, moved)

    def _share_down(self, arrive, bits, cap, stop, cells, until=_INF):
        """The downloads of a round on the server link (and cells) that send them: shared_link.share."""
        return share(arrive, bits, cap, stop, self.cap_down, until, cells, self.cell_down, one_timer=not self.any_cell)

    def _share_up(self, arrive, bits, cap, stop, cells, until=_INF):
        """The uploads of a round on the server link (and cells) that receive them."""
        return share(arrive, bits, cap, stop, self.cap_up, until, cells, self.cell_up, one_timer=not self.any_cell)

    def _records(self, index, start, chosen, g, n, latency_s, down_bps, up_bps, down_wire, up_wire, compute_s,
                 t_d, t_c, t_u, stop_t, own, dropped, t_close, cut, ready, offline, moved=None):
        """The round's client columns (returned) and its round record and counters (appended). `dropped`: the
        clients whose own stop is a timer of the round's start (a dropout, or `offline`: their availability)."""
        eng, inputs = self.engine, self.inputs
        records = eng.records
        framing = self.framing
        drop = own & dropped if dropped is not None else None
        completed = own if drop is None else own & ~drop
        (download_end, compute_start, compute_end, upload_start, upload_end, end_s, comp_s, bits_down,
         bits_up) = _phases(start, t_d, t_c, t_u, stop_t, own, drop, completed, t_close, latency_s, down_bps,
                            up_bps, down_wire, up_wire, compute_s, framing, moved,
                            late_on_flows=self.shared and cut == LATE)
        e_compute = self.g_compute_w[g] * comp_s
        idle_w = self.g_idle_w[g]
        e_idle = idle_w * ((end_s - start) - comp_s)
        e_net = bits_down * self.g_e_down[g] + bits_up * self.g_e_up[g]
        # statuses: completed, dropped, or the cut (late or surplus)
        code = np.full(n, STATUSES.index(cut))
        code[completed] = 0
        if drop is not None:
            code[drop] = STATUSES.index(DROPPED)
            if offline is not None:
                code[drop & offline] = STATUSES.index(OFFLINE)
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
        wait_s = start - ready  # for a client to come online (the int 0 in round 0, as SimPy's int clock gives)
        e_server = server.aggregation_power_w * agg_s + server.idle_power_w * ((duration_s + wait_s) - agg_s)
        carbon = inputs.carbon
        if carbon is None:
            co2 = NAN
        elif carbon.constant and not inputs.carbon_shifts_s:
            co2 = carbon.flat_grams(sum_net + sum_compute + sum_idle + e_server)
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


def _phases(start, t_d, t_c, t_u, stop_t, own, drop, completed, t_close, latency_s, down_bps, up_bps, down_wire,
            up_wire, compute_s, framing, moved=None, late_on_flows=False):
    """What each client did until it stopped, as client_job writes it down (any shape; `start` and `t_close`
    broadcast): (download_end, compute_start, compute_end, upload_start, upload_end, end, compute_s,
    bits_down, bits_up). `own`: it stopped by its own event (its upload, `drop`: its dropout) at `stop_t`;
    otherwise it was cut at t_close, or its upload landed in the closing instant after the close. `moved`: on a
    shared link, (down, up) the wire bits each client had moved by then in that direction (None: not needed).
    `late_on_flows`: the deadline closed the round and transfers are flows on a shared link. A flow's last bit
    is an event of the link's timer, and its client resumes one event later; the deadline's timer, made at the
    round's start, runs first, so the close comes between them. A download ending in the deadline's instant
    then has not ended when its client is cut (it is cut in its download, with every bit moved)."""
    s = np.where(own, stop_t, t_close)
    landed = ~own & (t_u == t_close)  # its whole upload arrived in the closing instant, after the close ran
    done = completed | landed
    if late_on_flows:
        in_down = ~done & (s <= t_d)
        in_comp = ~done & ~in_down & ((s < t_c) if drop is None else np.where(drop, s <= t_c, s < t_c))
    elif drop is None:
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
    # a transfer stopped early moved its cap's worth of bits after the latency (Transfers.moved_so_far), or on a
    # shared link what its flow had moved
    if moved is not None:
        down_so_far = moved[0] if moved[0] is not None else down_wire
        up_so_far = moved[1] if moved[1] is not None else up_wire
    else:
        down_so_far = np.minimum(down_wire, np.maximum(0.0, (s - start) - latency_s) * down_bps)
        up_so_far = np.minimum(up_wire, np.maximum(0.0, (s - t_c) - latency_s) * up_bps)
    bits_down = np.where(in_down, down_so_far, down_wire) / framing
    bits_up = np.where(in_up, up_so_far / framing, np.where(done, up_wire / framing, 0.0))
    return (download_end, compute_start, compute_end, upload_start, upload_end, end_s, comp_s, bits_down,
            bits_up)


def _first_met(values: np.ndarray) -> list[int]:
    """The distinct values in the order they first appear."""
    uniq, first = np.unique(values, return_index=True)
    return uniq[np.argsort(first)].tolist()


def _count(counter, values: np.ndarray) -> None:
    """counter.update with how often each value appears, new keys in the order they first appear."""
    if not len(values):
        return
    counts = np.bincount(values)
    counter.update({v: int(counts[v]) for v in _first_met(values)})


def _accumulate(counter, key, values: np.ndarray) -> None:
    """counter[key] += each value in turn (the same float sums as adding client by client)."""
    if not len(values):
        return
    if key in counter:
        values = np.concatenate([[counter[key]], values])
    counter[key] = float(np.cumsum(values)[-1])
