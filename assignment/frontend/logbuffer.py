"""Recent invocation logs per function, in memory and bounded, for ``leasehold logs`` (the admin API).

Each function keeps its newest ``per_function`` invocations; the least recently logged functions are
forgotten beyond ``max_functions``, and each text is cut to its last ``max_text`` characters.

Example::

    logs = LogBuffer(per_function=100)
    logs.add("resize", "req-1", "$LATEST", "START RequestId: req-1 ...")
    [event] = logs.recent("resize", limit=10)
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

__all__ = ["LogBuffer"]


class LogBuffer:
    """A bounded ring of recent invocation logs per function."""

    def __init__(self, *, per_function: int = 200, max_functions: int = 1000, max_text: int = 16 * 1024) -> None:
        self.per_function = per_function
        self.max_functions = max_functions
        self.max_text = max_text
        self._rings: OrderedDict[str, deque[dict[str, object]]] = OrderedDict()

    def add(self, function: str, request_id: str, version: str, text: str) -> None:
        """Remember one invocation's log."""
        ring = self._rings.get(function)
        if ring is None:
            ring = self._rings[function] = deque(maxlen=self.per_function)
            while len(self._rings) > self.max_functions:
                self._rings.popitem(last=False)
        else:
            self._rings.move_to_end(function)
        ring.append(
            {
                "request_id": request_id,
                "time_ms": int(time.time() * 1000),
                "version": version,
                "text": text[-self.max_text :],
            }
        )

    def recent(self, function: str, limit: int = 100) -> list[dict[str, object]]:
        """The newest ``limit`` events of a function, oldest first."""
        ring = self._rings.get(function)
        if ring is None or limit <= 0:
            return []
        return list(ring)[-limit:]

    def forget(self, function: str) -> None:
        """Drop a (deleted) function's logs."""
        self._rings.pop(function, None)
