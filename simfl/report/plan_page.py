"""report.html of simfl plan: a page that decides. The recommendation in sentences with units and currency, how
sure it is, the top points, what the recommendation rests on and what drives its spread, the minimised figure
against each constraint, and every point not recommended grouped by why; or, when no point meets the constraints,
which one binds and by how much.

Every number is read from plan.json (result.plan) and the evaluated points' rows (result.rows, as points.csv
holds them); units and labels come from simfl/report/figure_units.py alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from itertools import combinations
from pathlib import Path

from simfl.report.figure_units import Shown, is_money, shown
from simfl.summary.make import SECONDS_PER_HOUR
from simfl.uncertainty import Z95
from simfl.report.page import PLAN_STYLE, esc, kpis, page, png, table
from simfl.safeio import atomic_write_text
from simfl.summary.figures import FIGURES

SHOW_ALL_NAMES = 12  # a chart names each point up to this many


def value_text(x) -> str:
    """A choice's value as its YAML says it: {kind: trace, file: a.csv}, [q, v]."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in x) + "]"
    return str(x)


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


# Figures a points table leaves out (the sentence and the key figures still say them): co2_total_kg is the sum of
# the co2_kg and co2_embodied_kg columns beside it, and one more column pushes the table off a laptop's screen.
TABLE_SKIPS = ("co2_total_kg",)


class PlanView:
    """plan.json and the points' rows, read for the page: which figures, in which units, checked how."""

    def __init__(self, result):
        p = result.plan
        self.p, self.rows, self.space, self.folder = p, result.rows, result.space, result.folder
        self.reps = p["replicates"]
        self.currency = p.get("currency", "")
        self.names = list(result.space[0]) if len(result.space) else []
        self.feasible = list(p["feasible_points"])
        self.ran = {i: r for i, r in sorted(self.rows.items()) if r.get("status") == "ok"}
        self.stopped = {i: r for i, r in sorted(self.rows.items()) if r.get("status") == "stopped"}
        self.constraints = [(f, side, float(limit)) for f, bound in p["subject_to"].items()
                            for side, limit in bound.items() if side in ("max", "min")]
        self.minimize = p["minimize"]
        self._shown: dict[str, Shown] = {}
        self._spread: dict[str, bool] = {}

    # -- figures and units ----------------------------------------------------------------------------------------

    def fig(self, name: str) -> Shown:
        """How `name` is shown, its time unit picked from every value of it on the page (and its limit)."""
        if name not in self._shown:
            values = [r.get(k) for r in self.rows.values() for k in (name, f"{name}_p95", f"{name}_p05")]
            values += [limit for f, _, limit in self.constraints if f == name]
            s = shown(name, self.currency, [v for v in values if isinstance(v, (int, float))])
            deadline_h = self.p["subject_to"].get(name, {}).get("deadline_h")  # p_target_by_deadline's deadline
            if deadline_h:
                within = shown("sim_time_s").text(deadline_h * SECONDS_PER_HOUR)
                s = replace(s, label=f"{s.label} ({within})", short=s.short and f"{s.short} ({within})")
            self._shown[name] = s
        return self._shown[name]

    def spread(self, figure: str) -> bool:
        """Whether the rows hold the figure's percentiles over the draws (with replicates, each summary figure)."""
        if figure not in self._spread:
            self._spread[figure] = self.reps > 1 and any(f"{figure}_p95" in r for r in self.rows.values())
        return self._spread[figure]

    def stat(self, side: str, figure: str) -> str:
        """What a bound is checked at (search.constraint_value): a percentile of the draws, or "" (the figure)."""
        if self.spread(figure):
            return f"{'95th' if side == 'max' else '5th'} percentile of {self.reps} draws"
        return ""

    def checked(self, row: dict, figure: str, side: str) -> float | None:
        """The value a bound is checked against, as simfl/plan/search.py constraint_value takes it."""
        if self.spread(figure):
            return row.get(f"{figure}_{'p95' if side == 'max' else 'p05'}")
        return row.get(figure)

    def limit_text(self, figure: str, side: str, limit: float) -> str:
        return f"{'at most' if side == 'max' else 'at least'} {self.fig(figure).text(limit)}"

    def shown_figures(self, table: bool = False) -> list[str]:
        """The figures the page shows, in FIGURES order: time, energy, every mass (CO2) and money figure, then any
        other figure the plan minimises or constrains; a `table` leaves out a sum of two columns it has."""
        present = [f for f in FIGURES if any(f in r for r in self.rows.values())]
        wanted = [f for f in present if f in ("sim_time_s", "kwh_total") or self.fig(f).unit == "kg" or is_money(f)]
        if table:
            wanted = [f for f in wanted if f not in TABLE_SKIPS or f in (self.minimize, *(c[0] for c in
                                                                                           self.constraints))]
        extra = [f for f in (self.minimize, *(c[0] for c in self.constraints)) if f not in wanted]
        return wanted + list(dict.fromkeys(extra))

    # -- points ---------------------------------------------------------------------------------------------------

    def choices(self, i: int) -> str:
        return ", ".join(f"{n} = {value_text(v)}" for n, v in self.space[i].items())

    def short(self, i: int) -> str:
        return ", ".join(value_text(v) for v in self.space[i].values())

    def misses(self, row: dict) -> list[tuple[float, str, str, float, float | None]]:
        """The constraints a ran point misses: (relative shortfall, figure, side, limit, checked value), the
        worst first; a missing value counts as infinitely short."""
        out = []
        for figure, side, limit in self.constraints:
            v = self.checked(row, figure, side)
            if v is None:
                out.append((math.inf, figure, side, limit, None))
                continue
            gap = v - limit if side == "max" else limit - v
            if gap > 0:
                out.append((gap / abs(limit) if limit else math.inf, figure, side, limit, v))
        return sorted(out, key=lambda m: -m[0])

    def miss_text(self, figure: str, side: str, limit: float, value: float | None) -> str:
        """"finishes in 81.0 h at the 95th percentile of 20 draws, 9.0 h (12 %) over the 72.0 h limit"."""
        s = self.fig(figure)
        if value is None:
            return f"has no {s.label}"
        at = f" at the {self.stat(side, figure)}" if self.stat(side, figure) else ""
        gap = value - limit if side == "max" else limit - value
        pct = f" ({100 * gap / abs(limit):.0f} %)" if limit and s.kind != "share" else ""  # no % of a %
        what = f"finishes in {s.text(value)}" if s.kind == "time" else f"has a {s.label} of {s.text(value)}"
        where = "over the" if side == "max" else "under the"
        return f"{what}{at}, {s.text(gap)}{pct} {where} {s.text(limit)} {'limit' if side == 'max' else 'minimum'}"

    def nearest(self, among: list[int]) -> int | None:
        """The point of `among` whose worst relative shortfall is smallest (ties to the lower number)."""
        scored = [(self.misses(self.rows[i])[0][0], i) for i in among if self.misses(self.rows[i])]
        return min(scored)[1] if scored else None


def plan_report(result, spec_path: Path) -> Path:
    v = PlanView(result)
    p = v.p
    body = [f'<p class="note">{esc(spec_path)}: {esc(p["method"])} search, {p["evaluated"]} of {p["space"]} points '
            f'evaluated: {_n(p["feasible"], "meets", "meet")} every constraint, '
            f'{_n(len(v.ran) - p["feasible"], "misses", "miss")} one, '
            f'{p["invalid"]} could not run, {p["excluded_stopped_early"]} excluded as stopped early. Minimising '
            f'{esc(v.fig(v.minimize).label)}'
            + (f' subject to {esc(_constraints_text(v))}' if v.constraints else "") + ".</p>"]
    body += _verdict(v) if p["best"] is not None else _none_feasible(v)
    body += _top_points(v)
    if p["best"] is not None:
        body += _estimated(v) + _drivers(v)
    body += _charts(v) + _not_recommended(v) + _every_point(v)
    body.append('<p class="note">The same figures are in plan.json (recommendation, confidence, drivers) and '
                'points.csv (every point, with the 95 % interval of the mean and the 5th and 95th percentiles).</p>')
    path = v.folder / "report.html"
    atomic_write_text(path, page(f"simfl plan: {spec_path.name}", body, PLAN_STYLE))
    return path


def _constraints_text(v: PlanView) -> str:
    parts = [f"{v.fig(f).label} {v.limit_text(f, side, limit)}" for f, side, limit in v.constraints]
    at = {v.stat(side, f) for f, side, _ in v.constraints} - {""}
    return " and ".join(parts) + (f" (checked at the {' / '.join(sorted(at))})" if at else "")


# -- the recommendation ---------------------------------------------------------------------------------------------

VERBS = {"sim_time_s": "finishes in {}", "kwh_total": "uses {}", "co2_kg": "emits {} of CO2",
         "co2_embodied_kg": "is charged {} of embodied CO2"}  # any other figure: "label: x"
CHARGES = {"life_share": "the job's share of each device's service life", "purchase": "the purchases whole",
           "rental": "rental by the hour"}  # accounting.hardware_charge, as a sentence says it


def _charge_sentence(v: PlanView) -> str:
    """"Hardware is charged as the purchases whole, shared over 12 jobs" (and, where the figures sentence has no
    embodied CO2 to say it beside, the devices whose embodied CO2 is not counted)."""
    c = v.p.get("hardware_charge")
    parts = []
    if c and c.get("charge") in CHARGES:
        jobs = c.get("jobs", 1)
        parts.append(f"Hardware is charged as {CHARGES[c['charge']]}"
                     + (f", shared over {jobs} jobs" if c["charge"] == "purchase" and jobs > 1 else ""))
    missing = v.p.get("embodied_not_counted") or []
    if missing and v.p["best"] is not None and "co2_embodied_kg" not in v.rows[v.p["best"]["point"]]:
        parts.append(f"embodied CO2 is not counted for {', '.join(missing)} (no published figure)")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""


def parts_of_total(row: dict, names: list[str]) -> list[str]:
    """The most cost_* figures of `names` (cost_total aside) that add up to cost_total (to 0.1 %): what the total
    is made of, whichever parts the summary has (a cost per job or a capex is not a part of it)."""
    names = [n for n in names if n.startswith("cost_") and n != "cost_total" and row.get(n) is not None]
    total = row.get("cost_total")
    if total is None:
        return []
    for k in range(len(names), 0, -1):
        for combo in combinations(names, k):
            if abs(sum(row[n] for n in combo) - total) <= 1e-3 * max(abs(total), 1e-9):
                return list(combo)
    return []


def _figures_sentence(v: PlanView, row: dict) -> str:
    """"finishes in 12 h on average (95th percentile 13.7 h of 20 draws, limit at most 72 h), uses 19.3 kWh, emits
    ... and costs 99.24 EUR in total (energy cost ..., ...); up-front capex: 58,843 EUR"."""
    limits = {f: (side, limit) for f, side, limit in v.constraints}
    phrases, rest = [], []
    shown_names = [n for n in v.shown_figures() if n in row]
    for name in shown_names:
        s = v.fig(name)
        if is_money(name):
            continue
        spread = ""
        if name in limits:
            side, limit = limits[name]
            stat = (f"{'95th' if side == 'max' else '5th'} percentile {s.text(v.checked(row, name, side))} of "
                    f"{v.reps} draws, " if v.spread(name) else "")
            spread = f" ({stat}limit {v.limit_text(name, side, limit)})"
        elif v.reps > 1 and s.kind == "time" and f"{name}_p95" in row:
            spread = f" (95th percentile {s.text(row[f'{name}_p95'])} of {v.reps} draws)"
        missing = v.p.get("embodied_not_counted") or []
        if name == "co2_embodied_kg" and missing:
            spread = f" (not counting {', '.join(missing)}: no published figure)"
        mean = " on average" if v.reps > 1 and name == "sim_time_s" else ""
        if name in VERBS:
            phrases.append(VERBS[name].format(s.text(row[name])) + mean + spread)
        else:
            rest.append(f"{s.label}: {s.text(row[name])}{spread}")
    money = [f for f in shown_names if is_money(f)]
    if "cost_total" in money:
        parts = parts_of_total(row, money)
        detail = ", ".join(f"{v.fig(f).label} {v.fig(f).text(row[f])}" for f in parts)
        phrases.append(f"costs {v.fig('cost_total').text(row['cost_total'])} in total"
                       + (f" ({detail})" if detail else ""))
        money = [f for f in money if f not in parts and f != "cost_total"]
    rest += [f"{v.fig(f).label}: {v.fig(f).text(row[f])}" for f in money]
    return _and(phrases) + "".join(f"; {r}" for r in rest)


def _draws(k: int) -> str:
    return f"{k} draw{'s' if k != 1 else ''}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _lowest(v: PlanView) -> str:
    s = v.fig(v.minimize)
    return "the cheapest" if s.kind == "money" else f"the lowest-{s.label}"


def _verdict(v: PlanView) -> list[str]:
    p, b = v.p, v.p["best"]
    i, row = b["point"], v.rows[b["point"]]
    s = v.fig(v.minimize)
    which = "meet every constraint" if v.constraints else "ran to the end"
    among = (f'{_lowest(v)} of the {p["feasible"]} points that {which}' if p["feasible"] != 1
             else f'the only point that {which.replace("meet ", "meets ")}')
    out = [f'<p><b>Recommended: {esc(v.choices(i))}.</b> It is {among} (of {p["evaluated"]} evaluated).</p>',
           f"<p>With it the job {esc(_figures_sentence(v, row))}. {esc(_charge_sentence(v))}</p>"]
    c = p.get("confidence")
    if c:
        n = c["draws"]
        win = round(c["cheapest_feasible"] * n)
        meets = round(c["meets_constraints"] * n)
        lowest = "cheapest" if s.kind == "money" else f"lowest-{s.label}"
        text = (f"Over the {n} draws (each of the seeds and of every predicted input, the same draw at every point) "
                f"it meets every constraint in {meets} ({100 * meets / n:.0f} %) and is the {lowest} point that "
                f"does in {win} ({100 * win / n:.0f} %)")
        others = [v.choices(o["point"]) + (f" ({_draws(round(o['share'] * n))})" if len(c["other_winners"]) > 1
                                            or c["no_point_feasible"] else "") for o in c["other_winners"]]
        if others:
            text += f"; in the other {_draws(n - win)} the {lowest} point that meets them is " + _and(others)
        nobody = round(c["no_point_feasible"] * n)
        if nobody:
            text += f"; in {nobody} no point meets them"
        out.append(f"<p>{esc(text)}.</p>")
    if p["runners_up"]:
        r = p["runners_up"][0]
        rr = v.rows[r["point"]]
        diff = rr[v.minimize] - row[v.minimize]
        pct = f", {100 * diff / abs(row[v.minimize]):.0f} %" if row[v.minimize] else ""
        out.append(f"<p>The runner-up, {esc(v.choices(r['point']))}, has a {esc(s.label)} of "
                   f"{esc(s.text(rr[v.minimize]))} ({esc(s.text(diff))} more{pct}).</p>")
    cheaper = [j for j, r in v.ran.items() if j not in v.feasible and r.get(v.minimize) is not None
               and r[v.minimize] < row[v.minimize]]
    j = v.nearest(cheaper)
    if j is not None:
        _, f, side, limit, value = v.misses(v.rows[j])[0]
        many = len(cheaper) != 1
        out.append(f"<p>{len(cheaper)} point{'s' if many else ''} with a lower {esc(s.label)} "
                   f"miss{'' if many else 'es'} a constraint; the nearest, {esc(v.choices(j))} "
                   f"({esc(s.text(v.rows[j][v.minimize]))}), {esc(v.miss_text(f, side, limit, value))}.</p>")
    items = [(v.fig(f).label, v.fig(f).text(row.get(f))) for f in v.shown_figures() if f in row]
    if v.reps > 1 and "sim_time_s" in row:
        items.insert(1, ("time, 95th percentile", v.fig("sim_time_s").text(row.get("sim_time_s_p95"))))
    return ['<h2>Recommendation</h2><div class="verdict">', kpis(items), *out, "</div>"]


def _none_feasible(v: PlanView) -> list[str]:
    """Which constraint binds and by how much: per constraint, the point best on it alone; if each is met by some
    point alone, the point nearest to meeting them all."""
    out = ["<p><b>No point meets the constraints.</b></p>"]
    if not v.ran:
        out.append("<p>No point ran to the end: every one could not run or stopped early (the reasons below).</p>")
        return ['<h2>Recommendation</h2><div class="verdict none">', *out, "</div>"]
    binding = False
    for figure, side, limit in v.constraints:
        s = v.fig(figure)
        values = [(v.checked(r, figure, side), i) for i, r in v.ran.items() if v.checked(r, figure, side) is not None]
        if not values:
            continue
        value, i = min(values) if side == "max" else max(values, key=lambda xi: (xi[0], -xi[1]))
        if s.kind == "time":
            who = "fastest point" if side == "max" else "slowest point"
        else:
            who = f"point with the {'lowest' if side == 'max' else 'highest'} {s.label}"
        met = value <= limit if side == "max" else value >= limit
        if met:
            count = sum(1 for x, _ in values if (x <= limit if side == "max" else x >= limit))
            out.append(f"<p>{esc(s.label.capitalize())} {esc(v.limit_text(figure, side, limit))}: {count} of "
                       f"{len(values)} points meet it alone.</p>")
            continue
        binding = True
        out.append(f"<p><b>{esc(s.label.capitalize())} binds:</b> the {esc(who)}, {esc(v.choices(i))}, "
                   f"{esc(v.miss_text(figure, side, limit, value))}. No point meets it; a limit of "
                   f"{esc(s.text(value))} would admit this one.</p>")
    if not binding:
        j = v.nearest(list(v.ran))
        if j is not None:
            misses = [v.miss_text(f, side, limit, value) for _, f, side, limit, value in v.misses(v.rows[j])]
            out.append(f"<p>Each constraint alone is met by some point, but none meets them all. The nearest, "
                       f"{esc(v.choices(j))}, {esc(_and(misses))}.</p>")
    return ['<h2>Recommendation</h2><div class="verdict none">', *out, "</div>"]


# -- tables -----------------------------------------------------------------------------------------------------------

def _columns(v: PlanView) -> list[tuple[str, callable]]:
    """(header, row -> text) of a points table: each shown figure's mean, and where a bound or the replicates
    make one, the percentile the plan checks."""
    limits = {f: side for f, side, _ in v.constraints}
    cols = []
    for name in v.shown_figures(table=True):
        s = v.fig(name)
        cols.append((s.header(), lambda r, s=s, name=name: s.number(r.get(name))))
        side = limits.get(name, "max" if s.kind == "time" else None)
        if v.spread(name) and side:
            cols.append((s.header(f"{'95th' if side == 'max' else '5th'} pct."),
                         lambda r, s=s, name=name, side=side: s.number(v.checked(r, name, side))))
    return cols


def _verdict_cell(v: PlanView, i: int) -> str:
    row = v.rows[i]
    if row.get("status") == "stopped":
        return '<span class="bad wrap">stopped early</span>'
    if i in v.feasible:
        return "meets all"
    named = len({f for f, _, _ in v.constraints}) > 1  # with one constrained figure, its name is in the heading
    misses = [f"{v.fig(f).label + ' ' if named else ''}{v.fig(f).text(x)} {'>' if side == 'max' else '<'} "
              f"{v.fig(f).text(limit)}" for _, f, side, limit, x in v.misses(row)]
    return f'<span class="bad wrap">{esc("; ".join(misses))}</span>'


def _points_table(v: PlanView, points: list[int], ranks: list[str], best: int | None, verdict: bool = True,
                  first: str = "") -> str:
    """One row a point: its choices, each shown figure, and (`verdict`) whether it meets the constraints."""
    cols = _columns(v)
    rows = [[rank, *[value_text(v.space[i][n]) for n in v.names], *[fn(v.rows[i]) for _, fn in cols],
             *([_verdict_cell(v, i)] if verdict else [])] for rank, i in zip(ranks, points)]
    marks = ["best" if i == best else "" for i in points]
    names = [f"<span>{esc(n).replace('.', '.<wbr>')}</span>" for n in v.names]  # a long path may wrap at a dot
    verdict_head = [f"verdict{'' if len(v.constraints) != 1 else ' (' + v.fig(v.constraints[0][0]).label + ')'}"]
    return ('<div class="scroll">' + table([first, *names, *[h for h, _ in cols], *(verdict_head if verdict else [])],
                                           rows, marks) + "</div>")


def _table_note(v: PlanView) -> str:
    if v.reps == 1:
        return ""
    return (f'<p class="note">Each figure is the mean of the {v.reps} draws; a "pct." column is the percentile the '
            "plan checks that figure at.</p>")


def _top_points(v: PlanView) -> list[str]:
    p = v.p
    if p["best"] is not None:
        top = [p["best"]["point"], *[e["point"] for e in p["runners_up"]]]
        return [f"<h2>Top points (by {esc(v.fig(v.minimize).label)}, of those that meet every constraint)</h2>",
                _table_note(v),
                _points_table(v, top, ["best", *[f"#{k + 2}" for k in range(len(top) - 1)]], top[0], verdict=False)]
    near = sorted(v.ran, key=lambda i: (v.misses(v.rows[i])[0][0] if v.misses(v.rows[i]) else 0.0, i))[:6]
    if not near:
        return []
    return ["<h2>Nearest points (smallest shortfall first)</h2>", _table_note(v),
            _points_table(v, near, [f"#{k + 1}" for k in range(len(near))], None)]


def _every_point(v: PlanView) -> list[str]:
    order = sorted([*v.ran, *v.stopped], key=lambda i: (i not in v.feasible, v.rows[i].get(v.minimize) is None,
                                                       v.rows[i].get(v.minimize) or 0.0, i))
    if not order:
        return []
    best = v.p["best"]["point"] if v.p["best"] else None
    return [f"<h2>Every point that ran ({len(order)})</h2>",
            f"<details><summary>Show them: those that meet every constraint first, by {esc(v.fig(v.minimize).label)}"
            "</summary>", _table_note(v), _points_table(v, order, [str(i) for i in order], best, first="point"),
            "</details>"]


def _band(log_sd: float) -> str:
    """A lognormal draw's 90 % range as multipliers of the median: x e^(-Z95 sd) to x e^(+Z95 sd)."""
    return f'<span class="nw">×{math.exp(-Z95 * log_sd):.2f} to ×{math.exp(Z95 * log_sd):.2f}</span>'


def _estimated(v: PlanView) -> list[str]:
    """What the recommendation rests on: the inputs each replicate draws, with their 90 % range, then every input
    nobody measured (summary.json estimated_inputs), with why."""
    drawn = v.p.get("drawn_inputs") or []
    inputs = v.p.get("estimated_inputs") or []
    if not drawn and not inputs:
        return []
    out = ["<h2>What the recommendation rests on</h2>"]
    if drawn:
        out += [f'<p class="note">Each of the {v.reps} draws multiplies these by a lognormal error (median 1: the '
                "value itself; one draw per input, the same at every point), so the percentiles above cover them; "
                f"90 % of draws fall in the range shown, e<sup>−{Z95:.3f}σ</sup> to e<sup>+{Z95:.3f}σ</sup> of "
                "the input's log-sd σ.</p>",
                table(["drawn input", "90 % range"], [[d["input"], _band(d["log_sd"])] for d in drawn], cls="text")]
    if inputs:
        rows = [[x["input"], x["field"], _band(x["log_sd"]) if x.get("log_sd") else "", x["reason"]] for x in inputs]
        out += ['<p class="note">Inputs nobody measured for this configuration, and why each is what it is.</p>',
                table(["estimated input", "field", "error (90 % range)", "why"], rows, cls="text")]
    return out


def _drivers(v: PlanView) -> list[str]:
    drivers = v.p.get("drivers") or []
    if not drivers:
        return []
    out = ["<h2>What drives the spread of the recommendation</h2>",
           '<p class="note">Each uncertain input swung alone to its 5th and 95th percentile (every other at its '
           "median, the base seed), then the seeds alone; the share of the variance each accounts for (one at a "
           "time: interactions are not in it).</p>"]
    if (v.folder / "drivers.png").is_file():
        out.append(png(v.folder / "drivers.png", f"what drives the spread of {v.minimize}"))
    rows = [[d["input"], v.fig(d["figure"]).label, v.fig(d["figure"]).text(d["low"]),
             v.fig(d["figure"]).text(d["high"]), f"{100 * d['variance_share']:.0f} %"] for d in drivers]
    out.append(table(["input", "figure", "input at its 5th percentile", "at its 95th", "share of the variance"],
                     rows))
    return out


# -- charts -----------------------------------------------------------------------------------------------------------

def front_2d(xy: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other is at most on both coordinates and below on one (lower is better on both)."""
    return [k for k, (x, y) in enumerate(xy)
            if not any(a <= x and b <= y and (a < x or b < y) for a, b in xy)]


def _charts(v: PlanView) -> list[str]:
    from simfl.report.plots import tradeoff

    figures: dict[str, tuple[str, float | None]] = {}
    for f, side, limit in v.constraints:
        if f != v.minimize and (f not in figures or side == "max"):
            figures[f] = (side, limit)
    if not figures:  # nothing else constrained: the minimised figure against time
        figures["sim_time_s" if v.minimize != "sim_time_s" else "kwh_total"] = ("max", None)
    ys = v.fig(v.minimize)
    best = v.p["best"]["point"] if v.p["best"] else None
    out = []
    for f, (side, limit) in figures.items():
        xs = v.fig(f)
        pts, ids = [], []
        for i, r in [*v.ran.items(), *v.stopped.items()]:
            x = v.checked(r, f, side) if limit is not None else r.get(f)
            if x is None or r.get(v.minimize) is None:
                continue
            state = "stopped" if i in v.stopped else "feasible" if i in v.feasible else "infeasible"
            pts.append({"x": xs.value(x), "y": ys.value(r[v.minimize]), "state": state, "label": v.short(i),
                         "best": i == best, "x_mean": xs.value(r.get(f)) if v.spread(f) and limit is not None
                         else None})
            ids.append(i)
        if not pts:
            continue
        sign = 1.0 if side == "max" else -1.0
        ran = [k for k, p in enumerate(pts) if p["state"] != "stopped"]
        front = [ran[k] for k in front_2d([(sign * pts[k]["x"], pts[k]["y"]) for k in ran])]
        at = v.stat(side, f) if limit is not None else ("mean of the draws" if v.reps > 1 else "")
        xlabel = xs.header(at)
        ylabel = ys.header("mean of the draws" if v.reps > 1 else "")
        lim = (xs.value(limit), side, f"limit: {v.limit_text(f, side, limit)}") if limit is not None else None
        whiskers = v.spread(f) and limit is not None  # (the heading above says what against what)
        title = f"whiskers: from the mean to the {v.stat(side, f).split(' of ')[0]}" if whiskers else ""
        out += [f"<h2>{esc(ys.label.capitalize())} against {esc(xs.label)}</h2>",
                png(tradeoff(pts, xlabel, ylabel, lim, front, title), f"{v.minimize} against {f}")]
        if len(front) == 1:
            out.append(f'<p class="note">No trade-off here: {esc(v.choices(ids[front[0]]))} is at least as low as '
                       "every other point on both.</p>")
        elif len(pts) > SHOW_ALL_NAMES:
            out.append('<p class="note">Points are named in the tables below.</p>')
    return out


# -- why points were not recommended ----------------------------------------------------------------------------------

def _mask(text: str) -> str:
    return re.sub(r"\d+(?:[.,]\d+)*", "#", text)


def _not_recommended(v: PlanView) -> list[str]:
    """Every point that is not feasible, grouped by reason: each constraint a ran point misses (a point may miss
    more than one), each reason a run stopped early, each reason a point could not run (messages that differ only
    in their numbers are one group)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for i, r in v.ran.items():
        for _, f, side, limit, value in v.misses(r):
            at = f" at the {v.stat(side, f)}" if v.stat(side, f) else ""
            key = (f"{v.fig(f).label} {'over the' if side == 'max' else 'under the'} {v.fig(f).text(limit)} "
                   f"{'limit' if side == 'max' else 'minimum'}{at}")
            groups.setdefault(key, []).append((i, v.miss_text(f, side, limit, value)))
    for i, r in v.stopped.items():
        groups.setdefault("stopped early: " + _mask(r.get("error") or ""), []).append((i, r.get("error") or ""))
    for i, r in sorted(v.rows.items()):
        if r.get("status") in ("invalid", "error"):
            what = "could not run" if r["status"] == "invalid" else "failed"
            groups.setdefault(f"{what}: " + _mask(r.get("error") or ""), []).append((i, r.get("error") or ""))
    if not groups:
        return []
    out = ["<h2>Points not recommended, by reason</h2>",
           '<p class="note">Click a reason for its points. A point that misses several constraints is counted under '
           "each.</p>"]
    for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        texts = {t for _, t in members}
        if key.split(": ", 1)[0] in ("could not run", "failed", "stopped early"):  # the first point's own words
            title = key.split(": ", 1)[0] + ": " + members[0][1] + (" (and the like: the numbers differ)"
                                                                      if len(texts) > 1 else "")
        else:
            title = key
        rows = [[i, *[value_text(v.space[i][n]) for n in v.names], t] for i, t in members]
        out.append(f"<details><summary><b>{len(members)}</b> point{'s' if len(members) != 1 else ''}: "
                   f"{esc(title)}</summary>" + table(["point", *v.names, "why"], rows, cls="text") + "</details>")
    return out
