"""The plot of an emulation: measured against predicted, per round and per client phase."""

from __future__ import annotations

from pathlib import Path

from simfl.report.plots import PHASE_COLORS, plt


def emulation_plot(result: dict, path: Path) -> None:
    """Left: each round's measured and predicted duration. Right: every client phase that both finished,
    measured against predicted, on the line of equality."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    rounds = result["rounds"]
    x = [r["round"] for r in rounds]
    ax1.plot(x, [r["measured_s"] for r in rounds], "o-", label="measured (Flower, shaped links)")
    ax1.plot(x, [r["predicted_s"] for r in rounds], "s--", label="predicted (simfl run)")
    ax1.set_xlabel("round")
    ax1.set_ylabel("duration (s)")
    ax1.set_ylim(0, 1.15 * max(max(r["measured_s"], r["predicted_s"]) for r in rounds))
    ax1.set_xticks(x)
    ax1.set_title(f"rounds: MAPE {result['mape_round_pct']:.1f} %, total {result['error_total_pct']:+.1f} %")
    ax1.legend(loc="lower right")
    top = 0.0
    for ph in ("download", "compute", "upload"):
        pairs = [(c[f"{ph}_predicted_s"], c[f"{ph}_measured_s"]) for r in rounds for c in r["clients"]
                 if c["status_predicted"] == "completed" and c["aggregated"] and c[f"{ph}_measured_s"] is not None]
        if pairs:
            mape = result["phases"][ph]["mape_pct"]
            ax2.scatter(*zip(*pairs), color=PHASE_COLORS[ph], label=f"{ph} (MAPE {mape:.1f} %)", s=22)
            top = max(top, *(max(p) for p in pairs))
    ax2.plot([0, top * 1.05], [0, top * 1.05], color="grey", lw=0.8)
    ax2.set_xlabel("predicted (s)")
    ax2.set_ylabel("measured (s)")
    ax2.set_title("client phases")
    ax2.legend(loc="upper left")
    fig.suptitle(f"{result['scenario']}: {result['clients']} clients, compute {result['compute']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
