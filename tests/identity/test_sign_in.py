"""Signing in and out, the session cookie, /me, password change."""

import secrets

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from ctcp.core.db import Database
from ctcp.identity.models import UserSession
from tests.factories import PASSWORD, audit_events, make_org, make_user, new_client, sign_in
from tests.web.conftest import csrf_in


async def test_sign_in_returns_user_and_csrf_token_and_sets_hardened_cookie(
    client: httpx.AsyncClient, database: Database
) -> None:
    org = await make_org(database, kind="member_state")
    user = await make_user(database, org=org, roles=("state_focal_point",))
    response = await client.post(
        "/api/v1/session", json={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == user.email
    assert body["user"]["organization"] == {
        "id": str(org.id),
        "code": org.code,
        "kind": "member_state",
        "name": org.name_en,
    }
    assert body["user"]["roles"] == ["state_focal_point"]
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


async def test_email_is_case_insensitive(client: httpx.AsyncClient, database: Database) -> None:
    user = await make_user(database)
    await sign_in(client, user.email.upper())


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    wrong = await client.post(
        "/api/v1/session", json={"email": user.email, "password": "not the password!"}
    )
    unknown = await client.post(
        "/api/v1/session", json={"email": "nobody-here@ctcp.example", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


async def test_sign_in_looks_an_address_up_without_validating_it(
    app: FastAPI, database: Database
) -> None:
    """An account on a reserved .test domain (which email-validator's default rules deem
    undeliverable: sign-in answered 422 for an account create-admin had made) signs in,
    by the API and by the portal."""
    user = await make_user(database, email=f"admin-{secrets.token_hex(4)}@probe.test")
    async with new_client(app) as client:
        await sign_in(client, user.email.upper())
    async with new_client(app) as browser:
        page = await browser.get("/portal/sign-in")
        form = {"csrf_token": csrf_in(page.text), "email": user.email, "password": PASSWORD}
        response = await browser.post("/portal/sign-in", data=form | {"otp": "", "next": "/portal"})
    assert response.status_code == 303, response.text


@pytest.mark.parametrize("email", ["not an address", "nobody@probe.test", "@", "x" * 254])
async def test_a_malformed_or_unknown_address_is_a_wrong_password(
    app: FastAPI, client: httpx.AsyncClient, database: Database, email: str
) -> None:
    user = await make_user(database)
    wrong = await client.post(
        "/api/v1/session", json={"email": user.email, "password": "not the password!"}
    )
    refused = await client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json()
    events = await audit_events(database, action="session.create")
    assert '"reason": "unknown_email"' in events[-1].details
    async with new_client(app) as browser:
        page = await browser.get("/portal/sign-in")
        form = {"csrf_token": csrf_in(page.text), "email": email, "password": PASSWORD}
        portal = await browser.post("/portal/sign-in", data=form | {"otp": "", "next": "/portal"})
    assert portal.status_code == 401
    assert "The e-mail address or the password is not correct." in portal.text


async def test_sign_in_refuses_a_missing_or_overlong_address_as_a_bad_request(
    client: httpx.AsyncClient,
) -> None:
    for email in ("", "x" * 255):
        response = await client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize(
    ("email", "status"),
    [
        ("new-{}@probe.test", 201),
        ("new-{}@localhost", 422),
        ("new-{}@host.invalid", 422),
        ("New-{}@Gov.Example", 201),
    ],
)
async def test_the_api_creates_accounts_under_the_rule_create_admin_follows(
    app: FastAPI, database: Database, email: str, status: int
) -> None:
    """The users API refuses what `ctcp create-admin` refuses (tests/test_cli.py): syntax
    only, the reserved .test and .example domains accepted, .invalid or a bare host not."""
    admin = await make_user(database, roles=("platform_admin",))
    org = await make_org(database)
    address = email.format(secrets.token_hex(4))
    async with new_client(app) as client:
        await sign_in(client, admin.email)
        response = await client.post(
            "/api/v1/users",
            json={
                "email": address,
                "name": "New user",
                "organization_id": str(org.id),
                "password": "Lantern-orbit-meadow-71",
            },
        )
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["email"] == address.lower()
    else:
        [error] = response.json()["errors"]
        assert error["loc"] == ["body", "email"]
        assert error["msg"].startswith("value is not a valid email address: ")


async def test_sign_in_success_and_failure_are_audited(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    await client.post("/api/v1/session", json={"email": user.email, "password": "wrong-one-123"})
    await sign_in(client, user.email)
    events = await audit_events(database, object_id=str(user.id), action="session.create")
    assert [e.outcome for e in events] == ["denied", "allowed"]
    assert '"reason": "bad_password"' in events[0].details
    assert events[1].actor_user_id == user.id


async def test_me_requires_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["status"] == 401


async def test_me_describes_the_signed_in_user(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    await sign_in(client, user.email)
    response = await client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)
    assert set(response.json()) >= {"id", "email", "name", "organization", "roles"}


async def test_sign_out_kills_the_session_server_side(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        stolen_cookie = dict(client.cookies)
        assert (await client.delete("/api/v1/session")).status_code == 204
    async with new_client(app) as replay:
        replay.cookies.update(stolen_cookie)
        assert (await replay.get("/api/v1/me")).status_code == 401
    async with database.sessionmaker() as session:
        rows = (await session.exec(select(UserSession).where(UserSession.user_id == user.id))).all()
    assert rows == []


async def test_each_sign_in_gets_a_new_session_id_and_ends_the_previous(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        first = dict(client.cookies)
        await sign_in(client, user.email)
        second = dict(client.cookies)
    assert first != second
    async with new_client(app) as old:
        old.cookies.update(first)
        assert (await old.get("/api/v1/me")).status_code == 401
    async with new_client(app) as new:
        new.cookies.update(second)
        assert (await new.get("/api/v1/me")).status_code == 200


async def test_session_id_is_stored_only_as_a_hash(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        token = next(iter(client.cookies.values()))
    async with database.sessionmaker() as session:
        stored = (
            await session.exec(select(UserSession.token_hash).where(UserSession.user_id == user.id))
        ).all()
    assert len(token) >= 43  # 256 bits, url-safe base64
    assert stored and token not in stored


async def test_password_change_ends_every_other_session(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as laptop, new_client(app) as phone:
        await sign_in(laptop, user.email)
        await sign_in(phone, user.email)
        response = await laptop.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "An-entirely-new-passphrase-7"},
        )
        assert response.status_code == 200
        laptop.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        assert (await laptop.get("/api/v1/me")).status_code == 200
        assert (await phone.get("/api/v1/me")).status_code == 401
    async with new_client(app) as client:
        await sign_in(client, user.email, "An-entirely-new-passphrase-7")


async def test_password_change_needs_the_current_password(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        response = await client.post(
            "/api/v1/me/password",
            json={"current_password": "not-my-password", "new_password": "An-entirely-new-pass-7"},
        )
        assert response.status_code == 403
        weak = await client.post(
            "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"}
        )
        assert weak.status_code == 422


async def test_deactivation_ends_sessions_at_once(app: FastAPI, database: Database) -> None:
    from ctcp.audit.service import AuditContext
    from ctcp.identity import service

    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        async with database.transaction() as session:
            stored = await session.get(type(user), user.id)
            assert stored is not None
            await service.set_active(session, user=stored, active=False, context=AuditContext())
        assert (await client.get("/api/v1/me")).status_code == 401
        again = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
        assert again.status_code == 401
