"""The direction of imports, checked on the source: no production module imports one above it.

Packages, bottom up: ``journal`` ← ``workers`` ← ``assignment``. Inside ``assignment`` the frontend is
above the assignment service's parts and both are above the core and the shared words; ``cli``,
``dev`` and the ``*_cli`` modules are at the top; the modules cut out of the leader see it only through
:class:`assignment.leader_port.LeaderPort`. Imports made only for type checking count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assignment", "journal", "workers")
#: The one module outside ``assignment`` that reaches the Rust extension (see ARCHITECTURE.md).
NATIVE_DOOR = "journal/native.py"
#: Modules of the assignment service (the servers) that the frontend must not import.
SERVER_SIDE = {
    "assignment.host",
    "assignment.leader",
    "assignment.server",
    "assignment.service",
    "assignment.following",
    "assignment.cold_start",
    "assignment.provisioned",
    "assignment.upkeep",
    "assignment.reconcile",
}
#: The bottom of ``assignment``: what everything above may use, importing nothing above it.
BOTTOM = {"assignment.errors", "assignment.partition_core", "assignment.members", "assignment.partitioning"}
#: The modules cut out of the leader: they must not import it.
LEADER_PARTS = {
    "assignment.cold_start",
    "assignment.following",
    "assignment.grants",
    "assignment.leader_port",
    "assignment.provisioned",
    "assignment.reconcile",
    "assignment.upkeep",
}
TOP = {
    "assignment.cli",
    "assignment.dev",
    "assignment.server_cli",
    "assignment.frontend.cli",
    "assignment.frontend.keys_cli",
}


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "_pb2" in path.name or "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


MODULES = dict(_modules())


def _within(name: str, modules: set[str]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _breaks(rule: str, module: str, rel: str, target: str) -> bool:
    """Whether ``module`` (at ``rel``) importing ``target`` breaks ``rule``."""
    if rule == "journal":
        native = target.startswith("assignment._core") and rel == NATIVE_DOOR
        return module.startswith("journal") and not target.startswith("journal") and not native
    if rule == "workers":
        return module.startswith("workers") and target.startswith("assignment")
    if rule == "frontend":
        frontend = module.startswith("assignment.frontend") and module not in TOP
        return frontend and _within(target, SERVER_SIDE | TOP)
    if rule == "bottom":
        return (
            module in BOTTOM and target.startswith("assignment.") and not _within(target, {*BOTTOM, "assignment._core"})
        )
    if rule == "leader":
        return module in LEADER_PARTS and _within(target, {"assignment.leader"})
    return module not in TOP and _within(target, TOP)  # "top"


def _violations(rule: str) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, path in MODULES.items()
        for target in sorted(_imports(path))
        if _breaks(rule, module, str(path.relative_to(ROOT)), target)
    ]


def test_the_modules_are_found_and_the_rules_bite() -> None:
    assert {"journal.store", "workers.agent", "assignment.leader", "assignment.frontend.api.app"} <= set(MODULES)
    assert _breaks("journal", "journal.store", "journal/store.py", "assignment.partition_core")
    assert not _breaks("journal", "journal.native", NATIVE_DOOR, "assignment._core")
    assert _breaks("frontend", "assignment.frontend.invoker", "assignment/frontend/invoker.py", "assignment.leader")
    assert _breaks("bottom", "assignment.errors", "assignment/errors.py", "assignment.frontend.types")
    assert _breaks("leader", "assignment.upkeep", "assignment/upkeep.py", "assignment.leader")


@pytest.mark.parametrize("rule", ["journal", "workers", "frontend", "bottom", "leader", "top"])
def test_no_module_imports_one_above_it(rule: str) -> None:
    assert _violations(rule) == []
