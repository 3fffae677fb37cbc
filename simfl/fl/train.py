"""Real federated training on the simulated clock: the simulator decides who takes part and prices each round.

For each run (a server optimizer with backprop clients, or forward-gradient
clients), the scenario is simulated first: its records say, round by round,
which clients' uploads the server aggregated (dropped and late ones excluded),
when the round ended and how many joules it cost. Those clients then really
train the model on their own Dirichlet share of the data, and the server really
aggregates their adapters with the run's optimizer. Validation loss is measured
every `eval_every` rounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from simfl.api import simulate
from simfl.catalog import get_architecture
from simfl.config.scenario import Scenario, TrainSpec
from simfl.costs import kwh
from simfl.fl.clients import backprop_train, forward_gradient_train, load_state, trainable_state
from simfl.fl.ranked import RankedTraining
from simfl.config.server_optimizers import ServerOptimizer, server_optimizer
from simfl.fl.strategies import STRATEGIES, strategy
from simfl.lm import data as tiny
from simfl.lm.forward_gradient import ForwardGradient
from simfl.lm.loss import seq2seq_loss
from simfl.lm.model import KernelSpec, build_model
from simfl.lora_ranks import ranks_differ
from simfl.partition import dirichlet_counts, split_examples
from simfl.training import DEFAULT_METHOD


@dataclass(frozen=True)
class Run:
    name: str  # fedavg, ..., or fwdgrad-<server optimizer>
    server: ServerOptimizer  # the server optimizer and its typed hyperparameters
    method: str  # backprop | forward_gradient

    @property
    def optimizer(self) -> str:
        return self.server.optimizer

    @property
    def hyper(self) -> dict:
        """The hyperparameters as the scenario wrote them (the summary's `hyper`)."""
        return self.server.model_dump()


@dataclass(frozen=True)
class Task:
    """Tokenized train/val data, split over the population, and the model shape to train."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    shards: list[np.ndarray]
    vocab_size: int
    arch_name: str


@dataclass(frozen=True)
class Schedule:
    """What the simulator said about each aggregation (a synchronous round's, or an asynchronous one's): the
    updates it took as (client, version trained from, staleness), its end time, energy and CO2 so far."""

    updates: list[list[tuple[int, int, float]]]
    end_s: np.ndarray
    energy_j: np.ndarray
    co2_g: np.ndarray
    steps: np.ndarray  # local steps per client

    @property
    def clients(self) -> list[list[int]]:
        return [[c for c, _, _ in u] for u in self.updates]


def runs_of(spec: TrainSpec, only: list[str] | None = None) -> list[Run]:
    runs = [Run(name, params, "backprop") for name, params in spec.optimizers.items()]
    if spec.forward_gradient is not None:
        fg = spec.forward_gradient
        runs.append(Run(f"fwdgrad-{fg.server_optimizer}", fg.server, "forward_gradient"))
    if only:
        unknown = sorted(set(only) - {r.name for r in runs} - set(STRATEGIES))
        if unknown:
            raise ValueError(f"unknown run(s) {unknown}; this scenario has {[r.name for r in runs]}")
        have = {r.name for r in runs}
        runs = [r for r in runs if r.name in only] + [
            Run(o, server_optimizer(o), "backprop") for o in only if o in STRATEGIES and o not in have]
    return runs


def prepare_task(scenario: Scenario) -> Task:
    spec = scenario.train
    if spec.data == "tiny-dialogsum":
        rows = tiny.generate(spec.train_examples + spec.val_examples, scenario.seed)
        tokenizer = tiny.build_tokenizer([r["dialogue"] + " " + r["summary"] for r in rows])
    else:
        from transformers import AutoTokenizer

        rows = tiny.load_jsonl(spec.data)
        if spec.tokenizer is None:
            raise ValueError("train.tokenizer is needed with a JSONL data file")
        tokenizer = AutoTokenizer.from_pretrained(spec.tokenizer)
        if len(rows) < spec.train_examples + spec.val_examples:
            raise ValueError(f"{spec.data} has {len(rows)} examples; train_examples + val_examples need more")
    train, val = rows[: spec.train_examples], rows[spec.train_examples: spec.train_examples + spec.val_examples]
    tx, ty = tiny.encode(train, tokenizer, spec.seq_len, spec.target_len)
    vx, vy = tiny.encode(val, tokenizer, spec.seq_len, spec.target_len)
    rng = np.random.default_rng([scenario.seed, 1])  # the data split's own stream, apart from the simulator's
    part = scenario.federation.partition
    counts = dirichlet_counts(len(train), scenario.population, part.dirichlet_alpha, rng)
    vocab = len(tokenizer)
    return Task(tx, ty, vx, vy, split_examples(counts, rng), vocab + (-vocab % 8),
                spec.arch or scenario.model.name)


def schedule(scenario: Scenario, method: str, perturbations: int | None) -> Schedule:
    """Simulate the scenario with this client method; read off each round's aggregated clients."""
    training = scenario.training.model_copy(update={"method": method, "perturbations": perturbations})
    sc = scenario.model_copy(update={"training": training})
    result = simulate(sc)
    c = result.clients
    done = c[c["version_aggregated"] >= 1]  # aggregation i makes version i + 1 (sync: round i's completed)
    by_agg: dict[int, list] = {}
    for row in done.itertuples():
        by_agg.setdefault(int(row.version_aggregated) - 1, []).append(
            (int(row.client), int(row.version_downloaded), float(row.staleness)))
    rounds = result.rounds
    energy = (rounds[["energy_network_j", "energy_client_compute_j", "energy_client_idle_j", "energy_server_j"]]
              .sum(axis=1).cumsum().to_numpy())
    co2 = rounds["co2_g"].fillna(0.0).cumsum().to_numpy()
    steps = result.inputs.population.steps
    return Schedule([by_agg.get(r, []) for r in range(len(rounds))], rounds["end_s"].to_numpy(), energy, co2, steps)


def pretrain_base(task: Task, kspec: KernelSpec, steps: int, seed: int) -> dict:
    """A stand-in for pretrained weights: central training of the whole random model on copying.

    Pretrained FLAN-T5 weights cannot be downloaded here. The paper fine-tunes a
    pretrained base with LoRA; a LoRA adapter on a random frozen base learns
    little. So the stand-in base is first trained, centrally and seeded, to copy
    the start of each training dialogue, a different objective from the
    summaries that federated fine-tuning then learns. The LM head is scaled by
    d_model^-0.5 first: T5's random init gives an untied head std 1, so the initial
    logits would be too large by a factor of about sqrt(d_model).
    """
    full = KernelSpec(**{**kspec.__dict__, "finetuning": "full", "eager_attention": False})
    model = build_model(get_architecture(task.arch_name), full)
    with torch.no_grad():
        model.lm_head.weight.mul_(model.config.d_model ** -0.5)
    if steps > 0:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        copy_len = task.train_y.shape[1]
        for _ in range(steps):
            idx = torch.randint(len(task.train_x), (32,), generator=gen)
            x = task.train_x[idx]
            y = x[:, :copy_len].masked_fill(x[:, :copy_len] == 0, -100)
            loss = seq2seq_loss(model, x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def val_loss(model, task: Task, batch: int = 100) -> float:
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(task.val_x), batch):
            y = task.val_y[i: i + batch]
            n = int((y != -100).sum())
            total += float(seq2seq_loss(model, task.val_x[i: i + batch], y)) * n
            tokens += n
    return total / tokens


def client_batches(task: Task, client: int, steps: int, batch_size: int, rng: np.random.Generator):
    shard = task.shards[client]
    picks = [rng.choice(shard, size=batch_size, replace=len(shard) < batch_size) for _ in range(steps)]
    return [(task.train_x[p], task.train_y[p]) for p in picks]


def kernel_spec(scenario: Scenario, task: Task, method: str = DEFAULT_METHOD) -> KernelSpec:
    m = scenario.model
    # (the largest group rank: model.lora_r unless fleet[i].lora_r set it; with one rank, that rank)
    return KernelSpec(finetuning=m.finetuning, lora_r=max(scenario.lora_ranks), lora_alpha=m.lora_alpha,
                      lora_targets=tuple(m.lora_targets), lora_dropout=0.05, seed=scenario.seed,
                      pretrained=scenario.train.pretrained, vocab_size=task.vocab_size,
                      eager_attention=method == "forward_gradient")


def ranked_training(scenario: Scenario, task: Task, kspec: KernelSpec,
                    base_state: dict | None) -> RankedTraining | None:
    """Where fleet groups train different LoRA ranks: a model per rank and the rank rule (simfl/fl/ranked.py)."""
    ranks = scenario.lora_ranks
    if not ranks_differ(ranks):
        return None
    arch = get_architecture(task.arch_name)
    build = lambda r, alpha: build_model(arch, replace(kspec, lora_r=r, lora_alpha=alpha), base_state)  # noqa: E731
    client_ranks = np.repeat(ranks, [g.count for g in scenario.fleet])  # members in group order, as simulated
    return RankedTraining(build, kspec.lora_alpha, client_ranks, ranks, scenario.model.rank_rule, scenario.seed)


def train_run(scenario: Scenario, task: Task, run: Run, sched: Schedule, max_rounds: int,
              target: float | None, base_state: dict | None = None,
              on_round: Callable[[str, int, float | None], None] | None = None, info: dict | None = None,
              ) -> list[dict]:
    spec = scenario.train
    kspec = kernel_spec(scenario, task, run.method)
    model = build_model(get_architecture(task.arch_name), kspec, base_state)  # same start for every run
    x = trainable_state(model)
    server = strategy(run.server)
    fg = None
    if run.method == "forward_gradient":
        f = spec.forward_gradient
        fg = ForwardGradient(model, f.perturbations, f.mode, discriminative=f.discriminative, seed=scenario.seed)
    het = ranked_training(scenario, task, kspec, base_state) if fg is None else None  # fleet[i].lora_r differ
    if het is not None:
        x = het.initial()
    lr = spec.forward_gradient.client_lr if fg else spec.client_lr
    rows = [{"run": run.name, "round": 0, "sim_time_s": 0.0, "energy_j": 0.0, "co2_g": 0.0, "clients": 0,
             "train_loss": math.nan, "val_loss": val_loss(het.eval_model(x) if het else model, task)}]
    rounds = min(max_rounds, len(sched.updates))
    # the server keeps each version until the last update trained from it has been aggregated
    last_use = {v: r for r in range(rounds) for _, v, _ in sched.updates[r]}
    versions = {0: x}
    for r in range(rounds):
        rng = np.random.default_rng([scenario.seed, 2, r])  # same batches for every run in round r
        models, weights, losses = [], [], []
        for c, v, staleness in sched.updates[r]:
            batches = client_batches(task, c, int(sched.steps[c]), scenario.training.batch_size, rng)
            x_v = versions[v]  # the version this client downloaded (x itself in synchronous rounds)
            if het is not None:  # its own rank's adapter, aggregated by model.rank_aggregation
                upd = het.train(c, x_v, r, batches, lr)
                models.append(het.upload(c, upd.params, x_v, x, stale=v != r))
            else:
                upd = forward_gradient_train(fg, x_v, batches, lr) if fg else backprop_train(model, x_v, batches, lr)
                # a stale update is the client's change applied to the current version (FedBuff's delta)
                models.append(upd.params if v == r else {k: x[k] + (upd.params[k] - x_v[k]) for k in x})
            weights.append(len(task.shards[c]) * (1.0 + staleness) ** -spec.staleness_exponent)
            losses.append(upd.loss)
        if models:
            new_x = het.aggregate(server, x, models, weights) if het else server.step(x, models, weights)
            if fg is not None:
                fg.prev_update = {k: new_x[k] - x[k] for k in x}
            x = new_x
        versions[r + 1] = x
        for v in [v for v in versions if last_use.get(v, -1) <= r and v != r + 1]:
            del versions[v]
        evaluate = (r + 1) % spec.eval_every == 0 or r + 1 == max_rounds
        vl = math.nan
        if evaluate:
            if het is not None:
                vl = val_loss(het.eval_model(x), task)
            else:
                load_state(model, x)
                vl = val_loss(model, task)
        rows.append({"run": run.name, "round": r + 1, "sim_time_s": float(sched.end_s[r]),
                     "energy_j": float(sched.energy_j[r]), "co2_g": float(sched.co2_g[r]), "clients": len(models),
                     "train_loss": float(np.mean(losses)) if losses else math.nan, "val_loss": vl})
        if on_round:
            on_round(run.name, r + 1, None if math.isnan(vl) else vl)
        if target is not None and evaluate and vl <= target:
            break
    if info is not None:
        info["trainable_params"] = sum(t.numel() for t in x.values())
        if het is not None:
            info.update(het.info())
        if fg is not None:
            info.update(perturbations=fg.p, directional_derivative=fg.chosen)
    return rows


def to_target(table: pd.DataFrame, target: float | None) -> dict:
    """Per run: first evaluated round at or below the target, its simulated hours and kWh."""
    out = {}
    for name, t in table.groupby("run", sort=False):
        ev = t.dropna(subset=["val_loss"])
        hit = ev[ev["val_loss"] <= target] if target is not None else ev.iloc[0:0]
        first = hit.iloc[0] if len(hit) else None
        out[name] = {
            "final_val_loss": float(ev["val_loss"].iloc[-1]),
            "best_val_loss": float(ev["val_loss"].min()),
            "rounds_run": int(t["round"].max()),
            "rounds_to_target": None if first is None else int(first["round"]),
            "sim_hours_to_target": None if first is None else float(first["sim_time_s"]) / 3600,
            "kwh_to_target": None if first is None else kwh(float(first["energy_j"])),
            "co2_kg_to_target": None if first is None else float(first["co2_g"]) / 1000,
        }
    return out
