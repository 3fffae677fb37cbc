"""`python -m simfl` runs the command line."""

from simfl.cli import app

app(prog_name="simfl")
