"""Which key must have signed an event, and which key to seal to.

Owns the lookup (origin, epoch, seq) -> Ed25519 public key, honouring key
cutoffs, and each member's current X25519 sealing key. Keys come from the
roster (threshold-approved) and from `key.rotated` events in the members' own
chains (docs/PROTOCOL.md, "Key rotation"):

- a rotation at (origin, E, S) ends epoch E after seq S, exactly as a roster
  cutoff would, and adds epoch `epoch` with the new signing and sealing keys;
- it is honoured only from an epoch the keyring knows, at a seq that epoch may
  still sign (no cutoff before it, not rotated before), to an epoch after E
  that is not taken. The roster wins a conflict: an epoch it lists with another
  key is never replaced by a chain. Rotations are applied in (origin, E, S)
  order, so every node that holds the same roster and the same rotation events
  computes the same keyring, whatever order they arrived in.

A former member signs nothing new: only the epochs of it a roster cut stay
valid, up to their cut; any other epoch of a former member (one its chain began
that the removal did not name) signs nothing.

Pure; imports protocol only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rrn.protocol.envelope import Event, Header
from rrn.protocol.errors import ProtocolError, Reason, ValidationError
from rrn.protocol.kinds import Kind, decode_payload
from rrn.protocol.membership import KeyRotated, check_rotation
from rrn.protocol.roster import Roster

__all__ = ["Keyring", "Rotation"]


class Rotation(NamedTuple):
    """A verified `key.rotated` event: (origin, from_epoch) ends at seq, `epoch` begins."""

    origin: str
    from_epoch: int
    seq: int
    epoch: int
    sign_pub: bytes
    enc_pub: bytes

    @classmethod
    def of(cls, header: Header, payload: KeyRotated) -> Rotation:
        """The rotation an event states, once its new key's proof verifies."""
        check_rotation(header, payload)
        return cls(
            header.origin,
            header.epoch,
            header.seq,
            payload.epoch,
            payload.sign_pub,
            payload.enc_pub,
        )

    @classmethod
    def from_event(cls, event: Event) -> Rotation | None:
        """The rotation a `key.rotated` event states, None for any other event.

        Raises ProtocolError when it is one but its payload or proof is bad.
        """
        if event.header.kind != Kind.KEY_ROTATED:
            return None
        if event.payload is None:
            raise ProtocolError("a key rotation without its payload", Reason.BAD_ROTATION)
        payload = decode_payload(event.header.kind, event.payload)
        assert isinstance(payload, KeyRotated)
        return cls.of(event.header, payload)


class Keyring:
    """Public keys of every member (current and former) of one roster, and their rotations."""

    def __init__(self, roster: Roster, rotations: Iterable[Rotation] = ()) -> None:
        self.roster = roster
        self._keys: dict[tuple[str, int], tuple[Ed25519PublicKey, bytes]] = {}
        self._cuts: dict[tuple[str, int], int] = {}
        self._latest: dict[str, int] = {}
        self._enc: dict[str, tuple[int, bytes]] = {}
        self._orgs: set[str] = set()
        self._rotated: set[tuple[str, int]] = set()
        self._former = {m.org for m in roster.former}
        self._roster_cut = {(c.org, c.epoch) for c in roster.cutoffs}
        for member in [*roster.members, *roster.former]:
            self._orgs.add(member.org)
            self._latest[member.org] = member.key().epoch
            self._enc[member.org] = (member.key().epoch, member.enc_pub)
            for key in member.sign_keys:
                pub = Ed25519PublicKey.from_public_bytes(key.pub)
                self._keys[member.org, key.epoch] = (pub, key.pub)
        for cut in roster.cutoffs:
            self._cut(cut.org, cut.epoch, cut.last_seq)
        applied: list[Rotation] = []
        for rotation in sorted(set(rotations)):
            if self._problem(rotation) is None:
                self._apply(rotation)
                applied.append(rotation)
        #: The rotations this keyring honours, in the order it applied them.
        self.rotations: tuple[Rotation, ...] = tuple(applied)

    def learn(self, rotation: Rotation) -> Keyring:
        """A keyring that also honours `rotation`; ValidationError saying why not."""
        if rotation in self.rotations:
            return self
        problem = self._problem(rotation)
        if problem is not None:
            raise ValidationError(problem, Reason.BAD_ROTATION)
        return Keyring(self.roster, [*self.rotations, rotation])

    def rebased(self, roster: Roster) -> Keyring:
        """The keyring of a newer roster version, with the rotations this one honours."""
        return Keyring(roster, self.rotations)

    def _problem(self, r: Rotation) -> str | None:
        if r.origin not in self._orgs:
            return "origin is not in the roster"
        if (r.origin, r.from_epoch) not in self._keys:
            return f"rotates from key epoch {r.from_epoch}, which the origin does not have"
        last = self._cuts.get((r.origin, r.from_epoch))
        if (r.origin, r.from_epoch) in self._rotated or (last is not None and r.seq > last):
            return f"key epoch {r.from_epoch} already ended (rotated, or cut off)"
        if r.epoch <= r.from_epoch:
            return "a rotation must move to a later key epoch"
        taken = self._keys.get((r.origin, r.epoch))
        if taken is not None and taken[1] != r.sign_pub:
            return f"key epoch {r.epoch} of this origin already has another key"
        return None

    def _apply(self, r: Rotation) -> None:
        self._rotated.add((r.origin, r.from_epoch))
        self._cut(r.origin, r.from_epoch, r.seq)
        if (r.origin, r.epoch) not in self._keys:
            self._keys[r.origin, r.epoch] = (
                Ed25519PublicKey.from_public_bytes(r.sign_pub),
                r.sign_pub,
            )
        self._latest[r.origin] = max(self._latest[r.origin], r.epoch)
        if r.epoch > self._enc[r.origin][0]:  # starts at the roster's newest epoch
            self._enc[r.origin] = (r.epoch, r.enc_pub)

    def _cut(self, org: str, epoch: int, last_seq: int) -> None:
        old = self._cuts.get((org, epoch))
        self._cuts[org, epoch] = last_seq if old is None else min(old, last_seq)

    def resolve(self, origin: str, epoch: int, seq: int) -> Ed25519PublicKey:
        """The key for an event, or ValidationError saying why there is none."""
        entry = self._keys.get((origin, epoch))
        if entry is None:
            if origin not in self._orgs:
                raise ValidationError("origin is not in the roster", Reason.UNKNOWN_ORIGIN)
            raise ValidationError("origin has no key for this epoch", Reason.UNKNOWN_EPOCH)
        if not self.may_sign(origin, epoch, seq):
            last_seq = self._cuts.get((origin, epoch))
            if last_seq is None:
                raise ValidationError(
                    f"{origin} is a former member: key epoch {epoch} signs nothing",
                    Reason.EPOCH_CUT_OFF,
                )
            raise ValidationError(
                f"key epoch {epoch} of this origin was cut off after seq {last_seq}",
                Reason.EPOCH_CUT_OFF,
            )
        return entry[0]

    def current(self, org: str, epoch: int) -> Ed25519PublicKey:
        """The key a current member signs messages with now (its latest epoch)."""
        if self.roster.member(org) is None:
            raise ValidationError("sender is not a current member", Reason.UNKNOWN_ORIGIN)
        if epoch != self.latest(org):
            raise ValidationError(
                "sender used a key epoch that is not current", Reason.UNKNOWN_EPOCH
            )
        return self._keys[org, epoch][0]

    def latest(self, org: str) -> int | None:
        """The newest key epoch of `org` (roster or rotation), or None for a stranger."""
        return self._latest.get(org)

    def knows(self, origin: str, epoch: int) -> bool:
        """Whether (origin, epoch) has a key here (events of it can be verified)."""
        return (origin, epoch) in self._keys

    def may_sign(self, origin: str, epoch: int, seq: int) -> bool:
        """Whether an event of (origin, epoch) at `seq` could verify: the epoch is
        known and was not cut off or ended by a rotation before `seq`."""
        if (origin, epoch) not in self._keys:
            return False
        if origin in self._former and (origin, epoch) not in self._roster_cut:
            return False  # a former member signs nothing beyond what its removal kept
        last = self._cuts.get((origin, epoch))
        return last is None or seq <= last

    def pub(self, org: str, epoch: int) -> bytes | None:
        """Raw public signing key of (org, epoch), if known."""
        entry = self._keys.get((org, epoch))
        return None if entry is None else entry[1]

    def enc_pub(self, org: str) -> bytes | None:
        """The X25519 key to seal to `org` now: its latest rotation's, else the roster's."""
        entry = self._enc.get(org)
        return None if entry is None else entry[1]

    def rotated_into(self, origin: str, epoch: int) -> Rotation | None:
        """The honoured rotation that began (origin, epoch), if a chain began it."""
        return next((r for r in self.rotations if r.origin == origin and r.epoch == epoch), None)

    def cutoff(self, origin: str, epoch: int) -> int | None:
        """The last valid seq of an epoch cut off (roster) or ended (rotation), or None."""
        return self._cuts.get((origin, epoch))
