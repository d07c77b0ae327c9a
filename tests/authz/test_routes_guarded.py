"""Every route declares a guard or is deliberately public."""

from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.core.routes import dependency_calls, is_guard, iter_api_routes


def test_every_api_route_is_guarded_or_marked_public() -> None:
    app: FastAPI = create_app()
    unguarded = [
        f"{sorted(route.methods)} {route.path}"
        for route in iter_api_routes(app.routes)
        if not any(is_guard(call) for call in dependency_calls(route))
    ]
    assert unguarded == []


def test_a_route_without_guard_is_caught() -> None:
    app: FastAPI = create_app()

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    unguarded = [
        route.path
        for route in iter_api_routes(app.routes)
        if not any(is_guard(call) for call in dependency_calls(route))
    ]
    assert unguarded == ["/api/v1/forgotten"]


def test_no_route_dependency_is_synchronous() -> None:
    """FastAPI runs sync dependencies in a worker thread: a hop per call on every request."""
    import inspect

    app: FastAPI = create_app()
    synchronous = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in iter_api_routes(app.routes)
        for call in [route.endpoint, *dependency_calls(route)]
        if not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call))
    }
    assert synchronous == set()
