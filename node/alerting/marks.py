"""What this node already told its people of each open alert, kept across restarts.

Owns the marks behind "once" in node/alerting/notices.py: the highest step of an
alert notified (`targeted`, `pool`) and the notices sent once (`escalated` per
level, `unclaimed`, `ask` and `reask` per ask and turn). They are kept in the
store's meta table in shards by the alert id's first byte, and only the shards that
changed are written: saving after a look costs what the look changed, not what every
open alert holds.
"""

from __future__ import annotations

import contextlib
from typing import Final

import msgspec

from rrn.node.store.db import Store

__all__ = ["Marks"]

_KEY: Final = "notices.marks"
_SHARDS: Final = 256
#: Where earlier versions kept the marks, each in one value (read once, then emptied).
_NOTIFIED_KEY: Final = "escalator.notified"
_SENT_KEY: Final = "notices.sent"

Sent = tuple[tuple[str, int], ...]


class _Shard(msgspec.Struct, array_like=True):
    """The marks of the alerts whose id starts with the shard's byte."""

    #: Alert -> the highest step notified (level * 2, + 1 for a hand-over).
    notified: dict[bytes, int] = {}
    #: Alert -> the notices sent once of it: (type, level or turn).
    sent: dict[bytes, Sent] = {}


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Shard)


def _shard_of(alert: bytes) -> int:
    return alert[0] if alert else 0


class Marks:
    """The notices sent of each open alert, and the highest step notified."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._shards = [_Shard() for _ in range(_SHARDS)]
        self._dirty: set[int] = set()
        #: One copy of each alert's marks (most alerts have the same few).
        self._shapes: dict[Sent, Sent] = {}
        self._legacy = False

    async def load(self) -> None:
        """The marks saved before a restart."""
        for n in range(_SHARDS):
            raw = await self.store.get_meta(f"{_KEY}.{n:02x}")
            if raw:
                with contextlib.suppress(msgspec.DecodeError):
                    shard = self._shards[n] = _DECODER.decode(raw)
                    shard.sent = {a: self._shapes.setdefault(m, m) for a, m in shard.sent.items()}
        raw = await self.store.get_meta(_NOTIFIED_KEY)
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                for alert, step in msgspec.msgpack.decode(raw, type=dict[bytes, int]).items():
                    self.set_step(alert, max(step, self.step(alert)))
                self._legacy = True
        raw = await self.store.get_meta(_SENT_KEY)
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                for alert, kind, level in msgspec.msgpack.decode(
                    raw, type=list[tuple[bytes, str, int]]
                ):
                    self.first(kind, alert, level)
                self._legacy = True

    async def save(self) -> None:
        """Write the shards that changed."""
        dirty, self._dirty = self._dirty, set()
        for n in sorted(dirty):
            await self.store.set_meta(f"{_KEY}.{n:02x}", _ENCODER.encode(self._shards[n]))
        if self._legacy:  # written anew in shards: the old values are spent
            self._legacy = False
            await self.store.set_meta(_NOTIFIED_KEY, b"")
            await self.store.set_meta(_SENT_KEY, b"")

    def step(self, alert: bytes) -> int:
        """The highest step of `alert` notified (-1: none)."""
        return self._shards[_shard_of(alert)].notified.get(alert, -1)

    def set_step(self, alert: bytes, step: int) -> None:
        n = _shard_of(alert)
        self._shards[n].notified[alert] = step
        self._dirty.add(n)

    def first(self, kind: str, alert: bytes, level: int) -> bool:
        """Whether this notice of `alert` was not sent yet; it is marked sent."""
        n = _shard_of(alert)
        sent = self._shards[n].sent.get(alert, ())
        if (kind, level) in sent:
            return False
        shape = (*sent, (kind, level))
        self._shards[n].sent[alert] = self._shapes.setdefault(shape, shape)
        self._dirty.add(n)
        return True

    def keep(self, still_open: set[bytes]) -> None:
        """Drop the marks of alerts that are not open (they ended while the node was down)."""
        for shard in self._shards:
            for alert in [a for a in {*shard.notified, *shard.sent} if a not in still_open]:
                self.drop(alert)

    def drop(self, alert: bytes) -> None:
        """Drop the marks of an alert that ended."""
        n = _shard_of(alert)
        shard = self._shards[n]
        step = shard.notified.pop(alert, None)
        if shard.sent.pop(alert, None) is not None or step is not None:
            self._dirty.add(n)
