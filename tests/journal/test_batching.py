"""The one batcher: requests of a key share writes in call order, one group per write; a failed write
fails its batch, and fences its group only when asked."""

from __future__ import annotations

import asyncio

import pytest

from journal.batching import Batcher


def test_requests_share_writes_in_order_and_never_mix_groups() -> None:
    writes: list[tuple[str, int, list[list[str]]]] = []

    def write(key: str, group: int, requests: list[list[str]]) -> list[int]:
        writes.append((key, group, requests))
        return [len(r) for r in requests]

    async def main() -> None:
        woken: list[str] = []
        batcher: Batcher[str, int, str, int] = Batcher(write, max_rows=3, on_written=woken.append)
        futures = [
            batcher.submit("k", 1, ["a"]),
            batcher.submit("k", 1, ["b", "c"]),
            batcher.submit("k", 1, ["d"]),  # over max_rows: the next write
            batcher.submit("k", 2, ["e"]),  # another group: never in the same write
        ]
        assert await asyncio.gather(*futures) == [1, 2, 1, 1]
        await batcher.close()
        assert woken == ["k", "k", "k"]
        with pytest.raises(RuntimeError, match="closed"):
            batcher.submit("k", 1, ["late"])

    asyncio.run(main())
    assert writes == [("k", 1, [["a"], ["b", "c"]]), ("k", 1, [["d"]]), ("k", 2, [["e"]])]


@pytest.mark.parametrize("fence", [False, True])
def test_a_failed_write_fails_its_batch_and_fences_only_when_asked(fence: bool) -> None:
    calls = 0

    def write(key: str, group: int, requests: list[list[str]]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return ["ok" for _ in requests]

    async def main() -> None:
        batcher: Batcher[str, int, str, str] = Batcher(write, max_rows=1, fence_failed_groups=fence)
        first, second = batcher.submit("k", 1, ["a"]), batcher.submit("k", 1, ["b"])
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
        assert isinstance(outcomes[0], OSError)
        assert isinstance(outcomes[1], OSError) if fence else outcomes[1] == "ok"
        assert await batcher.submit("k", 2, ["c"]) == "ok"  # another group is never fenced
        await batcher.close()

    asyncio.run(main())
