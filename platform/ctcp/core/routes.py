"""Markers that say how a route is protected; a test walks every route for one."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import Depends
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

GUARD_MARK = "__ctcp_guard__"
PUBLIC_MARK = "__ctcp_public__"


def mark_guard(call: Callable[..., Any], label: tuple[str, str]) -> None:
    """Record that `call` is a guard dependency (authentication and authorization)."""
    setattr(call, GUARD_MARK, label)


async def _public() -> None:
    """Anyone may call this route, deliberately."""


setattr(_public, PUBLIC_MARK, True)
PUBLIC = Depends(_public)


def is_guard(call: Callable[..., Any]) -> bool:
    return hasattr(call, GUARD_MARK) or hasattr(call, PUBLIC_MARK)


def iter_api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route of an app, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from iter_api_routes(route.original_router.routes)


def dependency_calls(route: APIRoute) -> Iterator[Callable[..., Any]]:
    """Every callable in a route's dependency tree."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            yield dependant.call
        stack.extend(dependant.dependencies)
