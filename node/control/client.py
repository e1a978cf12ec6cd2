"""The CLI's side of the control channel: find the daemon, ask, return the answer.

Owns how the CLI learns that a daemon runs for a home (HOME/run/daemon.json and
a live pid) and the request/reply round trip, with one clear error for each way
it can fail.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from rrn.node.control.channel import decode_reply, make_request, now_ms
from rrn.node.control.wire import Connection, WireError
from rrn.node.home.layout import Home
from rrn.node.home.tls import pinned_context
from rrn.node.natsd import DAEMON_USER
from rrn.protocol import subjects
from rrn.protocol.errors import DaemonUnavailable

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["ControlClient", "ask", "call", "daemon_info", "open_control", "pid_alive"]

T = TypeVar("T")
_TIMEOUT_S: Final = 15.0
_ATTEMPTS: Final = 3
#: The status NATS answers a request with when nobody listens on its subject.
_NO_RESPONDERS: Final = "503"


def daemon_info(home: Home) -> dict[str, object]:
    """What the running daemon of `home` wrote about itself; ControlError if none runs."""
    not_running = (
        f"the rrn daemon is not running for {home.path} (start it with: rrn run --home {home.path})"
    )
    try:
        info = json.loads(home.daemon_file.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DaemonUnavailable(not_running) from exc
    if not isinstance(info, dict) or not pid_alive(pid):
        raise DaemonUnavailable(not_running)
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


class ControlClient:
    """An open control connection to one daemon; reuse it for many requests. It
    answers the server's pings only while it waits for a reply: left idle longer than
    the server's ping interval times ping_max, it is cut."""

    def __init__(self, home: Home, conn: Connection, key: bytes) -> None:
        self._home = home
        self._conn = conn
        self._key = key
        self._subject = subjects.control(home.config.node.org, "request")

    def call(self, op: str, args: object, result: type[T]) -> T:
        """Send one request and decode its answer.

        A request that is not answered in time is sent again, the very same bytes
        (same nonce), a few times: the daemon runs a request that changes something
        at most once and answers a repeat with the first answer, so a busy daemon
        never raises an alert twice. Each request has its own inbox: a late answer
        to an earlier one is never taken for its answer.
        """
        inbox = self._conn.new_inbox()
        try:
            sid = self._conn.subscribe(inbox)
            data = make_request(self._key, op, args, now_ms(), inbox)
            for _ in range(_ATTEMPTS):
                try:
                    self._conn.publish(self._subject, data, reply=inbox)
                    answer = self._conn.next(sid, _TIMEOUT_S)
                except TimeoutError:
                    continue
                if answer.status == _NO_RESPONDERS:
                    raise DaemonUnavailable(
                        f"the daemon for {self._home.path} is not answering (starting or stopping?)"
                    )
                with contextlib.suppress(WireError):
                    self._conn.unsubscribe(sid)
                return decode_reply(answer.data, result)
        except WireError as exc:
            raise DaemonUnavailable(f"the daemon for {self._home.path} is unreachable") from exc
        raise DaemonUnavailable(
            f"the daemon did not answer within {_ATTEMPTS * _TIMEOUT_S:.0f} s; if this "
            "changed something, look before asking again (e.g. rrn alert list)"
        )


@contextlib.contextmanager
def open_control(home: Home) -> Iterator[ControlClient]:
    """Connect to the daemon of `home` (ControlError if none runs)."""
    info = daemon_info(home)
    url = str(info.get("nats_url") or home.config.nats.url)
    keys = home.control_secrets()
    embedded = home.config.nats.embedded
    tls = None
    if embedded and home.config.nats.tls:
        tls = pinned_context(home.keys_dir / "tls.crt")
    try:
        conn = Connection.open(
            url,
            user=DAEMON_USER if embedded else None,
            password=keys.nats_password if embedded else None,
            tls=tls,
            timeout=15,
        )
    except WireError as exc:  # it answered, and said no (e.g. a wrong password)
        raise DaemonUnavailable(f"the daemon's NATS at {_shown(url)}: {exc}") from exc
    except ssl.SSLCertVerificationError as exc:  # an OSError, but not "cannot reach"
        raise DaemonUnavailable(_not_verified(home, url, pinned=tls is not None, exc=exc)) from exc
    except (TimeoutError, OSError, ValueError) as exc:
        raise DaemonUnavailable(
            f"cannot reach the daemon's NATS at {_shown(url)}; "
            f"is 'rrn run --home {home.path}' running?"
        ) from exc
    try:
        yield ControlClient(home, conn, keys.control)
    finally:
        conn.close()


#: OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED.
_OUT_OF_DATE: Final = (9, 10)


def _not_verified(home: Home, url: str, *, pinned: bool, exc: ssl.SSLError) -> str:
    why = getattr(exc, "verify_message", "") or str(exc)
    if not pinned:  # an external server, checked against the system's authorities
        return f"the NATS server at {_shown(url)}: its TLS certificate did not verify ({why})"
    if getattr(exc, "verify_code", None) in _OUT_OF_DATE:
        return (
            f"the node's TLS certificate {home.keys_dir / 'tls.crt'} is not valid now "
            f"({why}): is this host's clock right?"
        )
    return (
        f"the NATS server at {_shown(url)} is not this node's: its TLS certificate is not "
        f"{home.keys_dir / 'tls.crt'} ({why}; another server on that port, or the "
        "certificate replaced while the daemon ran: restart it)"
    )


def _shown(url: str) -> str:
    """A NATS url without the credentials an external server's may carry."""
    scheme, sep, rest = url.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def ask(home: Home, op: str, args: object, result: type[T]) -> T:
    """Send one control request to the daemon of `home` and decode its answer."""
    with open_control(home) as client:
        return client.call(op, args, result)


async def call(home: Home, op: str, args: object, result: type[T]) -> T:
    """`ask` for a caller on an event loop (tests, benchmarks): on a thread of a pool
    as wide as a burst of requests, so the loop goes on and the requests overlap."""
    import asyncio  # noqa: PLC0415 (no command needs it to ask its daemon)
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 (nor a pool)

    global _pool  # noqa: PLW0603 (made on first use: the CLI never needs one)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_CALLERS, thread_name_prefix="rrn-call")
    return await asyncio.get_running_loop().run_in_executor(
        _pool, functools.partial(ask, home, op, args, result)
    )


#: Requests `call` has in flight at once at most (asyncio's own pool has a few).
_CALLERS: Final = 128
_pool: ThreadPoolExecutor | None = None
