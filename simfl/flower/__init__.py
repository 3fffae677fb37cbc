"""Flower apps on simfl's clock: a Grid whose nodes are a scenario's fleet (grid.py) and a Flower app read from
its own pyproject.toml and run on it (app.py). Needs flwr (`pip install 'simfl[flower]'`)."""
