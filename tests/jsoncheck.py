"""Every --json document the CLI prints anywhere in the suite is checked against its
published schema (node/cli/schema.py COMMANDS): a command whose output drifts from
its schema fails whichever test ran it, with the schema's complaint."""

from __future__ import annotations

import json
from functools import cache

from jsonschema import Draft202012Validator

from rrn.node.cli.schema import COMMANDS, schema

#: Commands whose stdout is a document of another kind unless --out is given.
_OUT_ONLY = ("log export", "member card")


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def command_of(args: list[str]) -> str | None:
    """The subcommand of a command line (its leading words), if it has a schema."""
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    for n in (2, 1):
        if " ".join(words[:n]) in COMMANDS:
            return " ".join(words[:n])
    return None


def check(args: list[str], returncode: int, stdout: str, stderr: str) -> None:
    """AssertionError if a --json output does not match its schema."""
    command = command_of(args)
    if "--json" not in args or command is None:
        return
    if returncode == 0:
        if command in _OUT_ONLY and "--out" not in args:
            return
        _valid(COMMANDS[command], json.loads(stdout), command)
    elif returncode == 1 and stderr.strip():
        _valid("error", json.loads(stderr.strip().splitlines()[-1]), command)


def _valid(name: str, doc: object, command: str) -> None:
    errors = sorted(_validator(name).iter_errors(doc), key=str)
    assert not errors, f"rrn {command} --json does not match schema {name}: {errors[0]}"
