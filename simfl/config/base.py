"""The base of every schema: frozen, no unknown keys, strict types, finite numbers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """extra="forbid": a misspelt key is an error. strict: `batch_size: true` or `"8"` is not 8.
    allow_inf_nan=False: `.inf` and `.nan` are not numbers anything here can use."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
