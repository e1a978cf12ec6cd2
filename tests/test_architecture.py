"""The house keeps its shape: imports point one way, rooms stay small.

- protocol/ imports neither federation/ nor node/; federation/ never node/; neither
  does I/O (asyncio, NATS, sqlite, sockets, the clock).
- Inside node/, each room (subpackage) imports only the rooms its docstring names
  on its "May import (rooms of node/):" line, and those rules form no cycle.
- Nothing imports the repository's folder names (`protocol`, `node`, ...) as
  top-level packages: installed, they exist only under `rrn`.
- No module is over 400 lines and no function over 60.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "federation", "node")
IO = {"asyncio", "nats", "aiosqlite", "sqlite3", "time", "socket", "subprocess"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of rrn: its dotted name as installed, and its file here."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join(["rrn", *parts]), path


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, at any depth (lazy ones too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from rrn.node import x` may name a module
                yield node.lineno, f"{node.module}.{alias.name}"


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["rrn", "node"] else None


def rooms() -> dict[str, set[str]]:
    """Each room of node/ and the rooms its docstring says it may import."""
    found = {}
    for init in sorted((ROOT / "node").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        match = re.search(r"May import \(rooms of node/\):(.*?)\.(\n\n|$)", doc, re.S)
        assert match, f"{init.parent.name}/__init__.py: no 'May import (rooms of node/):' line"
        text = " ".join(match.group(1).split())
        allowed = set() if text.startswith("none") else {r.strip() for r in text.split(",")}
        found[init.parent.name] = allowed
    return found


def test_every_room_names_real_rooms_and_the_rules_have_no_cycle() -> None:
    rules = rooms()
    assert set(rules) >= {"home", "store", "pipeline", "daemon", "cli"}
    for room, allowed in rules.items():
        assert allowed <= set(rules), f"{room} names unknown rooms {allowed - set(rules)}"
        assert room not in allowed
    done: set[str] = set()

    def visit(room: str, path: tuple[str, ...]) -> None:
        assert room not in path, f"the rules of node/ form a cycle: {' -> '.join(path)}"
        if room not in done:
            for dep in rules[room]:
                visit(dep, (*path, room))
            done.add(room)

    for room in rules:
        visit(room, ())


def test_imports_point_one_way() -> None:
    rules = rooms()
    wrong = []
    for module, path in modules():
        layer = module.split(".")[1]
        room = room_of(module)
        where = path.relative_to(ROOT)
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in PACKAGES:
                wrong.append(f"{where}:{line} imports {name}: installed, it is rrn.{name}")
            if layer in ("protocol", "federation") and (top in IO or name.startswith("rrn.node")):
                wrong.append(f"{where}:{line} imports {name}: {layer}/ is pure")
            if layer == "protocol" and name.startswith("rrn.federation"):
                wrong.append(f"{where}:{line} imports {name}: protocol/ is below federation/")
            target = room_of(name)
            if room and target and target != room and target not in rules[room]:
                wrong.append(f"{where}:{line} imports {name}: {room} may not import {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", PACKAGES)
def test_rooms_are_small(package: str) -> None:
    big = []
    for path in sorted((ROOT / package).rglob("*.py")):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert not big, "split along a real seam:\n" + "\n".join(big)


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    """The checker sees imports inside functions too (a check that cannot fail is none)."""
    path = tmp_path / "m.py"
    path.write_text("def f() -> None:\n    from rrn.node.cli import main\n    import node.x\n")
    assert [n for _, n in imports(path)] == ["rrn.node.cli", "rrn.node.cli.main", "node.x"]
    assert room_of("rrn.node.cli.main") == "cli"
    assert room_of("rrn.node") is None


def test_the_architecture_page_names_what_exists() -> None:
    """Every `rrn.…` name docs/ARCHITECTURE.md cites is a real module, class or function,
    and every room it maps is a room of node/ (so the map does not rot)."""
    import importlib

    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = []
    for ref in sorted(set(re.findall(r"`(rrn(?:\.[A-Za-z_]+)+)`", text))):
        parts = ref.split(".")
        for cut in range(len(parts), 1, -1):
            try:
                obj: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(ref)
            break
        else:
            missing.append(ref)
    assert not missing, f"ARCHITECTURE.md names what does not exist: {missing}"
    source = "\n".join(path.read_text() for _, path in modules())
    for ref in set(re.findall(r"`((?:[A-Z][A-Za-z]+\.)?_?[a-z][a-z_]+)`", text)):
        name = ref.rsplit(".", 1)[-1]
        private_or_method = "." in ref or name.startswith("_")
        if private_or_method and not re.search(rf"def {name}\(", source):
            missing.append(ref)
    assert not missing, f"ARCHITECTURE.md names functions that do not exist: {missing}"
    mapped = set(re.findall(r"^\| `([a-z]+)` \|", text, re.M))
    assert mapped == set(rooms()), f"rooms in the table {mapped} != rooms of node/ {set(rooms())}"
