"""Money: energy, hardware held for the job (bought and written off, or rented), and data moved, in the
scenario's one currency."""

from __future__ import annotations

from simfl.config.profiles import HOURS_PER_YEAR
from simfl.config.scenario import Scenario
from simfl.costs import data_cost, energy_cost, hardware_cost
from simfl.errors import ScenarioError


def _held(scenario: Scenario) -> list[tuple[str, object, int]]:
    """(field, profile, count) of every device the job holds: each fleet group, and the server."""
    return [*((f"fleet[{i}].device", scenario.hardware[g.device], g.count) for i, g in enumerate(scenario.fleet)),
            ("server.device", scenario.hardware[scenario.server.device], 1)]


def check_currencies(scenario: Scenario) -> None:
    """Every price the scenario uses is in accounting.currency (simfl converts no currency), and every held device
    has the price the scenario charges it by."""
    if scenario.accounting.hardware_charge == "rental":
        for field, p, _ in _held(scenario):
            if p.price is not None and p.price.rental_per_hour is None:
                raise ScenarioError(f"accounting.hardware_charge is rental, but {p.name} has no rental_per_hour "
                                    f"(only a purchase price): patch one in (devices.{p.name}.price.rental_per_hour) "
                                    "or charge life_share or purchase", field=field)
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


def _rents(scenario: Scenario, price) -> bool:
    """Whether the job pays this price by the hour (else it pays the purchase, whole or as a share of its life)."""
    return scenario.accounting.hardware_charge == "rental" or price.purchase is None


def price_ranges(scenario: Scenario) -> dict[str, tuple[float, float, float]]:
    """Per held device whose charged price has a range in its profile: (price, low, high), the charged basis's."""
    out = {}
    for _, p, _ in _held(scenario):
        if p.price is None:
            continue
        value, rng = ((p.price.rental_per_hour, p.price.rental_per_hour_range) if _rents(scenario, p.price)
                      else (p.price.purchase, p.price.purchase_range))
        if rng is not None:
            out[p.name] = (value, *rng)
    return out


def _charge(scenario: Scenario, price, rate: float, count: int, sim_time_s: float) -> dict:
    """What the job pays for `count` devices of one price under accounting.hardware_charge: {per_hour (None when a
    purchase is charged whole), cost, bought, charge}."""
    acc = scenario.accounting
    if _rents(scenario, price):
        per_hour = price.rental_per_hour * rate
        return {"per_hour": per_hour, "cost": hardware_cost(count, per_hour, sim_time_s), "bought": False,
                "charge": "rental"}
    if acc.hardware_charge == "purchase":
        return {"per_hour": None, "cost": count * price.purchase * rate / acc.jobs, "bought": True,
                "charge": "purchase" if acc.jobs == 1 else f"purchase / {acc.jobs} jobs"}
    per_hour = price.per_hour * rate
    return {"per_hour": per_hour, "cost": hardware_cost(count, per_hour, sim_time_s), "bought": True,
            "charge": "life_share"}


def embodied(scenario: Scenario, sim_time_s: float) -> tuple[float, list[dict]]:
    """The embodied CO2 (kg) charged to the job, and one row per held device: its figure charged as its price is
    (whole, over accounting.jobs, where hardware_charge: purchase buys it; else, rented or bought, the job's share of
    the device's life, since it was made either way), or `kg` None where the profile has no figure (not counted)."""
    acc = scenario.accounting
    rows, total_kg = [], 0.0
    for field, p, count in _held(scenario):
        e = p.embodied
        if e is None:
            rows.append({"field": field, "device": p.name, "count": count, "co2e_kg_each": None, "kg": None,
                         "source": None})
            continue
        if acc.hardware_charge == "purchase" and p.price is not None and not _rents(scenario, p.price):
            kg = count * e.co2e_kg / acc.jobs  # bought for these jobs: made for them
        else:
            life = e.service_life_years or p.price.service_life_years
            kg = count * e.co2e_kg * sim_time_s / (life * HOURS_PER_YEAR * 3600.0)
        total_kg += kg
        rows.append({"field": field, "device": p.name, "count": count, "co2e_kg_each": e.co2e_kg, "kg": kg,
                     "source": e.source})
    return total_kg, rows


def money(scenario: Scenario, sim_time_s: float, group_bits: dict[int, float], energy_kwh: float,
          price_factors: dict[str, float] | None = None) -> tuple[dict, list]:
    """The summary's cost figures and their breakdown, and a warning naming what has no price. `price_factors`:
    a replicate's draw of each ranged price (device -> multiplier of its charged price; capex moves with a drawn
    purchase)."""
    hardware, data, unpriced = [], [], []
    capex = 0.0
    factors = price_factors or {}
    for field, p, count in _held(scenario):
        if p.price is None:
            unpriced.append(p.name)
            continue
        rate = _rate(scenario, p.price.currency) * factors.get(p.name, 1.0)
        hardware.append({"field": field, "device": p.name, "count": count,
                         **_charge(scenario, p.price, rate, count, sim_time_s)})
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
