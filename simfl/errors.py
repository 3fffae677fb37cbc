"""The one error type users see: a bad scenario or data file, said in one line."""

from __future__ import annotations

from pathlib import Path


class ScenarioError(ValueError):
    """Bad input. str() is one line: 'file: field: message'."""

    def __init__(self, message: str, *, file: Path | str | None = None, field: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        super().__init__(str(self))

    def with_file(self, file: Path | str) -> "ScenarioError":
        return self if self.file else ScenarioError(self.message, file=file, field=self.field)

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join([*parts, self.message])


def short(value: object, limit: int = 80) -> str:
    """repr() of an offending value, cut so that an error stays one readable line."""
    text = repr(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RunFailed(RuntimeError):
    """A run that could not finish for a reason outside its input (a worker killed, a client that never
    connected). str() is one line; the command line prints it as `error: ...` with exit code 1, not 2:
    nothing the user gave is wrong, and the same command may succeed when run again."""
