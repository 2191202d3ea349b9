"""The journal's one door to native code: the Rust loop that checks recovery's record rows.

``check_record_rows`` is compiled into the extension module ``assignment._core``, which maturin builds
as one module for the partition core and this loop. The extension is the lowest layer, below both the
``journal`` and the ``assignment`` packages, so the journal imports it here directly and not through
:mod:`assignment.partition_core`: the journal then depends on no Python module of ``assignment``, and
``assignment`` (whose :mod:`assignment.recovery` replays the journal into a core) can depend on the
journal without a cycle. Only :mod:`journal.checker` imports this module; it keeps the Python checker
(which names each fault) and the native fast path side by side.

Example::

    accepted, expected, prev_epoch = check_record_rows(
        rows, 0, partition, expected, prev_epoch, head.epoch, head.next_seq, KINDS, payloads
    )
"""

from __future__ import annotations

from assignment._core import check_record_rows

__all__ = ["check_record_rows"]
