"""The command line's shared pieces: the typer app, the consoles, and bad input as one line with exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer
from rich.console import Console

from simfl.errors import ScenarioError, short

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate the time, energy, CO2 and cost of federated fine-tuning.")
# Piped output gets room for wide tables (rich would squeeze them to 80 columns).
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)
EXIT_BAD_INPUT = 2


def _bad_input(fn: Callable) -> Callable:
    """Turn a ScenarioError into one line on stderr and exit code 2, no traceback."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScenarioError as e:
            file = kwargs.get("scenario")
            about_option = (e.field or "").startswith("--")  # a bad option is not the scenario's fault
            msg = str(e.with_file(file)) if file is not None and not about_option else str(e)
            err.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    return wrapper


def _csv(text: str, cast=str, option: str | None = None) -> list:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(cast, "names")
        raise ScenarioError(f"expected a comma-separated list of {kind}, got {short(text)}", field=option) from None
