"""Per-origin chains: where a verified event fits, and fork evidence.

Owns the chain rule every node applies identically (docs/PROTOCOL.md,
"Chains"): each (origin, epoch) is one linear chain, seq exactly +1, prev the id
of seq-1. Pure; imports protocol only.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import msgspec

from rrn.protocol.encoding import DECODE_ERRORS
from rrn.protocol.envelope import Event, Header, KeyResolver, check_signed, decode_header, event_id
from rrn.protocol.errors import DecodeError, Reason, ValidationError
from rrn.protocol.types import Sig64

__all__ = ["ForkProof", "Head", "Verdict", "check_fork_proof", "classify", "fork_proof"]


class Head(NamedTuple):
    """The last appended event of one (origin, epoch) chain."""

    seq: int
    id: bytes


class Verdict(enum.Enum):
    """Where an event stands relative to its chain."""

    APPEND = "append"  # the next link: store and apply
    DUPLICATE = "duplicate"  # already stored: nothing to do
    GAP = "gap"  # ahead of the head: hold until the gap is filled
    FORK = "fork"  # conflicts with a stored event: evidence of equivocation
    FROZEN = "frozen"  # beyond the point where a fork froze this chain
    LOOKUP = "lookup"  # at or below the head: the caller must supply the stored id


def classify(
    header: Header,
    eid: bytes,
    head: Head | None,
    *,
    frozen_after: int | None = None,
    stored_id: bytes | None = None,
) -> Verdict:
    """Decide what to do with a verified event given its chain's state.

    For seq at or below the head the answer depends on the id stored at that seq;
    without `stored_id` the result is LOOKUP and the caller asks again with it.
    """
    if frozen_after is not None and header.seq > frozen_after:
        return Verdict.FROZEN
    head_seq = head.seq if head is not None else 0
    if header.seq <= head_seq:
        if stored_id is None:
            return Verdict.LOOKUP
        return Verdict.DUPLICATE if stored_id == eid else Verdict.FORK
    if header.seq == head_seq + 1:
        expected = head.id if head is not None else None
        return Verdict.APPEND if header.prev == expected else Verdict.FORK
    return Verdict.GAP


class SignedHeader(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A header and its signature: enough to prove what an origin signed."""

    header: bytes
    sig: Sig64


class ForkProof(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Two signed headers of one origin and epoch that cannot both be in its chain.

    Either both have the same seq and differ, or `b` is at `a.seq + 1` and its
    prev is not `a`'s id. The chain is frozen after `a.seq - 1`.
    """

    a: SignedHeader
    b: SignedHeader


def fork_proof(first: Event, second: Event) -> ForkProof:
    """Evidence from two conflicting events; `first` has the lower (or equal) seq."""
    a, b = (first, second) if first.header.seq <= second.header.seq else (second, first)
    return ForkProof(SignedHeader(a.header_bytes, a.sig), SignedHeader(b.header_bytes, b.sig))


class ForkFacts(NamedTuple):
    """What a valid fork proof establishes."""

    origin: str
    epoch: int
    frozen_after: int


def check_fork_proof(proof: ForkProof, *, net: bytes, resolve: KeyResolver) -> ForkFacts:
    """Verify both signatures and the conflict; raise ValidationError if not a proof."""
    events = []
    for signed in (proof.a, proof.b):
        header = decode_header(signed.header)
        event = Event(event_id(signed.header), header, signed.header, signed.sig, None)
        check_signed(event, net=net, resolve=resolve)
        events.append(event)
    a, b = events
    ha, hb = a.header, b.header
    if (ha.origin, ha.epoch) != (hb.origin, hb.epoch):
        raise ValidationError("fork proof mixes two chains", Reason.MALFORMED_MESSAGE)
    same_seq = ha.seq == hb.seq and a.id != b.id
    broken_link = hb.seq == ha.seq + 1 and hb.prev != a.id
    if not (same_seq or broken_link):
        raise ValidationError("fork proof shows no conflict", Reason.MALFORMED_MESSAGE)
    return ForkFacts(ha.origin, ha.epoch, ha.seq - 1)


def decode_fork_proof(data: bytes) -> ForkProof:
    """Decode a fork proof received from a peer."""
    try:
        return _PROOF_DECODER.decode(data)
    except DECODE_ERRORS as exc:
        raise DecodeError("fork proof does not decode", Reason.MALFORMED_MESSAGE) from exc


_PROOF_DECODER = msgspec.msgpack.Decoder(ForkProof)
