"""The token endpoint, revocation and introspection: RFC 6749, 7009 and 7662 as clients see them."""

import base64
import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.oauth.models import AccessToken
from tests.factories import (
    ApiClientCredentials,
    audit_events,
    bearer_http,
    make_api_client,
    make_user,
    new_client,
    oauth_http,
    request_token,
    sign_in,
)

ALL_SCOPES = "needs:read offers:write publications:read requests:read"


@pytest.fixture
async def credentials(database: Database) -> ApiClientCredentials:
    return await make_api_client(database)


@pytest.fixture
async def http(app: FastAPI) -> Any:
    async with oauth_http(app) as client:
        yield client


async def _stored(database: Database, token: str) -> AccessToken | None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with database.sessionmaker() as session:
        found = await session.exec(select(AccessToken).where(AccessToken.token_hash == digest))
        return found.first()


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form-fields"])
async def test_client_credentials_issue_an_opaque_token_stored_only_as_a_hash(
    http: httpx.AsyncClient, credentials: ApiClientCredentials, database: Database, basic: bool
) -> None:
    response = await request_token(http, credentials, basic=basic)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert body["scope"] == ALL_SCOPES
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    token = body["access_token"]
    assert len(token) >= 40 and "." not in token  # opaque, not a JWT
    stored = await _stored(database, token)
    assert stored is not None and stored.scopes == ALL_SCOPES
    assert token not in stored.model_dump_json()
    issued = await audit_events(
        database, actor_client_id=credentials.client_id, action="oauth.token"
    )
    assert [event.outcome for event in issued] == ["allowed"]
    assert issued[0].actor_organization == credentials.organization.code


async def test_a_client_may_ask_for_a_subset_of_its_scopes_never_more(
    http: httpx.AsyncClient, database: Database
) -> None:
    credentials = await make_api_client(database, scopes=("publications:read", "needs:read"))
    subset = await request_token(http, credentials, scope="publications:read")
    assert subset.status_code == 200 and subset.json()["scope"] == "publications:read"
    everything = await request_token(http, credentials)
    assert everything.json()["scope"] == "needs:read publications:read"
    for scope in ("offers:write", "publications:read offers:write", "admin", "publications:write"):
        refused = await request_token(http, credentials, scope=scope)
        assert refused.status_code == 400, scope
        assert refused.json()["error"] == "invalid_scope"
        assert refused.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form-fields"])
async def test_a_wrong_secret_is_invalid_client_401_and_audited(
    http: httpx.AsyncClient, credentials: ApiClientCredentials, database: Database, basic: bool
) -> None:
    wrong = ApiClientCredentials(
        credentials.id, credentials.client_id, credentials.secret + "x", credentials.organization
    )
    response = await request_token(http, wrong, basic=basic)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    denials = await audit_events(database, action="oauth.token", outcome="denied")
    assert any(credentials.client_id in event.details for event in denials)
    assert await audit_events(database, actor_client_id=credentials.client_id) == []


async def test_an_unknown_client_gets_the_same_answer_as_a_wrong_secret(
    http: httpx.AsyncClient, credentials: ApiClientCredentials
) -> None:
    unknown = ApiClientCredentials(
        None, "ctcp-nobody-0000", credentials.secret, credentials.organization
    )
    wrong = ApiClientCredentials(
        None, credentials.client_id, "ctcp_cs_wrong", credentials.organization
    )
    first, second = await request_token(http, unknown), await request_token(http, wrong)
    assert first.status_code == second.status_code == 401
    assert first.json()["error"] == second.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("form", "auth", "error"),
    [
        (
            {"grant_type": "password", "username": "a", "password": "b"},
            True,
            "unsupported_grant_type",
        ),
        ({"grant_type": "authorization_code", "code": "x"}, True, "unsupported_grant_type"),
        ({}, True, "invalid_request"),
        ({"grant_type": "client_credentials"}, False, "invalid_client"),
    ],
    ids=["password-grant", "code-grant", "no-grant-type", "no-credentials"],
)
async def test_rfc_6749_errors(
    http: httpx.AsyncClient,
    credentials: ApiClientCredentials,
    form: dict[str, str],
    auth: bool,
    error: str,
) -> None:
    response = await http.post(
        "/oauth/token",
        data=form,
        auth=(credentials.client_id, credentials.secret) if auth else None,
    )
    assert response.json()["error"] == error, response.text
    assert response.status_code == (401 if error == "invalid_client" else 400)
    assert response.headers["content-type"].startswith("application/json")


async def test_malformed_requests_are_invalid_request_never_500(
    http: httpx.AsyncClient, credentials: ApiClientCredentials
) -> None:
    auth = (credentials.client_id, credentials.secret)
    as_json = await http.post("/oauth/token", json={"grant_type": "client_credentials"}, auth=auth)
    repeated = await http.post(
        "/oauth/token",
        content="grant_type=client_credentials&scope=needs:read&scope=offers:write",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    both_methods = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": credentials.secret},
        auth=auth,
    )
    for response in (as_json, repeated, both_methods):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Basic Zm9v"):
        bad = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client", header


async def test_the_token_lifetime_is_configurable(app: FastAPI, database: Database) -> None:
    from ctcp.app import create_app

    settings = app.state.settings.model_copy(update={"access_token_minutes": 5})
    other = create_app(settings)
    credentials = await make_api_client(database)
    async with other.router.lifespan_context(other), oauth_http(other) as http:
        response = await request_token(http, credentials)
    assert response.json()["expires_in"] == 300


async def test_a_token_works_until_it_expires(
    app: FastAPI, credentials: ApiClientCredentials
) -> None:
    async with await bearer_http(app, credentials) as machine:
        assert (await machine.get("/api/v1/publications")).status_code == 200
        clock.advance(timedelta(minutes=14, seconds=59))
        assert (await machine.get("/api/v1/publications")).status_code == 200
        clock.advance(timedelta(seconds=1))
        expired = await machine.get("/api/v1/publications")
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_token"
    assert expired.headers["www-authenticate"].startswith(
        'Bearer realm="CTCP", error="invalid_token"'
    )
    assert expired.headers["content-type"] == "application/problem+json"


async def test_garbage_and_missing_tokens_are_invalid_token(
    app: FastAPI, database: Database
) -> None:
    async with oauth_http(app) as http:
        for header in ("Bearer nonsense", "Bearer ", "bearer ctcp_at_" + "a" * 43):
            response = await http.get("/api/v1/publications", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
    denials = await audit_events(database, outcome="denied", action="http.get")
    assert any("invalid_token" in event.details for event in denials)


async def test_a_revoked_token_is_refused_from_the_next_request(
    app: FastAPI, credentials: ApiClientCredentials, database: Database
) -> None:
    async with await bearer_http(app, credentials) as machine:
        token = machine.headers["Authorization"].removeprefix("Bearer ")
        assert (await machine.get("/api/v1/publications")).status_code == 200
        revoked = await machine.post(
            "/oauth/revoke",
            data={"token": token, "token_type_hint": "access_token"},
            auth=(credentials.client_id, credentials.secret),
            headers={"Authorization": ""},
        )
        assert revoked.status_code == 200, revoked.text
        del machine.headers["Authorization"]
        refused = await machine.get(
            "/api/v1/publications", headers={"Authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 401
    stored = await _stored(database, token)
    assert stored is not None and stored.revoked_at is not None
    events = await audit_events(
        database, actor_client_id=credentials.client_id, action="oauth.revoke"
    )
    assert [event.outcome for event in events] == ["allowed"]


async def test_revoking_an_unknown_token_answers_200_and_another_clients_token_is_refused(
    app: FastAPI, http: httpx.AsyncClient, credentials: ApiClientCredentials, database: Database
) -> None:
    auth = (credentials.client_id, credentials.secret)
    unknown = await http.post("/oauth/revoke", data={"token": "ctcp_at_unknown"}, auth=auth)
    assert unknown.status_code == 200
    other = await make_api_client(database)
    async with await bearer_http(app, other) as machine:
        token = machine.headers["Authorization"].removeprefix("Bearer ")
        refused = await http.post("/oauth/revoke", data={"token": token}, auth=auth)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert (await machine.get("/api/v1/publications")).status_code == 200
    no_token = await http.post("/oauth/revoke", data={}, auth=auth)
    assert no_token.status_code == 400 and no_token.json()["error"] == "invalid_request"
    unauthenticated = await http.post("/oauth/revoke", data={"token": token})
    assert unauthenticated.status_code == 401


async def test_a_client_introspects_its_own_tokens_only(
    app: FastAPI, http: httpx.AsyncClient, credentials: ApiClientCredentials, database: Database
) -> None:
    auth = (credentials.client_id, credentials.secret)
    mine = (await request_token(http, credentials, scope="publications:read")).json()
    active = await http.post("/oauth/introspect", data={"token": mine["access_token"]}, auth=auth)
    assert active.status_code == 200
    body = active.json()
    assert body["active"] is True
    assert body["client_id"] == credentials.client_id
    assert body["scope"] == "publications:read"
    assert body["token_type"] == "Bearer"
    assert body["exp"] - body["iat"] == 15 * 60
    other = await make_api_client(database)
    theirs = (await request_token(http, other)).json()["access_token"]
    foreign = await http.post("/oauth/introspect", data={"token": theirs}, auth=auth)
    assert foreign.json() == {"active": False}
    unknown = await http.post("/oauth/introspect", data={"token": "nope"}, auth=auth)
    assert unknown.json() == {"active": False}
    await http.post("/oauth/revoke", data={"token": mine["access_token"]}, auth=auth)
    dead = await http.post("/oauth/introspect", data={"token": mine["access_token"]}, auth=auth)
    assert dead.json() == {"active": False}
    nobody = await http.post("/oauth/introspect", data={"token": theirs})
    assert nobody.status_code == 401 and nobody.json()["error"] == "invalid_client"


async def test_an_administrator_introspects_any_token_others_may_not(
    app: FastAPI, http: httpx.AsyncClient, credentials: ApiClientCredentials, database: Database
) -> None:
    token = (await request_token(http, credentials)).json()["access_token"]
    admin = new_client(app)
    await sign_in(admin, (await make_user(database, roles=("platform_admin",))).email)
    answer = await admin.post("/oauth/introspect", data={"token": token})
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert answer.json()["organization"] == credentials.organization.code
    entity = new_client(app)
    focal_point = await make_user(database, roles=("entity_focal_point",), kind="compact_entity")
    await sign_in(entity, focal_point.email)
    assert (await entity.post("/oauth/introspect", data={"token": token})).status_code == 403
    without_csrf = new_client(app)
    without_csrf.cookies = admin.cookies
    assert (await without_csrf.post("/oauth/introspect", data={"token": token})).status_code == 403
    for client in (admin, entity, without_csrf):
        await client.aclose()


async def test_no_token_is_issued_over_plain_http_off_loopback(
    app: FastAPI, credentials: ApiClientCredentials
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ctcp.test"
    ) as plain:
        response = await request_token(plain, credentials)
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"


async def test_a_client_id_no_client_of_ours_could_have_is_invalid_client(
    http: httpx.AsyncClient,
) -> None:
    for client_id in ("bad\x00id", "x" * 65, "é", "with space"):
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "s"}
        response = await http.post("/oauth/token", data=form)
        assert response.status_code == 401, client_id
        assert response.json()["error"] == "invalid_client"
