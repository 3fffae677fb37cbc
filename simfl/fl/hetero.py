"""Heterogeneous LoRA ranks, the tensor half: HetLoRA zero-padding with per-rank weighting, and FLoRA stacking.

States are dicts name -> tensor as `clients.trainable_state` returns them from a
peft model: for each adapted projection `<module>.lora_A.<adapter>.weight` of
shape (r, in) and `<module>.lora_B.<adapter>.weight` of shape (out, r); the
update the pair makes is s * B A (s the LoRA scaling). Each client i has its own
rank r_i and a weight w_i (its sample count, times any staleness factor);
p_i = w_i / sum_j w_j. Pure functions: nothing is modified in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from simfl.fl.strategies.fedavg import weighted_mean

Params = dict[str, torch.Tensor]


def is_a(key: str) -> bool:
    return ".lora_A." in key


def is_b(key: str) -> bool:
    return ".lora_B." in key


def module_of(key: str) -> str:
    """The adapted projection a LoRA key belongs to (`...SelfAttention.q` of `...q.lora_A.default.weight`)."""
    return key.split(".lora_A.")[0] if is_a(key) else key.split(".lora_B.")[0]


def base_key(key: str) -> str:
    """The frozen weight (out, in) a LoRA key adapts, as peft names it: `<module>.base_layer.weight`."""
    return module_of(key) + ".base_layer.weight"


def rank_of(state: Params) -> int:
    """The rank of an adapter state: the rows of its lora_A matrices (one rank for all of them)."""
    ranks = {int(t.shape[0]) for k, t in state.items() if is_a(k)}
    if len(ranks) != 1:
        raise ValueError(f"an adapter state has one rank; found {sorted(ranks) or 'no lora_A weights'}")
    return ranks.pop()


def pad(state: Params, r_max: int) -> Params:
    """Zero-padding to rank r_max: A gets zero rows r_i..r_max-1, B zero columns; other tensors as they are."""
    out = {}
    for k, t in state.items():
        if is_a(k):
            out[k] = torch.cat([t, t.new_zeros(r_max - t.shape[0], t.shape[1])], dim=0)
        elif is_b(k):
            out[k] = torch.cat([t, t.new_zeros(t.shape[0], r_max - t.shape[1])], dim=1)
        else:
            out[k] = t
    return out


def truncate(state: Params, r: int) -> Params:
    """The leading r rank slots: A[:r, :] and B[:, :r] (what a client of rank r receives of the global)."""
    return {k: t[:r, :].clone() if is_a(k) else t[:, :r].clone() if is_b(k) else t.clone()
            for k, t in state.items()}


def zero_pad_mean(states: Sequence[Params], weights: Sequence[float], current: Params) -> Params:
    """HetLoRA's aggregation (Cho et al., "Heterogeneous LoRA for Federated Fine-tuning of On-Device
    Foundation Models", 2024, arXiv:2401.06432): each client's A_i, B_i are zero-padded to the global rank r_max
    (the rank of `current`, the global adapter), then averaged with per-rank weighting:

        A[j, :] = sum_{i: r_i > j} w_i A_i[j, :] / sum_{i: r_i > j} w_i     (row j of every lora_A)
        B[:, j] = sum_{i: r_i > j} w_i B_i[:, j] / sum_{i: r_i > j} w_i     (column j of every lora_B)

    i.e. rank slot j is the weighted mean of the clients whose rank covers it, not of all clients (a
    padded zero is no vote). A slot no client covers keeps its value in `current`; tensors that are not
    LoRA matrices are the weighted mean over all clients. With one rank this is `weighted_mean` exactly.
    The padding and the truncation are HetLoRA's; the weights are the clients' sample counts per covered
    slot, as stated above. HetLoRA's sparsity-weighted aggregation (weights from the norm of each update)
    and its local rank self-pruning are not implemented. Each client then receives `truncate(global, r_i)`.
    """
    if not states or len(states) != len(weights):
        raise ValueError("need one weight per client state, and at least one state")
    ranks = [rank_of(s) for s in states]
    r_max = rank_of(current)
    if max(ranks) > r_max:
        raise ValueError(f"a client's rank {max(ranks)} exceeds the global adapter's {r_max}")
    out: Params = {}
    for k, now in current.items():
        if not (is_a(k) or is_b(k)):
            out[k] = weighted_mean([{k: s[k]} for s in states], weights)[k]
            continue
        t = now.clone()
        lo = 0
        for hi in sorted(set(ranks)):  # slots lo..hi-1 are covered by exactly the clients of rank >= hi
            cover = [i for i, r in enumerate(ranks) if r >= hi]
            sl = (slice(lo, hi), slice(None)) if is_a(k) else (slice(None), slice(lo, hi))
            t[sl] = weighted_mean([{k: states[i][k][sl]} for i in cover], [weights[i] for i in cover])[k]
            lo = hi
        out[k] = t
    return out


def stack(states: Sequence[Params], weights: Sequence[float]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """FLoRA's stacking (Wang et al., "FLoRA: Federated Fine-Tuning Large Language Models with Heterogeneous
    Low-Rank Adaptations", NeurIPS 2024): per adapted module, (B, A) with

        B = [p_1 B_1, p_2 B_2, ..., p_n B_n]   (out x sum_i r_i)
        A = [A_1; A_2; ...; A_n]                (sum_i r_i x in)

    so that B A = sum_i p_i B_i A_i exactly: the weighted mean of the clients' updates, with no cross terms
    (the mean of the B's times the mean of the A's has them). This stack is what the download carries
    (rank sum_i r_i: simfl.lora_ranks.stack_download_rank). Keyed by module (`module_of`)."""
    if not states or len(states) != len(weights):
        raise ValueError("need one weight per client state, and at least one state")
    total = float(sum(weights))
    out = {}
    for k in states[0]:
        if is_a(k):
            kb = k.replace(".lora_A.", ".lora_B.")
            out[module_of(k)] = (torch.cat([(w / total) * s[kb] for s, w in zip(states, weights)], dim=1),
                                 torch.cat([s[k] for s in states], dim=0))
        elif not is_b(k):
            raise ValueError(f"stacking aggregates LoRA matrices only; {k} is not one")
    return out


def stacked_delta(states: Sequence[Params], weights: Sequence[float], scaling: float) -> Params:
    """The global update FLoRA merges into the base weights: s * B A of the stack, keyed by `base_key`
    (`<module>.base_layer.weight`, shape out x in)."""
    lora_a = {module_of(k): k for k in states[0] if is_a(k)}
    return {base_key(lora_a[m]): scaling * (b @ a) for m, (b, a) in stack(states, weights).items()}


def fresh_adapter(template: Params, gen: torch.Generator) -> Params:
    """A newly initialised adapter of the template's shapes, as peft initialises one: B = 0, A uniform in
    +-1/sqrt(in) (kaiming_uniform_ with a = sqrt(5)); so s * B A = 0, and training starts from the base."""
    out = {}
    for k, t in template.items():
        if is_a(k):
            bound = 1.0 / math.sqrt(t.shape[1])
            out[k] = (torch.rand(t.shape, generator=gen, dtype=t.dtype) * 2 - 1) * bound
        elif is_b(k):
            out[k] = torch.zeros_like(t)
        else:
            raise ValueError(f"a fresh adapter has LoRA matrices only; {k} is not one")
    return out
