"""The command line's shared pieces: the typer app, the consoles, bad input as one line with exit code 2, and a
failed run as one line with exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer
from rich.console import Console

from simfl.errors import RunFailed, ScenarioError, short
from simfl.training import (ATTENTION_LORA_TARGETS, FEED_FORWARD_LORA_TARGETS, OPTIMIZERS, PRECISIONS, QUANTIZATIONS,
                            TrainingConfig)

# rich_markup_mode=None: help texts are plain text, so `pip install 'simfl[cluster]'` keeps its brackets (rich
# markup read `[cluster]` as a style tag and dropped it)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Simulate the time, energy, CO2 and cost of federated fine-tuning.")
# Piped output gets room for wide tables (rich would squeeze them to 80 columns).
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)
EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


def bad_input(fn: Callable) -> Callable:
    """Turn a ScenarioError into one line on stderr and exit code 2, a RunFailed into one line and exit code 1;
    no traceback."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ScenarioError as e:
            file = kwargs.get("scenario")
            # a bad option or environment variable is not the scenario's fault
            about_option = (e.field or "").startswith(("--", "SIMFL_"))
            msg = str(e.with_file(file)) if file is not None and not about_option else str(e)
            err.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except RunFailed as e:
            err.print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", markup=False,
                      highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_RUN_FAILED) from None
    return wrapper


def need_torch(command: str) -> None:
    """One line (exit 2) when `command` trains or measures with torch and this environment has none: a plain
    `pip install simfl flwr` has none; `simfl[calibrate]` brings torch, transformers and peft."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ScenarioError(f"simfl {command} needs torch, which is not installed here: "
                            "pip install 'simfl[calibrate]'")


def csv_list(text: str, cast=str, option: str | None = None) -> list:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(cast, "names")
        raise ScenarioError(f"expected a comma-separated list of {kind}, got {short(text)}", field=option) from None


# -- the training configuration's options: simfl calibrate's and simfl estimate's, one rule (simfl.training) -----

LORA_TARGETS_HELP = (f"LoRA target projections: {', '.join(ATTENTION_LORA_TARGETS)} (attention); decoder-only models "
                     f"also {', '.join(FEED_FORWARD_LORA_TARGETS)}.")


# How a step trains, the same options in simfl estimate and simfl calibrate (checked by TrainingConfig.check)
PRECISION_HELP = f"{', '.join(PRECISIONS)}: mixed bf16/fp16 runs matmuls in half precision."
OPTIMIZER_HELP = f"{', '.join(OPTIMIZERS)}: the client optimizer (its state is memory)."
QUANTIZATION_HELP = f"{', '.join(QUANTIZATIONS)}: the frozen base weights of LoRA (QLoRA: int8, nf4)."
CHECKPOINTING_HELP = "Recompute activations in the backward pass (gradient checkpointing)."


def lora_targets_option(text: str) -> tuple[str, ...]:
    """--lora-targets as a tuple of names; one line when it names none."""
    targets = tuple(csv_list(text, option="--lora-targets"))
    if not targets:
        raise ScenarioError(f"give at least one projection, got {short(text)}", field="--lora-targets")
    return targets


def checked_training(config: TrainingConfig, options: dict[str, str] | None = None) -> TrainingConfig:
    """`config` checked by TrainingConfig.check, a bad field said as the option that set it: lora_targets is
    --lora-targets unless `options` names another (the model of simfl estimate is its argument MODEL)."""
    try:
        return config.check()
    except ScenarioError as e:
        option = (options or {}).get(e.field) or "--" + e.field.replace("_", "-")
        raise ScenarioError(e.message, field=option) from None


# -- integer options: every one within what the libraries underneath can hold ------------------------------

INT_MAX = 2**63 - 1  # a C long long: numpy, torch and the OS take no larger integer (10**20 overflowed in them)


def int_params(command) -> list:
    """Every integer option and argument of a click command and its subcommands, as (command path, param)."""
    found = []

    def walk(cmd, path):
        for p in getattr(cmd, "params", []):
            descriptor = getattr(p, "type_descriptor", None)  # typer >= 0.22 types parameters itself
            annotation = getattr(descriptor, "annotation", None)
            kind = getattr(getattr(p, "type", None), "name", None)  # older typer: click's INT or IntRange
            if annotation is int or kind in ("integer", "integer range"):
                found.append((path, p))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(command, ())
    return found


def bound_ints(command):
    """Refuse, while parsing, an integer beyond INT_MAX (either sign) for every integer parameter of the
    command tree: a usage error (one line, exit code 2) instead of an OverflowError deep in a run, or a
    run that never ends. One mechanism for every option, so a new one is covered without a word."""
    for _, p in int_params(command):
        process = p.process_value

        def checked(ctx, value, _process=process, _param=p):
            value = _process(ctx, value)
            for v in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(v, int) and not isinstance(v, bool) and v > INT_MAX:
                    raise _bad_parameter(f"must be at most {INT_MAX} (2**63 - 1)", ctx, _param)
                if isinstance(v, int) and not isinstance(v, bool) and v < -INT_MAX - 1:
                    raise _bad_parameter(f"must be at least {-INT_MAX - 1} (-2**63)", ctx, _param)
            return value

        p.process_value = checked
    return command


def _bad_parameter(message: str, ctx, param):
    try:  # typer >= 0.20 carries its own copy of click; older ones use click itself
        from typer._click.exceptions import BadParameter
    except ImportError:
        from click.exceptions import BadParameter
    return BadParameter(message, ctx=ctx, param=param)
