"""The one error type users see: a bad scenario or data file, said in one line."""

from __future__ import annotations

from pathlib import Path


def escape(text: str) -> str:
    """`text` with newlines, carriage returns, ESC and every other unprintable character shown escaped as
    repr() shows them (\\n, \\x1b, \\u202e), so that a file name or a key cannot forge a line or colour a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ScenarioError(ValueError):
    """Bad input. str() is one line: 'file: field: message', each part escaped (see escape)."""

    def __init__(self, message: str, *, file: Path | str | None = None, field: str | None = None):
        # Escaped once here, so every use (str(), .message in a table, a sweep's error column) is safe.
        self.message = escape(str(message))
        self.file = escape(str(file)) if file is not None else None
        self.field = escape(field) if field is not None else None
        super().__init__(str(self))

    def with_file(self, file: Path | str) -> "ScenarioError":
        return self if self.file else ScenarioError(self.message, file=file, field=self.field)

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return escape(": ".join([*parts, self.message]))


def short(value: object, limit: int = 80) -> str:
    """repr() of an offending value, cut so that an error stays one readable line."""
    text = escape(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RunFailed(RuntimeError):
    """A run that could not finish for a reason outside its input (a worker killed, a client that never
    connected). str() is one line; the command line prints it as `error: ...` with exit code 1, not 2:
    nothing the user gave is wrong, and the same command may succeed when run again."""
