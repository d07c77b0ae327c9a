"""Forwarded headers and request ids are believed from a trusted reverse proxy only."""

import ipaddress
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.cli import app as cli
from ctcp.core.config import PROJECT_ROOT, Settings
from ctcp.core.db import Database
from tests.factories import audit_events, make_api_client, request_token

PROXY = "10.250.0.2"
FORGED = "6.6.6.6"


@asynccontextmanager
async def _instance(app: FastAPI, **changes: Any) -> AsyncIterator[FastAPI]:
    settings = app.state.settings.model_copy(update=changes)
    instance = create_app(settings)
    async with instance.router.lifespan_context(instance):
        yield instance


def _behind_proxy(app: FastAPI) -> AbstractAsyncContextManager[FastAPI]:
    return _instance(app, trusted_proxies=[ipaddress.ip_network(PROXY)])


def _from(app: FastAPI, address: str, *, https: bool = False) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="https://ctcp.test" if https else "http://ctcp.test",
    )


def _address() -> str:
    return f"172.{16 + secrets.randbelow(16)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def _sign_in_event_ip(
    http: httpx.AsyncClient, database: Database, headers: dict[str, str]
) -> str | None:
    email = f"nobody-{secrets.token_hex(4)}@ctcp.example"
    response = await http.post(
        "/api/v1/session", json={"email": email, "password": "x" * 12}, headers=headers
    )
    assert response.status_code == 401
    events = await audit_events(database, action="session.create")
    (event,) = [event for event in events if email in event.details]
    assert event.request_id == response.headers["X-Request-ID"]
    return event.ip


def test_trusted_proxies_are_read_as_addresses_and_networks() -> None:
    settings = Settings(trusted_proxies="172.18.0.5, 10.0.0.0/8")  # type: ignore[arg-type]
    assert [str(network) for network in settings.trusted_proxies] == [
        "172.18.0.5/32",
        "10.0.0.0/8",
    ]
    assert Settings().trusted_proxies == []
    with pytest.raises(ValueError):
        Settings(trusted_proxies="nginx")  # type: ignore[arg-type]


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
    app: FastAPI, database: Database
) -> None:
    address = _address()
    async with _from(app, address) as http:
        ip = await _sign_in_event_ip(http, database, {"X-Forwarded-For": f"{FORGED}, 10.0.0.1"})
    assert ip == address


async def test_behind_the_proxy_the_address_is_the_one_the_proxy_saw(
    app: FastAPI, database: Database
) -> None:
    client_address = _address()
    async with _behind_proxy(app) as instance, _from(instance, PROXY) as through_proxy:
        # The client wrote its own X-Forwarded-For; the proxy appended the address it saw.
        forged = {"X-Forwarded-For": f"{FORGED}, {client_address}"}
        assert await _sign_in_event_ip(through_proxy, database, forged) == client_address
        # And a client reaching the app around the proxy is not believed at all.
        async with _from(instance, client_address) as direct:
            assert await _sign_in_event_ip(direct, database, {"X-Forwarded-For": FORGED}) == (
                client_address
            )


async def _failed_sign_ins(http: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    """Sign-ins to new e-mails, each with its own X-Forwarded-For; the status codes."""
    statuses = []
    for header in forwarded_for:
        response = await http.post(
            "/api/v1/session",
            json={"email": f"x-{secrets.token_hex(4)}@ctcp.example", "password": "x" * 12},
            headers={"X-Forwarded-For": header},
        )
        statuses.append(response.status_code)
    return statuses


async def test_a_forged_x_forwarded_for_does_not_escape_the_address_limits(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)
    forged = [f"198.51.100.{n}" for n in range(1, 5)]
    limits: dict[str, Any] = {"rate_limit_per_address": 3, "login_address_max_failures": 3}
    async with _instance(app, **limits) as direct:
        async with _from(direct, _address(), https=True) as http:
            assert await _failed_sign_ins(http, forged) == [401, 401, 401, 429]
        spoofer = _address()
        async with _from(direct, spoofer, https=True) as http:
            statuses = []
            for header in forged:
                http.headers["X-Forwarded-For"] = header
                statuses.append((await request_token(http, credentials)).status_code)
            assert statuses == [200, 200, 200, 429]
    limited = await audit_events(database, action="rate_limit")
    assert any(f"address:{spoofer}" in event.details for event in limited)
    proxy = [ipaddress.ip_network(PROXY)]
    async with _instance(app, trusted_proxies=proxy, **limits) as proxied:
        client_address = _address()
        through = [f"{address}, {client_address}" for address in forged]
        async with _from(proxied, PROXY, https=True) as http:
            assert await _failed_sign_ins(http, through) == [401, 401, 401, 429]


async def test_a_clients_request_id_is_replaced(app: FastAPI, database: Database) -> None:
    chosen = f"client-chosen-{secrets.token_hex(4)}"
    async with _from(app, _address()) as http:
        response = await http.post(
            "/api/v1/session",
            json={"email": "nobody-rid@ctcp.example", "password": "x" * 12},
            headers={"X-Request-ID": chosen},
        )
    assert response.headers["X-Request-ID"] != chosen
    assert await audit_events(database, request_id=chosen) == []
    assert await audit_events(database, request_id=response.headers["X-Request-ID"])


async def test_the_trusted_proxys_request_id_is_kept(app: FastAPI, database: Database) -> None:
    from_proxy = f"proxy-request-{secrets.token_hex(4)}"
    from_client = f"client-chosen-{secrets.token_hex(4)}"
    async with _behind_proxy(app) as instance:
        async with _from(instance, PROXY) as http:
            kept = await http.post(
                "/api/v1/session",
                json={"email": "nobody-rid@ctcp.example", "password": "x" * 12},
                headers={"X-Request-ID": from_proxy, "X-Forwarded-For": _address()},
            )
        async with _from(instance, _address()) as http:
            replaced = await http.post(
                "/api/v1/session",
                json={"email": "nobody-rid@ctcp.example", "password": "x" * 12},
                headers={"X-Request-ID": from_client},
            )
    assert kept.headers["X-Request-ID"] == from_proxy
    events = await audit_events(database, request_id=from_proxy)
    assert [event.action for event in events] == ["session.create"]
    assert replaced.headers["X-Request-ID"] != from_client
    assert await audit_events(database, request_id=from_client) == []


def test_serve_leaves_forwarded_headers_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    result = CliRunner().invoke(cli, ["serve"], env={"FORWARDED_ALLOW_IPS": "*"})
    assert result.exit_code == 0, result.output
    # uvicorn's own reading would trust FORWARDED_ALLOW_IPS, "*" included.
    assert calls and calls[0]["proxy_headers"] is False


def test_the_shipped_deployment_trusts_only_its_proxy() -> None:
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    nginx = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text()
    assert "FORWARDED_ALLOW_IPS" not in compose
    assert "CTCP_TRUSTED_PROXIES" in compose
    assert "$proxy_add_x_forwarded_for" not in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "proxy_set_header X-Request-ID $request_id;" in nginx
