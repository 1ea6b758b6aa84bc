"""A token bucket per client address, for the endpoints that cost the hub real work (uploads).

Each address holds up to ``per_minute`` tokens (a burst of that many) and regains them at
``per_minute / 60`` per second; a request takes one or is refused with the seconds until the next
one. The table is bounded: past ``max_clients`` addresses the least recently seen are forgotten, so
a flood from many addresses cannot grow it without limit (a forgotten address starts full again).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    """per_minute : sustained requests per minute per address (0 = unlimited)."""

    def __init__(
        self, per_minute: float, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = float(per_minute) / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def take(self, address: str) -> float:
        """Take a token for ``address``: 0.0 when allowed, else the seconds until one is back."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.pop(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[address] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
