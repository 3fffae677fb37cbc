"""Heterogeneous LoRA ranks in the simulator: each group's compute, update and transfers follow its own rank,
and FLoRA stacking grows the download with the ranks aggregated (numbers worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.build import build
from simfl.config.load import load_scenario
from simfl.lora_ranks import download_bits
from simfl.sim import run
from simfl.sim.inputs import AsyncSpec, GroupSpec, LinkSpec, Population, SimInputs, SyncSpec
from tests.helpers import server

# flan-t5-small, LoRA on q and v: d_model 512 in, 6 heads x 64 = 384 out, so r x (512 + 384) = 896 r parameters a
# projection; 8 encoder layers (self-attention) and 8 decoder layers (self- and cross-attention): 48 projections,
# 43,008 parameters per rank (688,128 at rank 16, the seed paper's count)
PER_RANK = 48 * 896

SCENARIO = """
name: ranks
seed: 3
model: {name: flan-t5-small, lora_r: 16%s}
training: {batch_size: 1, local_steps: 2}
federation: {clients_per_round: 4, rounds: 3}
fleet:
  - {count: 2, device: jetson-agx-orin-64gb, network: lte}
  - {count: 2, device: jetson-agx-orin-64gb, network: lte, lora_r: 4}
server: {device: a100-80gb, network: ethernet-10gbit}
"""


def test_each_group_trains_sends_and_computes_at_its_own_rank(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % "")
    built = build(load_scenario(path))
    g16, g4 = built.inputs.groups
    assert (g16.trainable_params, g4.trainable_params) == (16 * PER_RANK, 4 * PER_RANK) == (688128, 172032)
    assert (g16.bits_per_transfer, g4.bits_per_transfer) == (688128 * 32, 172032 * 32)
    # rank 16 is what the Orin profile measured; rank 4 is the hardware model's, flagged estimated
    assert g4.step_time_s != g16.step_time_s
    assert any("fleet[1].device" == e["field"] and "lora_r 4" in e["input"] for e in built.estimated_inputs)
    assert not any(e["field"] == "fleet[0].device" and "training" in e["input"] for e in built.estimated_inputs)
    assert not built.inputs.stacked_download
    # each client's download and upload is its own adapter (zero_pad)
    rec = run(built.inputs, 0)
    for c in rec.clients:
        own = (g16 if c.client < 2 else g4).bits_per_transfer
        assert (c.bits_down, c.bits_up) == (own, own)


def two_ranks(policy, stacked: bool = True) -> SimInputs:
    # client 0: rank 1 (1e6 bits), client 1: rank 2 (2e6 bits); 1 s of compute each; links 1e6 bit/s each way
    link = LinkSpec("l", 1e6, 1e6, 0.0)
    groups = (GroupSpec("dev", link, 1.0, 10.0, 2.0, trainable_params=31250, bits_per_transfer=1_000_000),
              GroupSpec("dev", link, 1.0, 10.0, 2.0, trainable_params=62500, bits_per_transfer=2_000_000))
    pop = Population(np.array([0, 1], dtype=np.int32), np.array([1, 1], dtype=np.int32))
    return SimInputs(groups, pop, server(), 2 if isinstance(policy, SyncSpec) else 1, 2, 3, round_policy=policy,
                     stacked_download=stacked)


def test_flora_stacking_downloads_the_sum_of_the_ranks_aggregated():
    # round 1: each downloads its own adapter (no stack yet): 1e6 and 2e6 bits; both are aggregated, so from round 2
    # on everyone downloads the stack of ranks 1 + 2: 3e6 bits (3 s at 1e6 bit/s)
    rec = run(two_ranks(SyncSpec()), 0)
    downs = sorted((c.round, c.client, c.bits_down) for c in rec.clients)
    assert downs == [(0, 0, 1e6), (0, 1, 2e6), (1, 0, 3e6), (1, 1, 3e6), (2, 0, 3e6), (2, 1, 3e6)]
    # round 2: a 3 s download, 1 s of compute, client 1's 2 s upload, then 3 s of aggregation (93750 params at 31250/s)
    r1 = rec.rounds[1]
    assert r1.end_s - r1.start_s == pytest.approx(3.0 + 1.0 + 2.0 + 3.0)
    # zero_pad: always the own adapter
    rec = run(two_ranks(SyncSpec(), stacked=False), 0)
    assert sorted({(c.client, c.bits_down) for c in rec.clients}) == [(0, 1e6), (1, 2e6)]


def test_async_stacks_what_each_aggregation_took():
    # buffer 1, both clients start at t = 0 on their own adapters. Client 0 (rank 1): download 1 s, compute 1 s,
    # upload 1 s, its update lands at t = 3 and is aggregated 3..4 (31250 params at 31250/s); it starts again at
    # t = 3, before version 1 exists: its own 1e6 bits again. Client 1 (rank 2) lands at t = 5 (2 + 1 + 2 s); its
    # next job downloads version 1, the stack of client 0's rank-1 adapter alone: 1e6 bits, not its own 2e6.
    # Client 0's second update lands at t = 6 while version 2 (5..7) is aggregated: it restarts on version 1 (1e6).
    rec = run(two_ranks(AsyncSpec(2, buffer_size=1)), 0)
    downs = sorted((c.download_start_s, c.client, c.bits_down) for c in rec.clients)
    assert downs == [(0.0, 0, 1e6), (0.0, 1, 2e6), (3.0, 0, 1e6), (5.0, 1, 1e6), (6.0, 0, 1e6)]
    assert [r.end_s for r in rec.rounds] == pytest.approx([4.0, 7.0, 8.0])


def test_a_stacking_scenario_downloads_what_the_size_rule_says(tmp_path):
    # K = 4 of 4: every round aggregates ranks 16, 16, 4, 4, so from round 2 on each download is the size rule's
    # stack of them (simfl/lora_ranks.py): 40 ranks x 43,008 parameters x 32 bits
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % ", rank_aggregation: stack")
    built = build(load_scenario(path))
    assert built.inputs.stacked_download
    rec = run(built.inputs, 0)
    later = {c.bits_down for c in rec.clients if c.round > 0}
    assert later == {download_bits("stack", 16, [16, 16, 4, 4], PER_RANK, 32)} == {40 * PER_RANK * 32}
    # one rank: neither rule applies (as in simfl train), whatever rank_aggregation says
    path.write_text((SCENARIO % ", rank_aggregation: stack").replace(", lora_r: 4}", "}"))
    assert not build(load_scenario(path)).inputs.stacked_download


def test_an_aggregation_started_as_another_ends_does_not_lose_its_stack():
    # the server aggregates 3125 params/s. Client 0's first update (rank 1, 31250 params) lands at t = 3 and is
    # aggregated 3..13; client 1's (rank 2, 62500 params) landed at t = 5 and waited, so its aggregation starts in
    # the instant the first ends and runs 13..33. Downloads from t = 13 carry version 1's stack, client 0's rank-1
    # adapter (1e6 bits: client 1 too, not its own 2e6); from t = 33, version 2's, client 1's adapter (2e6 bits).
    inp = two_ranks(AsyncSpec(2, buffer_size=1))
    inp = SimInputs(inp.groups, inp.population, server(params_per_s=3125.0), 1, 2, 3,
                    round_policy=AsyncSpec(2, buffer_size=1), stacked_download=True)
    rec = run(inp, 0)
    assert [r.end_s for r in rec.rounds] == pytest.approx([13.0, 33.0, 43.0])
    downs = [(c.download_start_s, c.client, c.bits_down) for c in rec.clients]
    assert (15.0, 1, 1e6) in downs
    assert {bits for start, _, bits in downs if 13 <= start < 33} == {1e6}
    assert {bits for start, _, bits in downs if start >= 33} == {2e6}
