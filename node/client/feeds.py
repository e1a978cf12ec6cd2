"""The integrators' client (see the package docstring): connecting, the three feeds,
and verifying events against the roster chain the node publishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig
from nats.js.errors import NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from rrn.federation.keyring import Keyring, Rotation
from rrn.federation.roster import verify_genesis, verify_next
from rrn.node.alerting.notices import NOTICE_SUBJECTS, Notice, read_notice
from rrn.node.home.integrators import inbox_prefix
from rrn.node.home.tls import pinned_context
from rrn.node.integrations.consumers import pulled
from rrn.node.integrations.feeds import (
    ALERTS_BUCKET,
    EVENTS_STREAM,
    NETWORK_BUCKET,
    NOTICES_STREAM,
    AlertRecord,
)
from rrn.node.ops.types import AlertInfo
from rrn.protocol.envelope import Event, check_signed, open_envelope
from rrn.protocol.errors import ProtocolError, Reason, RrnError
from rrn.protocol.kinds import decode_payload
from rrn.protocol.roster import RosterCert, decode_cert, roster_id

__all__ = ["AlertChange", "NodeFeeds", "VerifiedEvent", "connect"]

logger = logging.getLogger(__name__)

_BATCH: Final = 100
#: How long a feed waits for a node that just started to publish its roster chain.
_ROSTER_WAIT_S: Final = 10.0


class AlertChange(msgspec.Struct, frozen=True, kw_only=True):
    """An alert's state now (None: the alert was deleted everywhere by its origin)."""

    id: str
    alert: AlertInfo | None
    #: Increases with every change of any alert (the bucket's sequence).
    revision: int


class VerifiedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose signature and signer this client checked (version 1)."""

    v: int = 1
    id: str
    origin: str
    epoch: int
    seq: int
    kind: str
    wall_ms: int
    roster_ver: int
    #: The payload as JSON values (bytes as hex), or None: deleted by a tombstone, or
    #: a kind this version does not know, or sealed to others.
    payload: dict[str, Any] | None


class NodeFeeds:
    """One node's feeds, for one integrator."""

    def __init__(self, nc: NatsClient, network: str, name: str) -> None:
        self.nc = nc
        #: The integrator's name: its consumers are named after it.
        self.name = name
        self.js = nc.jetstream()
        self.network = bytes.fromhex(network)
        self._keyring: Keyring | None = None
        #: Events that did not verify, and were not yielded.
        self.rejected = 0

    async def alerts(self) -> AsyncIterator[AlertChange]:
        """Every current alert's state now (open, or closed within the feeds' age:
        docs/OPERATIONS.md), then every change, until cancelled."""
        kv = await self.js.key_value(ALERTS_BUCKET)
        watcher = await kv.watchall()
        async for entry in watcher:
            if entry is None:
                continue  # the end of the initial values: changes follow
            record = None
            if entry.operation is None and entry.value:
                record = msgspec.json.decode(entry.value, type=AlertRecord).alert
            yield AlertChange(id=entry.key, alert=record, revision=entry.revision or 0)

    async def events(self) -> AsyncIterator[VerifiedEvent]:
        """Every event, verified, from where this integrator's consumer left off (the
        first time: from the oldest kept); an event is acknowledged once the loop asks
        for the next. One that does not verify is counted (`rejected`) and skipped; a
        roster chain that does not verify raises, and leaves the event for next time."""
        async for msg in self._pull(EVENTS_STREAM):
            try:
                event = await self._verify(msg.data)
            except ProtocolError as exc:  # the event's own fault; the roster's is raised
                self.rejected += 1
                logger.warning("an event in the stream does not verify: %s", exc)
                await msg.ack()
                continue
            yield _json(event)
            await msg.ack()

    async def notices(self) -> AsyncIterator[Notice]:
        """Every notice, from where this integrator's consumer left off."""
        async for msg in self._pull(NOTICES_STREAM, NOTICE_SUBJECTS):
            notice = read_notice(msg.data)
            if notice is not None:
                yield notice
            await msg.ack()

    async def _pull(self, stream: str, only: list[str] | None = None) -> AsyncIterator[Any]:
        # One durable consumer per feed, named after the integrator: the only one its
        # permissions let it make and use (node/natsd/conf.py).
        durable = self.name
        config = ConsumerConfig(durable_name=durable, ack_wait=60.0, filter_subjects=only)
        async for msg in pulled(self.js, stream, config, _BATCH):
            yield msg

    async def _verify(self, envelope: bytes) -> Event:
        event = open_envelope(envelope)
        keyring = self._keyring or await self._load_keyring()
        try:
            check_signed(event, net=self.network, resolve=keyring.resolve)
        except ProtocolError as exc:
            if exc.reason not in (Reason.UNKNOWN_ORIGIN, Reason.UNKNOWN_EPOCH):
                raise
            keyring = await self._load_keyring()  # a newer roster may name it
            check_signed(event, net=self.network, resolve=keyring.resolve)
        rotation = Rotation.from_event(event)
        if rotation is not None:
            self._keyring = keyring.learn(rotation)
        return event

    async def _load_keyring(self) -> Keyring:
        """The roster chain the node publishes, verified from the network id up."""
        try:
            certs = await self._roster_certs()
            if not certs:
                raise RrnError("the node has published no roster chain (its bucket is empty)")
            certs.sort(key=lambda c: _version(c.roster))
            if roster_id(certs[0].roster) != self.network:
                raise RrnError("the node's roster chain does not start at the network id given")
            roster = verify_genesis(certs[0])
            previous = certs[0].roster
            for cert in certs[1:]:
                roster = verify_next(roster, previous, cert)
                previous = cert.roster
        except ProtocolError as exc:  # the roster's fault, not an event's: events() raises
            raise RrnError(f"the node's roster chain does not verify: {exc}") from exc
        rotations = self._keyring.rotations if self._keyring is not None else ()
        self._keyring = Keyring(roster, rotations)
        return self._keyring

    async def _roster_certs(self) -> list[RosterCert]:
        """The certificates in the node's network bucket, waiting _ROSTER_WAIT_S for a
        first one: an event can come before a node that just started has written them
        (nats-py's `keys()` raises on an empty bucket)."""
        kv: KeyValue = await self.js.key_value(NETWORK_BUCKET)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _ROSTER_WAIT_S
        while True:
            certs = []
            with contextlib.suppress(NotFoundError, NoKeysError):
                for key in await kv.keys():
                    entry = await kv.get(key)
                    if entry.value:
                        certs.append(decode_cert(entry.value))
            if certs or loop.time() >= deadline:
                return certs
            await asyncio.sleep(0.25)


def _version(roster_bytes: bytes) -> int:
    fields: list[Any] = msgspec.msgpack.decode(roster_bytes)
    return int(fields[1])


def _json(event: Event) -> VerifiedEvent:
    h = event.header
    payload = None
    if event.payload is not None:
        with contextlib.suppress(ProtocolError):
            decoded = decode_payload(h.kind, event.payload)
            payload = _hex(msgspec.to_builtins(decoded, builtin_types=(bytes,)))
    return VerifiedEvent(
        id=event.id.hex(),
        origin=h.origin,
        epoch=h.epoch,
        seq=h.seq,
        kind=h.kind,
        wall_ms=h.wall_ms,
        roster_ver=h.roster_ver,
        payload=payload,
    )


def _hex(value: Any) -> Any:
    """JSON values, with bytes (ids, keys, sealed blobs) as hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hex(v) for v in value]
    return value


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    user: str,
    password: str,
    network: str,
    ca_file: str | Path | None = None,
    **options: Any,
) -> AsyncIterator[NodeFeeds]:
    """A connection to a node's feeds as the integrator `user` (`rrn integrator add`);
    `network`: the network id, hex, from `rrn status`; `ca_file`: the node's
    certificate, when its client port takes TLS only (the connection pins it). It
    reconnects on its own for as long as it is open."""
    nc = await nats.connect(
        url,
        user=user,
        password=password,
        inbox_prefix=inbox_prefix(user),
        tls=pinned_context(Path(ca_file)) if ca_file is not None else None,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        **options,
    )
    try:
        yield NodeFeeds(nc, network, user)
    finally:
        with contextlib.suppress(NatsError):
            await nc.close()
