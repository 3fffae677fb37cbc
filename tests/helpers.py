"""Hand-built engine inputs for tests: every number chosen so results can be worked out on paper."""

from __future__ import annotations

from simfl.sim.inputs import AsyncSpec, ClientSpec, LinkSpec, ServerSpec, SimInputs, SyncSpec

FAST_SERVER_LINK = LinkSpec("server", 1e9, 1e9, 0.0)


def client(cid: int, link: LinkSpec, steps: int = 3, step_time_s: float = 0.5, power_w: float = 10.0,
           idle_w: float = 2.0, cell: str | None = None) -> ClientSpec:
    return ClientSpec(cid, "dev", link, steps, step_time_s, power_w, idle_w, cell)


def server(link: LinkSpec = FAST_SERVER_LINK, idle_w: float = 20.0, agg_w: float = 100.0,
           params_per_s: float = 31250.0) -> ServerSpec:
    return ServerSpec("srv", link, idle_w, agg_w, params_per_s)


def inputs(clients, *, srv: ServerSpec | None = None, params: int = 31250, k: int | None = None,
           selected: int | None = None, rounds: int = 1, deadline_s: float | None = None,
           asynchronous: AsyncSpec | None = None, **kw) -> SimInputs:
    """SimInputs of `clients`: synchronous rounds with `deadline_s`, or the `asynchronous` round policy."""
    k = k or len(clients)
    kw.setdefault("round_policy", asynchronous or SyncSpec(deadline_s))
    return SimInputs.from_clients(tuple(clients), srv or server(), params, params * 32, k, selected or k, rounds,
                                  **kw)
