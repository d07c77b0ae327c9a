"""Regressions found in review: each test failed before its fix."""

import asyncio
import base64
import json

import pytest
from fastapi import FastAPI

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.core.db import Database
from tests.factories import (
    PASSWORD,
    PRODUCTION_ARGON2,
    another_instance,
    attempt_sign_in,
    audit_events,
    make_org,
    make_user,
    new_client,
    sign_in,
)


async def test_a_burst_of_parallel_guesses_gets_no_more_checks_than_the_limit(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    guesses = [f"wrong-guess-{n:03d}-x" for n in range(30)]
    # At the production cost, so the checks overlap as long as they do in a deployment.
    async with another_instance(app, **PRODUCTION_ARGON2) as deployed:
        statuses = await asyncio.gather(
            *[attempt_sign_in(deployed, user.email, guess) for guess in guesses],
            attempt_sign_in(deployed, user.email, PASSWORD),
        )
    assert set(statuses) <= {200, 401, 429}
    assert statuses.count(401) <= 5  # at most five passwords were actually checked
    checked = [
        e
        for e in await audit_events(database, object_id=str(user.id), action="session.create")
        if '"reason": "bad_password"' in e.details
    ]
    assert len(checked) <= 5


async def test_verify_is_not_fooled_by_events_written_while_it_runs(
    fresh_database_url: str,
) -> None:
    database = Database(fresh_database_url)
    async with database.transaction() as session:
        for n in range(50):
            audit.record(session, AuditContext(), f"test.seed.{n}")

    async def writer() -> None:
        for n in range(40):
            async with database.transaction() as session:
                audit.record(session, AuditContext(), f"test.concurrent.{n}")

    async def verifier() -> list[bool]:
        results = []
        for _ in range(15):
            async with database.read_sessionmaker() as session:
                results.append((await audit.verify_chain(session)).valid)
        return results

    _, results = await asyncio.gather(writer(), verifier())
    assert all(results)
    await database.dispose()


async def test_a_long_read_leaves_writers_free(database: Database) -> None:
    async with database.read_sessionmaker() as reader:
        await audit.verify_chain(reader)  # a read transaction is now open
        async with asyncio.timeout(5):
            async with database.transaction() as session:
                audit.record(session, AuditContext(), "test.write.during.read")


async def test_an_overlong_path_parameter_is_still_a_403_and_audited(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    async with new_client(app) as client:
        await sign_in(client, user.email)
        response = await client.get("/api/v1/users/" + "x" * 80)
    assert response.status_code == 403
    denials = await audit_events(database, actor_user_id=user.id, outcome="denied")
    assert denials and denials[-1].object_id == "x" * 64


async def test_password_change_guesses_are_throttled(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        for n in range(5):
            response = await client.post(
                "/api/v1/me/password",
                json={
                    "current_password": f"not-it-{n}-xxxxxx",
                    "new_password": "Fresh-orbit-88-abc",
                },
            )
            assert response.status_code == 403
        locked = await client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "Fresh-orbit-88-abc"},
        )
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0


async def test_a_foreign_origin_refusal_is_audited(app: FastAPI, database: Database) -> None:
    async with new_client(app) as client:
        response = await client.post(
            "/api/v1/session",
            json={"email": "a@un.org", "password": "x" * 12},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    events = await audit_events(database, request_id=response.headers["X-Request-ID"])
    assert [e.action for e in events] == ["http.origin"]
    assert json.loads(events[0].details)["origin"] == "https://evil.example"


async def test_non_ascii_csrf_token_is_a_403_not_a_500(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        response = await client.delete("/api/v1/session", headers={"X-CSRF-Token": "é".encode()})
        assert response.status_code == 403


async def test_full_width_digits_are_not_a_code(app: FastAPI, database: Database) -> None:
    user = await make_user(database, mfa=True)
    async with new_client(app) as client:
        response = await client.post(
            "/api/v1/session",
            json={
                "email": user.email,
                "password": PASSWORD,
                "otp": "\uff11\uff12\uff13\uff14\uff15\uff16",
            },
        )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-01-01T00:00:00"},  # no offset: taken as UTC
        {"until": "2099-01-01T00:00:00"},
    ],
)
async def test_audit_filters_accept_times_without_offset(
    app: FastAPI, database: Database, query: dict[str, str]
) -> None:
    auditor = await make_user(database, roles=("auditor",))
    async with new_client(app) as client:
        await sign_in(client, auditor.email)
        assert (await client.get("/api/v1/audit-events", params=query)).status_code == 200
        export = await client.get("/api/v1/audit-events/export", params=query | {"action": "none"})
        assert export.status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        for raw in (b"[1e999]", b"[1000000000000000000000000000000]", b"[-1e400]")
    ],
)
async def test_absurd_cursors_are_a_422(app: FastAPI, database: Database, cursor: str) -> None:
    auditor = await make_user(database, roles=("auditor",))
    async with new_client(app) as client:
        await sign_in(client, auditor.email)
        response = await client.get("/api/v1/audit-events", params={"cursor": cursor})
        assert response.status_code == 422


async def test_two_creations_of_one_email_at_once_give_201_and_409(
    app: FastAPI, database: Database
) -> None:
    admin = await make_user(database, roles=("platform_admin",))
    org = await make_org(database)
    async with new_client(app) as first, new_client(app) as second:
        await sign_in(first, admin.email)
        await sign_in(second, admin.email)
        body = {
            "email": "twin-race@ctcp.example",
            "name": "Twin",
            "organization_id": str(org.id),
            "password": "Lantern-orbit-meadow-71",
        }
        responses = await asyncio.gather(
            first.post("/api/v1/users", json=body), second.post("/api/v1/users", json=body)
        )
    assert sorted(r.status_code for r in responses) == [201, 409]
    assert all(
        r.headers["content-type"] == "application/problem+json"
        for r in responses
        if r.status_code == 409
    )


async def test_list_and_consent_reads_are_audited(app: FastAPI, database: Database) -> None:
    analyst = await make_user(database, roles=("cted_analyst",))
    admin = await make_user(database, roles=("platform_admin",))
    state = await make_org(database)
    async with new_client(app) as client:
        await sign_in(client, analyst.email)
        report = (
            await client.post(
                "/api/v1/reports",
                json={
                    "state": state.code,
                    "title": "Visit",
                    "kind": "focused",
                    "visit_start": "2026-01-05",
                    "visit_end": "2026-01-06",
                    "sections": [{"area": "legislation", "title": "L", "body": "B"}],
                },
            )
        ).json()
        await client.get("/api/v1/reports", params={"state": state.code})
        await client.get(f"/api/v1/reports/{report['id']}/consent")
    async with new_client(app) as client:
        await sign_in(client, admin.email)
        await client.get("/api/v1/users", params={"q": "nobody-matches-this"})
    listed = await audit_events(database, actor_user_id=analyst.id, action="report.list")
    assert listed and report["id"] in listed[-1].details
    consent_reads = await audit_events(database, object_id=report["id"], action="consent.read")
    assert len(consent_reads) == 1
    assert await audit_events(database, actor_user_id=admin.id, action="user.list")
