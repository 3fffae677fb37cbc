"""report.html for run, sweep and plan: one self-contained file (styles inline, figures as data: URIs), so it
opens anywhere without a network. Every figure it shows is read from the summary, the table or plan.json."""

from __future__ import annotations

from pathlib import Path

from simfl.report.page import esc as _e, kpis as _kpis, num as _num, png as _png, page as _page, table as _table
from simfl.safeio import atomic_write_text


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


def _scatter(df, x: str, y: str, best_point):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(df[x], df[y], s=18, color="0.55", label="evaluated")
    if best_point is not None:
        b = df[df["point"] == best_point]
        ax.scatter(b[x], b[y], s=120, marker="*", color="tab:red", zorder=5, label="recommended")
    ax.set(xlabel=x, ylabel=y)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plan_report(result, spec_path: Path) -> Path:
    """report.html of a plan: simfl/report/plan_page.py."""
    from simfl.report.plan_page import plan_report as write

    return write(result, spec_path)
