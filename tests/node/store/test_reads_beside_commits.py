"""Reads and commits share the store's one connection and its thread. A read must
run its statement to the end in one hand-over to that thread: one handed over in two
steps let a commit in between update the row the statement stood on, and sqlite
then returned that row twice (`rrn alert show` found its alert's short id "matches
2 alerts", the same one twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from rrn.federation.alert_view import view
from rrn.federation.facts import Pos
from rrn.node.store.writes import Batch
from tests.node.conftest import running_pipeline
from tests.support import Net, raised


async def test_a_read_beside_commits_that_change_its_row_finds_each_alert_once(
    tmp_path: Path, tn: Net
) -> None:
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        alert = (await p.ingestor.append(raised(0))).id
        others = [(await p.ingestor.append(raised(i))).id for i in range(1, 4)]
        await p.ingestor.flush()
        state = (await p.store.alert_states([alert]))[alert]
        v = view(state, p.ingestor.network.authority)
        for grow in range(1, 41):
            # The same alert, its stored state a little longer each time (as facts join).
            misses = tuple(Pos("nairobi-dl", 1, k, k, bytes(32)) for k in range(grow * 8))
            longer = msgspec.structs.replace(state, misses=misses)
            found, _ = await asyncio.gather(
                p.store.alert_ids_with_prefix(alert[:6]),
                p.store.commit(Batch(alerts={alert: longer}, views={alert: v})),
            )
            assert found == [alert], f"after {grow} commits: {[a.hex()[:12] for a in found]}"
            listed, _ = await asyncio.gather(
                p.store.open_alert_ids(),
                p.store.commit(Batch(alerts={alert: longer}, views={alert: v})),
            )
            assert sorted(listed) == sorted([alert, *others])


async def test_every_alert_id_comes_once_a_page_at_a_time(tmp_path: Path, tn: Net) -> None:
    """The integrators' first fill walks every alert in pages (a list of hundreds of
    thousands held the loop): none left out at a page's edge, none twice, the pages
    as long as asked, an empty page never yielded."""
    async with running_pipeline(tmp_path / "store.db", tn) as p:
        ids = {(await p.ingestor.append(raised(i))).id for i in range(7)}
        await p.ingestor.flush()
        assert set(await p.store.alert_ids()) == ids
        for size, lengths in ((2, [2, 2, 2, 1]), (7, [7]), (100, [7])):
            pages = [page async for page in p.store.alert_id_pages(size)]
            assert [len(page) for page in pages] == lengths, size
            walked = [a for page in pages for a in page]
            assert sorted(walked) == sorted(ids), size
