"""Max-min fair rates of flows over shared capacities (progressive filling)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

# Relative tolerance for "this share equals the water level".
_REL = 1e-12


def max_min_rates(
    flow_caps_bps: Sequence[float],
    flow_resources: Sequence[Sequence[Hashable]],
    capacity_bps: Mapping[Hashable, float],
) -> list[float]:
    """Rates of flows each bounded by its own cap and by every shared resource it crosses.

    Progressive filling: raise all unfixed flows' rates together; when a flow
    reaches its own cap, or a resource runs out (its remaining capacity split
    equally among its unfixed flows), fix those flows at that level and go on.
    The result is the unique max-min fair allocation.
    """
    n = len(flow_caps_bps)
    rates = [0.0] * n
    left = dict(capacity_bps)
    users: dict[Hashable, set[int]] = {}
    for i, res in enumerate(flow_resources):
        for r in res:
            users.setdefault(r, set()).add(i)
    unfixed = set(range(n))
    while unfixed:
        level = min(flow_caps_bps[i] for i in unfixed)
        for r, us in users.items():
            if us:
                level = min(level, left[r] / len(us))
        level = max(level, 0.0)
        tol = level * _REL
        fixed = {i for i in unfixed if flow_caps_bps[i] <= level + tol}
        for r, us in users.items():
            if us and left[r] / len(us) <= level + tol:
                fixed |= us
        for i in fixed:
            rates[i] = level
            unfixed.discard(i)
            for r in flow_resources[i]:
                left[r] -= level
                users[r].discard(i)
    return rates
