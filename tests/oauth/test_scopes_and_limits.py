"""Scopes narrow an entity's rights; limits hold per client and per address across instances."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.factories import (
    audit_events,
    bearer_http,
    make_api_client,
    make_publication,
    oauth_http,
    request_token,
)


async def test_a_call_outside_the_scopes_is_403_insufficient_scope(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database, scopes=("needs:read",))
    async with await bearer_http(app, credentials) as machine:
        response = await machine.get("/api/v1/publications")
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert challenge == 'Bearer realm="CTCP", error="insufficient_scope", scope="publications:read"'
    denials = await audit_events(
        database, actor_client_id=credentials.client_id, action="publication.read"
    )
    assert [event.outcome for event in denials] == ["denied"]
    assert '"reason": "scope"' in denials[0].details


async def test_a_token_asked_for_fewer_scopes_carries_only_those(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)
    async with await bearer_http(app, credentials, scope="needs:read") as machine:
        assert (await machine.get("/api/v1/publications")).status_code == 403
    async with await bearer_http(app, credentials, scope="publications:read") as machine:
        assert (await machine.get("/api/v1/publications")).status_code == 200


async def test_clients_never_reach_administration_consent_reports_or_audit(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)  # every scope
    published = await make_publication(app, database)
    report = published.report_id
    async with await bearer_http(app, credentials) as machine:
        calls = [
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/api-clients", None),
            (
                "POST",
                "/api/v1/organizations",
                {"code": "XQZ", "name": "X", "kind": "compact_entity"},
            ),
            ("GET", "/api/v1/audit-events", None),
            ("GET", "/api/v1/audit-events/verify", None),
            ("GET", "/api/v1/reports", None),
            ("GET", f"/api/v1/reports/{report}", None),
            ("GET", f"/api/v1/reports/{report}/consent", None),
            ("POST", f"/api/v1/reports/{report}/consent/withdraw", {"reason": "x"}),
            ("POST", "/api/v1/reports", {"state": "FRA"}),
        ]
        for method, path, body in calls:
            response = await machine.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            # Unsafe methods too: a bearer request is never asked for a CSRF token.
            assert response.json()["error"] == "insufficient_scope", (method, path)
            assert "scope=" not in response.headers["www-authenticate"], path
        for path in ("/api/v1/me", "/api/v1/me/mfa"):
            response = await machine.request("GET" if path.endswith("me") else "POST", path)
            assert response.status_code == 401, path
        published_read = await machine.get(f"/api/v1/publications/{published.publication_id}")
        assert published_read.status_code == 200
    reads = await audit_events(
        database, actor_client_id=credentials.client_id, object_id=published.publication_id
    )
    assert [event.outcome for event in reads] == ["allowed"]
    assert reads[0].actor_organization == credentials.organization.code
    assert reads[0].actor_user_id is None


@asynccontextmanager
async def _instance(app: FastAPI, **limits: Any) -> AsyncIterator[FastAPI]:
    settings = app.state.settings.model_copy(update=limits)
    instance = create_app(settings)
    async with instance.router.lifespan_context(instance):
        yield instance


def _machine(instance: FastAPI, token: str, address: str) -> httpx.AsyncClient:
    http = oauth_http(instance, address=address)
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def _address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def test_the_client_limit_holds_across_two_instances(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)
    async with oauth_http(app) as http:
        token = (await request_token(http, credentials)).json()["access_token"]
    limits = {"rate_limit_per_client": 5, "rate_limit_window_seconds": 60}
    async with _instance(app, **limits) as first, _instance(app, **limits) as second:
        one = _machine(first, token, _address())
        two = _machine(second, token, _address())  # another address: only the client counts
        # The token request was the client's first call of the window; four more may follow.
        statuses = []
        for machine in (one, two, one, two):
            statuses.append((await machine.get("/api/v1/publications")).status_code)
        assert statuses == [200] * 4
        refused = [await two.get("/api/v1/publications"), await one.get("/api/v1/publications")]
        assert [response.status_code for response in refused] == [429, 429]
        retry_after = int(refused[0].headers["retry-after"])
        assert 1 <= retry_after <= 120
        assert refused[0].headers["content-type"] == "application/problem+json"
        # Refused calls are not counted: once the window has slid by, the client is back.
        clock.advance(timedelta(seconds=retry_after + 60))
        assert (await one.get("/api/v1/publications")).status_code == 200
        await one.aclose()
        await two.aclose()
    refusals = await audit_events(
        database, actor_client_id=credentials.client_id, action="rate_limit"
    )
    assert len(refusals) == 1  # the first refusal of the window; a flood writes one event
    assert refusals[0].outcome == "denied" and "client:" in refusals[0].details


async def test_the_address_limit_stops_token_guessing_and_secret_guessing(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)
    address = _address()
    limits = {"rate_limit_per_address": 3, "rate_limit_window_seconds": 60}
    async with _instance(app, **limits) as first, _instance(app, **limits) as second:
        guesser = _machine(first, "ctcp_at_guess", address)
        statuses = [(await guesser.get("/api/v1/publications")).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        async with oauth_http(second, address=address) as token_endpoint:
            refused = await request_token(token_endpoint, credentials)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        async with oauth_http(second, address=_address()) as elsewhere:
            assert (await request_token(elsewhere, credentials)).status_code == 200
        await guesser.aclose()
    events = await audit_events(database, action="rate_limit")
    assert any(f"address:{address}" in event.details for event in events)


async def test_the_sliding_window_weighs_the_previous_window(
    app: FastAPI, database: Database
) -> None:
    credentials = await make_api_client(database)
    async with oauth_http(app) as http:
        token = (await request_token(http, credentials)).json()["access_token"]
    start = clock.now()
    # The start of a window two after the token request's, so the arithmetic below is exact.
    clock.advance(timedelta(seconds=120 - start.timestamp() % 60 + 0.001))
    async with _instance(app, rate_limit_per_client=4, rate_limit_window_seconds=60) as one:
        machine = _machine(one, token, _address())
        for _ in range(4):
            assert (await machine.get("/api/v1/publications")).status_code == 200
        assert (await machine.get("/api/v1/publications")).status_code == 429
        # Half-way through the next window, half of the previous 4 still weigh: 2 + 2 = 4.
        clock.advance(timedelta(seconds=90))
        assert (await machine.get("/api/v1/publications")).status_code == 200
        assert (await machine.get("/api/v1/publications")).status_code == 200
        refused = await machine.get("/api/v1/publications")
        assert refused.status_code == 429
        await machine.aclose()
