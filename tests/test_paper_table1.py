"""Table 1 of the seed paper: simfl's communication kWh per round reproduces every printed cell."""

import pytest

import simfl
from simfl.config.load import REPO_ROOT

# Table 1, communication kWh per round (10 clients, FedAdamW), as printed: two decimals, "<0.01" below.
TABLE1 = {
    ("full", "lte"): {"small": "0.81", "base": "2.60", "large": "8.22"},
    ("full", "1gbit"): {"small": "0.13", "base": "0.40", "large": "1.27"},
    ("lora", "lte"): {"small": "0.01", "base": "0.02", "large": "0.05"},
    ("lora", "1gbit"): {"small": "<0.01", "base": "<0.01", "large": "0.01"},
}


def _printed(kwh: float) -> str:
    return "<0.01" if kwh < 0.005 else f"{kwh:.2f}"


@pytest.mark.parametrize("ft, link", list(TABLE1))
def test_every_cell_of_table1_to_its_printed_rounding(ft, link):
    for size, printed in TABLE1[(ft, link)].items():
        for device in ("a100", "orin"):
            sc = simfl.load_scenario(REPO_ROOT / f"scenarios/paper/{size}-{device}-{link}-{ft}.yaml")
            sc = sc.model_copy(update={"federation": sc.federation.model_copy(update={"rounds": 2})})
            kwh = simfl.simulate(sc).summary["kwh_network_per_round_mean"]
            assert _printed(kwh) == printed, (size, device, kwh)
