"""Anti-entropy: which events a node lacks, judged from a peer's chain heads.

Owns the comparison of version vectors (heartbeat heads) with local heads. The
heads a peer advertises are only hints: they trigger requests, and whatever
comes back is verified like any other event. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from rrn.protocol.messages import HeadEntry

__all__ = ["Gap", "gaps"]


class Gap(NamedTuple):
    """Events (origin, epoch) from_seq..to_seq that a peer has and we do not."""

    origin: str
    epoch: int
    from_seq: int
    to_seq: int


def gaps(
    mine: Mapping[tuple[str, int], int],
    theirs: Iterable[HeadEntry],
    *,
    frozen: Mapping[tuple[str, int], int] | None = None,
    known_orgs: set[str] | None = None,
) -> list[Gap]:
    """Ranges the peer is ahead on, skipping frozen chains and unknown origins."""
    found = []
    for head in theirs:
        key = (head.origin, head.epoch)
        if known_orgs is not None and head.origin not in known_orgs:
            continue
        have = mine.get(key, 0)
        limit = head.seq
        if frozen is not None and key in frozen:
            limit = min(limit, frozen[key])
        if limit > have:
            found.append(Gap(head.origin, head.epoch, have + 1, limit))
    return found
