"""simfl installed beside Flower: the typer and click that flwr pins, and the CLI's one-line usage errors worded the
same under them as under the newest typer (simfl/cli/usage.py).

`make test` installs simfl[flower] into .venv, so this file runs there in CI; in an environment without flwr the
version check is skipped and the wording checks still run (they hold under every typer simfl supports).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

from simfl.config.load import REPO_ROOT


def _requirement(dist: str, name: str) -> str | None:
    """`dist`'s requirement on `name` as its metadata spells it (e.g. 'typer<0.21.0,>=0.13.0'), or None."""
    for req in importlib.metadata.requires(dist) or []:
        spec = req.split(";")[0].strip()
        if spec.lower().replace("_", "-").startswith(name) and not spec[len(name):len(name) + 1].isalnum():
            return spec
    return None


def test_typer_and_click_are_within_flowers_pins():
    pytest.importorskip("flwr")
    from packaging.requirements import Requirement

    for name in ("typer", "click"):
        spec = _requirement("flwr", name)
        if spec is None:
            continue  # a Flower that no longer pins it
        installed = importlib.metadata.version(name)
        # flwr 1.42 pins typer>=0.13.0,<0.21.0: this environment is one a Flower user has, not one simfl chose
        assert Requirement(spec).specifier.contains(installed, prereleases=True), (name, installed, spec)


# Each usage mistake and the one line simfl documents for it, the same under typer 0.20 (click's own words,
# Flower's pin) and typer >= 0.22 (pydantic's): a mistake not listed here would be worded by the library.
USAGE = [
    (["run", "--frob", "x.yaml"], "error: No such option: --frob; see simfl run --help"),
    (["run", "x.yaml", "--ou", "d"], "error: No such option: --ou (Possible options: --out); see simfl run --help"),
    (["run"], "error: Missing argument 'scenario'; see simfl run --help"),
    (["estimate"], "error: Missing argument 'device'; see simfl estimate --help"),
    (["calibrate"], "error: Missing option '--name'; see simfl calibrate --help"),
    (["run", "x.yaml", "extra"], "error: Got unexpected extra argument(s) (extra); see simfl run --help"),
    (["runn"], "error: No such command 'runn'. Did you mean 'run'?"),
    (["calibrate", "--name", "x", "--steps", "1.5"],
     "error: Invalid value for '--steps': Input should be a valid integer, unable to parse string as an integer "
     "(got '1.5'); see simfl calibrate --help"),
    # --steps has min=1, a closed bound: 0 is below it
    (["calibrate", "--name", "x", "--steps", "0"],
     "error: Invalid value for '--steps': Input should be greater than or equal to 1 (got '0'); "
     "see simfl calibrate --help"),
    # --power-rate-hz is a float with min=2.0: pydantic writes the bound as 2
    (["calibrate", "--name", "x", "--power-rate-hz", "1"],
     "error: Invalid value for '--power-rate-hz': Input should be greater than or equal to 2 (got '1'); "
     "see simfl calibrate --help"),
    (["calibrate", "--name", "x", "--power-rate-hz", "abc"],
     "error: Invalid value for '--power-rate-hz': Input should be a valid number, unable to parse string as a "
     "number (got 'abc'); see simfl calibrate --help"),
    (["run", "x.yaml", "--replicates", "x"],
     "error: Invalid value for '--replicates': Input should be a valid integer, unable to parse string as an "
     "integer (got 'x'); see simfl run --help"),
    # simfl's own bound on every integer (common.bound_ints) keeps its words: it is no typer message
    (["run", "x.yaml", "--replicates", str(2**63)],
     f"error: Invalid value for '--replicates': must be at most {2**63 - 1} (2**63 - 1) (got '{2**63}'); "
     "see simfl run --help"),
]


@pytest.mark.parametrize("args,expected", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_are_worded_the_same_under_every_typer(tmp_path, args, expected):
    r = subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert (r.returncode, r.stderr, r.stdout) == (2, expected + "\n", "")
    assert list(tmp_path.iterdir()) == []


def test_click_range_errors_are_reworded_as_pydantic_would():
    """The older typer's path (click's IntRange and FloatRange) exercised directly, whichever typer is here."""
    import click

    from simfl.cli.usage import number_message

    class Param:
        def __init__(self, type_):
            self.type = type_

    # IntRange(min=1): 0 < 1 fails "ge"; 3 passes, so the error was something else (None: keep click's words)
    assert number_message(Param(click.IntRange(min=1)), "0") == "Input should be greater than or equal to 1"
    assert number_message(Param(click.IntRange(min=1)), "3") is None
    # an open bound is pydantic's gt / lt
    assert number_message(Param(click.FloatRange(min=0, min_open=True)), "0") == "Input should be greater than 0"
    assert number_message(Param(click.FloatRange(max=1, max_open=True)), "1") == "Input should be less than 1"
    assert number_message(Param(click.IntRange(max=10)), "11") == "Input should be less than or equal to 10"
    assert number_message(Param(click.INT), "ten") == ("Input should be a valid integer, unable to parse string "
                                                       "as an integer")
    assert number_message(Param(click.STRING), "ten") is None  # not a number option
