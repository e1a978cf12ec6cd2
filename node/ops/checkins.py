"""`rrn checkin plan|record|end|list`: a defender's check-in plan, and its check-ins.

Owns the operations on check-in plans (protocol/checkins.py): making a plan (its
alert prepared as `rrn alert raise` prepares one, its one-time codes drawn here
and handed back once, never stored: only their commitments are signed), recording
a check-in at any member within the plan's audience, ending a plan, and each
plan's slots as this node sees them.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from rrn.federation.alert_view import derive
from rrn.federation.alerts import AlertState, PlanFact
from rrn.federation.authority import authorise
from rrn.federation.checkins import checked_in, ended_at
from rrn.node.control.channel import handler
from rrn.node.ops.book import AlertBook
from rrn.node.ops.types import RaiseArgs
from rrn.node.pipeline.ingest import SealFor
from rrn.protocol.alerts import AlertRaised
from rrn.protocol.checkins import (
    CODE_CHARS,
    GRACE_MS,
    MAX_SLOTS,
    CheckinEnded,
    CheckinPlanned,
    CheckinRecorded,
    DuressMap,
    commitment,
    missed_alert_id,
    new_code,
    normal_code,
)
from rrn.protocol.encoding import encode
from rrn.protocol.errors import ControlError

#: How `rrn alert raise` prepares a raise (node/ops/alerts.py): the payload, the
#: audience it is sealed to whole (None: every member), the details to seal.
RaisePrep = Callable[[RaiseArgs], tuple[AlertRaised, list[str] | None, SealFor | None]]

__all__ = [
    "CheckinOps",
    "CodeCard",
    "PlanArgs",
    "PlanInfo",
    "PlanRefArgs",
    "PlansArgs",
    "RecordArgs",
    "SlotInfo",
]

#: Hex digits of a plan id as typed (6 to 64).
PlanRef = Annotated[str, Meta(pattern=r"^[0-9a-f]{6,64}$")]


class PlanArgs(msgspec.Struct, frozen=True, kw_only=True):
    """A plan: the alert a missed check-in raises, the times to check in by, the grace."""

    alert: RaiseArgs
    slots_ms: Annotated[list[int], Meta(min_length=1, max_length=MAX_SLOTS)]
    grace_ms: int


class PlanRefArgs(msgspec.Struct, frozen=True, kw_only=True):
    plan: PlanRef


class PlansArgs(msgspec.Struct, frozen=True, kw_only=True):
    #: One plan (None: every plan held).
    plan: PlanRef | None = None


class RecordArgs(msgspec.Struct, frozen=True, kw_only=True):
    plan: PlanRef
    #: The slot checked in for (None: the earliest not yet answered).
    slot: int | None = None
    #: The defender's one-time code, as typed (the origin may record without one).
    code: str | None = None


class CodeCard(msgspec.Struct, frozen=True, kw_only=True):
    """What the defender carries for one slot: a code, and a duress code."""

    slot: int
    due_ms: int
    code: str
    duress_code: str


class SlotInfo(msgspec.Struct, frozen=True, kw_only=True):
    slot: int
    due_ms: int
    deadline_ms: int
    #: upcoming, due, overdue, checked_in, missed (an alert was raised), ended
    state: str
    #: The alert of a missed slot (hex), and its status.
    alert: str | None = None
    alert_status: str | None = None


class PlanInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A plan as the CLI shows it (ids in hex)."""

    plan: str
    origin: str
    pseudonym: str
    country: str
    grace_ms: int
    ended_ms: int | None
    slots: list[SlotInfo]
    #: Only in the answer to `rrn checkin plan`: the codes, shown this once.
    codes: list[CodeCard] = []


class CheckinOps:
    """The check-in operations of one node."""

    def __init__(self, book: AlertBook, prepare: RaisePrep) -> None:
        self._book = book
        self._prepare = prepare

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[object]]]:
        """Operation name -> handler of its encoded arguments."""
        return {
            "checkin.plan": handler(PlanArgs, self.plan),
            "checkin.record": handler(RecordArgs, self.record),
            "checkin.end": handler(PlanRefArgs, self.end),
            "checkin.list": handler(PlansArgs, self.list_plans),
        }

    async def plan(self, args: PlanArgs) -> PlanInfo:
        now = self._book.ingestor.clock.now_ms()
        slots = sorted(set(args.slots_ms))
        if len(slots) != len(args.slots_ms):
            raise ControlError("two check-in times are the same")
        if slots[0] <= now:
            raise ControlError("every check-in time must be in the future")
        if not GRACE_MS[0] <= args.grace_ms <= GRACE_MS[1]:
            raise ControlError("the grace period must be between 10 seconds and 7 days")
        if args.alert.exercise:
            raise ControlError("a check-in plan is never an exercise")
        alert, restricted, sealing = self._prepare(args.alert)
        cards = [(new_code(), new_code()) for _ in slots]
        which = [secrets.randbelow(2) for _ in slots]  # where each duress code sits
        pairs = [_pair(c, d, w) for (c, d), w in zip(cards, which, strict=True)]
        placeholder = CheckinPlanned(
            alert=alert,
            slots=slots,
            grace_ms=args.grace_ms,
            codes=pairs,
            duress=encode(DuressMap(which)),  # sealed to us as it is signed
        )
        event = await self._book.append(placeholder, seal=sealing, audience=restricted)
        info = await self._info(event.id)
        codes = [
            CodeCard(slot=k, due_ms=t, code=_shown(c), duress_code=_shown(d))
            for k, (t, (c, d)) in enumerate(zip(slots, cards, strict=True))
        ]
        return msgspec.structs.replace(info, codes=codes)

    async def record(self, args: RecordArgs) -> PlanInfo:
        plan = await self._plan(args.plan)
        assert plan.plan is not None
        fact, me = plan.plan, self._book.ingestor.me.org
        if fact.audience and me not in fact.audience:
            raise ControlError("this member is not in the plan's audience")
        code = normal_code(args.code) if args.code else None
        if code is None and fact.pos.org != me:
            raise ControlError("only the plan's origin records a check-in without a code")
        info = await self._info(fact.pos.id)
        slot = args.slot
        if slot is None:
            slot = next((s.slot for s in info.slots if s.state not in _DONE), None)
            if slot is None:
                raise ControlError("every slot of that plan is answered or over")
        if not 0 <= slot < len(fact.body.slots):
            raise ControlError(f"that plan has slots 0 to {len(fact.body.slots) - 1}")
        if code is not None and (
            len(code) != CODE_CHARS or commitment(code) not in fact.body.codes[slot]
        ):
            raise ControlError(f"that code is not one of slot {slot}'s: nothing was signed")
        if info.ended_ms is not None and info.ended_ms < info.slots[slot].deadline_ms:
            raise ControlError("that plan ended before this slot's deadline: nothing was signed")
        await self._book.append(CheckinRecorded(plan=fact.pos.id, slot=slot, code=code))
        return await self._info(fact.pos.id)

    async def end(self, args: PlanRefArgs) -> PlanInfo:
        plan = await self._plan(args.plan)
        assert plan.plan is not None
        if plan.plan.pos.org != self._book.ingestor.me.org:
            raise ControlError("only the organisation that made a plan may end it")
        if ended_at(plan) is None:
            await self._book.append(CheckinEnded(plan=plan.plan.pos.id))
        return await self._info(plan.plan.pos.id)

    async def list_plans(self, args: PlansArgs) -> list[PlanInfo]:
        if args.plan is not None:
            plan = await self._plan(args.plan)
            return [await self._info(plan.alert)]
        plans = await self._book.store.plans.states()
        return [await self._info(p.alert) for p in sorted(plans, key=_made)]

    async def _plan(self, ref: str) -> AlertState:
        matches = [
            p for p in await self._book.store.plans.states() if p.alert.hex().startswith(ref)
        ]
        if len(matches) != 1:
            raise ControlError(
                f"no check-in plan with id {ref}"
                if not matches
                else f"{ref} matches {len(matches)} plans; give more of the id"
            )
        return matches[0]

    async def _info(self, plan_id: bytes) -> PlanInfo:
        projection = self._book.ingestor.projection
        plan = await projection.committed_state(plan_id)
        if plan is None or plan.plan is None:
            raise ControlError(f"check-in plan {plan_id.hex()[:12]} is not known here yet")
        fact, now = plan.plan, self._book.ingestor.clock.now_ms()
        ended = ended_at(plan)
        slots = []
        for k in range(len(fact.body.slots)):
            state = await projection.committed_state(missed_alert_id(fact.pos.id, k))
            slots.append(await self._slot(fact, k, state, now=now, ended=ended))
        body = fact.body.alert
        return PlanInfo(
            plan=fact.pos.id.hex(),
            origin=fact.pos.org,
            pseudonym=body.pseudonym,
            country=body.country,
            grace_ms=fact.body.grace_ms,
            ended_ms=ended,
            slots=slots,
        )

    async def _slot(
        self, fact: PlanFact, k: int, state: AlertState | None, *, now: int, ended: int | None
    ) -> SlotInfo:
        due = fact.body.slots[k]
        answered = bool(checked_in(fact, k, state, self._book.ingestor.network.authority.roles))
        deadline = due + fact.body.grace_ms
        alert = missed_alert_id(fact.pos.id, k)
        authority = self._book.ingestor.network.authority
        v = (
            derive(authorise(state, authority)[0]) if state is not None else None
        )  # None: no miss stands
        if v is not None:
            return SlotInfo(
                slot=k,
                due_ms=due,
                deadline_ms=deadline,
                state="missed",
                alert=alert.hex(),
                alert_status=str(v.status),
            )
        if answered:
            name = "checked_in"
        elif ended is not None and ended < deadline:
            name = "ended"
        elif now < due:
            name = "upcoming"
        else:
            name = "due" if now < deadline else "overdue"
        return SlotInfo(slot=k, due_ms=due, deadline_ms=deadline, state=name)


#: Slot states a check-in no longer answers (`rrn checkin record` without --slot).
_DONE: Final = frozenset({"checked_in", "ended"})


def _pair(code: str, duress: str, which: int) -> list[bytes]:
    """The commitments of a slot's two codes, the duress one at `which`."""
    pair = [commitment(code), commitment(duress)]
    return pair if which == 1 else pair[::-1]


def _shown(code: str) -> str:
    """A code as printed for a person: four groups of four."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _made(plan: AlertState) -> tuple[int, bytes]:
    assert plan.plan is not None
    return (plan.plan.pos.wall_ms, plan.alert)
