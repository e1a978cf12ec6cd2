"""Where a growing store's time goes (issue 20): a history imported, timed per statement.

Takes a history built by `bench/history.py --out DIR` and imports its export into a
fresh copy of node 2's home through the node's own pipeline (`rrn log import`'s
code, in this process), timing every statement the store's connection runs. For
each tenth of the events it reports the events/s and the seconds spent in each
statement shape (bound values and literals cut off), so a slowdown as the store
grows can be named: a commit that syncs more pages, an insert into an index whose
pages no longer stay in the cache, a read of states by random id.

    python bench/store_profile.py DIR [--events N] [--top 6]

Prints progress on stderr and one JSON line on stdout. The timing wraps the
connection aiosqlite hands its thread (a private attribute: this is a diagnostic,
not part of the node).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import platform
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.history_build import JOINER, log
from rrn.node.devnet.devnet import load_devnet
from rrn.node.home.layout import open_home
from rrn.node.ops import log as import_code
from rrn.node.store.db import Store

#: Seconds per statement shape, summed over the run.
_SPENT: collections.defaultdict[str, float] = collections.defaultdict(float)
#: Columns of one row of `INSERT INTO events` (node/store/writes.py).
_EVENT_COLUMNS = 11


def shape(sql: str) -> str:
    """A statement without what varies: cut at its values or its list of ids."""
    text = " ".join(sql.split())
    for cut in (" VALUES", " IN ("):
        if cut in text:
            text = text[: text.index(cut) + len(cut)]
    return re.sub(r"\b\d+\b", "N", text)[:90]


class _Timed:
    """The connection the store's thread uses, timing each statement to its last row,
    and closing a tenth each time the events committed pass one."""

    def __init__(self, conn: Any, tenth: int, top: int) -> None:
        self._conn: sqlite3.Connection = conn
        self._tenth = tenth
        self._top = top
        self._inserted = 0
        self._committed = 0
        #: When the last tenth closed, the events committed then, the time spent by then.
        self._mark: tuple[float, int, dict[str, float]] = (time.perf_counter(), 0, {})
        self.tenths: list[dict[str, Any]] = []

    def execute(self, sql: str, args: Any = ()) -> Any:
        start = time.perf_counter()
        cursor = self._conn.execute(sql, args)
        rows = cursor.fetchall() if cursor.description is not None else None
        what = shape(sql)
        _SPENT[what] += time.perf_counter() - start
        if what.startswith("INSERT INTO events "):
            self._inserted += len(args) // _EVENT_COLUMNS
        elif what == "COMMIT":
            self._committed += self._inserted
            self._inserted = 0
            if self._committed >= self._tenth * (len(self.tenths) + 1):
                self._close_tenths()
        return cursor if rows is None else _Rows(rows)

    def _close_tenths(self) -> None:
        """Close every tenth this commit completed; a commit that completes several (a
        small history) shares its time and statements among them."""
        now = time.perf_counter()
        since, events, spent_before = self._mark
        spent = {k: v - spent_before.get(k, 0.0) for k, v in _SPENT.items()}
        most = sorted(spent.items(), key=lambda kv: -kv[1])[: self._top]
        rate = round((self._committed - events) / max(1e-6, now - since))
        closed = min(10, self._committed // self._tenth) - len(self.tenths)
        for _ in range(closed):
            self.tenths.append({
                "events": self._tenth * (len(self.tenths) + 1),
                "rate": rate,
                "store_s": round(sum(spent.values()) / closed, 4),
                "statements_s": {k: round(v / closed, 4) for k, v in most},
            })  # fmt: skip
        log(f"{self._committed:,} events stored, {rate:,}/s")
        self._mark = (now, self._committed, dict(_SPENT))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _Rows(list[Any]):
    """Rows already read, answering as the cursor they came from would."""

    def fetchall(self) -> list[Any]:
        return list(self)

    def fetchone(self) -> Any:
        return self[0] if self else None

    def close(self) -> None:
        pass


def _timed_store(tenth: int, top: int, timed: list[_Timed]) -> Any:
    opened = import_code.open_store  # type: ignore[attr-defined]

    @asynccontextmanager
    async def timing(path: Path) -> AsyncIterator[Store]:
        async with opened(path) as store:
            timed.append(_Timed(store._db._connection, tenth, top))
            store._db._connection = timed[-1]  # type: ignore[assignment]
            yield store

    return timing


def _lines(export: Path, events: int) -> Iterator[bytes]:
    with export.open("rb") as f:
        n = 0
        for line in f:
            if b'"type": "event"' in line or b'"type":"event"' in line:
                if n == events:
                    return
                n += 1
            yield line


async def profile(root: Path, events: int, top: int) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="rrn-store-profile-"))
    try:
        home_src = load_devnet(root / "net0").node(JOINER).home
        shutil.copytree(home_src, work / "home", symlinks=True)
        export = work / "export.jsonl"
        with export.open("wb") as out:
            out.writelines(_lines(root / "history.jsonl", events))
        timed: list[_Timed] = []
        import_code.open_store = _timed_store(max(1, events // 10), top, timed)  # type: ignore[attr-defined]
        await import_code.import_envelopes(
            open_home(work / "home"), import_code.read_export(export)
        )
        tenths = timed[0].tenths
        return tenths
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="a history built by bench/history.py --out")
    p.add_argument("--events", type=int, default=None, help="import only the first N")
    p.add_argument("--top", type=int, default=6, help="statement shapes kept per tenth")
    args = p.parse_args()
    built = json.loads((args.root / "build.json").read_text())
    events = min(args.events or built["events"], built["events"])
    tenths = asyncio.run(profile(args.root, events, args.top))
    print(json.dumps({
        "bench": "store_profile",
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "events": events,
        "flatness": round(tenths[-1]["rate"] / tenths[0]["rate"], 3) if tenths else None,
        "tenths": tenths,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
