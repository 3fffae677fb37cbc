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


def tornado(rows: list[dict], figure: str, path: Path, title: str | None = None) -> None:
    """What drives a figure's spread (simfl/sensitivity.py): per input, a bar from its low to its high value
    around the nominal, the widest on top, labelled with its share of the variance."""
    these = [r for r in rows if r["figure"] == figure]
    these = sorted(these, key=lambda r: r["swing"])  # barh draws bottom-up: the widest ends on top
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.55 * len(these)))
    nominal = these[0]["nominal"] if these else 0.0
    for y, r in enumerate(these):
        lo, hi = min(r["low"], r["high"]), max(r["low"], r["high"])
        ax.barh(y, hi - lo, left=lo, color="#dd8452" if r["input"].startswith("seeds") else "#4c72b0")
        ax.text(hi, y, f"  {100 * r['variance_share']:.0f} %", va="center", fontsize=8)
    ax.axvline(nominal, color="black", linewidth=0.8, linestyle=":")
    ax.set_yticks(range(len(these)), [(r["input"] if len(r["input"]) <= 70 else r["input"][:67] + "...")
                                      for r in these], fontsize=8)
    ax.set_xlabel(f"{figure}, each input alone at its 5th and 95th percentile (dotted: nominal)")
    ax.set_title(title or f"What drives the spread of {figure}")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # (an atomic write hands a temporary name)
    plt.close(fig)
