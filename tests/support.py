"""Shared builders for tests: deterministic keys, rosters and signed events."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from rrn.federation.escalation import DEFAULT_POLICY
from rrn.federation.keyring import Keyring
from rrn.federation.roster import make_genesis
from rrn.protocol.alerts import AlertClaimed, AlertRaised, AlertResolved
from rrn.protocol.encoding import encode
from rrn.protocol.envelope import Event, sign_event
from rrn.protocol.kinds import Payload, kind_of
from rrn.protocol.policy import MemberLimits
from rrn.protocol.roster import (
    ROSTER_VERSION,
    Card,
    Role,
    Roster,
    RosterCert,
    SignKey,
    cert_spki,
    decode_roster,
    roster_id,
    sign_roster,
)
from rrn.protocol.vocabulary import IncidentType, Outcome, Severity, Urgency


def key(seed: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key named by `seed`."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def pub(k: Ed25519PrivateKey) -> bytes:
    return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def tls_cert(org: str) -> bytes:
    """A deterministic self-signed Ed25519 TLS certificate (DER) for `org`."""
    k = key("tls-" + org)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rrn-{org}")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(org.encode()).digest()[:8], "big"))
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(k, None)
    )
    return cert.public_bytes(serialization.Encoding.DER)


def card(
    org: str, k: Ed25519PrivateKey, *, epoch: int = 1, roles: list[Role] | None = None
) -> Card:
    """A card for `org` with deterministic non-signing keys."""
    return Card(
        v=ROSTER_VERSION,
        org=org,
        name=org.title(),
        roles=roles or [Role.RESPONDER],
        sign_key=SignKey(epoch=epoch, pub=pub(k)),
        enc_pub=hashlib.sha256(b"enc" + org.encode()).digest(),
        link_pub=hashlib.sha256(b"link" + org.encode()).digest(),
        endpoints=[],
        tls_spki=cert_spki(tls_cert(org)) or b"",
        tls_cert=tls_cert(org),
        created_ms=1_767_225_600_000,
    )


@dataclass
class Net:
    """A network of named members with known keys."""

    net: bytes
    roster: Roster
    roster_bytes: bytes
    cert: RosterCert
    keys: dict[str, Ed25519PrivateKey]

    @property
    def keyring(self) -> Keyring:
        return Keyring(self.roster)


def network(
    *orgs: str,
    threshold: int | None = None,
    limits: MemberLimits | None = None,
    roles: Mapping[str, list[Role]] | None = None,
) -> Net:
    """A genesis network of `orgs`, every founder approving (with these member limits;
    every member a responder unless `roles` says otherwise)."""
    keys = {o: key(o) for o in orgs}
    policy = None if limits is None else msgspec.structs.replace(DEFAULT_POLICY, limits=limits)
    roles = roles or {}
    roster_bytes = make_genesis(
        [card(o, keys[o], roles=roles.get(o)) for o in orgs],
        threshold=threshold,
        created_ms=1_767_225_600_000,
        policy=policy,
    )
    approvals = [sign_roster(keys[o], o, 1, roster_bytes) for o in orgs]
    cert = RosterCert(roster=roster_bytes, approvals=approvals)
    return Net(roster_id(roster_bytes), decode_roster(roster_bytes), roster_bytes, cert, keys)


def raised(n: int = 0, country: str = "PE") -> AlertRaised:
    return AlertRaised(
        country=country,
        incident_types=[IncidentType.DEATH_THREAT],
        severity=Severity.SEVERE,
        urgency=Urgency.IMMEDIATE,
        languages=["es"],
        pseudonym=f"hrd-{'abcdefgh'[n % 8]}bcdefg{'234567'[n % 6]}",
    )


class Chain:
    """Builds one origin's chain of signed events."""

    def __init__(self, tn: Net, origin: str, *, epoch: int = 1, start_ms: int = 0) -> None:
        self.tn = tn
        self.origin = origin
        self.epoch = epoch
        self.seq = 0
        self.prev: bytes | None = None
        self.wall_ms = start_ms or 1_767_225_600_000

    def next(self, payload: Payload, *, refs: list[bytes] | None = None) -> Event:
        """The next event, carrying `payload`, a second after the last."""
        return self.raw(str(kind_of(payload)), encode(payload), refs=refs)

    def raw(
        self,
        kind: str,
        payload: bytes,
        *,
        wall_ms: int | None = None,
        roster_ver: int | None = None,
        refs: list[bytes] | None = None,
    ) -> Event:
        """The next event with any kind and payload bytes, at `wall_ms`, naming
        `roster_ver` and `refs` if given (a liar's)."""
        self.seq += 1
        self.wall_ms = self.wall_ms + 1000 if wall_ms is None else wall_ms
        event = sign_event(
            self.tn.keys[self.origin],
            net=self.tn.net,
            origin=self.origin,
            epoch=self.epoch,
            seq=self.seq,
            prev=self.prev,
            kind=kind,
            wall_ms=self.wall_ms,
            roster_ver=self.tn.roster.version if roster_ver is None else roster_ver,
            payload=payload,
            refs=refs or [],
        )
        self.prev = event.id
        return event

    def lifecycle(self, alerts: int) -> Iterator[Event]:
        """raise, claim, resolve for each of `alerts` alerts."""
        for i in range(alerts):
            r = self.next(raised(i))
            yield r
            yield self.next(AlertClaimed(alert=r.id))
            yield self.next(AlertResolved(alert=r.id, outcome=Outcome.SAFE))
