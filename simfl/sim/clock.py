"""When a transfer is done on a float clock."""

from __future__ import annotations

# A flow is done when less than this much time is left at its current rate:
# guards against float residue re-arming a timer for 1e-17 s.
DONE_S = 1e-9


def due(now_s: float, left_s: float) -> bool:
    """True when a flow with `left_s` seconds to go is finished at `now_s`.

    Either the residue is below DONE_S, or it is below the clock's resolution at
    `now_s`: past about 2**24 s a float cannot hold now + 1e-9, so `now + left`
    rounds back to `now` and a timer for it would fire at once, forever.
    """
    return left_s <= DONE_S or now_s + left_s <= now_s
