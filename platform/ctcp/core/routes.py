"""Markers that say how a route is protected; a test walks every route for one."""

from collections.abc import Callable
from typing import Any

from fastapi import Depends

GUARD_MARK = "__ctcp_guard__"
PUBLIC_MARK = "__ctcp_public__"


def mark_guard(call: Callable[..., Any], label: tuple[str, str]) -> None:
    """Record that `call` is a guard dependency (authentication and authorization)."""
    setattr(call, GUARD_MARK, label)


def _public() -> None:
    """Anyone may call this route, deliberately."""


setattr(_public, PUBLIC_MARK, True)
PUBLIC = Depends(_public)


def is_guard(call: Callable[..., Any]) -> bool:
    return hasattr(call, GUARD_MARK) or hasattr(call, PUBLIC_MARK)
