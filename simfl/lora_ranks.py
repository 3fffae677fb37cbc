"""Heterogeneous LoRA ranks, the torch-free half: each group's rank and what a transfer carries under each rule.

A LoRA adapter of rank r on a projection in -> out is A (r x in) and B (out x r):
r * (in + out) parameters, linear in r (`catalog.*Architecture.lora_params(r, targets)
== r * lora_params(1, targets)`), so every size below is a rank times
`params_per_rank` (the caller's `lora_params(1, targets)`).

The two aggregation rules (`model.rank_aggregation`), as `simfl train` runs them
(simfl/fl/hetero.py) and as the simulator is to price them:

- zero_pad (HetLoRA, Cho et al. 2024): the server keeps one global adapter at
  the largest rank r_max; a client of rank r_i downloads its leading r_i rank
  slots and uploads an adapter of rank r_i. Both transfers: r_i ranks.
- stack (FLoRA, Wang et al., NeurIPS 2024): the server stacks the aggregated
  clients' adapters, [p_1 B_1, ..., p_n B_n] [A_1; ...; A_n], a rank of
  sum_i r_i, and every client downloads that stack to merge it into its base
  weights, then trains a fresh adapter of its own rank r_i and uploads it.
  Download: the sum of the ranks aggregated last; upload: r_i. Before the first
  aggregation there is no stack: the client downloads its own rank's adapter,
  as it does today. (A client that missed aggregations needs every stack
  since, or the merged base: pass the ranks of all of them, concatenated.)

Pure functions on integers; nothing here imports torch, numpy or the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

RankAggregation = Literal["zero_pad", "stack"]
RULES: tuple[str, ...] = ("zero_pad", "stack")
DEFAULT_RULE: RankAggregation = "zero_pad"


def group_ranks(model_lora_r: int, group_lora_r: Sequence[int | None]) -> list[int]:
    """Each fleet group's LoRA rank: its own `fleet[i].lora_r`, else `model.lora_r`."""
    return [int(model_lora_r if r is None else r) for r in group_lora_r]


def ranks_differ(ranks: Sequence[int]) -> bool:
    """Whether a rule applies at all: with one rank both rules are plain FedAvg-family aggregation."""
    return len(set(ranks)) > 1


def stack_download_rank(aggregated_ranks: Sequence[int]) -> int:
    """FLoRA's stacked adapter: the sum of the aggregated clients' ranks (ranks add up)."""
    return sum(int(r) for r in aggregated_ranks)


def download_rank(rule: str, own_rank: int, aggregated_ranks: Sequence[int]) -> int:
    """The rank a client downloads under `rule`: its own (zero_pad; stack before any aggregation), or the
    stack of the last aggregation's ranks (stack). `aggregated_ranks`: the ranks that aggregation took."""
    if rule not in RULES:
        raise ValueError(f"unknown rank aggregation {rule!r}; known: {', '.join(RULES)}")
    if own_rank < 1 or any(r < 1 for r in aggregated_ranks):
        raise ValueError("LoRA ranks are at least 1")
    if rule == "zero_pad" or not aggregated_ranks:
        return int(own_rank)
    return stack_download_rank(aggregated_ranks)


def upload_rank(own_rank: int) -> int:
    """Under either rule a client uploads the adapter it trained: its own rank."""
    return int(own_rank)


def download_params(rule: str, own_rank: int, aggregated_ranks: Sequence[int], params_per_rank: int) -> int:
    """Parameters one download carries: download_rank(...) x params_per_rank (sum over adapted projections of
    in + out)."""
    return download_rank(rule, own_rank, aggregated_ranks) * int(params_per_rank)


def download_bits(rule: str, own_rank: int, aggregated_ranks: Sequence[int], params_per_rank: int,
                  bits_per_param: int) -> int:
    """Bits one download carries: download_params(...) x bits_per_param."""
    return download_params(rule, own_rank, aggregated_ranks, params_per_rank) * int(bits_per_param)


def upload_bits(own_rank: int, params_per_rank: int, bits_per_param: int) -> int:
    """Bits one upload carries: the client's own rank x params_per_rank x bits_per_param."""
    return upload_rank(own_rank) * int(params_per_rank) * int(bits_per_param)
