"""`python -m simfl` runs the command line."""

from simfl.cli import main

main()
