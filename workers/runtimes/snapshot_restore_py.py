"""AWS's ``snapshot_restore_py`` for functions that use snapshot-fork (our SnapStart).

``register_before_snapshot(func, *args, **kwargs)`` and ``register_after_restore(func, *args, **kwargs)``
record hooks (both also work as decorators). As on Lambda, before-snapshot hooks run in the reverse order
of registration, just before the template is frozen; after-restore hooks run in the order of
registration, in every sandbox forked from it. A sandbox that is not forked runs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["get_after_restore", "get_before_snapshot", "register_after_restore", "register_before_snapshot"]

_before: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
_after: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []


def register_before_snapshot(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Run ``func(*args, **kwargs)`` before the snapshot (usable as a decorator)."""
    _before.append((func, args, kwargs))
    return func


def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Run ``func(*args, **kwargs)`` after each restore (usable as a decorator)."""
    _after.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    """The before-snapshot hooks in the order they run (reverse registration)."""
    return list(reversed(_before))


def get_after_restore() -> list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    """The after-restore hooks in the order they run (registration)."""
    return list(_after)
