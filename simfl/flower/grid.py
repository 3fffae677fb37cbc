"""A Flower Grid whose nodes are a scenario's fleet and whose `send_and_receive` advances simfl's clock.

Flower's Message API has one seam where a simulator fits: a strategy (FedAvg, FedAdam, a user's own) only
ever reaches the clients through `grid.send_and_receive(messages, timeout=...)`. Here each call that carries
training messages is one synchronous round of simfl's engine (sim.sync_rounds.SyncRounds.play), the same code
`simfl run` runs: the addressed nodes are the round's selected clients, every one downloads the update, works
its local steps at its device profile's step time and uploads over its link and cell, and the round closes
when all of them have replied (Flower waits for every reply) or at Flower's `timeout` (simfl's deadline). Only
the clients that replied in time are answered; the others are late, as in Flower. Evaluation and query
messages are answered without time passing (simfl models no evaluation phase: the run's notes say so).

Replies: cost-only, the strategy's own arrays passed back unchanged with "num-examples" = the local steps simfl
gives the client times its batch size; or the user's ClientApp run in-process (real training).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from uuid import uuid4

import numpy as np
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from simfl.build import Built
from simfl.config.scenario import Scenario
from simfl.errors import ScenarioError
from simfl.sim.engine import Engine
from simfl.sim.inputs import SyncSpec
from simfl.sim.streams import Streams
from simfl.sim.sync_rounds import SyncRounds

# Node ids are the fleet's client numbers plus this (Flower's SuperLink is node 1): node 1000 is client 0.
NODE_ID_BASE = 1000
RUN_ID = 1
SERVER_NODE_ID = 1  # flwr.common.constant.SUPERLINK_NODE_ID
# A strategy that asks for the nodes this many times without sending anything is waiting for more nodes than
# the fleet has online (Flower's sample_nodes sleeps a second and asks again, for ever): FedAvg asks twice a round.
MAX_IDLE_ASKS = 2


@contextmanager
def task_identity(run_id: int, node_id: int):
    """Flower's process-wide identity of the task running (the Message constructor reads it), set as its own
    runtimes set it for a ServerApp or a ClientApp, and put back after."""
    before = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, run_id, node_id
    try:
        yield
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = before


@dataclass
class RoundLog:
    """What one train call did: the round, the nodes addressed, those that replied in time."""
    index: int
    addressed: list[int]
    replied: list[int]
    start_s: float
    end_s: float


@dataclass
class SimulatedGrid(Grid):
    """The fleet of `built` (a loaded scenario, built) as Flower nodes on simfl's clock.

    nodes: "fleet" reports every client online now as connected (the strategy samples among them, as in
    Flower); "selected" reports the clients the scenario's selection rule picks for the coming round
    (federation.clients_selected of the online ones, simfl's selection stream), so a strategy that takes every
    node it sees (fraction 1.0) trains exactly the clients `simfl run` would.
    client_app: None for cost-only replies, or a ClientApp called in-process for each reply.
    streams: the random streams `built` was built with (its member draws taken), which the rounds go on
    drawing from, as api.simulate does; None: the scenario seed's, fresh.
    """

    scenario: Scenario
    built: Built
    streams: Streams | None = None
    nodes: str = "fleet"
    client_app: Callable[[Message, Context], Message] | None = None
    run_config: dict = field(default_factory=dict)
    rounds: list[RoundLog] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.nodes not in ("fleet", "selected"):
            raise ScenarioError(f"expected fleet or selected, got {self.nodes!r}", field="--nodes")
        if not isinstance(self.built.inputs.round_policy, SyncSpec):
            raise ScenarioError("a Flower strategy runs synchronous rounds; this scenario's federation is "
                                f"{self.scenario.federation.mode}", field="federation.mode")
        self.engine = Engine(self.built.inputs, self.streams or Streams.from_seed(self.scenario.seed))
        self.policy: SyncRounds = self.engine.policy
        self._run = Run.create_empty(RUN_ID)
        self._idle_asks = 0
        self._offered: np.ndarray | None = None  # "selected": this round's candidates, drawn once
        self._ready_s: float | None = None  # when the coming round was first asked for
        self._contexts: dict[int, Context] = {}
        self._evaluated = False
        pop = self.built.inputs.population
        batch = np.array([g.batch_size or self.scenario.training.batch_size for g in self.scenario.fleet])
        self.examples = pop.steps.astype(np.int64) * batch[pop.group]  # samples a client trains on in a round

    # -- the Grid API ------------------------------------------------------------------------------------

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        self._idle_asks += 1
        if self._idle_asks > MAX_IDLE_ASKS and self._later_online():
            self._idle_asks = MAX_IDLE_ASKS  # waited (simulated time) for the next client to come online
        elif self._idle_asks > MAX_IDLE_ASKS:
            online = len(self._online())
            raise ScenarioError(f"the strategy waits for more nodes than the fleet gives: {online} of "
                                f"{self.built.inputs.population_size} clients online at t = {self.engine.env.now:g} s"
                                + (f", {len(self._candidates())} offered a round (--nodes selected)"
                                   if self.nodes == "selected" else "")
                                + "; lower its min_available_nodes / min_train_nodes or use a larger fleet",
                                field="fleet")
        return [NODE_ID_BASE + int(c) for c in self._candidates()]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("the simulated Grid answers through send_and_receive only: a reply's time is "
                                  "the round's, which push/pull alone cannot say")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("the simulated Grid answers through send_and_receive only")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        self._idle_asks = 0
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0 < timeout < float("inf")):
            raise ScenarioError(f"expected a positive number of seconds or None, got {timeout!r}",
                                field="the strategy's timeout")
        messages = list(messages)
        for m in messages:
            m.metadata.__dict__["_message_id"] = uuid4().hex  # what a SuperLink does; replies point at it
            self._client_of(m)  # an unknown node is the strategy's error, said now
        train = [m for m in messages if m.metadata.message_type.split(".")[0] == "train"]
        other = [m for m in messages if m.metadata.message_type.split(".")[0] != "train"]
        replies = self._train_round(train, timeout) if train else []
        if other and not self._evaluated:
            self._evaluated = True
            self.notes.append("Flower's evaluate and query messages were answered without time passing: simfl "
                              "models no evaluation phase (its rounds are training rounds)")
        return replies + [self._reply(m) for m in other]

    # -- rounds ------------------------------------------------------------------------------------------

    def _online(self) -> np.ndarray:
        """The clients online now; when none is, the clock runs on to the next that comes online (as a round
        of `simfl run` waits), the wait counted in the coming round's wait_s."""
        inputs, avail, env = self.built.inputs, self.engine.availability, self.engine.env
        if self._ready_s is None:
            self._ready_s = env.now  # the round is ready from the first time the strategy asks
        if avail is None:
            return np.arange(inputs.population_size)
        ids = np.asarray(avail.available_ids(env.now))
        while not len(ids):
            t_next = avail.next_start(env.now)
            if t_next == float("inf"):
                raise ScenarioError(f"no client is online at t = {env.now:g} s and none ever will be again (see "
                                    "the availability models)", field="fleet")
            env.run(until=t_next)
            ids = np.asarray(avail.available_ids(env.now))
        return ids

    def _later_online(self) -> bool:
        """Run the clock on to the next time a client comes online, as Flower's sample_nodes waits for more
        nodes to connect (in simulated time here); False when none ever will (no availability model, or none
        left). With --nodes selected the round's candidates are drawn again then."""
        avail, env = self.engine.availability, self.engine.env
        t_next = float("inf") if avail is None else avail.next_start(env.now)
        if t_next == float("inf"):
            return False
        env.run(until=t_next)
        self._offered = None
        return True

    def _candidates(self) -> np.ndarray:
        if self.nodes == "fleet":
            return self._online()
        if self._offered is None:
            online = self._online()
            every = self.engine.availability is None  # as SyncRounds draws: from the size, or from the ids
            self._offered = self.policy.select(len(online) if every else online,
                                               self.built.inputs.clients_selected)
        return self._offered

    def _client_of(self, m: Message) -> int:
        c = m.metadata.dst_node_id - NODE_ID_BASE
        if not 0 <= c < self.built.inputs.population_size:
            raise ScenarioError(f"the strategy addressed node {m.metadata.dst_node_id}, which is no client of the "
                                f"fleet (nodes {NODE_ID_BASE}..{NODE_ID_BASE + self.built.inputs.population_size - 1})",
                                field="fleet")
        return c

    def _train_round(self, messages: list[Message], timeout: float | None) -> list[Message]:
        """One synchronous round of simfl's engine with the addressed clients; the replies of those in time."""
        env = self.engine.env
        chosen = [self._client_of(m) for m in messages]
        if self._offered is not None:  # played in the order simfl's selection drew them, as `simfl run` plays them
            at = {c: i for i, c in enumerate(self._offered.tolist())}
            chosen.sort(key=lambda c: at.get(c, len(at)))
        chosen = np.array(chosen, dtype=np.int64)
        if len(set(chosen.tolist())) != len(chosen):
            raise ScenarioError("the strategy sent one node two training messages in a round", field="fleet")
        offline = sorted(set(chosen.tolist()) - set(self._online().tolist()))
        if offline:
            raise ScenarioError(f"the strategy addressed client {offline[0]}, which is offline at t = {env.now:g} s "
                                "(the grid reports only online nodes)", field="fleet")
        index = len(self.rounds)
        ready_s = env.now if self._ready_s is None else self._ready_s
        # Flower waits for every addressed node's reply, or until its timeout: K is everyone addressed
        proc = env.process(self.policy.play(index, chosen, len(chosen), timeout, ready_s))
        env.run(until=proc)
        aggregated = proc.value
        replied = {w.spec.client_id for w in aggregated}
        self.rounds.append(RoundLog(index, chosen.tolist(), sorted(replied), ready_s, env.now))
        self._offered, self._ready_s = None, None  # the next round draws its own candidates
        return [self._reply(m) for m in messages if self._client_of(m) in replied]

    # -- replies -----------------------------------------------------------------------------------------

    def _reply(self, m: Message) -> Message:
        c = self._client_of(m)
        if self.client_app is not None:
            with task_identity(RUN_ID, NODE_ID_BASE + c):  # a copy, as a node receives it: the app may change it
                reply = self.client_app(deepcopy(m), self._context(c))
            reply.metadata.__dict__["_message_id"] = uuid4().hex
            return reply
        content = RecordDict({"metrics": MetricRecord({"num-examples": int(self.examples[c])})})
        if m.metadata.message_type.split(".")[0] == "train":
            for key, record in m.content.array_records.items():  # the strategy's own arrays, unchanged
                content[key] = record
        reply = Message(content, reply_to=m)
        reply.metadata.__dict__["_message_id"] = uuid4().hex
        return reply

    def _context(self, client: int) -> Context:
        """Client `client`'s node context, kept across rounds (its state), with Flower's simulation keys."""
        if client not in self._contexts:
            n = self.built.inputs.population_size
            self._contexts[client] = Context(RUN_ID, NODE_ID_BASE + client,
                                             {"partition-id": client, "num-partitions": n}, RecordDict(),
                                             dict(self.run_config))
        return self._contexts[client]

    def finish(self) -> None:
        """The end of the run: client rows flushed, notes handed to the records."""
        self.engine.records.clients.flush()
        self.engine.records.notes.extend(self.notes)
