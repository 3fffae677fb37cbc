"""The two plots of a run: a Gantt timeline of the first rounds and energy by component."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# "waiting": after its upload, until the round closes and aggregation ends (no client energy).
PHASE_COLORS = {"download": "#4c72b0", "compute": "#dd8452", "upload": "#55a868", "waiting": "#d9d9d9"}


TIMELINE_ROUNDS = 3  # rounds the timeline shows
# Clients that stopped early and left the round: a marker where they stopped.
GONE = {"dropped": ("x", "#c44e52"), "offline": ("v", "#8c564b")}


def bar_spans(r, round_end_s: float) -> list[tuple[str, float, float]]:
    """The timeline segments of one client-round row: its phases, then waiting for the round's end.
    A dropped client failed, an offline one lost its availability: both are gone and do not wait."""
    spans = [("download", r.download_start_s, r.download_end_s), ("compute", r.compute_start_s, r.compute_end_s),
             ("upload", r.upload_start_s, r.upload_end_s)]
    if r.status not in GONE:
        spans.append(("waiting", r.end_s, round_end_s))
    return [(p, a, b) for p, a, b in spans if pd.notna(a) and pd.notna(b) and b > a]


def timeline(rounds: pd.DataFrame, clients: pd.DataFrame, path: Path, max_rounds: int = TIMELINE_ROUNDS,
             max_bars: int = 60) -> None:
    """One bar per client-round: download, compute, upload, then waiting until the round ends (bar_spans)."""
    shown = rounds.head(max_rounds)
    rows = clients[clients["round"].isin(shown["round"])].head(max_bars)
    ends = dict(zip(rounds["round"], rounds["end_s"]))
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.22 * len(rows) + 1.2)))
    labels = []
    groups = "group" in rows.columns and rows["group"].nunique() > 1
    for y, r in enumerate(rows.itertuples()):
        for phase, a, b in bar_spans(r, ends[r.round]):
            ax.barh(y, b - a, left=a, color=PHASE_COLORS[phase], edgecolor="none", height=0.8)
        if r.status in GONE:
            marker, color = GONE[r.status]
            ax.plot([r.end_s], [y], marker=marker, color=color, markersize=6, linestyle="none")
        mark = {"late": " (late)", "surplus": " (surplus)", "dropped": " (dropped)",
                "offline": " (offline)"}.get(r.status, "")
        who = f"g{r.group} {r.device} c{r.client}" if groups else f"c{r.client}"
        labels.append(f"r{r.round} {who}{mark}")
    for end in shown["end_s"]:
        ax.axvline(end, color="black", lw=0.6, ls=":")
    if len(shown):
        ax.set_xlim(shown["start_s"].min(), shown["end_s"].max() * 1.01)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("simulated time (s)")
    ax.set_title(f"First {len(shown)} rounds (dotted: round ends after aggregation)", pad=24)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS.values()]
    handles += [plt.Line2D([], [], marker=m, color=c, linestyle="none") for m, c in GONE.values()]
    names = list(PHASE_COLORS) + [f"{status} (stopped here)" for status in GONE]
    # outside the axes, under the title: inside, it hides the last round's bars
    ax.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 1.06), ncol=6, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def energy_breakdown(summary, path: Path) -> None:
    """energy.png: the summary's kWh of each part (compute, idle, network, server), and its total."""
    parts = summary.energy_kwh.parts()
    kwh = list(parts.values())
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    bars = ax.bar([k.replace("_", "\n") for k in parts], kwh, color=["#dd8452", "#d9d9d9", "#4c72b0", "#8172b3"])
    for b, v in zip(bars, kwh):
        ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.set_ylabel("energy (kWh)")
    ax.set_title(f"{summary.scenario}: {summary.kwh_total:.3g} kWh over {summary.rounds_completed} rounds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tornado(rows: list[dict], figure: str, path: Path, title: str | None = None, currency: str = "") -> None:
    """What drives a figure's spread (simfl/sensitivity.py): per input, a bar from its low to its high value
    around the nominal, the widest on top, labelled with its share of the variance; in the unit a report shows the
    figure in (simfl/report/figure_units.py: a time in h, min or s, money in `currency`)."""
    from simfl.report.figure_units import shown

    these = [r for r in rows if r["figure"] == figure]
    these = sorted(these, key=lambda r: r["swing"])  # barh draws bottom-up: the widest ends on top
    unit = shown(figure, currency, [r[k] for r in these for k in ("low", "high", "nominal")])
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.55 * len(these)))
    nominal = unit.value(these[0]["nominal"]) if these else 0.0
    for y, r in enumerate(these):
        lo, hi = sorted((unit.value(r["low"]), unit.value(r["high"])))
        ax.barh(y, hi - lo, left=lo, color="#dd8452" if r["input"].startswith("seeds") else "#4c72b0")
        ax.text(hi, y, f"  {100 * r['variance_share']:.0f} %", va="center", fontsize=8)
    ax.axvline(nominal, color="black", linewidth=0.8, linestyle=":")
    ax.set_yticks(range(len(these)), [(r["input"] if len(r["input"]) <= 70 else r["input"][:67] + "...")
                                      for r in these], fontsize=8)
    ax.set_xlabel(f"{unit.header()}, each input alone at its 5th and 95th percentile (dotted: nominal)")
    ax.set_title(title or f"What drives the spread of {unit.label}")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # (an atomic write hands a temporary name)
    plt.close(fig)


# How a plan's chart marks a point: feasible (meets every constraint), infeasible (ran, misses one), stopped early.
POINT_STYLES = {"feasible": dict(marker="o", color="#2e7d32", label="meets every constraint"),
                "infeasible": dict(marker="x", color="#c62828", label="misses a constraint"),
                "stopped": dict(marker="v", color="#8c564b", label="stopped early (excluded)")}


def tradeoff(points: list[dict], xlabel: str, ylabel: str, limit: tuple[float, str, str] | None = None,
             front: list[int] | None = None, title: str = ""):
    """A plan's minimised figure (y) against one constrained figure (x), already in the units shown. Each point:
    {x, y, state (a POINT_STYLES key), label, best, x_mean (optional: a whisker from the mean to x)}. `limit`:
    (value, "max" or "min", its label), drawn as a line with the side that breaks it shaded. `front`: indices of
    points drawn joined as the trade-off, only when it has two or more. Returns the (closed) figure."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for p in points:
        if p.get("x_mean") is not None and p["x_mean"] != p["x"]:
            ax.plot([p["x_mean"], p["x"]], [p["y"], p["y"]], color="0.75", lw=1.2, zorder=1)
            ax.plot([p["x_mean"]], [p["y"]], marker="|", color="0.6", markersize=7, zorder=1)
    if front and len(front) > 1:
        f = sorted((points[i] for i in front), key=lambda p: p["x"])
        ax.step([p["x"] for p in f], [p["y"] for p in f], where="post", color="#1565c0", lw=1, ls="--", zorder=2,
                label="trade-off: no point is lower on both")
    for state, style in POINT_STYLES.items():
        these = [p for p in points if p["state"] == state]
        if these:
            hollow = style["marker"] == "v"
            ax.scatter([p["x"] for p in these], [p["y"] for p in these], s=46, zorder=3, marker=style["marker"],
                       label=style["label"], **({"facecolors": "none", "edgecolors": style["color"]} if hollow
                                                else {"color": style["color"]}))
    best = [p for p in points if p.get("best")]
    if best:
        ax.scatter([best[0]["x"]], [best[0]["y"]], s=260, marker="*", color="#f9a825", edgecolors="black",
                   linewidths=0.6, zorder=4, label="recommended")
    if limit is not None:  # in the legend, not written on the chart where it would cover a point's name
        value, side, text = limit
        ax.axvline(value, color="#c62828", lw=1.2, ls=":", zorder=1, label=text)
        lo, hi = ax.get_xlim()
        lo, hi = min(lo, value), max(hi, value)
        span = (value, hi + 0.05 * (hi - lo)) if side == "max" else (lo - 0.05 * (hi - lo), value)
        ax.axvspan(*span, color="#c62828", alpha=0.06, zorder=0)
        ax.set_xlim(min(lo, span[0]), max(hi, span[1]))
    if len(points) <= 12:  # few enough to name each; a name in the right half is written to the left of its point,
        middle = sum(ax.get_xlim()) / 2  # and names of points that (nearly) coincide are stacked, not overprinted
        placed: list[tuple[float, float]] = []
        for p in sorted(points, key=lambda p: (-p["y"], p["x"])):
            right = p["x"] > middle
            px, py = ax.transData.transform((p["x"], p["y"]))
            dy = 4.0
            while any(abs(px - qx) < 90 and abs(py + dy - qy) < 9 for qx, qy in placed):
                dy -= 9.0
            placed.append((px, py + dy))
            ax.annotate(p["label"], (p["x"], p["y"]), xytext=(-7 if right else 7, dy), textcoords="offset points",
                        fontsize=7, color="0.25", ha="right" if right else "left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    plt.close(fig)
    return fig
