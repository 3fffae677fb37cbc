"""Run the paper grid and print simfl's communication kWh per round and G beside the paper's Table 1.

    python scripts/paper_table1.py > /tmp/table.md

Each scenario runs in full (its paper round count) with the paper-* links; the
same scenario is re-run with the lte / ethernet-1gbit links built from the
Vishwanath et al. per-element constants, to show what the literature constants give.
"""

from pathlib import Path

import simfl
from simfl.config.load import find_data_file, load_model
from simfl.config.profiles import NetworkModel

ROOT = Path(__file__).resolve().parents[1]
# Table 1 of the seed paper as reconstructed from the text extraction: (G, kWh per round).
# None = the cell was lost in extraction (the full-model LTE G for large is almost surely 0.00).
TABLE1 = {
    ("full", "lte", "a100"): {"small": (0.01, 0.81), "base": (0.00, 2.60), "large": (None, 8.22)},
    ("full", "lte", "orin"): {"small": (0.03, 0.81), "base": (0.01, 2.60), "large": (None, 8.22)},
    ("full", "1gbit", "a100"): {"small": (14.90, 0.13), "base": (4.64, 0.40), "large": (1.47, 1.27)},
    ("full", "1gbit", "orin"): {"small": (32.90, 0.13), "base": (10.23, 0.40), "large": (3.24, 1.27)},
    ("lora", "lte", "a100"): {"small": (1.70, 0.01), "base": (0.65, 0.02), "large": (0.25, 0.05)},
    ("lora", "lte", "orin"): {"small": (3.70, 0.01), "base": (1.44, 0.02), "large": (0.54, 0.05)},
    ("lora", "1gbit", "a100"): {"small": (1690.90, "<0.01"), "base": (664.29, "<0.01"), "large": (244.74, 0.01)},
    ("lora", "1gbit", "orin"): {"small": (3727.30, "<0.01"), "base": (1464.29, "<0.01"), "large": (539.47, 0.01)},
}
LITERATURE = {"lte": "lte", "1gbit": "ethernet-1gbit"}


def run(path: Path, network: str | None = None) -> dict:
    sc = simfl.load_scenario(path)
    if network:
        net = load_model(NetworkModel, find_data_file(network, "network_models", None))
        fleet = [g.model_copy(update={"network": network}) for g in sc.fleet]
        sc = sc.model_copy(update={"fleet": fleet, "networks": {**sc.networks, network: net}})
    return simfl.simulate(sc).summary


def fmt(x) -> str:
    if x is None:
        return "?"
    return x if isinstance(x, str) else f"{x:.4g}"


def main() -> None:
    print("| fine-tuning | link | device | model | paper G | simfl G | paper kWh/round | simfl kWh/round "
          "(paper-* link) | simfl kWh/round (Vishwanath constants) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (ft, link, dev), by_model in TABLE1.items():
        for size, (g_paper, kwh_paper) in by_model.items():
            path = ROOT / "scenarios" / "paper" / f"{size}-{dev}-{link}-{ft}.yaml"
            s = run(path)
            lit = run(path, LITERATURE[link])
            print(f"| {ft} | {link} | {dev} | {size} | {fmt(g_paper)} | {s['granularity_mean']:.4g} | "
                  f"{fmt(kwh_paper)} | {s['kwh_network_per_round_mean']:.4g} | "
                  f"{lit['kwh_network_per_round_mean']:.4g} |")


if __name__ == "__main__":
    main()
