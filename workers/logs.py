"""The CloudWatch-style lines that frame each invocation's output: START, END, REPORT (and INIT_REPORT).

Example::

    >>> start_line("8f5a", "$LATEST")
    'START RequestId: 8f5a Version: $LATEST\\n'
    >>> report_line("8f5a", duration_ms=15.74, memory_mb=128, max_memory_mb=56, init_ms=130.49).split("\\t")[1:3]
    ['Duration: 15.74 ms', 'Billed Duration: 16 ms']
"""

from __future__ import annotations

import math
import time

__all__ = [
    "billed_ms",
    "end_line",
    "init_report_line",
    "report_line",
    "start_line",
    "timeout_line",
    "utc_timestamp",
]


def billed_ms(duration_ms: float) -> int:
    """Billed duration: the duration rounded up to the next millisecond (at least 1 ms)."""
    return max(1, math.ceil(duration_ms))


def utc_timestamp(epoch_s: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as Lambda prints it (``2024-01-02T03:04:05.678Z``)."""
    now = time.time() if epoch_s is None else epoch_s
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{whole}.{int((now % 1) * 1000):03d}Z"


def start_line(request_id: str, version: str) -> str:
    """``START RequestId: <id> Version: <version>``."""
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    """``END RequestId: <id>``."""
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    restore_ms: float | None = None,
    status: str | None = None,
) -> str:
    """The REPORT line; ``Init Duration`` (or ``Restore Duration``) only on a sandbox's first invoke."""
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if restore_ms is not None:
        parts.append(f"Restore Duration: {restore_ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    return "\t".join(parts) + "\n"


def init_report_line(duration_ms: float, status: str, error_type: str | None = None) -> str:
    """``INIT_REPORT Init Duration: ... Phase: init Status: error Error Type: ...`` for a failed init."""
    line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line + "\n"


def timeout_line(request_id: str, timeout_s: float) -> str:
    """``<timestamp> <id> Task timed out after 3.00 seconds``."""
    return f"{utc_timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds\n"
