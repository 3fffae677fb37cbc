"""The command line: parse, load, call, write. Bad input: one line on stderr, exit code 2.

Each command lives in its own module and registers itself on the shared `app`.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import typer

# Importing a command module registers its commands, in this order in --help: the everyday ones first.
from simfl.cli import simulate  # noqa: F401,I001
from simfl.cli import calibrate, emulate, estimate, flower, plan, train  # noqa: F401
from simfl.cli.common import EXIT_BAD_INPUT, app, bound_ints, err
from simfl.cli.usage import usage_message
from simfl.errors import escape, short

__all__ = ["app", "main", "Terminated"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """A signal that ends the command (SIGINT, SIGTERM, SIGHUP), raised in the main thread where it was
    running, so that every `with` on the way out cleans up (an output folder's .partial, a sweep's pool, an
    emulation's namespaces) exactly as for Ctrl-C. A BaseException, like KeyboardInterrupt: no `except
    Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, _frame) -> None:
    for sig in STOP_SIGNALS:  # a second signal must not cut the cleanup short (SIGKILL still ends it)
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _given_value(param, argv: list[str]) -> str | None:
    """What the user typed for an option the parser refused (click does not keep it)."""
    for opt in getattr(param, "opts", None) or []:
        for i, arg in enumerate(argv):
            if arg == opt and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1:]
    return None


def main() -> None:
    """The `simfl` entry point: a usage error (unknown option, a value of the wrong type or out of
    range) is one line and exit code 2, like every other bad input; SIGINT, SIGTERM and SIGHUP clean up
    and exit with 128 + the signal's number, saying so in one line."""
    try:  # typer >= 0.20 carries its own copy of click; older ones use click itself
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError

    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            signal.signal(sig, _stop)
    kernel = os.environ.get("SIMFL_KERNEL")
    if kernel:  # (an engine option in the environment: checked before any command reads or writes anything)
        from simfl.sim.engine import kernel_error

        if kernel_error(kernel):
            err.print(f"error: SIMFL_KERNEL: {escape(kernel_error(kernel))}", markup=False, highlight=False,
                      soft_wrap=True)
            sys.exit(EXIT_BAD_INPUT)
    try:
        rc = bound_ints(typer.main.get_command(app))(prog_name="simfl", standalone_mode=False)
    except UsageError as e:
        given = _given_value(getattr(e, "param", None), sys.argv[1:])
        message = usage_message(e, given)  # the same words under every typer simfl supports
        if not message:  # `simfl` with no command: the help was printed
            sys.exit(EXIT_BAD_INPUT)
        message = message.rstrip(".")
        if given is not None:
            message = f"{message} (got {short(given)})"
        where = f"; see simfl {e.ctx.info_name} --help" if e.ctx is not None and e.ctx.info_name != "simfl" else ""
        err.print(f"error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except (Terminated, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        # Drop what the interrupted frames still hold (a pool's generator, open files) now, so its cleanup
        # runs before the exit rather than at interpreter shutdown.
        traceback.clear_frames(e.__traceback__)
        name = signal.Signals(signum).name
        err.print(f"{'interrupted' if signum == signal.SIGINT else 'terminated'} by {name}", highlight=False)
        sys.exit(128 + signum)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
