"""After a run: records into tables, the summary, files and plots (the only place matplotlib appears)."""
