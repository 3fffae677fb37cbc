"""Money: energy, hardware held for the job (bought and written off, or rented), and data moved, in the
scenario's one currency."""

from __future__ import annotations

from simfl.config.scenario import Scenario
from simfl.costs import data_cost, energy_cost, hardware_cost
from simfl.errors import ScenarioError


def _held(scenario: Scenario) -> list[tuple[str, object, int]]:
    """(field, profile, count) of every device the job holds: each fleet group, and the server."""
    return [*((f"fleet[{i}].device", scenario.hardware[g.device], g.count) for i, g in enumerate(scenario.fleet)),
            ("server.device", scenario.hardware[scenario.server.device], 1)]


def check_currencies(scenario: Scenario) -> None:
    """Every price the scenario uses is in accounting.currency (simfl converts no currency)."""
    cur = scenario.accounting.currency
    priced = [(f, p.name, p.price) for f, p, _ in _held(scenario) if p.price is not None]
    priced += [(f"fleet[{i}].network", scenario.networks[g.network].name, scenario.networks[g.network].data_price)
               for i, g in enumerate(scenario.fleet)]
    priced.append(("server.network", scenario.networks[scenario.server.network].name,
                   scenario.networks[scenario.server.network].data_price))
    rates = scenario.accounting.exchange_rates
    for field, name, price in priced:
        if price is not None and price.currency != cur and price.currency not in rates:
            raise ScenarioError(f"{name} is priced in {price.currency}, but the scenario counts in {cur} "
                                f"(accounting.currency): give accounting.exchange_rates.{price.currency} ({cur} per "
                                f"{price.currency}), or count in {price.currency}", field=field)


def _rate(scenario: Scenario, currency: str) -> float:
    """accounting.currency per unit of `currency`."""
    return 1.0 if currency == scenario.accounting.currency else scenario.accounting.exchange_rates[currency]


def money(scenario: Scenario, sim_time_s: float, group_bits: dict[int, float], energy_kwh: float) -> tuple[dict, list]:
    """The summary's cost figures and their breakdown, and a warning naming what has no price."""
    hardware, data, unpriced = [], [], []
    capex = 0.0
    for field, p, count in _held(scenario):
        if p.price is None:
            unpriced.append(p.name)
            continue
        rate = _rate(scenario, p.price.currency)
        per_hour = p.price.per_hour * rate
        hardware.append({"field": field, "device": p.name, "count": count, "per_hour": per_hour,
                         "cost": hardware_cost(count, per_hour, sim_time_s), "bought": p.price.purchase is not None})
        capex += count * (p.price.purchase or 0.0) * rate
    total_bits = sum(group_bits.values())
    links = [(f"fleet[{i}].network", scenario.networks[g.network], group_bits.get(i, 0.0))
             for i, g in enumerate(scenario.fleet)]
    links.append(("server.network", scenario.networks[scenario.server.network], total_bits))
    for field, net, bits in links:
        if net.data_price is not None and net.data_price.per_gb > 0:
            per_gb = net.data_price.per_gb * _rate(scenario, net.data_price.currency)
            data.append({"field": field, "network": net.name, "gb": bits / 8e9, "per_gb": per_gb,
                         "cost": data_cost(bits, per_gb)})
    e = energy_cost(energy_kwh, scenario.accounting.price_per_kwh)
    h, d = sum(r["cost"] for r in hardware), sum(r["cost"] for r in data)
    figures = {"cost_energy": e, "cost_hardware": h, "cost_data": d, "cost_total": e + h + d, "capex": capex,
               "currency": scenario.accounting.currency, "costs": {"hardware": hardware, "data": data}}
    warnings = []
    if unpriced:
        names = ", ".join(sorted(set(unpriced)))
        warnings.append(f"no price for {names}: its hardware cost is not counted (add `price:` to the profile)")
    return figures, warnings
