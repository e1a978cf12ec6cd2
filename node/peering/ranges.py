"""The ranges of each chain this node has asked peers for and got back (pull sync,
node/peering/sync.py): what to ask for next, never twice at once, and nothing lost.

Pages of a chain are asked for ahead (two in flight), so answers may come out of
order, come back short (cut by size), or never come (a timeout, a peer's budget).
A range answered counts as held for `keep_s` (the pipeline may still be storing
it), but only once everything below it is held or answered: a page lost below it
is asked for again, not hidden behind the pages that came after it (the catch-up
would stop at the hole). Each answer is a page, whose envelopes the pipeline
checks one by one, in order: a page with an envelope refused, or not the next event
of the chain asked for, is forgotten, so its range is asked for again at once.
Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrn.node.store.rows import ChainKey

__all__ = ["Page", "Ranges"]


@dataclass
class _Chain:
    #: The first seq of each range asked for and not yet answered -> (nonce, how many).
    asked: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    #: Ranges answered lately: (first, last, when).
    got: list[tuple[int, int, float]] = field(default_factory=list)


@dataclass
class Page:
    """An answer's envelopes, from `first` to `last` of a chain, as the pipeline checks
    them in order."""

    peer: str
    key: ChainKey
    first: int
    last: int
    when: float
    #: The seq the next envelope checked must have.
    at: int
    #: "false" once an envelope proved it so, "refused" once one was refused, else "".
    bad: str = ""


class Ranges:
    """Per chain: the ranges in flight, and those answered within `keep_s`."""

    def __init__(self, keep_s: float, page: int) -> None:
        self.keep_s = keep_s
        self.page = page
        self._chains: dict[ChainKey, _Chain] = {}
        #: Answers whose envelopes the pipeline has not all checked yet, by token.
        self.pages: dict[int, Page] = {}
        self._token = 0

    def in_flight(self, key: ChainKey) -> int:
        """Ranges of this chain asked for and not yet answered."""
        chain = self._chains.get(key)
        return len(chain.asked) if chain else 0

    def asked(self, key: ChainKey, first: int, count: int, nonce: bytes) -> None:
        self._chains.setdefault(key, _Chain()).asked[first] = (nonce, count)

    def closed(self, key: ChainKey, first: int, nonce: bytes) -> None:
        """The request `nonce` for the range from `first` is answered or given up."""
        chain = self._chains.get(key)
        if chain is not None and chain.asked.get(first, (b"",))[0] == nonce:
            del chain.asked[first]

    def answered(self, key: ChainKey, first: int, last: int, now: float, peer: str = "") -> int:
        """Count `first`..`last` as held for `keep_s`; the token of its page (never 0)."""
        self._chains.setdefault(key, _Chain()).got.append((first, last, now))
        self._token += 1
        self.pages[self._token] = Page(peer, key, first, last, now, at=first)
        return self._token

    def checked(self, token: int) -> tuple[Page, int] | None:
        """The page of the envelope the pipeline checks now, and the seq it must have
        (None if the page is long forgotten); done with once its last is checked."""
        page = self.pages.get(token)
        if page is None:
            return None
        page.at += 1
        if page.at > page.last:
            del self.pages[token]
        return page, page.at - 1

    def forget(self, page: Page) -> None:
        """An answer with an envelope refused or out of place: its range is no longer
        counted as held."""
        chain = self._chains.get(page.key)
        if chain is not None:
            chain.got = [g for g in chain.got if (g[0], g[1]) != (page.first, page.last)]

    def expire(self, now: float, older_s: float) -> None:
        """Stop tracking pages answered more than `older_s` ago (a pipeline that stopped
        before checking them all)."""
        for token in [t for t, p in self.pages.items() if now - p.when > older_s]:
            del self.pages[token]

    def keys(self) -> list[ChainKey]:
        return list(self._chains)

    def have(self, key: ChainKey, held: int, now: float) -> int:
        """The last seq held or answered with nothing missing below it."""
        chain = self._chains.get(key)
        if chain is None:
            return held
        chain.got = [g for g in chain.got if now - g[2] <= self.keep_s]
        for first, last, _ in sorted(chain.got):
            if first > held + 1:
                break
            held = max(held, last)
        if not chain.got and not chain.asked:
            del self._chains[key]
        return held

    def next_ask(self, key: ChainKey, held: int, upto: int, now: float) -> tuple[int, int] | None:
        """The next range to ask for, as (first seq, how many), up to `upto`: the first
        seq past what is held that nothing in flight or answered covers, at most a page
        and never into the next range covered; None if there is none."""
        at = self.have(key, held, now) + 1
        chain = self._chains.get(key)
        spans = sorted(
            [(f, f + n - 1) for f, (_, n) in chain.asked.items()]
            + [(f, last) for f, last, _ in chain.got]
            if chain
            else []
        )
        for first, last in spans:
            if last < at:
                continue
            if first > at:
                break
            at = last + 1  # covered: look past it
        if at > upto:
            return None
        following = next((f for f, _ in spans if f > at), None)
        count = self.page if following is None else min(self.page, following - at)
        return at, count
