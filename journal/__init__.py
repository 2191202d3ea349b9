"""Leasehold's append-only, fenced journal of partition records (protobuf messages in ``journal.v1``).

Callers open :class:`journal.store.Journal`, the facade over the package's parts (see that module); the
package imports nothing of ``assignment`` but its native extension (:mod:`journal.native`). Anything may
import it.

Example::

    from journal.store import Journal

    with Journal.open("sqlite:///data/journal.db") as journal:
        print(journal.partitions())
"""
