"""API-client administration: secrets shown once, hashes kept, disable and rotate at once."""

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from ctcp.core.db import Database
from ctcp.oauth.models import ApiClient
from tests.factories import (
    ApiClientCredentials,
    audit_events,
    bearer_http,
    make_org,
    make_user,
    new_client,
    oauth_http,
    request_token,
    sign_in,
)


@pytest.fixture
async def admin(app: FastAPI, database: Database) -> Any:
    user = await make_user(database, roles=("platform_admin",))
    async with new_client(app) as client:
        await sign_in(client, user.email)
        client.headers["X-Test-Admin"] = str(user.id)
        yield client


async def _create(admin: httpx.AsyncClient, organization_id: Any, **extra: Any) -> httpx.Response:
    body = {"organization_id": str(organization_id), "name": "UNODC case system"}
    body |= {"scopes": ["publications:read", "needs:read"]} | extra
    return await admin.post("/api/v1/api-clients", json=body)


async def test_a_client_is_created_with_a_secret_shown_once_and_kept_as_a_hash(
    admin: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    created = await _create(admin, entity.id)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["client_secret"].startswith("ctcp_cs_") and len(body["client_secret"]) >= 40
    assert body["scopes"] == ["needs:read", "publications:read"]
    assert body["organization"]["code"] == entity.code and body["active"] is True
    shown = await admin.get(f"/api/v1/api-clients/{body['id']}")
    assert shown.status_code == 200 and "client_secret" not in shown.json()
    listed = await admin.get("/api/v1/api-clients", params={"organization_id": str(entity.id)})
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert body["client_secret"] not in listed.text + shown.text
    async with database.sessionmaker() as session:
        stored = (
            await session.exec(select(ApiClient).where(ApiClient.id == uuid.UUID(body["id"])))
        ).one()
    assert stored.secret_hash == hashlib.sha256(body["client_secret"].encode()).hexdigest()
    assert body["client_secret"] not in stored.model_dump_json()
    events = await audit_events(database, action="api_client.create", object_id=body["id"])
    assert len(events) == 1 and events[0].actor_user_id is not None
    assert body["client_secret"] not in events[0].details
    credentials = ApiClientCredentials(body["id"], body["client_id"], body["client_secret"], entity)
    async with oauth_http(app) as http:
        assert (await request_token(http, credentials)).status_code == 200


async def test_an_organization_may_have_several_clients(
    admin: httpx.AsyncClient, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    first = (await _create(admin, entity.id)).json()
    second = (await _create(admin, entity.id, name="INTERPOL I-24/7 bridge")).json()
    assert first["client_id"] != second["client_id"]
    listed = await admin.get("/api/v1/api-clients", params={"organization_id": str(entity.id)})
    assert len(listed.json()["items"]) == 2


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"scopes": []}, 422),
        ({"scopes": ["admin"]}, 422),
        ({"scopes": ["publications:read", "audit:read"]}, 422),
        ({"name": ""}, 422),
        ({"unknown": 1}, 422),
    ],
    ids=["no-scope", "unknown-scope", "one-unknown-scope", "no-name", "unknown-field"],
)
async def test_bad_client_bodies_are_422(
    admin: httpx.AsyncClient, database: Database, change: dict[str, Any], status: int
) -> None:
    entity = await make_org(database, kind="compact_entity")
    assert (await _create(admin, entity.id, **change)).status_code == status


async def test_clients_belong_to_compact_entities_not_states(
    admin: httpx.AsyncClient, database: Database
) -> None:
    state = await make_org(database, kind="member_state")
    refused = await _create(admin, state.id)
    assert refused.status_code == 422
    assert (await _create(admin, "00000000-0000-0000-0000-000000000000")).status_code == 404


async def test_disabling_a_client_kills_its_tokens_and_its_secret_at_once(
    admin: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    body = (await _create(admin, entity.id)).json()
    credentials = ApiClientCredentials(body["id"], body["client_id"], body["client_secret"], entity)
    async with await bearer_http(app, credentials) as machine, oauth_http(app) as http:
        assert (await machine.get("/api/v1/publications")).status_code == 200
        disabled = await admin.delete(f"/api/v1/api-clients/{body['id']}")
        assert disabled.status_code == 204
        refused = await machine.get("/api/v1/publications")
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        again = await request_token(http, credentials)
        assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert (await admin.delete(f"/api/v1/api-clients/{body['id']}")).status_code == 204
    shown = (await admin.get(f"/api/v1/api-clients/{body['id']}")).json()
    assert shown["active"] is False and shown["disabled_at"] is not None
    inactive = await admin.get("/api/v1/api-clients", params={"active": "false"})
    assert body["id"] in [item["id"] for item in inactive.json()["items"]]
    events = await audit_events(database, action="api_client.disable", object_id=body["id"])
    assert len(events) == 1 and '"tokens_revoked": 1' in events[0].details
    assert (await admin.post(f"/api/v1/api-clients/{body['id']}/secret")).status_code == 409


async def test_rotating_the_secret_ends_the_old_one_and_its_tokens(
    admin: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    body = (await _create(admin, entity.id)).json()
    old = ApiClientCredentials(body["id"], body["client_id"], body["client_secret"], entity)
    async with await bearer_http(app, old) as machine, oauth_http(app) as http:
        assert (await machine.get("/api/v1/publications")).status_code == 200  # now cached
        rotated = await admin.post(f"/api/v1/api-clients/{body['id']}/secret")
        assert rotated.status_code == 200
        new_secret = rotated.json()["client_secret"]
        assert new_secret != old.secret and rotated.json()["client_id"] == old.client_id
        assert (await machine.get("/api/v1/publications")).status_code == 401
        assert (await request_token(http, old)).status_code == 401
        new = ApiClientCredentials(old.id, old.client_id, new_secret, entity)
        assert (await request_token(http, new)).status_code == 200
    events = await audit_events(database, action="api_client.rotate_secret", object_id=body["id"])
    assert len(events) == 1 and new_secret not in events[0].details


async def test_unknown_client_ids_are_404(admin: httpx.AsyncClient) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    assert (await admin.get(f"/api/v1/api-clients/{missing}")).status_code == 404
    assert (await admin.delete(f"/api/v1/api-clients/{missing}")).status_code == 404
    assert (await admin.post(f"/api/v1/api-clients/{missing}/secret")).status_code == 404
    assert (await admin.get("/api/v1/api-clients/not-a-uuid")).status_code == 422


async def test_reading_the_api_clients_is_audited(
    admin: httpx.AsyncClient, database: Database
) -> None:
    entity = await make_org(database, kind="compact_entity")
    created = (await _create(admin, entity.id)).json()
    listed = await admin.get("/api/v1/api-clients", params={"organization_id": str(entity.id)})
    assert listed.status_code == 200
    shown = await admin.get(f"/api/v1/api-clients/{created['id']}")
    assert shown.status_code == 200
    lists = [
        e
        for e in await audit_events(database, action="api_client.list")
        if created["id"] in e.details
    ]
    assert len(lists) == 1 and str(lists[0].actor_user_id) == admin.headers["X-Test-Admin"]
    reads = await audit_events(database, action="api_client.read", object_id=created["id"])
    assert len(reads) == 1 and reads[0].outcome == "allowed"
