"""The published schemas (docs/schemas/) are what the code generates, are valid JSON
Schema, and every document a live network emits validates against its schema: CLI
--json outputs and errors, the alert-state bucket, notices and verified events."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from rrn.node.cli.schema import SCHEMAS, asyncapi, rendered, schema
from rrn.node.integrations.feeds import AlertRecord
from tests.netkit import TestNetwork
from tests.node.integrations.test_feeds import _feeds, _until
from tests.procs import ROOT, init, rrn

DOCS = ROOT / "docs" / "schemas"


def test_the_published_schemas_are_what_the_types_generate() -> None:
    for name in SCHEMAS:
        path = DOCS / f"{name}.json"
        assert path.read_text() == rendered(schema(name)), "run: rrn schema --write docs/schemas"
    assert (DOCS / "asyncapi.json").read_text() == rendered(asyncapi())
    assert sorted(p.stem for p in DOCS.glob("*.json")) == sorted([*SCHEMAS, "asyncapi"])


def test_every_schema_is_valid_json_schema_and_asyncapi_names_only_published_ones() -> None:
    for name in SCHEMAS:
        Draft202012Validator.check_schema(schema(name))
    refs = {v for v in _values(asyncapi()) if isinstance(v, str) and v.endswith(".json")}
    assert refs and all(ref.rsplit("/", 1)[1][:-5] in SCHEMAS for ref in refs), refs


def _values(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in [v, *_values(v)]]
    if isinstance(doc, list):
        return [x for v in doc for x in [v, *_values(v)]]
    return []


def _valid(name: str, document: Any) -> None:
    Draft202012Validator(schema(name)).validate(document)


@pytest.mark.integration
def test_what_a_live_network_emits_validates(tmp_path: Path) -> None:
    net = TestNetwork.create(tmp_path / "net", 2, nat=set())
    try:
        alert = net.cli_json(1, "alert", "raise", "--country", "PE", "--type", "raid",
                             "--severity", "moderate", "--urgency", "days")  # fmt: skip
        _valid("alert", alert)
        net.wait_holds({alert["id"]})
        _valid("alert-detail", net.cli_json(2, "alert", "show", alert["id"][:12]))
        _valid("alert-list", net.cli_json(2, "alert", "list", "--all"))
        _valid("status", net.cli_json(2, "status"))
        _valid("peers", net.cli_json(2, "peers"))
        _valid("coverage", net.cli_json(2, "coverage", "show"))
        backup = net.cli_json(2, "backup", "--out", str(tmp_path / "b"))
        _valid("backup", backup)
        asyncio.run(_feeds_validate(net, alert["id"]))
    finally:
        net.close()
    failed = rrn("status", "--json", "--home", init(tmp_path / "stopped", "lima-hr"))
    _valid("error", json.loads(failed.stderr))


async def _feeds_validate(net: TestNetwork, alert: str) -> None:
    async with _feeds(net, 2, "schemas") as node:
        change = await _until(node.alerts(), lambda c: c.id == alert)
        assert change.alert is not None
        _valid("alert-record", msgspec.to_builtins(AlertRecord(alert=change.alert)))
        event = await _until(node.events(), lambda e: e.id == alert)
        _valid("event", msgspec.to_builtins(event))
        notice = await _until(node.notices(), lambda n: n.alert == alert)
        _valid("notice", msgspec.to_builtins(notice))


def test_every_command_with_json_has_a_schema() -> None:
    """Each subcommand that takes --json names the schema of what it prints."""
    from rrn.node.cli.main import build_parser
    from rrn.node.cli.schema import COMMANDS

    def leaves(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[str, bool]]:
        # A command with subcommands is one itself when it takes --json (`rrn asks`).
        own = [(" ".join(path), any("--json" in a.option_strings for a in parser._actions))]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return own + [
                    leaf for name, p in action.choices.items() for leaf in leaves(p, [*path, name])
                ]
        return own

    with_json = {path for path, has in leaves(build_parser(), []) if has}
    assert with_json == set(COMMANDS), with_json ^ set(COMMANDS)
    assert set(COMMANDS.values()) <= set(SCHEMAS)
