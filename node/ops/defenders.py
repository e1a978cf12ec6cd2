"""Defenders' pseudonyms: minted at the originating node, the identity kept there only.

Owns the mapping pseudonym -> real identity. The identity is sealed to this
member's own X25519 key (bound to the pseudonym and to a local position no
event has), so the store holds it encrypted, and the key itself can be protected
by a passphrase (`rrn key protect`). It never leaves the node: alerts carry the
pseudonym only, and `rrn defender show` gets the identity back sealed to the
CLI's one-request key. `rrn defender forget` deletes it for good.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from msgspec import Meta

from rrn.node.control.channel import handler
from rrn.node.control.transit import open_request, seal_reply
from rrn.node.home.keys import SealingKeys
from rrn.protocol.alerts import PSEUDONYM_PATTERN, new_pseudonym
from rrn.protocol.errors import ControlError, ProtocolError
from rrn.protocol.sealing import Position, decode_sealed, encode_sealed, open_sealed, seal

if TYPE_CHECKING:
    from rrn.node.home.clock import Clock  # the CLI imports this module's types
    from rrn.node.store.db import Store

__all__ = [
    "DefenderArgs",
    "DefenderInfo",
    "DefendersApi",
    "NewDefenderArgs",
    "ShowDefenderArgs",
]

Pseudonym = Annotated[str, Meta(pattern=PSEUDONYM_PATTERN)]
#: Where identities are sealed at rest: epoch 0 (no event), seq 2 (not the control channel's).
_AT_REST_SEQ: Final = 2


class NewDefenderArgs(msgspec.Struct, frozen=True, kw_only=True):
    #: The identity (free text), sealed by the CLI to this node's key.
    identity: bytes


class DefenderArgs(msgspec.Struct, frozen=True, kw_only=True):
    pseudonym: Pseudonym


class ShowDefenderArgs(msgspec.Struct, frozen=True, kw_only=True):
    pseudonym: Pseudonym
    reply_to: Annotated[bytes, Meta(min_length=32, max_length=32)]


class DefenderInfo(msgspec.Struct, frozen=True, kw_only=True):
    pseudonym: str
    created_ms: int
    #: The identity sealed to the request's reply_to key (show only).
    sealed_identity: bytes | None = None


class _NoArgs(msgspec.Struct, frozen=True):
    pass


class _AtRest(msgspec.Struct, array_like=True, frozen=True):
    pseudonym: str
    identity: str


class DefendersApi:
    """The pseudonym operations of one running node."""

    def __init__(
        self, *, store: Store, org: str, net: bytes, key: SealingKeys, clock: Clock
    ) -> None:
        self._store = store
        self._org = org
        self._net = net
        self._key = key
        self._clock = clock

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "defender.add": handler(NewDefenderArgs, self.add),
            "defender.show": handler(ShowDefenderArgs, self.show),
            "defender.list": handler(_NoArgs, lambda _: self.list()),
            "defender.forget": handler(DefenderArgs, self.forget),
        }

    def _at(self) -> Position:
        return Position(self._net, self._org, 0, _AT_REST_SEQ)

    async def add(self, args: NewDefenderArgs) -> DefenderInfo:
        text = open_request(args.identity, self._org, self._key, self._net).decode(
            "utf-8", "replace"
        )
        if not text.strip() or len(text) > 4000:
            raise ControlError("give the identity as 1 to 4000 characters of text")
        pseudonym, now = new_pseudonym(), self._clock.now_ms()
        plaintext = msgspec.msgpack.encode(_AtRest(pseudonym, text))
        blob = encode_sealed(
            seal(plaintext, {self._org: self._key.current.public_key()}, self._at())
        )
        await self._store.pseudonyms.put(pseudonym, blob, now)
        return DefenderInfo(pseudonym=pseudonym, created_ms=now)

    async def show(self, args: ShowDefenderArgs) -> DefenderInfo:
        blob = await self._store.pseudonyms.get(args.pseudonym)
        if blob is None:
            raise ControlError(f"{args.pseudonym} was not minted here (or was forgotten)")
        try:
            opened = open_sealed(decode_sealed(blob), self._org, self._key, self._at())
            at_rest = msgspec.msgpack.decode(opened, type=_AtRest)
        except (ProtocolError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ControlError("the stored identity does not open with this node's key") from exc
        if at_rest.pseudonym != args.pseudonym:
            raise ControlError("the stored identity belongs to another pseudonym (tampered)")
        sealed = seal_reply(at_rest.identity.encode(), args.reply_to, self._org, self._net)
        created = dict(await self._store.pseudonyms.minted()).get(args.pseudonym, 0)
        return DefenderInfo(pseudonym=args.pseudonym, created_ms=created, sealed_identity=sealed)

    async def list(self) -> list[DefenderInfo]:
        return [
            DefenderInfo(pseudonym=p, created_ms=t)
            for p, t in await self._store.pseudonyms.minted()
        ]

    async def forget(self, args: DefenderArgs) -> bool:
        if not await self._store.pseudonyms.forget(args.pseudonym):
            raise ControlError(f"{args.pseudonym} was not minted here (or was forgotten)")
        return True
