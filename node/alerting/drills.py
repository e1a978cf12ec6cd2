"""Drills on the scheduling member's node: raise each exercise alert at its moment,
close them after the window, then reveal the secret (protocol/drills.py).

Owns the node's part in running its own drills. The secret is in the drill's own
event, sealed to this member, so a restored node goes on where it stopped; which
exercise alerts were raised is kept in HOME/drills/<drill>.json (written after each
raise: a crash between the two raises that one again, the only harm a second
exercise alert). Every other node only reads drills (node/ops/drills.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Final

from rrn.federation.alert_view import view
from rrn.node.home.clock import every
from rrn.node.pipeline.ingest import Ingestor
from rrn.protocol.alerts import AlertCancelled, AlertRaised, Consent, new_pseudonym
from rrn.protocol.drills import DrillRevealed, DrillScheduled, moments
from rrn.protocol.envelope import Event
from rrn.protocol.errors import ProtocolError
from rrn.protocol.kinds import Kind, decode_payload
from rrn.protocol.sealing import OpenKeys, Position, decode_sealed, open_sealed
from rrn.protocol.vocabulary import Audience, CancelReason, ConsentSource, Severity

__all__ = ["DrillRunner", "exercise_alert"]

logger = logging.getLogger(__name__)

_TICK_S: Final = 5.0


def exercise_alert(drill: bytes, d: DrillScheduled, index: int) -> AlertRaised:
    """Exercise alert `index` of a drill: its routable facts. It is sealed whole to the
    scope, which alone decides who learns of it (no `exclude` list: that holds at most
    64 members); its consent is the drill's (every audience but the public): no
    person's consent is involved."""
    consent = [
        Consent(audience=a, given_by=ConsentSource.COLLEAGUE, given_ms=d.start_ms)
        for a in sorted(Audience)
        if a is not Audience.PUBLIC
    ]
    return AlertRaised(
        country=d.country,
        incident_types=list(d.incident_types),
        severity=Severity.MODERATE,
        urgency=d.urgencies[index],
        languages=list(d.languages),
        pseudonym=new_pseudonym(),
        exercise=True,
        consent=consent,
        drill=drill,
        drill_index=index,
    )


class DrillRunner:
    """Raises, closes and reveals this member's drills."""

    def __init__(self, ingestor: Ingestor, *, key: OpenKeys, directory: Path) -> None:
        self.ingestor, self.key, self.dir = ingestor, key, directory
        self._wake = asyncio.Event()
        self._mine: list[Event] | None = None
        self._generation = 0
        #: The moments and window ends still ahead (to wake for them on time).
        self._due: set[int] = set()

    def wake(self) -> None:
        """A drill was scheduled here: read this member's drills again, and look now."""
        self._mine, self._generation = None, self._generation + 1
        self._wake.set()

    async def run(self) -> None:
        """Drive this member's drills until cancelled."""
        await every(self.tick, self._wake, self._until_next, what="drill check", log=logger)

    def _until_next(self) -> float:
        """Seconds to the next moment or window end of this member's drills (at most a
        tick): an exercise alert is raised at its moment, not up to a tick late."""
        now = self.ingestor.clock.now_ms()
        self._due = {t for t in self._due if t > now}
        return max(0.05, min([_TICK_S, *((t - now) / 1000 for t in self._due)]))

    async def tick(self) -> None:
        mine = self._mine
        if mine is None:  # at start, and when one was scheduled: a scan by kind
            generation, mine = self._generation, await self._load()
            if generation == self._generation:  # none was scheduled while reading
                self._mine = mine
        now = self.ingestor.clock.now_ms()
        for event in list(mine):
            if self.ingestor.appends_blocked is None and await self._drive(event, now):
                mine.remove(event)  # over and revealed (a reload meanwhile reads it so)

    async def _load(self) -> list[Event]:
        """This member's drills not yet revealed."""
        me, store = self.ingestor.me.org, self.ingestor.store
        revealed = set()
        for e in await store.events_of_kinds([str(Kind.DRILL_REVEALED)]):
            p = decode_payload(e.header.kind, e.payload) if e.payload else None
            if e.header.origin == me and isinstance(p, DrillRevealed):
                revealed.add(p.drill)
        return [
            e
            for e in await store.events_of_kinds([str(Kind.DRILL_SCHEDULED)])
            if e.header.origin == me and e.id not in revealed
        ]

    async def _drive(self, event: Event, now: int) -> bool:
        """Raise what is due of one drill; True once it is over and revealed."""
        assert event.payload is not None
        d = decode_payload(event.header.kind, event.payload)
        assert isinstance(d, DrillScheduled)
        secret = self._secret(event, d)
        if secret is None:
            return False
        raised = self._raised(event.id)
        due = moments(secret, d.start_ms, d.end_ms, len(d.urgencies))
        self._due.update({*(t for i, t in enumerate(due) if str(i) not in raised), d.end_ms})
        for i, at in enumerate(due):
            if str(i) in raised or at > now or now >= d.end_ms:
                continue
            alert = exercise_alert(event.id, d, i)
            done = await self.ingestor.append(alert, audience=sorted(d.scope))
            raised[str(i)] = done.id.hex()
            self._save(event.id, raised)
            logger.info("drill %s: exercise alert %d raised", event.id.hex()[:12], i)
        if now >= d.end_ms:
            await self._close(event.id, raised)
            await self.ingestor.append(DrillRevealed(drill=event.id, secret=secret))
            logger.info("drill %s: over, secret revealed", event.id.hex()[:12])
            return True
        return False

    async def _close(self, drill: bytes, raised: dict[str, str]) -> None:
        """Cancel the drill's exercise alerts still open (exercise_ended)."""
        for alert_hex in raised.values():
            alert = bytes.fromhex(alert_hex)
            state = await self.ingestor.projection.state(alert)
            v = view(state, self.ingestor.network.authority) if state is not None else None
            if v is not None and v.status.is_open:
                await self.ingestor.append(
                    AlertCancelled(alert=alert, reason=CancelReason.EXERCISE_ENDED)
                )

    def _secret(self, event: Event, d: DrillScheduled) -> bytes | None:
        h, net, me = event.header, self.ingestor.network.net, self.ingestor.me.org
        try:
            at = Position(net, h.origin, h.epoch, h.seq)
            return open_sealed(decode_sealed(d.secret), me, self.key, at)
        except ProtocolError as exc:
            logger.warning("drill %s: its secret does not open: %s", event.id.hex()[:12], exc)
            return None

    def _path(self, drill: bytes) -> Path:
        return self.dir / f"{drill.hex()}.json"

    def _raised(self, drill: bytes) -> dict[str, str]:
        try:
            found = json.loads(self._path(drill).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _save(self, drill: bytes, raised: dict[str, str]) -> None:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        path, tmp = self._path(drill), self._path(drill).with_suffix(".tmp")
        tmp.write_text(json.dumps(raised))
        os.replace(tmp, path)
