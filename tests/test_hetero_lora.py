"""Heterogeneous LoRA ranks: HetLoRA zero-padding, FLoRA stacking and the download size rule, on matrices
worked by hand."""

import pytest
import yaml

from simfl.catalog import CATALOG
from simfl.lora_ranks import download_bits, download_params, download_rank, group_ranks, ranks_differ, upload_bits

torch = pytest.importorskip("torch")

from simfl.fl import hetero  # noqa: E402

A, B = "q.lora_A.default.weight", "q.lora_B.default.weight"
T = lambda rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731

# Two clients on one projection in = 2 -> out = 2. Client 1: rank 1, 1 sample; client 2: rank 2, 3 samples.
C1 = {A: T([[1, 2]]), B: T([[1], [2]])}
C2 = {A: T([[3, 4], [5, 6]]), B: T([[1, 2], [3, 4]])}
W = [1.0, 3.0]
GLOBAL = {A: T([[9, 9], [9, 9]]), B: T([[9, 9], [9, 9]])}  # the current rank-2 global (its values unused here)


def test_zero_padding_to_the_largest_rank():
    p = hetero.pad(C1, 2)
    assert torch.equal(p[A], T([[1, 2], [0, 0]])) and torch.equal(p[B], T([[1, 0], [2, 0]]))


def test_zero_pad_mean_weights_each_rank_slot_over_the_clients_that_have_it():
    # slot 0 (A's row 0, B's column 0): both clients, weights 1 and 3: (1 [1 2] + 3 [3 4]) / 4 = [2.5 3.5];
    # B: (1 [1 2] + 3 [1 3]) / 4 = [1 2.75]. Slot 1: client 2 only: A row [5 6], B column [2 4].
    g = hetero.zero_pad_mean([C1, C2], W, GLOBAL)
    assert torch.equal(g[A], T([[2.5, 3.5], [5, 6]]))
    assert torch.equal(g[B], T([[1, 2], [2.75, 4]]))


def test_per_rank_weighting_is_not_plain_averaging_of_the_padded_adapters():
    # plain weighted averaging of the padded adapters over all clients would give A's row 1
    # (1 [0 0] + 3 [5 6]) / 4 = [3.75 4.5] and B's column 1 (1 [0 0] + 3 [2 4]) / 4 = [1.5 3]: the padded
    # zeros of client 1 would pull slot 1 toward 0. Per-rank weighting keeps client 2's [5 6] and [2 4].
    g = hetero.zero_pad_mean([C1, C2], W, GLOBAL)
    assert g[A][1].tolist() == [5.0, 6.0] and g[A][1].tolist() != [3.75, 4.5]
    assert g[B][:, 1].tolist() == [2.0, 4.0] and g[B][:, 1].tolist() != [1.5, 3.0]


def test_each_client_receives_the_global_truncated_to_its_rank():
    g = {A: T([[2.5, 3.5], [5, 6]]), B: T([[1, 2], [2.75, 4]])}
    one = hetero.truncate(g, 1)
    assert torch.equal(one[A], T([[2.5, 3.5]])) and torch.equal(one[B], T([[1], [2.75]]))
    two = hetero.truncate(g, 2)
    assert torch.equal(two[A], g[A]) and torch.equal(two[B], g[B])
    assert hetero.rank_of(one) == 1 and hetero.rank_of(two) == 2


def test_a_slot_no_aggregated_client_covers_keeps_the_current_global():
    # only the rank-1 client this round: slot 0 is its own values (weight 1 of 1), slot 1 stays at 9
    g = hetero.zero_pad_mean([C1], [1.0], GLOBAL)
    assert torch.equal(g[A], T([[1, 2], [9, 9]])) and torch.equal(g[B], T([[1, 9], [2, 9]]))


def test_with_one_rank_zero_pad_is_the_weighted_mean_exactly():
    from simfl.fl.strategies import weighted_mean

    gen = torch.Generator().manual_seed(0)
    states = [{A: torch.randn(4, 6, generator=gen), B: torch.randn(5, 4, generator=gen),
               "head.weight": torch.randn(3, generator=gen)} for _ in range(3)]
    w = [7.0, 2.0, 5.5]
    got, want = hetero.zero_pad_mean(states, w, states[0]), weighted_mean(states, w)
    assert all(torch.equal(got[k], want[k]) for k in want)
    # a tensor that is not a LoRA matrix is the weighted mean over all clients, whatever their ranks
    mixed = [{A: T([[1, 1]]), B: T([[1], [1]]), "h": T([2.0])}, {**C2, "h": T([6.0])}]
    assert hetero.zero_pad_mean(mixed, W, {**GLOBAL, "h": T([0.0])})["h"].tolist() == [5.0]  # (2 + 18) / 4


def test_flora_stacks_weighted_b_and_a_and_their_product_is_the_weighted_sum_of_b_a():
    # p = (1/4, 3/4). B = [p1 B1 | p2 B2] = [[0.25, 0.75, 1.5], [0.5, 2.25, 3]]; A = [A1; A2], rank 1 + 2 = 3.
    (b, a), = hetero.stack([C1, C2], W).values()
    assert torch.equal(b, T([[0.25, 0.75, 1.5], [0.5, 2.25, 3]]))
    assert torch.equal(a, T([[1, 2], [3, 4], [5, 6]]))
    # B1 A1 = [[1, 2], [2, 4]], B2 A2 = [[13, 16], [29, 36]]; 1/4 of the first + 3/4 of the second:
    assert torch.equal(b @ a, T([[10, 12.5], [22.25, 28]]))
    # averaging B and A separately would not give it (the cross terms): mean B (padded) x mean A (padded)
    pb, pa = (1 * hetero.pad(C1, 2)[B] + 3 * C2[B]) / 4, (1 * hetero.pad(C1, 2)[A] + 3 * C2[A]) / 4
    assert not torch.allclose(pb @ pa, b @ a)


def test_flora_delta_is_scaled_and_keyed_by_the_base_weight_it_merges_into():
    d = hetero.stacked_delta([C1, C2], W, scaling=2.0)
    assert list(d) == ["q.base_layer.weight"]
    assert torch.equal(d["q.base_layer.weight"], T([[20, 25], [44.5, 56]]))


def test_a_fresh_adapter_starts_from_the_base():
    f = hetero.fresh_adapter({A: torch.ones(3, 16), B: torch.ones(4, 3)}, torch.Generator().manual_seed(1))
    assert torch.equal(f[B], torch.zeros(4, 3))
    assert f[A].shape == (3, 16) and float(f[A].abs().max()) <= 0.25 and float(f[A].std()) > 0.05  # 1/sqrt(16)


def test_download_size_rule():
    # in = out = 2: a rank slot is A's row (2) plus B's column (2) = 4 parameters, 32 bits each
    assert download_rank("stack", 1, [1, 2]) == 3  # ranks add up
    assert download_params("stack", 1, [1, 2], 4) == 12 and download_bits("stack", 1, [1, 2], 4, 32) == 384
    assert download_params("stack", 2, [1, 2], 4) == 12  # the same stack for every client
    assert download_params("zero_pad", 1, [1, 2], 4) == 4 and download_bits("zero_pad", 2, [1, 2], 4, 32) == 256
    assert download_params("stack", 2, [], 4) == 8  # before any aggregation: its own adapter
    assert upload_bits(1, 4, 32) == 128 and upload_bits(2, 4, 32) == 256
    # FLAN-T5-small, q and v: (512 + 6 x 64) x 2 projections x (8 encoder + 2 x 8 decoder blocks) = 43,008 a rank;
    # a stack of ranks 4 and 8 is 12 ranks
    per_rank = CATALOG["flan-t5-small"].lora_params(1, ["q", "v"])
    assert per_rank == 43008 and CATALOG["flan-t5-small"].lora_params(12, ["q", "v"]) == 12 * per_rank
    assert download_params("stack", 4, [4, 8], per_rank) == 516096
    with pytest.raises(ValueError, match="unknown rank aggregation 'pad'"):
        download_rank("pad", 1, [])


def test_group_ranks_default_to_the_model_rank():
    assert group_ranks(16, [None, 4, None]) == [16, 4, 16]
    assert ranks_differ([16, 4]) and not ranks_differ([8, 8])


def _scenario(tmp_path, **edit):
    from simfl.config.load import REPO_ROOT

    sc = yaml.safe_load((REPO_ROOT / "scenarios" / "train" / "tiny-dialogsum.yaml").read_text())
    sc["fleet"] = [{"count": 20, "device": "jetson-agx-orin-64gb", "network": "lte", "lora_r": 4},
                   {"count": 30, "device": "jetson-agx-orin-64gb", "network": "lte"}]
    for path, v in edit.items():
        *head, last = path.split(".")
        node = sc
        for h in head:
            node = node[int(h)] if h.isdigit() else node[h]
        node[last] = v
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sc, sort_keys=False))
    return p


def test_scenario_keys_load_default_and_dump_as_written(tmp_path):
    import simfl
    from simfl.config.load import REPO_ROOT, dump_scenario

    sc = simfl.load_scenario(_scenario(tmp_path))
    assert sc.lora_ranks == [4, 16] and sc.model.rank_rule == "zero_pad" and sc.model.rank_aggregation is None
    assert simfl.load_scenario(_scenario(tmp_path, **{"model.rank_aggregation": "stack"})).model.rank_rule == "stack"
    shipped = simfl.load_scenario(REPO_ROOT / "scenarios" / "train" / "tiny-dialogsum.yaml")
    dumped = yaml.safe_load(dump_scenario(shipped))  # a scenario that sets neither key dumps as before
    assert "rank_aggregation" not in dumped["model"] and all("lora_r" not in g for g in dumped["fleet"])
    again = yaml.safe_load(dump_scenario(sc))
    assert [g.get("lora_r") for g in again["fleet"]] == [4, None]


def test_a_group_rank_with_full_finetuning_names_the_field(tmp_path):
    import simfl

    with pytest.raises(simfl.ScenarioError) as e:
        simfl.load_scenario(_scenario(tmp_path, **{"model.finetuning": "full"}))
    assert str(e.value).endswith("fleet[0].lora_r: a LoRA rank (4) needs model.finetuning lora, not full")
    with pytest.raises(simfl.ScenarioError, match=r"model.rank_aggregation: Input should be 'zero_pad' or 'stack'"):
        simfl.load_scenario(_scenario(tmp_path, **{"model.rank_aggregation": "sum"}))


def test_the_size_rule_imports_nothing_but_the_standard_library():
    # the simulation core may call it: no torch, numpy or config behind it
    import ast
    from pathlib import Path

    import simfl.lora_ranks as rule

    tree = ast.parse(Path(rule.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names == {"__future__", "collections.abc", "typing"}
