"""Package attributes that load their module on first use (PEP 562).

Owns the `__getattr__` the packages' `__init__` modules use to re-export names
without importing every module of the package when one is imported: start-up, which
every `rrn` command pays, loaded all of protocol/, federation/ and the daemon.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` giving each name of `where` (name -> module) from its module."""

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return getattr_
