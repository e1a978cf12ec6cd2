"""The devnet's daemons as processes: one that hangs on stop is killed, said so, and
collected, with its server (the suite once failed on a daemon left running and
forgotten after a stop that timed out)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rrn.node.devnet import daemons
from rrn.protocol.errors import ConfigError
from tests.netkit import TestNetwork
from tests.procs import pid_alive

pytestmark = pytest.mark.integration


def test_a_daemon_that_hangs_on_stop_is_killed_with_its_server_and_collected(
    tmp_path: Path,
) -> None:
    net = TestNetwork.create(tmp_path / "net", 2)
    try:
        home, log = net.home(2), net.devnet.dir / f"{net.org(2)}.log"
        pid = daemons.running_pid(home)
        server = int((home / "run" / "nats-server.pid").read_text())
        assert pid is not None and pid in daemons._children
        os.kill(pid, signal.SIGSTOP)  # it can no longer act on SIGTERM
        with pytest.raises(ConfigError, match="did not stop within 2 s and was killed"):
            daemons.stop_daemon(home, log, kill=False, grace=2)
        assert not pid_alive(pid) and not pid_alive(server)
        assert pid not in daemons._children, "its exit was collected"
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # no zombie left for the kernel to hand on
        assert net.devnet.stop(1), "the other stops as before"
        assert daemons._children.keys().isdisjoint(net.devnet.running().values())
    finally:
        net.close()
