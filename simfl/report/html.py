"""report.html for run, sweep and plan: one self-contained file (styles inline, figures as data: URIs), so it
opens anywhere without a network. Every figure it shows is read from the summary, the table or plan.json."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from simfl.safeio import atomic_write_text

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1b1f24}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;
text-align:right}th{background:#f5f6f8}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9rem}.best{background:#e8f5e9;font-weight:600}.bad{color:#a33}
img{max-width:100%}.kpi{display:inline-block;margin:0 1.5rem .8rem 0}.kpi b{display:block;font-size:1.4rem}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _num(x, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        text = f"{x:,.4g}" if abs(x) < 1e3 else f"{x:,.0f}"
    else:
        text = f"{x:,}" if isinstance(x, int) else str(x)
    return f"{text} {unit}".strip()


def _png(path_or_fig) -> str:
    if isinstance(path_or_fig, Path):
        data = path_or_fig.read_bytes()
    else:
        buf = io.BytesIO()
        path_or_fig.savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _page(title: str, body: list[str]) -> str:
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>" + "\n".join(body) + "</body></html>\n")


def _table(header: list[str], rows: list[list], marks: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for i, r in enumerate(rows):
        cls = f' class="{marks[i]}"' if marks and marks[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{c if str(c).startswith('<') else _e(c)}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def _kpis(items: list[tuple[str, str]]) -> str:
    return "<div>" + "".join(f'<span class="kpi">{_e(k)}<b>{_e(v)}</b></span>' for k, v in items) + "</div>"


def _money_rows(s) -> list[list]:
    from simfl.report.tables import charge_row

    cur = s.currency
    rows = [["energy", _num(s.cost_energy, cur)], ["hardware (held for the job)", _num(s.cost_hardware, cur)],
            ["data", _num(s.cost_data, cur)], ["total", _num(s.cost_total, cur)],
            ["purchases up front (capex)", _num(s.capex, cur)], list(charge_row(s))]
    return rows


def run_report(result, folder: Path) -> Path:
    """report.html of one run, beside its other outputs (with the timeline and energy plots if written); every
    figure read from result.summary."""
    from simfl.report.tables import embodied_row, status_row

    s = result.summary
    body = [f'<p class="note">seed {s.seed}; {_e(s.population)} clients; written by simfl run</p>',
            _kpis([("simulated time", f"{s.sim_time_h:,.2f} h"), ("energy", f"{s.kwh_total:,.4g} kWh"),
                   ("CO2", f"{s.co2_kg:,.4g} kg"), ("total cost", _num(s.cost_total, s.currency))]),
            "<h2>Summary</h2>",
            _table(["figure", "value"], [
                ["rounds", s.rounds_completed], ["simulated time", _num(s.sim_time_s, "s")],
                ["granularity G (mean of rounds)", _num(s.granularity_mean)],
                list(status_row(s)),
                ["data down / up", f"{s.network_gb.down:,.4g} / {s.network_gb.up:,.4g} GB"],
                ["CO2 (operational)", _num(s.co2_kg, "kg")], list(embodied_row(s))]),
            "<h2>Energy</h2>",
            _table(["part", "kWh"], [[k.replace("_", " "), _num(v)] for k, v in s.energy_kwh.to_dict().items()]),
            "<h2>Cost</h2>", _table(["part", "cost"], _money_rows(s))]
    if (folder / "energy.png").is_file():
        body.append(_png(folder / "energy.png"))
    if (folder / "timeline.png").is_file():
        body += ["<h2>Timeline</h2>", _png(folder / "timeline.png")]
    if s.warnings:
        body += ["<h2>Warnings</h2>", "<ul>" + "".join(f"<li>{_e(w)}</li>" for w in s.warnings) + "</ul>"]
    if s.estimated_inputs:
        body += ["<h2>Estimated inputs</h2>",
                 _table(["field", "input", "reason"], [[x.field, x.input, x.reason] for x in s.estimated_inputs])]
    path = folder / "report.html"
    atomic_write_text(path, _page(f"simfl run: {s.scenario}", body))
    return path


def _show_figures(columns) -> list[str]:
    wanted = ["sim_time_s", "kwh_total", "co2_kg", "cost_total", "cost_hardware", "cost_data", "capex",
              "rounds_completed"]
    return [c for c in wanted if c in columns]


def sweep_report(result, spec_path: Path) -> Path:
    t = result.table
    axes = result.axes
    figs = _show_figures(t.columns)
    rows = []
    marks = []
    for _, r in t.iterrows():
        rows.append([r["point"], *[r[a] for a in axes], *(
            [_num(r[f]) for f in figs] if r["status"] == "ok" else [f'<span class="bad">{_e(r["error"])}</span>']
            + [""] * (len(figs) - 1))])
        marks.append("" if r["status"] == "ok" else "bad")
    stopped = int((t["status"] == "stopped").sum())
    body = [f'<p class="note">{_e(spec_path)}: {len(t)} points, {int((t["status"] == "ok").sum()) + stopped} ran'
            + (f', {stopped} of them stopped early' if stopped else "") + '</p>',
            "<h2>Points</h2>", _table(["point", *axes, *figs], rows, marks)]
    ok = t[t["status"] == "ok"]
    if len(ok) and "sim_time_s" in ok and "cost_total" in ok:
        body += ["<h2>Time and cost</h2>", _png(_scatter(ok, "sim_time_s", "cost_total", None))]
    path = result.folder / "report.html"
    atomic_write_text(path, _page(f"simfl sweep: {spec_path.name}", body))
    return path


def _scatter(df, x: str, y: str, best_point, front: list[int] | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(df[x], df[y], s=18, color="0.55", label="evaluated")
    if front:
        f = df[df["point"].isin(front)].sort_values(x)
        ax.plot(f[x], f[y], "o-", color="tab:blue", label="Pareto front")
    if best_point is not None:
        b = df[df["point"] == best_point]
        ax.scatter(b[x], b[y], s=120, marker="*", color="tab:red", zorder=5, label="recommended")
    ax.set(xlabel=x, ylabel=y)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plan_report(result, spec_path: Path) -> Path:
    import pandas as pd

    p = result.plan
    body = [f'<p class="note">{_e(spec_path)}: {p["method"]} search, {p["evaluated"]} of {p["space"]} points '
            f'evaluated, {p["feasible"]} feasible, {p["invalid"]} invalid, {p["excluded_stopped_early"]} excluded '
            f'as stopped early; constraints checked at {_e(p["constraints_at"])}</p>']
    figs = [p["minimize"], *[f for f in p["subject_to"] if f != p["minimize"]]]
    if p["best"] is None:
        body.append('<p class="bad"><b>No point meets the constraints.</b></p>')
    else:
        b = p["best"]
        body += ["<h2>Recommended</h2>",
                 _kpis([(k, str(v)) for k, v in b["choices"].items()]
                       + [(f, _num(b["figures"][f])) for f in figs]),
                 "<h2>Runners-up</h2>"]
        names = list(b["choices"])
        rows = [["best", *[b["choices"][n] for n in names], *[_num(b["figures"][f]) for f in figs]]]
        rows += [[f"#{i + 2}", *[e["choices"][n] for n in names], *[_num(e["figures"][f]) for f in figs]]
                 for i, e in enumerate(p["runners_up"])]
        body.append(_table(["", *names, *figs], rows, ["best"] + [""] * len(p["runners_up"])))
    front = [e["point"] for e in p["pareto"]]
    ok = [{"point": i, **r} for i, r in result.rows.items() if r.get("status") == "ok"]
    if ok:
        df = pd.DataFrame(ok)
        for f in figs[1:] or ["sim_time_s"]:
            if f in df and p["minimize"] in df:
                body += [f"<h2>Pareto front: {_e(p['minimize'])} against {_e(f)}</h2>",
                         _png(_scatter(df, f, p["minimize"], p["best"]["point"] if p["best"] else None, front))]
    if front:
        names = list(result.space[0])
        body += ["<h2>Non-dominated points</h2>", _table(["point", *names, *figs], [
            [e["point"], *[e["choices"][n] for n in names], *[_num(e["figures"].get(f)) for f in figs]]
            for e in p["pareto"]])]
    if p["stopped_early"]:
        names = list(result.space[0])
        body += ["<h2>Stopped early (not feasible: the run did not finish its rounds)</h2>",
                 _table(["point", *names, "reason"], [[e["point"], *[e["choices"][n] for n in names],
                                                       f'<span class="bad">{_e(e["reason"])}</span>']
                                                      for e in p["stopped_early"]])]
    body.append(f'<p class="note">plan.json: {_e(json.dumps({"best": p["best"]["choices"] if p["best"] else None}))}</p>')
    path = result.folder / "report.html"
    atomic_write_text(path, _page(f"simfl plan: {spec_path.name}", body))
    return path
