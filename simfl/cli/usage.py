"""A usage error's one line in simfl's words, whichever typer and click are installed.

typer 0.20 (the newest Flower allows: flwr pins typer < 0.21) parses with click itself; typer >= 0.22 carries its
own copy of click and checks numbers with pydantic. The two word the same mistake differently ("0 is not in the
range x>=1" against "Input should be greater than or equal to 1", "No such option '--frob'" against "No such
option: --frob"). simfl's users see one wording, the one the README documents and the one a scenario's own bad
numbers get (pydantic's): it is composed here from the error's parts, not taken from the library's text.
"""

from __future__ import annotations

import re
from typing import Annotated


def _is(error: BaseException, name: str) -> bool:
    """Whether `error` is click's `name` (either copy of click: typer's own or click itself)."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


def number_message(param, given: str | None) -> str | None:
    """Why `given` is no value for the number option `param`, in pydantic's words (typer >= 0.22 says it so);
    None when `param` is no number option of click's older types, or `given` is a valid one (the error was
    something else, e.g. simfl's own bound on integers)."""
    kind = getattr(getattr(param, "type", None), "name", None)
    if given is None or kind not in ("integer", "integer range", "float", "float range"):
        return None
    from pydantic import Field, TypeAdapter, ValidationError

    number = int if kind.startswith("integer") else float
    bounds = {}
    low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
    if low is not None:
        bounds["gt" if getattr(param.type, "min_open", False) else "ge"] = low
    if high is not None:
        bounds["lt" if getattr(param.type, "max_open", False) else "le"] = high
    try:
        TypeAdapter(Annotated[number, Field(**bounds)] if bounds else number).validate_python(given)
    except ValidationError as e:
        return str(e.errors()[0]["msg"])
    return None


def usage_message(error, given: str | None) -> str:
    """The message of click's usage `error` (without simfl's "error: " and "; see ... --help"), the same under
    every typer simfl supports; `given` is what the user typed for the option at fault, if known."""
    if _is(error, "NoSuchOption"):
        message = f"No such option: {error.option_name}"
        if error.possibilities:
            message += f" (Possible options: {', '.join(sorted(error.possibilities))})"
        return message
    if _is(error, "BadParameter") and not _is(error, "MissingParameter"):
        why = number_message(getattr(error, "param", None), given)
        if why is not None:
            error.message = why  # click adds "Invalid value for '--option': " itself
    message = error.format_message()
    # An argument is named as its parameter (typer >= 0.22), not as its upper-case metavar (older typer).
    message = re.sub(r"^Missing argument '([A-Z0-9_]+)'", lambda m: f"Missing argument '{m[1].lower()}'", message)
    message = re.sub(r"^Got unexpected extra arguments? \(", "Got unexpected extra argument(s) (", message)
    # typer 0.20 adds its own suggestion to click's: "No such command 'runn'. Did you mean 'run'? Did you mean 'run'?"
    return re.sub(r"( Did you mean [^?]*\?)\1+$", r"\1", message)
