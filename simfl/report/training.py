"""Files of a `simfl train` session: training.csv, summary.json and val loss against hours and kWh."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from simfl.config.load import dump_scenario  # noqa: E402
from simfl.costs import J_PER_KWH  # noqa: E402
from simfl.report.write import json_text  # noqa: E402


def plot(table, summary: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, t in table.dropna(subset=["val_loss"]).groupby("run", sort=False):
        axes[0].plot(t["sim_time_s"] / 3600, t["val_loss"], marker=".", label=name)
        axes[1].plot(t["energy_j"] / J_PER_KWH, t["val_loss"], marker=".", label=name)
    target = summary.get("target_val_loss")
    for ax, xlabel in zip(axes, ("simulated time (h)", "energy (kWh)")):
        if target:
            ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation loss")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{summary['scenario']}: {summary['arch']} trained, priced as {summary['priced_as']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_training_files(result, folder: Path) -> None:
    """training.csv, summary.json, the resolved scenario and val_loss.png, into an existing folder."""
    result.table.to_csv(folder / "training.csv", index=False)
    (folder / "summary.json").write_text(json_text(result.summary))
    (folder / "scenario.resolved.yaml").write_text(dump_scenario(result.scenario))
    plot(result.table, result.summary, folder / "val_loss.png")
