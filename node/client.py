"""The CLI's side of the control channel: find the daemon, ask, return the answer.

Owns how the CLI learns that a daemon runs for a home (HOME/run/daemon.json and
a live pid) and the request/reply round trip, with one clear error for each way
it can fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final, TypeVar

import nats
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from node.control import decode_reply, make_request, now_ms
from node.home import Home
from node.natsconf import DAEMON_USER
from protocol import subjects
from protocol.errors import ControlError

__all__ = ["call", "daemon_info", "pid_alive"]

T = TypeVar("T")
_TIMEOUT_S: Final = 15.0


def daemon_info(home: Home) -> dict[str, object]:
    """What the running daemon of `home` wrote about itself; ControlError if none runs."""
    not_running = (
        f"the rrn daemon is not running for {home.path} (start it with: rrn run --home {home.path})"
    )
    try:
        info = json.loads(home.daemon_file.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ControlError(not_running) from exc
    if not isinstance(info, dict) or not pid_alive(pid):
        raise ControlError(not_running)
    return info


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie left by a crash does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


async def _quiet(exc: Exception) -> None:
    """nats-py prints connection errors with tracebacks by default; we report once."""


async def call(home: Home, op: str, args: object, result: type[T]) -> T:
    """Send one control request to the daemon of `home` and decode its answer."""
    info = daemon_info(home)
    url = str(info.get("nats_url") or home.config.nats.url)
    keys = home.keys()
    embedded = home.config.nats.embedded
    try:
        nc = await nats.connect(
            url,
            user=DAEMON_USER if embedded else None,
            password=keys.nats_password if embedded else None,
            name="rrn-cli",
            allow_reconnect=False,
            connect_timeout=5,
            max_reconnect_attempts=0,
        )
    except (TimeoutError, NatsError, OSError) as exc:
        raise ControlError(
            f"cannot reach the daemon's NATS at {url}; is 'rrn run --home {home.path}' running?"
        ) from exc
    try:
        data = make_request(keys.control, op, args, now_ms())
        msg = await nc.request(
            subjects.control(home.config.node.org, "request"), data, timeout=_TIMEOUT_S
        )
    except NoRespondersError as exc:
        raise ControlError(
            f"the daemon for {home.path} is not answering (starting or stopping?)"
        ) from exc
    except (TimeoutError, NatsTimeout) as exc:
        raise ControlError(f"the daemon did not answer within {_TIMEOUT_S:.0f} s") from exc
    finally:
        await nc.close()
    return decode_reply(msg.data, result)
