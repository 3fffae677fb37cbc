"""What every round policy does with client jobs: draw this round's speeds and links, fail or stop a job,
wait for a client to come online. The policies (sync_rounds, async_rounds) decide who works when."""

from __future__ import annotations

import numpy as np

from simfl.costs import transfer_time_s
from simfl.sim.inputs import ClientSpec, SimInputs
from simfl.sim.job import Work
from simfl.sim.streams import Streams
from simfl.sim.variation import Spread, draw_links


def aggregation_s(inputs: SimInputs, updates: list[Work]) -> float:
    """How long the server takes to aggregate `updates`: each update's group's parameters, at the server's
    rate (n x params / rate when the groups agree)."""
    groups = inputs.groups
    return sum(groups[w.spec.group].trainable_params for w in updates) / inputs.server.aggregation_params_per_s


class JobPolicy:
    """The shared part of a round policy: its engine, its streams, its selection, and the per-group draws."""

    def __init__(self, engine, streams: Streams, selection):
        self.engine = engine
        self.streams = streams
        self.selection = selection
        self._expected: np.ndarray | None = None  # each member's expected round time, once a policy asks
        groups, run_p = engine.inputs.groups, engine.inputs.dropout_prob
        self._dropout_probs = np.array([run_p if g.dropout_prob is None else g.dropout_prob for g in groups])
        self._dropout = bool(np.any(self._dropout_probs > 0))
        sigmas = np.array([g.speed_round.sigma if g.speed_round is not None else 0.0 for g in groups])
        self._speed_sigma = sigmas if any(g.speed_round is not None for g in groups) else None
        self._link_groups = [(gi, g.link_round) for gi, g in enumerate(groups) if g.link_round is not None]
        self._upload_bits = [g.bits_per_transfer for g in groups]
        self._stack_bits: float | None = None  # FLoRA: the last aggregation's stack, once there is one
        self._next_stack: tuple[float, float] | None = None  # (when it is published, its bits)

    def select(self, candidates: int | np.ndarray, count: int) -> np.ndarray:
        """`count` of `candidates` (a population size, or member ids) by the scenario's selection policy."""
        return self.selection.select(self.streams.selection, candidates, count, self._expected_s)

    def _expected_s(self, ids: np.ndarray) -> np.ndarray:
        """Members' expected round times (SimInputs.expected_round_s), computed for the whole population once, on
        the first call: they are fixed for the run, and an asynchronous run asks at every job it starts."""
        if self._expected is None:
            self._expected = self.engine.inputs.expected_round_s(np.arange(self.engine.inputs.population_size))
        return self._expected[ids]

    def download_bits(self, spec: ClientSpec) -> float:
        """What a job starting now downloads (payload bits): its group's adapter; under FLoRA stacking, once a
        version was aggregated, that version's stack (simfl/lora_ranks.py: every client merges it into its
        base; a client that missed earlier stacks would need them too, which is not modelled)."""
        self._publish_due()
        return self._upload_bits[spec.group] if self._stack_bits is None else self._stack_bits

    def _publish_due(self) -> None:
        """The stack of an aggregation that has ended (by now) is the one downloads carry."""
        if self._next_stack is not None and self._next_stack[0] <= self.engine.env.now:
            self._stack_bits, self._next_stack = self._next_stack[1], None

    def published(self, updates: list[Work], at_s: float) -> None:
        """The model version aggregated from `updates` is what jobs starting from `at_s` on download (a job
        starting at the instant an aggregation ends gets the new version: the tie rule). Under FLoRA stacking
        its stack holds every aggregated adapter: ranks add up, and so do their uploads' bits. (The previous
        aggregation's stack, ended by now, is published first: the next aggregation may start in its instant.)"""
        if self.engine.inputs.stacked_download and updates:
            self._publish_due()
            self._next_stack = (at_s, float(sum(self._upload_bits[w.spec.group] for w in updates)))

    def resume(self, stack_bits: float | None) -> None:
        """Go on from a run the array kernel began: the stack its last aggregation published (None: none)."""
        self._stack_bits, self._next_stack = stack_bits, None

    def work(self, spec: ClientSpec, version: int) -> Work:
        """A job for `spec` starting now on model `version`: it downloads download_bits and uploads its
        group's update."""
        return Work(spec, version, self.download_bits(spec), self._upload_bits[spec.group])

    def _nominal_work_s(self, w: Work) -> float:
        """The job's round work alone on its path: where a dropout's failure point is drawn.

        Each transfer runs at the slowest of its own link, its cell and the server link
        (every shared resource on its route at full capacity, as if no other client used it).
        """
        eng, spec = self.engine, w.spec
        framing = eng.inputs.framing_factor
        server_latency_s, down_res, up_res, _, _ = eng.routes[spec.group]
        latency_s = spec.link.latency_s + server_latency_s
        cap = eng.net.capacity_bps
        down_bps = min(spec.link.downlink_bps, *(cap[r] for r in down_res))
        up_bps = min(spec.link.uplink_bps, *(cap[r] for r in up_res))
        return (transfer_time_s(w.download_payload_bits * framing, down_bps, latency_s) + spec.compute_s
                + transfer_time_s(w.upload_payload_bits * framing, up_bps, latency_s))

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
