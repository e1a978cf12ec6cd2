"""`rrn key rotate` in the daemon: move this node to its next key epoch, in its own chain.

Owns the order of a routine rotation (docs/OPERATIONS.md, "Rotating keys"):

1. the new signing and sealing keys are written to HOME/keys (0600, under the
   passphrase if the keys are protected) and synced, before anything names them;
2. the new sealing key joins the keys this node opens with, so that whatever a
   member seals to it as soon as it learns it can be read;
3. the ingest worker signs `key.rotated` with the old key (the new key's proof
   inside) and signs every later event with the new key.

A crash between 1 and 3 leaves an unused key on disk, which the next rotation
picks up rather than making another. A compromised key is not rotated this way
(whoever holds it could rotate too): the roster cuts it (`member propose --cut`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from rrn.node.control.channel import handler
from rrn.node.home.keys import SealingKeys, next_keys
from rrn.node.pipeline.ingest import Ingestor

__all__ = ["KeysApi", "RotatedInfo"]


class RotatedInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What `rrn key rotate` reports."""

    org: str
    from_epoch: int
    epoch: int
    seq: int  # the rotation's place in the old epoch's chain (its last event)
    event_id: str
    sign_pub: str
    enc_pub: str
    #: The epoch the roster lists for this member: roster approvals are signed with it.
    roster_epoch: int


class _NoArgs(msgspec.Struct, frozen=True):
    pass


class KeysApi:
    """Key operations of one running node."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        keys_dir: Path,
        passphrase: bytes | None,
        sealing: SealingKeys,
        on_rotated: Callable[[], None],
    ) -> None:
        self._ingestor = ingestor
        self._keys_dir = keys_dir
        self._passphrase = passphrase
        self._sealing = sealing
        self._on_rotated = on_rotated
        self._lock = asyncio.Lock()

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {"key.rotate": handler(_NoArgs, lambda _: self.rotate())}

    async def rotate(self) -> RotatedInfo:
        """Rotate this node's signing and sealing keys; the rotation once durable."""
        async with self._lock:
            me = self._ingestor.me
            keyring = self._ingestor.network.keyring

            def unused(epoch: int) -> bool:
                return epoch > me.epoch and not keyring.knows(me.org, epoch)

            epoch, key, enc = await asyncio.to_thread(
                next_keys, self._keys_dir, unused, self._passphrase
            )
            self._sealing.add(enc)
            enc_pub = enc.public_key().public_bytes_raw()
            event = await self._ingestor.rotate(epoch, key, enc_pub)
            self._on_rotated()
            member = self._ingestor.network.roster.member(me.org)
            return RotatedInfo(
                org=me.org,
                from_epoch=event.header.epoch,
                epoch=epoch,
                seq=event.header.seq,
                event_id=event.id.hex(),
                sign_pub=key.public_key().public_bytes_raw().hex(),
                enc_pub=enc_pub.hex(),
                roster_epoch=member.key().epoch if member is not None else epoch,
            )
