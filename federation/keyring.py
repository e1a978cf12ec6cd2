"""Which key must have signed an event: derived from the roster only.

Owns the lookup (origin, epoch, seq) -> Ed25519 public key, honouring key
cutoffs. Pure; imports protocol only.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import Reason, ValidationError
from protocol.roster import Roster

__all__ = ["Keyring"]


class Keyring:
    """Public signing keys of every member (current and former) of one roster."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self._keys: dict[tuple[str, int], tuple[Ed25519PublicKey, int | None]] = {}
        self._orgs: set[str] = set()
        for member in [*roster.members, *roster.former]:
            self._orgs.add(member.org)
            for key in member.sign_keys:
                pub = Ed25519PublicKey.from_public_bytes(key.pub)
                self._keys[member.org, key.epoch] = (pub, roster.cutoff(member.org, key.epoch))

    def resolve(self, origin: str, epoch: int, seq: int) -> Ed25519PublicKey:
        """The key for an event, or ValidationError saying why there is none."""
        entry = self._keys.get((origin, epoch))
        if entry is None:
            if origin not in self._orgs:
                raise ValidationError("origin is not in the roster", Reason.UNKNOWN_ORIGIN)
            raise ValidationError("origin has no key for this epoch", Reason.UNKNOWN_EPOCH)
        pub, last_seq = entry
        if last_seq is not None and seq > last_seq:
            raise ValidationError(
                f"key epoch {epoch} of this origin was cut off after seq {last_seq}",
                Reason.EPOCH_CUT_OFF,
            )
        return pub

    def current(self, org: str, epoch: int) -> Ed25519PublicKey:
        """The key a current member signs messages with now (its latest epoch)."""
        member = self.roster.member(org)
        if member is None:
            raise ValidationError("sender is not a current member", Reason.UNKNOWN_ORIGIN)
        if member.key().epoch != epoch:
            raise ValidationError(
                "sender used a key epoch that is not current", Reason.UNKNOWN_EPOCH
            )
        return self._keys[org, epoch][0]

    def cutoff(self, origin: str, epoch: int) -> int | None:
        """The last valid seq of a cut-off epoch, or None."""
        entry = self._keys.get((origin, epoch))
        return None if entry is None else entry[1]
