"""Cookie-authenticated unsafe requests need the CSRF token; foreign origins are refused."""

from fastapi import FastAPI

from ctcp.core.db import Database
from tests.factories import audit_events, make_user, new_client, sign_in


async def test_unsafe_request_without_csrf_token_is_403(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        del client.headers["X-CSRF-Token"]
        response = await client.delete("/api/v1/session")
        assert response.status_code == 403
        assert (await client.get("/api/v1/me")).status_code == 200  # still signed in
    denials = await audit_events(database, actor_user_id=user.id, outcome="denied")
    assert any('"reason": "csrf"' in event.details for event in denials)


async def test_unsafe_request_with_wrong_csrf_token_is_403(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        client.headers["X-CSRF-Token"] = "forged-token"
        assert (await client.post("/api/v1/me/mfa")).status_code == 403


async def test_csrf_token_of_another_session_is_refused(app: FastAPI, database: Database) -> None:
    alice, bob = await make_user(database), await make_user(database)
    async with new_client(app) as a, new_client(app) as b:
        await sign_in(a, alice.email)
        bob_session = await sign_in(b, bob.email)
        a.headers["X-CSRF-Token"] = bob_session.csrf
        assert (await a.delete("/api/v1/session")).status_code == 403


async def test_foreign_origin_is_refused_even_with_the_token(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        response = await client.delete(
            "/api/v1/session", headers={"Origin": "https://evil.example"}
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        same_origin = await client.delete("/api/v1/session", headers={"Origin": "http://ctcp.test"})
        assert same_origin.status_code == 204


async def test_sign_in_from_a_foreign_origin_is_refused(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        response = await client.post(
            "/api/v1/session",
            json={"email": user.email, "password": "whatever-it-is"},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
