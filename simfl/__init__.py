"""simfl: a discrete-event simulator of federated fine-tuning cost, time and energy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simfl.api import SimResult, simulate
    from simfl.config.load import load_scenario
    from simfl.errors import ScenarioError

# Loaded on first use (PEP 562), so `import simfl.sim` does not pull in pandas, pydantic and yaml.
_PUBLIC = {"load_scenario": "simfl.config.load", "simulate": "simfl.api", "SimResult": "simfl.api",
           "ScenarioError": "simfl.errors"}

__all__ = ["load_scenario", "simulate", "SimResult", "ScenarioError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'simfl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # cached: the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
