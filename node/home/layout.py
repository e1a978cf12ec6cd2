"""A node's home directory: where each of its files lives, and opening it.

Owns the layout (`rrn init`, in node/membership/init.py, makes a new home):

    HOME/config.toml      configuration (node/home/config.py)
    HOME/keys/            secret keys, 0700/0600 (node/home/keys.py)
    HOME/store.db         signed history and projections (node/store/)
    HOME/nats/            embedded nats-server config, JetStream store, logs
    HOME/run/             home.lock (node/home/lock.py), files of the running daemon
                          (daemon.json, ports)
    HOME/logs/            rrn.log
    HOME/console.db       the console's people, sessions and record (node/console/)
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from rrn.node.home.config import (
    Config,
    load_config,
)
from rrn.node.home.keys import ControlSecrets, Keys, load_control_secrets, load_keys
from rrn.protocol.errors import ConfigError

__all__ = ["Home", "open_home"]


class Home(msgspec.Struct, frozen=True):
    """A node home on disk and its configuration."""

    path: Path
    config: Config

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def store_path(self) -> Path:
        return self.path / "store.db"

    @property
    def console_db(self) -> Path:
        return self.path / "console.db"

    @property
    def nats_dir(self) -> Path:
        return self.path / "nats"

    @property
    def run_dir(self) -> Path:
        return self.path / "run"

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    @property
    def daemon_file(self) -> Path:
        return self.run_dir / "daemon.json"

    def keys(self) -> Keys:
        """Load this home's keys."""
        return load_keys(self.keys_dir)

    def control_secrets(self) -> ControlSecrets:
        """The secrets the CLI needs to reach its daemon (no private key)."""
        return load_control_secrets(self.keys_dir)


def open_home(path: Path) -> Home:
    """Open an existing home, with a clear error if it is not one."""
    if not path.exists():
        raise ConfigError(f"no rrn home at {path} (make one with 'rrn init --home {path}')")
    if not (path / "config.toml").is_file():
        raise ConfigError(f"{path} is not an rrn home: it has no config.toml")
    return Home(path, load_config(path / "config.toml"))
