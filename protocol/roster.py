"""Member cards, rosters and their signatures: the network's only PKI.

Owns the wire form of a member card, of a roster version and of the approvals
that make it valid, and the roster id (the genesis roster's id is the network
id). The rules deciding whether a roster version is valid live in
federation/roster.py. Pure.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Annotated, Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from msgspec import Meta

from rrn.protocol.countries import is_country
from rrn.protocol.encoding import (
    DOMAIN_CARD,
    DOMAIN_ROSTER,
    DOMAIN_ROSTER_ID,
    decode_canonical,
    digest,
    pae,
)
from rrn.protocol.encoding import encode as _encode
from rrn.protocol.errors import DecodeError, Reason, SignatureError
from rrn.protocol.policy import NetworkPolicy
from rrn.protocol.types import Hash32, Key32, NonNeg, OrgId, Positive, Sig64

__all__ = [
    "MAX_MEMBERS",
    "ROSTER_VERSION",
    "Approval",
    "Card",
    "Cutoff",
    "Member",
    "Role",
    "Roster",
    "RosterCert",
    "SignKey",
    "SignedCard",
    "cert_spki",
    "decode_cert",
    "decode_roster",
    "encode_cert",
    "encode_roster",
    "member_from_card",
    "open_card",
    "roster_id",
    "sign_card",
    "sign_roster",
    "verify_approval",
]

ROSTER_VERSION: Final = 1
MAX_MEMBERS: Final = 256
MAX_ROSTER_BYTES: Final = 256 * 1024


class Role(enum.StrEnum):
    """What a member organisation does in the network."""

    RESPONDER = "responder"
    COMPANY = "company"
    EMBASSY = "embassy"
    INVESTOR = "investor"
    OBSERVER = "observer"


DisplayName = Annotated[str, Meta(pattern=r"^[^\x00-\x1f\x7f]{1,80}$")]
#: host:port of a leafnode listener a peer may dial; none means "behind NAT".
Endpoint = Annotated[str, Meta(pattern=r"^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")]
Roles = Annotated[list[Role], Meta(min_length=1, max_length=5)]
Endpoints = Annotated[list[Endpoint], Meta(max_length=4)]
#: A DER X.509 certificate (self-signed; peers trust exactly this key).
TlsCert = Annotated[bytes, Meta(min_length=32, max_length=4096)]


class SignKey(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """An Ed25519 event-signing key and the epoch it signs for."""

    epoch: Positive
    pub: Key32


class Card(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """What an organisation says about itself when it founds or joins a network."""

    v: int
    org: OrgId
    name: DisplayName
    roles: Roles
    sign_key: SignKey
    enc_pub: Key32
    link_pub: Key32
    endpoints: Endpoints
    tls_spki: Hash32
    tls_cert: TlsCert
    created_ms: NonNeg


class SignedCard(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A card and the signature of its own signing key over it."""

    card: bytes
    sig: Sig64


class Member(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """One organisation in a roster version."""

    org: OrgId
    name: DisplayName
    roles: Roles
    sign_keys: Annotated[list[SignKey], Meta(min_length=1, max_length=32)]
    enc_pub: Key32
    link_pub: Key32
    endpoints: Endpoints
    tls_spki: Hash32
    tls_cert: TlsCert
    #: For a diplomatic mission (role `embassy`): the state it represents, so that
    #: an alert can exclude the missions of a state flagged as perpetrator. Absent
    #: (not encoded at all) for everyone else; set by a threshold-approved roster.
    state: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] | None = None

    def key(self) -> SignKey:
        """The member's current signing key (highest epoch)."""
        return self.sign_keys[-1]

    def key_for(self, epoch: int) -> SignKey | None:
        """The signing key of `epoch`, if the member ever had one."""
        for key in self.sign_keys:
            if key.epoch == epoch:
                return key
        return None


class Cutoff(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Events of (org, epoch) after `last_seq` are invalid everywhere."""

    org: OrgId
    epoch: Positive
    last_seq: NonNeg


class Roster(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """One version of the membership. Version 0 is the genesis roster.

    `policy` is absent (nil and not encoded at all) when the network runs the
    default escalation policy; rosters without it keep their eight-field form.
    """

    v: int
    version: NonNeg
    prev: Hash32 | None
    threshold: Positive
    members: Annotated[list[Member], Meta(min_length=1, max_length=MAX_MEMBERS)]
    #: Removed members, kept so that their history still verifies; a cutoff
    #: bounds what stays valid.
    former: Annotated[list[Member], Meta(max_length=4 * MAX_MEMBERS)]
    cutoffs: list[Cutoff]
    created_ms: NonNeg
    policy: NetworkPolicy | None = None

    def member(self, org: str) -> Member | None:
        """The current member entry of `org`, or None."""
        for m in self.members:
            if m.org == org:
                return m
        return None

    def known(self, org: str) -> Member | None:
        """The entry of `org`, current or former, or None."""
        return self.member(org) or next((m for m in self.former if m.org == org), None)

    def orgs(self) -> list[str]:
        """Member org ids, sorted."""
        return [m.org for m in self.members]

    def cutoff(self, org: str, epoch: int) -> int | None:
        """The last valid seq of (org, epoch) if that epoch was cut off."""
        for c in self.cutoffs:
            if c.org == org and c.epoch == epoch:
                return c.last_seq
        return None


class Approval(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A signature over a roster's bytes by one key of one organisation."""

    org: OrgId
    epoch: Positive
    sig: Sig64


class RosterCert(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A roster version and the approvals that make it valid; self-contained."""

    roster: bytes
    approvals: Annotated[list[Approval], Meta(max_length=2 * MAX_MEMBERS)]


_CARD_DECODER: Final = msgspec.msgpack.Decoder(Card)
_SIGNED_CARD_DECODER: Final = msgspec.msgpack.Decoder(SignedCard)
_ROSTER_DECODER: Final = msgspec.msgpack.Decoder(Roster)
_CERT_DECODER: Final = msgspec.msgpack.Decoder(RosterCert)


def roster_id(roster_bytes: bytes) -> bytes:
    """The id of a roster version; the genesis roster's id is the network id."""
    return digest(DOMAIN_ROSTER_ID, roster_bytes)


def encode_roster(roster: Roster) -> bytes:
    """Canonical roster bytes, checked against the strict decoder."""
    data = _roster_bytes(roster)
    decode_roster(data)
    return data


def _roster_bytes(roster: Roster) -> bytes:
    """A roster's canonical encoding: optional trailing fields that are absent
    (the policy, a member's state) are left out, so older rosters keep their bytes."""
    fields = list(msgspec.structs.astuple(roster))
    fields[4] = [_member_fields(m) for m in roster.members]
    fields[5] = [_member_fields(m) for m in roster.former]
    if roster.policy is None:
        fields.pop()
    else:
        policy = msgspec.structs.astuple(roster.policy)
        if roster.policy.links is None:  # trailing absent elements are left out
            policy = policy[:-2] if roster.policy.limits is None else policy[:-1]
        fields[-1] = policy
    return _encode(fields)


def _member_fields(member: Member) -> tuple[object, ...]:
    fields = msgspec.structs.astuple(member)
    return fields[:-1] if member.state is None else fields


def decode_roster(data: bytes) -> Roster:
    """Strictly decode roster bytes and check their internal consistency."""
    if len(data) > MAX_ROSTER_BYTES:
        raise DecodeError("roster is too large", Reason.BAD_ROSTER)
    roster = decode_canonical(
        data, _ROSTER_DECODER, "roster", Reason.BAD_ROSTER, encode=_roster_bytes
    )
    if roster.v != ROSTER_VERSION:
        raise DecodeError("roster format version is not supported", Reason.BAD_ROSTER)
    if (roster.version == 0) != (roster.prev is None):
        raise DecodeError("roster prev must be nil exactly for version 0", Reason.BAD_ROSTER)
    if roster.policy is not None and roster.policy.links and roster.policy.limits is None:
        raise DecodeError(
            "a policy that sets links gives its limits too (never nil)", Reason.BAD_ROSTER
        )
    orgs = roster.orgs()
    if orgs != sorted(set(orgs)):
        raise DecodeError("roster members must be sorted by org, each once", Reason.BAD_ROSTER)
    if roster.threshold > len(orgs) or 2 * roster.threshold <= len(orgs):
        raise DecodeError(
            "roster threshold must be a strict majority of members and at most their number",
            Reason.BAD_ROSTER,
        )
    for m in [*roster.members, *roster.former]:
        _check_member(m)
    former = [m.org for m in roster.former]
    if former != sorted(set(former)) or set(former) & set(orgs):
        raise DecodeError(
            "former members must be sorted, each once, not current", Reason.BAD_ROSTER
        )
    for c in roster.cutoffs:
        # The epoch may be one the member rotated to in its own chain (key.rotated),
        # which no roster lists: a compromised rotated key must be cuttable too.
        if roster.known(c.org) is None:
            raise DecodeError(
                "a cutoff names an organisation the roster does not have", Reason.BAD_ROSTER
            )
    return roster


def _check_member(m: Member) -> None:
    if cert_spki(m.tls_cert) != m.tls_spki:
        raise DecodeError(
            "a member's TLS fingerprint does not match its certificate", Reason.BAD_ROSTER
        )
    epochs = [k.epoch for k in m.sign_keys]
    if epochs != sorted(set(epochs)):
        raise DecodeError("member keys must have increasing epochs", Reason.BAD_ROSTER)
    if len(set(m.roles)) != len(m.roles):
        raise DecodeError("member roles must be listed once each", Reason.BAD_ROSTER)
    if m.state is not None and (Role.EMBASSY not in m.roles or not is_country(m.state)):
        raise DecodeError(
            "a member's state is a country code, given only for an embassy", Reason.BAD_ROSTER
        )


def sign_roster(key: Ed25519PrivateKey, org: str, epoch: int, roster_bytes: bytes) -> Approval:
    """Approve a roster version with one organisation's signing key."""
    return Approval(org=org, epoch=epoch, sig=key.sign(pae(DOMAIN_ROSTER, roster_bytes)))


def verify_approval(pub: bytes, approval: Approval, roster_bytes: bytes) -> bool:
    """Whether `approval` is a valid signature over `roster_bytes` by `pub`."""
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(
            approval.sig, pae(DOMAIN_ROSTER, roster_bytes)
        )
    except InvalidSignature:
        return False
    return True


def encode_cert(cert: RosterCert) -> bytes:
    """Wire bytes of a roster certificate."""
    return _encode(cert)


def decode_cert(data: bytes) -> RosterCert:
    """Strictly decode a roster certificate (its roster is decoded separately)."""
    if len(data) > 2 * MAX_ROSTER_BYTES:
        raise DecodeError("roster certificate is too large", Reason.BAD_ROSTER)
    return decode_canonical(data, _CERT_DECODER, "roster certificate", Reason.BAD_ROSTER)


def sign_card(key: Ed25519PrivateKey, card: Card) -> SignedCard:
    """Sign a card with the signing key it names."""
    data = _encode(card)
    return SignedCard(card=data, sig=key.sign(pae(DOMAIN_CARD, data)))


def open_card(data: bytes) -> Card:
    """Decode a signed card and check it is signed by the key it names."""
    signed = decode_canonical(data, _SIGNED_CARD_DECODER, "card", Reason.BAD_CARD)
    card = decode_canonical(signed.card, _CARD_DECODER, "card", Reason.BAD_CARD)
    if card.v != ROSTER_VERSION:
        raise DecodeError("card format version is not supported", Reason.BAD_CARD)
    if cert_spki(card.tls_cert) != card.tls_spki:
        raise DecodeError("card's TLS fingerprint does not match its certificate", Reason.BAD_CARD)
    try:
        Ed25519PublicKey.from_public_bytes(card.sign_key.pub).verify(
            signed.sig, pae(DOMAIN_CARD, signed.card)
        )
    except InvalidSignature as exc:
        raise SignatureError("card is not signed by its own key", Reason.BAD_CARD) from exc
    return card


def cert_spki(der: bytes) -> bytes | None:
    """SHA-256 of a DER certificate's SubjectPublicKeyInfo (what peers pin), or None."""
    # Loaded on first use: importing x509 costs each CLI command ~45 ms, most of them
    # never read a card (and serialization, with its SSH keys, another 5 ms).
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        Encoding,
        PublicFormat,
    )

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def member_from_card(card: Card) -> Member:
    """The roster entry a card describes."""
    return Member(
        org=card.org,
        name=card.name,
        roles=list(card.roles),
        sign_keys=[card.sign_key],
        enc_pub=card.enc_pub,
        link_pub=card.link_pub,
        endpoints=list(card.endpoints),
        tls_spki=card.tls_spki,
        tls_cert=card.tls_cert,
    )
