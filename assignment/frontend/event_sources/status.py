"""What ``leasehold status`` shows of queues and event source mappings: depths, states, backlogs, results.

Example::

    overview = await SourcesOverview(queues, mappings, account_id="000000000000", region="us-east-1").read()
    overview["queues"][0]   # {"name": "jobs", "visible": 3, "in_flight": 1, "delayed": 0}
"""

from __future__ import annotations

import asyncio
from typing import Any

from assignment.frontend.event_sources.mappings import MappingStore
from assignment.frontend.queue_targets import parse_queue_arn
from assignment.frontend.queues import QueueDoesNotExist, QueueStore
from assignment.frontend.queues.receiving import now_ms

__all__ = ["MAX_LISTED", "SourcesOverview"]

#: Most queues and mappings one status shows.
MAX_LISTED = 1000
_COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


class SourcesOverview:
    """Reads the queues' depths and the mappings' states (one thread, a few short reads)."""

    def __init__(self, queues: QueueStore, mappings: MappingStore, *, account_id: str, region: str) -> None:
        self.queues = queues
        self.mappings = mappings
        self.account_id = account_id
        self.region = region

    async def read(self) -> dict[str, list[dict[str, Any]]]:
        """``{"queues": [...], "event_source_mappings": [...]}``, by name and by UUID."""
        return await asyncio.to_thread(self._read)

    def _depths(self, name: str, now: int) -> dict[str, int] | None:
        arn = f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"
        try:
            counts = self.queues.get_queue_attributes(self.account_id, name, list(_COUNTS.values()), queue_arn=arn,
                                                      now_ms=now)  # fmt: skip
        except QueueDoesNotExist:
            return None  # deleted since it was listed
        return {key: int(counts[attribute]) for key, attribute in _COUNTS.items()}

    def _read(self) -> dict[str, list[dict[str, Any]]]:
        now = now_ms()
        queues: list[dict[str, Any]] = []
        depths: dict[str, dict[str, int]] = {}
        for name in self.queues.list_queues(self.account_id, max_results=MAX_LISTED).names:
            found = self._depths(name, now)
            if found is not None:
                depths[name] = found
                queues.append({"name": name, **found})
        mappings, _ = self.mappings.page(limit=MAX_LISTED)
        listed = []
        for mapping in mappings:
            target = parse_queue_arn(mapping.source_arn)
            backlog = None if target is None else depths.get(target.name) or self._depths(target.name, now)
            listed.append(
                {
                    "uuid": mapping.uuid,
                    "function": mapping.function_name + (f":{mapping.qualifier}" if mapping.qualifier else ""),
                    "source": mapping.source_arn,
                    "state": mapping.state,
                    "backlog": None if backlog is None else backlog["visible"],
                    "last_result": mapping.last_result,
                    "poller": mapping.owner if mapping.lease_until_ms > now else "",
                }
            )
        return {"queues": queues, "event_source_mappings": listed}
