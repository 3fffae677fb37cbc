"""The pure simulation engine: resolved inputs in, frozen records out (no files, no printing)."""

from simfl.sim.engine import run
from simfl.sim.inputs import ClientSpec, GroupSpec, LinkSpec, Population, ServerSpec, SimInputs
from simfl.sim.records import ClientRound, RoundRecord, RunRecords

__all__ = ["run", "ClientSpec", "GroupSpec", "LinkSpec", "Population", "ServerSpec", "SimInputs", "ClientRound", "RoundRecord", "RunRecords"]
