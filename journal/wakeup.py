"""In-process wake-ups: callbacks run after each append, so a tail need not poll for this process's writes.

Each :class:`~journal.store.Journal` owns one :class:`Wakeups` (no module state): its appender calls
:meth:`Wakeups.wake` after every committed append, and :meth:`Journal.subscribe
<journal.store.Journal.subscribe>` registers a callback. Appends by other processes, or by another
``Journal`` object on the same database, do not ring it: :mod:`journal.tail` hears those by
LISTEN/NOTIFY (PostgreSQL) or polling. Only :mod:`journal.append` and :mod:`journal.store` import it.

Example::

    wakeups = Wakeups()
    unsubscribe = wakeups.subscribe(3, lambda: print("partition 3 grew"))
    wakeups.wake(3)   # prints
    unsubscribe()
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Callback", "Wakeups"]

Callback = Callable[[], None]


class Wakeups:
    """The callbacks subscribed to each partition; thread-safe."""

    def __init__(self) -> None:
        self._watchers: dict[int, set[Callback]] = {}
        self._lock = threading.Lock()

    def subscribe(self, partition: int, callback: Callback) -> Callback:
        """Call ``callback`` (from the waking thread) on each :meth:`wake` of ``partition``; returns the
        function that unsubscribes.
        """
        with self._lock:
            self._watchers.setdefault(partition, set()).add(callback)

        def unsubscribe() -> None:
            with self._lock:
                callbacks = self._watchers.get(partition)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del self._watchers[partition]

        return unsubscribe

    def wake(self, partition: int) -> None:
        """Run every callback subscribed to ``partition`` (outside the lock)."""
        with self._lock:
            callbacks = list(self._watchers.get(partition, ()))
        for callback in callbacks:
            callback()
