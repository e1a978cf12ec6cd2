"""`rrn schema`: the JSON Schemas of every JSON document rrn emits, and the AsyncAPI
document of what integrators can read from a node.

Owns the list of documents and their names. The schemas are generated from the
msgspec types that produce the documents, never written by hand; docs/schemas/
holds them as generated (`rrn schema --write docs/schemas`), and a test fails when
a type changes and the files were not generated again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

import msgspec

from rrn.node.alerting.coverage import CoverageGrid
from rrn.node.alerting.notices import NOTICE_TYPES, Notice
from rrn.node.cli import documents
from rrn.node.cli.integrators import Listed, Made
from rrn.node.cli.users import UserInfo, UserMade
from rrn.node.client.feeds import VerifiedEvent
from rrn.node.daemon.versions import Versions
from rrn.node.integrations.feeds import (
    ALERTS_BUCKET,
    EVENTS_STREAM,
    NETWORK_BUCKET,
    NOTICES_STREAM,
    AlertRecord,
)
from rrn.node.integrations.hub import DeadLetterInfo, ReplayInfo, WebhookInfo
from rrn.node.integrations.webhooks import WebhookBody
from rrn.node.ops.backup import BackupInfo
from rrn.node.ops.checkins import PlanInfo
from rrn.node.ops.collective import CollectiveInfo
from rrn.node.ops.defenders import DefenderInfo
from rrn.node.ops.drills import DrillInfo, DrillReport
from rrn.node.ops.keys import RotatedInfo
from rrn.node.ops.log import ImportReport
from rrn.node.ops.members import PeerInfo, ProposalInfo
from rrn.node.ops.record import AskRecord
from rrn.node.ops.types import AlertDetail, AlertInfo, AskInfo, StatusInfo
from rrn.node.report.figures import Report
from rrn.protocol.errors import ConfigError

__all__ = ["COMMANDS", "SCHEMAS", "add_schema_parser", "asyncapi", "schema"]

BASE: Final = "https://rrn.example/schemas/"
DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong: a stable code and one line for people."""

    code: str
    message: str


class ErrorDocument(msgspec.Struct, frozen=True, kw_only=True):
    """What a command given --json writes on stderr when it fails."""

    error: ErrorDetail


#: Every JSON document rrn emits, by name: what it is and the type that makes it.
SCHEMAS: Final[dict[str, tuple[str, Any]]] = {
    "alert-record": ("a value of the RRN_ALERTS bucket", AlertRecord),
    "notice": ("a message of the RRN_NOTICES stream (rrn.local.alerts.<type>.<alert>)", Notice),
    "event": ("an event as rrn.node.client yields it, verified", VerifiedEvent),
    "webhook": ("the body of a webhook request (Standard Webhooks)", WebhookBody),
    "alert": ("an alert: rrn alert raise/claim/… --json, each of rrn alert list", AlertInfo),
    "alert-detail": ("rrn alert show --json", AlertDetail),
    "alert-list": ("rrn alert list --json", list[AlertInfo]),
    "status": ("rrn status --json", StatusInfo),
    "peers": ("rrn peers --json", list[PeerInfo]),
    "coverage": ("rrn coverage show --json", CoverageGrid),
    "backup": ("rrn backup --json, rrn restore --json", BackupInfo),
    "integrator": ("rrn integrator add --json: what an integrator needs to connect", Made),
    "integrators": ("rrn integrator list --json", list[Listed]),
    "integrator-revoked": ("rrn integrator revoke --json", documents.IntegratorRevoked),
    "version": ("rrn version --json: what this install runs", Versions),
    "user-made": ("rrn user add|reset --json: a one-time password, shown once", UserMade),
    "user": ("rrn user disable|enable|role --json", UserInfo),
    "users": ("rrn user list --json", list[UserInfo]),
    "error": ("what a command given --json writes on stderr when it fails", ErrorDocument),
    "home-made": ("rrn init --json", documents.HomeMade),
    "alert-forgotten": ("rrn alert forget --json", documents.AlertForgotten),
    "asks": ("rrn asks --json", list[AskInfo]),
    "asks-record": ("rrn asks record --json: this member's answers to asks offered", AskRecord),
    "checkin-plan": ("a check-in plan: rrn checkin plan/record/end --json", PlanInfo),
    "checkin-plans": ("rrn checkin list --json", list[PlanInfo]),
    "collective": (
        "a collective proposal: rrn collective propose/join/withdraw/sign/show --json",
        CollectiveInfo,
    ),
    "collectives": ("rrn collective list --json", list[CollectiveInfo]),
    "report": ("rrn report --json: the figures of the report", Report),
    "drill": ("rrn drill schedule --json", DrillInfo),
    "drills": ("rrn drill list --json", list[DrillInfo]),
    "drill-report": ("rrn drill report --json", DrillReport),
    "defender": ("rrn defender add --json", DefenderInfo),
    "defenders": ("rrn defender list --json", list[DefenderInfo]),
    "defender-identity": ("rrn defender show --json", documents.DefenderIdentity),
    "defender-forgotten": ("rrn defender forget --json", documents.DefenderForgotten),
    "log-verified": ("rrn log verify --json", documents.LogVerified),
    "log-exported": ("rrn log export --out FILE --json", documents.LogExported),
    "log-imported": ("rrn log import --json", ImportReport),
    "card-written": ("rrn member card --out FILE --json", documents.CardWritten),
    "key-made": ("rrn member new-key --json", documents.KeyMade),
    "proposal": ("rrn member propose/approve --json", ProposalInfo),
    "proposals": ("rrn member proposals --json", list[ProposalInfo]),
    "roster-made": ("rrn network genesis --json", documents.RosterMade),
    "roster-signed": ("rrn network sign --json", documents.RosterSigned),
    "network-adopted": ("rrn network adopt --json", documents.NetworkAdopted),
    "network-exported": ("rrn network export --json", documents.NetworkExported),
    "devnet": ("rrn devnet up/status --json", documents.DevnetInfo),
    "devnet-node": ("rrn devnet start/stop --json", documents.DevnetNodeInfo),
    "devnet-removed": ("rrn devnet down --json", documents.DevnetRemoved),
    "devnet-paths": ("rrn devnet fault --json", documents.DevnetPaths),
    "coverage-declared": ("rrn coverage declare --json", documents.CoverageDeclaredInfo),
    "keys-protected": ("rrn key protect --json", documents.KeysProtected),
    "key-rotated": ("rrn key rotate --json", RotatedInfo),
    "webhook-secret": ("rrn webhook secret --json", documents.WebhookSecret),
    "webhooks": ("rrn webhook list --json", list[WebhookInfo]),
    "dead-letters": ("rrn webhook dead --json", list[DeadLetterInfo]),
    "replayed": ("rrn webhook replay --json", ReplayInfo),
}

#: The schema of each command's --json output (on success; on failure: `error`).
COMMANDS: Final[dict[str, str]] = {
    "init": "home-made",
    "status": "status",
    **{f"alert {c}": "alert" for c in ("raise", "update", "claim", "release", "share")},
    **{f"alert {c}": "alert" for c in ("act", "resolve", "cancel", "pledge", "feedback")},
    "alert list": "alert-list",
    "alert show": "alert-detail",
    "alert forget": "alert-forgotten",
    "asks": "asks",
    "asks record": "asks-record",
    **{f"checkin {c}": "checkin-plan" for c in ("plan", "record", "end")},
    "checkin list": "checkin-plans",
    **{f"collective {c}": "collective" for c in ("propose", "join", "withdraw", "sign", "show")},
    "collective list": "collectives",
    "report": "report",
    "drill schedule": "drill",
    "drill list": "drills",
    "drill report": "drill-report",
    "defender add": "defender",
    "defender show": "defender-identity",
    "defender list": "defenders",
    "defender forget": "defender-forgotten",
    "log verify": "log-verified",
    "log export": "log-exported",
    "log import": "log-imported",
    "member card": "card-written",
    "member new-key": "key-made",
    "member propose": "proposal",
    "member approve": "proposal",
    "member proposals": "proposals",
    "network genesis": "roster-made",
    "network sign": "roster-signed",
    "network adopt": "network-adopted",
    "network export": "network-exported",
    "peers": "peers",
    "devnet up": "devnet",
    "devnet status": "devnet",
    "devnet start": "devnet-node",
    "devnet stop": "devnet-node",
    "devnet down": "devnet-removed",
    "devnet fault show": "devnet-paths",
    "devnet fault cut": "devnet-paths",
    "devnet fault heal": "devnet-paths",
    "devnet fault partition": "devnet-paths",
    "devnet fault shape": "devnet-paths",
    "coverage declare": "coverage-declared",
    "coverage show": "coverage",
    "key protect": "keys-protected",
    "key rotate": "key-rotated",
    "backup": "backup",
    "restore": "backup",
    "webhook secret": "webhook-secret",
    "webhook list": "webhooks",
    "webhook dead": "dead-letters",
    "webhook replay": "replayed",
    "integrator add": "integrator",
    "integrator list": "integrators",
    "integrator revoke": "integrator-revoked",
    "version": "version",
    "user add": "user-made",
    "user reset": "user-made",
    "user list": "users",
    "user disable": "user",
    "user enable": "user",
    "user role": "user",
}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one document."""
    if name not in SCHEMAS:
        raise ConfigError(f"no schema {name!r}; there are: {', '.join(sorted(SCHEMAS))}")
    what, kind = SCHEMAS[name]
    doc: dict[str, Any] = {"$schema": DRAFT, "$id": f"{BASE}{name}.json"}
    doc |= msgspec.json.schema(kind)
    doc["description"] = f"rrn: {what}."
    return doc


def _channels() -> dict[str, Any]:
    """The subjects, streams and buckets an integrator reads, and their messages."""
    ref = {name: {"$ref": f"{BASE}{name}.json"} for name in SCHEMAS}
    binary = {"type": "string", "format": "binary"}
    channels = {
        "events": {
            "address": "rrn.local.events.{origin}.{kind}",
            "description": f"Every verified event, kept in the JetStream stream {EVENTS_STREAM}: "
            "the signed envelope (msgpack, docs/PROTOCOL.md §3); header Rrn-Event-Id = its "
            "id (hex). rrn.node.client verifies and decodes it into an `event` document.",
            "parameters": {"origin": {}, "kind": {}},
            "messages": {"envelope": {"payload": binary, "contentType": "application/msgpack"}},
        },
        "notices": {
            "address": "rrn.local.alerts.{type}.{alert}",
            "description": f"Every notice, kept in the JetStream stream {NOTICES_STREAM}; "
            "header Nats-Msg-Id = the notice's id. Types: " + ", ".join(NOTICE_TYPES) + ".",
            "parameters": {"type": {"enum": list(NOTICE_TYPES)}, "alert": {}},
            "messages": {"notice": {"payload": ref["notice"], "contentType": "application/json"}},
        },
        "alerts": {
            "address": f"$KV.{ALERTS_BUCKET}.{{alert}}",
            "description": f"The key-value bucket {ALERTS_BUCKET}: each alert's state as this "
            "node may show it, keyed by alert id; a delete when the alert is deleted.",
            "parameters": {"alert": {}},
            "messages": {
                "record": {"payload": ref["alert-record"], "contentType": "application/json"}
            },
        },
        "network": {
            "address": f"$KV.{NETWORK_BUCKET}.roster.{{version}}",
            "description": f"The key-value bucket {NETWORK_BUCKET}: each roster version's "
            "certificate (docs/PROTOCOL.md §6), to verify events from the network id up.",
            "parameters": {"version": {}},
            "messages": {"certificate": {"payload": binary, "contentType": "application/msgpack"}},
        },
    }
    return channels


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0: what integrators can read from a node, and how."""
    channels = _channels()
    operations = {
        f"read-{name}": {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"Read {name} (a durable JetStream consumer, or a key-value watch).",
        }
        for name in channels
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "rrn node feeds for integrators",
            "version": "1",
            "description": "What an integrator's user reads from one rrn node's NATS server "
            "(docs/OPERATIONS.md, Integrators).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "node": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The node's embedded nats-server, client port.",
                "security": [{"$ref": "#/components/securitySchemes/integrator"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "securitySchemes": {
                "integrator": {
                    "type": "userPassword",
                    "description": "An integrator's user and password (rrn integrator add).",
                }
            }
        },
    }


def add_schema_parser(sub: Any) -> None:
    p = sub.add_parser("schema", help="the JSON Schemas of rrn's JSON documents, and AsyncAPI")
    p.add_argument("name", nargs="?", help="one document (default: list them)")
    p.add_argument("--asyncapi", action="store_true", help="the AsyncAPI 3.0 document")
    p.add_argument("--write", type=Path, metavar="DIR", help="write every schema into DIR")
    p.set_defaults(func=cmd_schema)


def rendered(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def cmd_schema(args: argparse.Namespace) -> int:
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            (args.write / f"{name}.json").write_text(rendered(schema(name)))
        (args.write / "asyncapi.json").write_text(rendered(asyncapi()))
        print(f"wrote {len(SCHEMAS) + 1} documents to {args.write}")
    elif args.asyncapi:
        print(rendered(asyncapi()), end="")
    elif args.name:
        print(rendered(schema(args.name)), end="")
    else:
        for name, (what, _) in SCHEMAS.items():
            print(f"{name:<14} {what}")
    return 0
