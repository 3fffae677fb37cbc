"""simfl: a discrete-event simulator of federated fine-tuning cost, time and energy."""

from simfl.api import SimResult, simulate
from simfl.config.load import load_scenario
from simfl.errors import ScenarioError

__all__ = ["load_scenario", "simulate", "SimResult", "ScenarioError"]
__version__ = "0.1.0"
