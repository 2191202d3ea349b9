"""Event source mappings: a queue feeding a function.

:mod:`~assignment.frontend.event_sources.filters` is Lambda's event-filtering language (FilterCriteria),
pure and re-exported here; :mod:`~assignment.frontend.event_sources.mappings` stores the mappings and the
pollers' leases; the pollers (:mod:`~assignment.frontend.event_sources.poller`, in every frontend) receive
batches, drop what the filters do not match, invoke the function and delete what it processed. Only the
filters are re-exported, so importing the package stays free of the store's and the pollers' imports.
"""

from assignment.frontend.event_sources.filters import (
    MAX_FILTERS,
    MAX_NESTING,
    MAX_PATTERN_CHARS,
    FilterCriteria,
    FilterError,
    Pattern,
    parse_filter_criteria,
    sqs_view,
)

__all__ = [
    "MAX_FILTERS",
    "MAX_NESTING",
    "MAX_PATTERN_CHARS",
    "FilterCriteria",
    "FilterError",
    "Pattern",
    "parse_filter_criteria",
    "sqs_view",
]
