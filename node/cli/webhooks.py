"""`rrn webhook`: the secrets of webhook receivers, and what delivery gave up on."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rrn.node.cli.common import Parser, get_home, home_arg, json_arg, show
from rrn.node.cli.documents import WebhookSecret
from rrn.node.cli.output import fmt_time, table
from rrn.node.control.client import ask
from rrn.node.integrations.hub import (
    DeadLetterInfo,
    ReplayInfo,
    WebhookArgs,
    WebhookInfo,
)
from rrn.node.integrations.webhooks import new_secret
from rrn.node.ops.types import NoArgs

__all__ = ["add_webhook_parsers"]


def add_webhook_parsers(sub: Any) -> None:
    hook = sub.add_parser("webhook", help="webhook receivers: secrets, dead letters, replay")
    inner = hook.add_subparsers(dest="webhook_command", required=True, parser_class=Parser)
    p = inner.add_parser("secret", help="make the shared secret of a new webhook receiver")
    home_arg(p)
    json_arg(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_secret)
    p = inner.add_parser("list", help="the configured webhooks")
    home_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_list)
    for name, helptext, func in (
        ("dead", "notices a webhook gave up on", "cmd_dead"),
        ("replay", "send a webhook's dead letters again", "cmd_replay"),
    ):
        p = inner.add_parser(name, help=helptext)
        home_arg(p)
        json_arg(p)
        p.add_argument("name")
        p.set_defaults(func=globals()[func])


def cmd_secret(args: argparse.Namespace) -> int:
    home = get_home(args)
    relative = Path("keys") / f"webhook-{args.name}.secret"
    secret = new_secret(home.path / relative)
    made = WebhookSecret(name=args.name, secret_file=str(relative), secret=secret)
    return show(
        args,
        made,
        lambda: (
            f"{secret}\n(give it to the receiver; it is in {home.path / relative})\n"
            f'in config.toml:\n[[webhooks]]\nname = "{args.name}"\nurl = "https://…"\n'
            f'secret_file = "{relative}"'
        ),
    )


def cmd_list(args: argparse.Namespace) -> int:
    hooks = ask(get_home(args), "webhook.list", NoArgs(), list[WebhookInfo])
    rows = [("NAME", "URL", "NOTICES", "DEAD")] + [
        (h.name, h.url, ",".join(h.notices), str(h.dead_letters)) for h in hooks
    ]
    return show(args, hooks, lambda: table(rows) if hooks else "no webhooks in config.toml")


def cmd_dead(args: argparse.Namespace) -> int:
    home = get_home(args)
    dead = ask(home, "webhook.dead", WebhookArgs(name=args.name), list[DeadLetterInfo])
    rows = [("NOTICE", "FAILED", "ATTEMPTS", "LAST ERROR")] + [
        (d.id, fmt_time(d.failed_ms, home.config.node.tz), str(d.attempts), d.last_error)
        for d in dead
    ]
    return show(args, dead, lambda: table(rows) if dead else "no dead letters")


def cmd_replay(args: argparse.Namespace) -> int:
    home = get_home(args)
    done = ask(home, "webhook.replay", WebhookArgs(name=args.name), ReplayInfo)
    return show(args, done, lambda: f"sent {done.sent}; still dead {done.still_dead}")
