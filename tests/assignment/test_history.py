"""The history checker can fail: synthetic histories with one planted violation each must be reported.

Each case starts from a consistent history (client events, worker audit logs written by the real
:class:`~workers.audit.InvocationLog`, a real SQLite journal) that checks clean, then breaks one rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journal.store import Journal
from journal.v1 import records_pb2
from tests.assignment.history import Held, History, JournalView, Run, runs_from_audit
from workers.audit import InvocationLog


def granted(epoch: int, seq: int, sandbox: int, now_ms: int) -> records_pb2.Record:
    token = records_pb2.LeaseToken(epoch=epoch, seq=seq)
    return records_pb2.Record(lease_granted=records_pb2.LeaseGranted(token=token, sandbox_id=sandbox, now_ms=now_ms))


def released(epoch: int, seq: int) -> records_pb2.Record:
    return records_pb2.Record(
        lease_released=records_pb2.LeaseReleased(token=records_pb2.LeaseToken(epoch=epoch, seq=seq))
    )


def write_journal(tmp_path: Path, records: list[records_pb2.Record], partition: int = 0) -> str:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with Journal.open(url) as journal:
        epoch = journal.take_over(partition)
        journal.append(partition, epoch, [r.SerializeToString() for r in records])
    return url


def held(request_id: str, token: tuple[int, int], sandbox: str, acked: float, release: float) -> Held:
    return Held(request_id, 0, token, sandbox, acked, release, released=True, invoked="ok", answered=True)


def run(sandbox: str, token: tuple[int, int], request_id: str, start: int, end: int | None, bound: int = 0) -> Run:
    return Run("w1", sandbox, token, request_id, start, end, end if end is not None else (bound or 2**62))


@pytest.fixture
def clean() -> tuple[History, JournalView, list[Run]]:
    """Two leases on p0-s1 one after the other, each invoked once; one on p0-s2."""
    history = History()
    history.grants += [
        held("r1", (1, 2), "p0-s1", 1.0, 2.0),
        held("r2", (1, 4), "p0-s1", 3.0, 4.0),
        held("r3", (1, 5), "p0-s2", 1.5, 3.5),
    ]
    view = JournalView()
    for record in (granted(1, 2, 1, 1000), released(1, 2), granted(1, 4, 1, 3000), released(1, 4)):
        view.add(0, record)
    view.add(0, granted(1, 5, 2, 1500))
    view.add(0, released(1, 5))
    runs = [
        run("p0-s1", (1, 2), "r1", 1100, 1900),
        run("p0-s1", (1, 4), "r2", 3100, 3900),
        run("p0-s2", (1, 5), "r3", 1600, 3400),
    ]
    return history, view, runs


def test_a_clean_history_checks_clean(clean: tuple[History, JournalView, list[Run]], tmp_path: Path) -> None:
    history, view, runs = clean
    assert history.check() == []
    assert history.check_journal(view) == []
    assert history.check_runs(view, runs) == []
    records = [granted(1, 2, 1, 1000), released(1, 2), granted(1, 4, 1, 3000), released(1, 4)]
    url = write_journal(tmp_path, [*records, granted(1, 5, 2, 1500), released(1, 5)])
    assert history.check(url, runs) == []


def test_two_holders_at_once_on_the_client_side(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, _, _ = clean
    history.grants.append(held("r9", (1, 7), "p0-s1", 3.5, 5.0))  # acked while r2 still held p0-s1
    assert any("held by r2 and r9 at once" in v for v in history.check())


def test_one_token_granted_to_two_requests(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, _, _ = clean
    history.grants.append(held("r9", (1, 5), "p0-s3", 9.0, 9.5))
    assert any("granted to r3 and r9" in v for v in history.check())


def test_an_acknowledged_grant_missing_from_the_journal(
    clean: tuple[History, JournalView, list[Run]], tmp_path: Path
) -> None:
    history, _, _ = clean
    url = write_journal(tmp_path, [granted(1, 2, 1, 1000), released(1, 2), granted(1, 5, 2, 1500), released(1, 5)])
    violations = history.check(url)
    assert violations == [
        "acknowledged grant (0, 1, 4) (r2) missing from the journal",
        "acknowledged release (0, 1, 4) missing from the journal",
    ]


def test_a_grant_journaled_for_another_sandbox_and_a_lost_release(
    clean: tuple[History, JournalView, list[Run]],
) -> None:
    history, _, _ = clean
    view = JournalView()
    for record in (granted(1, 2, 1, 1000), released(1, 2), granted(1, 4, 1, 3000), granted(1, 5, 7, 1500)):
        view.add(0, record)
    violations = history.check_journal(view)
    assert "grant (0, 1, 5) is for sandbox 7 in the journal, p0-s2 acked" in violations
    assert "acknowledged release (0, 1, 4) missing from the journal" in violations
    assert len(violations) == 3  # and (0, 1, 5)'s release


def test_overlapping_invocations_on_one_sandbox(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, view, runs = clean
    runs[1] = run("p0-s1", (1, 4), "r2", 1800, 3900)  # starts before r1's run ended
    violations = history.check_runs(view, runs)
    assert any("sandbox p0-s1: invocations r1 (1, 2) and r2 (1, 4) overlap" in v for v in violations), violations


def test_a_run_whose_token_was_never_granted(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, view, runs = clean
    runs.append(run("p0-s2", (1, 99), "rogue", 3500, 3600))
    runs.append(run("p0-s2", (1, 2), "misplaced", 3700, 3800))  # a real token, of another sandbox
    runs.append(run("sandbox-x", (1, 2), "odd", 3700, 3800))
    violations = history.check_runs(view, runs)
    assert any("rogue (1, 99) on p0-s2" in v and "never granted" in v for v in violations), violations
    assert any("misplaced" in v and "granted for sandbox p0-s1" in v for v in violations), violations
    assert any("odd" in v and "not a sandbox name" in v for v in violations), violations


def test_a_stale_token_ran(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, view, runs = clean
    runs.append(run("p0-s1", (1, 2), "r1-late", 4100, 4200))  # r1's token after (1, 4) was granted at 3000
    violations = history.check_runs(view, runs)
    assert any("r1-late (1, 2)" in v and "stale token ran" in v for v in violations), violations


def test_a_run_before_its_grant_and_one_past_the_next_grant(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, view, runs = clean
    runs[0] = run("p0-s1", (1, 2), "r1", 900, 3050)
    violations = history.check_runs(view, runs)
    assert any("started at 900, before its grant at 1000" in v for v in violations), violations
    assert any("ran until 3050, past the next grant (1, 4) at 3000" in v for v in violations), violations


def test_an_answered_invocation_missing_from_the_audit(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, view, runs = clean
    violations = history.check_runs(view, runs[1:])
    assert violations == ["invocation r1 (1, 2) on p0-s1 answered but in no audit log"]
    history.grants[0].answered = False  # the worker never answered (e.g. it was killed): nothing is owed
    assert history.check_runs(view, runs[1:]) == []


def test_runs_need_the_journal(clean: tuple[History, JournalView, list[Run]]) -> None:
    history, _, runs = clean
    with pytest.raises(ValueError, match="needs the journal"):
        history.check(None, runs)


def test_audit_logs_with_a_dead_agent(tmp_path: Path) -> None:
    """A start without an end lasts until the next agent opened the log: a run before that overlaps."""
    path = tmp_path / "w1.jsonl"
    first = InvocationLog.open(path)
    start = first.started("p0-s1", (1, 2), "cut")  # the agent dies here
    lines = [json.dumps({"event": "open", "pid": 2, "ms": start + 50})]
    lines.append(json.dumps({"event": "start", "sandbox": "p0-s1", "epoch": 1, "seq": 4, "request_id": "early",
                             "start_ms": start + 10}))  # fmt: skip
    lines.append(json.dumps({"event": "end", "sandbox": "p0-s1", "epoch": 1, "seq": 4, "request_id": "early",
                             "start_ms": start + 10, "end_ms": start + 20, "outcome": "ok"}))  # fmt: skip
    lines.append('{"event": "start", "sandbox": "p0-s1", "ep')  # torn
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")
    first.close()
    runs = runs_from_audit(path, "w1")
    assert sorted((r.request_id, r.end_ms, r.bound_ms) for r in runs) == [
        ("cut", None, start + 50),
        ("early", start + 20, start + 20),
    ]
    view = JournalView()
    view.add(0, granted(1, 2, 1, start - 5))
    view.add(0, granted(1, 4, 1, start + 5))
    violations = History().check_runs(view, runs)
    assert any("invocations cut (1, 2) and early (1, 4) overlap" in v for v in violations), violations
    # the same run after the new agent opened the log is fine
    later = [r if r.request_id == "cut" else Run("w1", r.sandbox, r.token, "late", start + 60, start + 70, start + 70)
             for r in runs]  # fmt: skip
    assert History().check_runs(view, later) == []
