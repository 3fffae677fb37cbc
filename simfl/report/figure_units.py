"""How a report names and shows a summary figure: its label, its unit and its scale, read from the figure's name.

Every figure's name carries its unit (DESIGN.md rule 1: `sim_time_s`, `kwh_total`, `co2_kg`, `energy_j.total`), and
money is `cost_*` or `capex*` in the scenario's one currency, so a figure added to simfl.summary.FIGURES is shown
with its unit without an edit here; only a friendlier label than its name needs a line in LABELS. The one place
the plan report takes a unit from: no unit string is written anywhere else in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from simfl.summary.make import SECONDS_PER_HOUR

# Friendlier labels than the name; any other figure is labelled by its name without its unit suffix.
LABELS = {
    "sim_time_s": "time", "kwh_total": "energy", "co2_kg": "CO2", "co2_embodied_kg": "embodied CO2",
    "co2_total_kg": "CO2 in all", "cost_energy": "energy cost",
    "cost_hardware": "hardware cost", "cost_data": "data cost", "cost_total": "total cost",
    "capex": "up-front capex", "rounds_completed": "rounds",
    "p_target_by_deadline": "chance of reaching the target by the deadline",
}
# Shorter labels for a table's narrow column heads, where the label is long.
SHORT = {"p_target_by_deadline": "P(target in time)"}
# A unit suffix of a name (of its first part: energy_j.total is in joules) -> the unit shown. Time has its own rule.
SUFFIX_UNITS = {"_kwh": "kWh", "_kg": "kg", "_g_co2": "g CO2", "_j": "J", "_w": "W", "_bits": "bits",
                "_bytes": "bytes", "_bps": "bit/s", "_flops": "FLOP"}
# Time is shown in the largest of these that keeps the largest value at 1 or more of it (a 50 s run in s, a
# 41-hour job in hours: never 0.0139 h nor 148,000 s).
TIME_UNITS = (("h", SECONDS_PER_HOUR), ("min", 60.0), ("s", 1.0))


def is_money(name: str) -> bool:
    return name.startswith("cost") or name.startswith("capex")


def _head(name: str) -> str:
    return name.split(".")[0]


@dataclass(frozen=True)
class Shown:
    """One figure as a report shows it: `value(x)` is x / scale in `unit`; `text(x)` adds the unit."""

    name: str
    label: str
    unit: str
    scale: float = 1.0
    kind: str = "other"  # time, money, share, other
    short: str = ""  # a table's column head, where shorter than the label

    def value(self, x: float | None) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else x / self.scale

    def number(self, x: float | None) -> str:
        """x in this unit, without the unit: money to the cent below 100, time to 0.1."""
        v = self.value(x)
        if v is None:
            return "n/a"
        if self.kind == "money":
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
        if self.kind == "share":
            return f"{v:.0f}"
        if self.kind == "time":  # 72 h, 13.7 h, 4.25 min
            return f"{v:,.1f}".removesuffix(".0") if abs(v) >= 10 else f"{v:.3g}"
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"

    def text(self, x: float | None) -> str:
        """x with its unit; a time in its own unit (a table's column keeps one: `number`), so a sentence says
        "4.28 min, 3.28 min over the 60 s limit", never "0.0167 min"."""
        if self.kind == "time" and self.value(x) is not None:
            return shown(self.name, values=[x]).number(x) + " " + shown(self.name, values=[x]).unit
        n = self.number(x)
        return n if n == "n/a" or not self.unit else f"{n} {self.unit}"

    def header(self, what: str = "") -> str:
        """A table column's head: "time, 95th percentile (h)"."""
        return f"{self.short or self.label}{', ' + what if what else ''}" + (f" ({self.unit})" if self.unit else "")


def label_of(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    head, _, rest = name.partition(".")
    for suffix in (*SUFFIX_UNITS, "_s"):
        if head.endswith(suffix):
            head = head[: -len(suffix)]
            break
        if head.startswith(suffix[1:] + "_"):
            head = head[len(suffix):]
            break
    words = " ".join(p for p in (head, rest) if p).replace("_", " ")
    return " ".join("CO2" if w == "co2" else w for w in words.split())


def shown(name: str, currency: str = "", values: Iterable[float | None] = ()) -> Shown:
    """How `name` is shown; `values` (in the figure's own unit) pick the unit of a time."""
    label, head = label_of(name), _head(name)
    if is_money(name):
        return Shown(name, label, currency, kind="money")
    if name.startswith("p_"):  # a probability
        return Shown(name, label, "%", 0.01, kind="share", short=SHORT.get(name, ""))
    if head.endswith("_s"):
        top = max((abs(v) for v in values if v is not None and not math.isnan(v)), default=SECONDS_PER_HOUR)
        unit, scale = next(((u, s) for u, s in TIME_UNITS if top >= s), TIME_UNITS[-1])
        return Shown(name, label, unit, scale, kind="time")
    for suffix, unit in SUFFIX_UNITS.items():
        if head.endswith(suffix) or head.startswith(suffix[1:] + "_"):  # co2_kg, kwh_total
            return Shown(name, label, unit)
    return Shown(name, label, "")
