"""A run's typed Summary, made in one place from its records (make.py) and read by every output."""

from simfl.summary.figures import FIGURES, FigureStats, ReplicateStats, Summary
from simfl.summary.make import check_finite, summarize
from simfl.summary.replicates import figure_stats, replicate_stats

__all__ = ["FIGURES", "FigureStats", "ReplicateStats", "Summary", "check_finite", "figure_stats", "replicate_stats",
           "summarize"]
