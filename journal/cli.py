"""``leasehold journal dump|verify|replay --db URL [--partition N]``: look into a journal.

``dump`` prints one checked record per line (``partition seq epoch kind crc`` then the record in protobuf
text format); ``verify`` checks CRCs, sequence continuity, epochs and snapshots; ``replay`` rebuilds each
partition's core and prints a summary. They never change the database (no migration either). Exit
status: 0 clean, 1 damage found (the message names the partition and seq), 2 usage or open errors.

Wire it into a top-level parser with :func:`register`; ``python -m journal.cli`` runs it alone.

Layering: ``dump`` and ``verify`` live here. ``replay`` needs the partition core, which the journal does
not import: :mod:`assignment.recovery` defines it and :mod:`assignment.cli` passes it to :func:`register`
as an extra action, so the imports run cli → assignment → journal (``python -m journal.cli`` alone has
``dump`` and ``verify`` only). Imported by :mod:`assignment.cli`, and by :mod:`assignment.recovery` for
:data:`Action`. (The help text is this docstring up to this paragraph.)

Example::

    register(subparsers, extra_actions=recovery.JOURNAL_ACTIONS)   # leasehold journal dump|verify|replay
    main(["journal", "verify", "--db", "sqlite:///data/journal.db"])
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from google.protobuf import text_format

from journal.errors import JournalCorrupt, JournalError, UnknownPartition
from journal.schema import record_crc
from journal.store import Entry, Journal

__all__ = ["Action", "main", "register", "run"]

_DESCRIPTION = (__doc__ or "").partition("\n\nLayering:")[0]

#: What a ``journal`` action does to one partition, printing to the given stream.
Action = Callable[[Journal, int, TextIO], None]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    extra_actions: Mapping[str, tuple[str, Action]] | None = None,
) -> argparse.ArgumentParser:
    """Add the ``journal`` subcommand; the parsed namespace's ``func(args)`` runs it and returns the exit code.

    ``extra_actions`` (``name -> (help, action)``) come after ``dump`` and ``verify``, e.g. ``replay``.
    """
    parser = subparsers.add_parser("journal", help="inspect a journal: dump, verify, replay", description=_DESCRIPTION)
    actions = parser.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    for name, (help_text, command) in {**_ACTIONS, **(extra_actions or {})}.items():
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--db", required=True, metavar="URL", help="sqlite:///path or postgresql://...")
        action.add_argument("--partition", type=int, metavar="N", help="only this partition (default: all)")
        action.set_defaults(journal_action=command)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a parsed ``journal`` command (output to ``out``/``err``, default stdout/stderr)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    command: Action = args.journal_action
    try:
        journal = Journal.open(args.db, migrate=False)
    except (JournalError, OSError, ValueError) as exc:
        print(f"error: cannot open journal {args.db}: {exc}", file=err)
        return 2
    status = 0
    with journal:
        try:
            partitions = [args.partition] if args.partition is not None else journal.partitions()
        except JournalCorrupt as exc:
            print(f"DAMAGED {exc}", file=err)
            return 1
        for partition in partitions:
            try:
                command(journal, partition, out)
            except UnknownPartition as exc:
                print(f"error: {exc}", file=err)
                return 2
            except JournalCorrupt as exc:
                print(f"partition={exc.partition} DAMAGED seq={exc.seq} {exc.why}", file=out)
                print(f"error: {exc}", file=err)
                status = 1
    return status


def _format(entry: Entry) -> str:
    crc = record_crc(entry.partition, entry.seq, entry.epoch, entry.kind, entry.payload)
    body = text_format.MessageToString(entry.record(), as_one_line=True)
    return f"partition={entry.partition} seq={entry.seq} epoch={entry.epoch} kind={entry.kind} crc={crc:#010x} {body}"


def _dump(journal: Journal, partition: int, out: TextIO) -> None:
    info = journal.info(partition)
    after = info.first_seq - 1
    while True:
        try:
            entries = journal.read(partition, after, 1000)
        except JournalCorrupt as exc:
            if exc.seq is not None and exc.seq - 1 > after:  # print what precedes the damage
                for entry in journal.read(partition, after, exc.seq - 1 - after):
                    print(_format(entry), file=out)
            raise
        for entry in entries:
            print(_format(entry), file=out)
        if len(entries) < 1000:
            return
        after = entries[-1].seq


def _verify(journal: Journal, partition: int, out: TextIO) -> None:
    report = journal.verify(partition)
    print(
        f"partition={partition} ok epoch={report.epoch} first_seq={report.first_seq} last_seq={report.last_seq} "
        f"records={report.records} snapshots={report.snapshots}",
        file=out,
    )


_ACTIONS: dict[str, tuple[str, Action]] = {
    "dump": ("print every record, one per line", _dump),
    "verify": ("check CRCs, sequence continuity, epochs and snapshots; exit 1 on damage", _verify),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m journal.cli journal ...`` without the rest of the ``leasehold`` command."""
    parser = argparse.ArgumentParser(prog="leasehold")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
