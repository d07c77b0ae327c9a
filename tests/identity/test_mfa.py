"""TOTP enrolment, sign-in with a code, replay refusal, recovery codes, the enrolment gate."""

from datetime import timedelta

import pyotp
from fastapi import FastAPI

from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.identity.models import User
from tests.factories import PASSWORD, audit_events, make_user, new_client, sign_in


def _code(secret: str, offset: timedelta = timedelta(0)) -> str:
    return pyotp.TOTP(secret).at(clock.now() + offset)


async def _enrol(app: FastAPI, user: User) -> tuple[str, list[str]]:
    async with new_client(app) as client:
        await sign_in(client, user.email)
        started = await client.post("/api/v1/me/mfa")
        assert started.status_code == 201
        secret = started.json()["secret"]
        assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
        confirmed = await client.post("/api/v1/me/mfa/confirm", json={"otp": _code(secret)})
        assert confirmed.status_code == 200, confirmed.text
        return secret, confirmed.json()["recovery_codes"]


async def test_enrolment_then_sign_in_needs_a_code(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    secret, codes = await _enrol(app, user)
    assert len(codes) == 10 and len(set(codes)) == 10
    async with new_client(app) as client:
        without = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
        assert without.status_code == 401
        assert without.json()["mfa_required"] is True
        wrong = await client.post(
            "/api/v1/session",
            json={
                "email": user.email,
                "password": PASSWORD,
                "otp": "000000" if _code(secret) != "000000" else "111111",
            },
        )
        assert wrong.status_code == 401 and wrong.json()["mfa_required"] is True
        clock.advance(timedelta(seconds=30))
        await sign_in(client, user.email, otp=_code(secret))
        assert (await client.get("/api/v1/me")).json()["mfa_enabled"] is True


async def test_a_code_is_accepted_once_only(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    secret, _ = await _enrol(app, user)
    clock.advance(timedelta(seconds=60))
    code = _code(secret)
    async with new_client(app) as client:
        await sign_in(client, user.email, otp=code)
    async with new_client(app) as attacker:
        replay = await attacker.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD, "otp": code}
        )
        assert replay.status_code == 401
    events = await audit_events(database, object_id=str(user.id), action="session.create")
    assert '"reason": "otp_invalid"' in events[-1].details


async def test_recovery_code_stands_in_once(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    _, codes = await _enrol(app, user)
    async with new_client(app) as client:
        await sign_in(client, user.email, otp=codes[3].upper())
    async with new_client(app) as client:
        again = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD, "otp": codes[3]}
        )
        assert again.status_code == 401
        await sign_in(client, user.email, otp=codes[4])


async def test_confirm_with_a_wrong_code_is_refused_and_counted(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        secret = (await client.post("/api/v1/me/mfa")).json()["secret"]
        bad = "123456" if _code(secret) != "123456" else "654321"
        response = await client.post("/api/v1/me/mfa/confirm", json={"otp": bad})
        assert response.status_code == 422
        assert (await client.get("/api/v1/me")).json()["mfa_enabled"] is False
    denied = await audit_events(database, object_id=str(user.id), action="mfa.enrol.confirm")
    assert [e.outcome for e in denied] == ["denied"]
    for _ in range(4):  # the failed code above was the first of five
        async with new_client(app) as client:
            await client.post(
                "/api/v1/session", json={"email": user.email, "password": "wrong-password-1"}
            )
    async with new_client(app) as client:
        locked = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
        assert locked.status_code == 429


async def test_confirm_without_enrolment_is_404_and_double_enrolment_409(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        assert (
            await client.post("/api/v1/me/mfa/confirm", json={"otp": "123456"})
        ).status_code == 404
    secret, _ = await _enrol(app, user)
    clock.advance(timedelta(seconds=30))
    async with new_client(app) as client:
        await sign_in(client, user.email, otp=_code(secret))
        assert (await client.post("/api/v1/me/mfa")).status_code == 409


async def test_confirming_ends_the_users_other_sessions(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as other:
        await sign_in(other, user.email)
        await _enrol(app, user)
        assert (await other.get("/api/v1/me")).status_code == 401


async def test_role_requiring_mfa_can_do_nothing_but_enrol(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database, roles=("platform_admin",), mfa=False)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        assert (await client.get("/api/v1/me")).status_code == 200
        blocked = await client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "Another-long-passphrase-9"},
        )
        assert blocked.status_code == 403
        assert blocked.json()["mfa_enrollment_required"] is True
        secret = (await client.post("/api/v1/me/mfa")).json()["secret"]
        confirmed = await client.post("/api/v1/me/mfa/confirm", json={"otp": _code(secret)})
        assert confirmed.status_code == 200
        # Confirming completed the second factor for this very session.
        allowed = await client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "Another-long-passphrase-9"},
        )
        assert allowed.status_code == 200
        assert (
            await client.delete(
                "/api/v1/session", headers={"X-CSRF-Token": allowed.json()["csrf_token"]}
            )
        ).status_code == 204


async def test_mfa_required_roles_come_from_settings(settings: object, database: Database) -> None:
    from ctcp.app import create_app

    relaxed = create_app(settings.model_copy(update={"mfa_required_roles": frozenset()}))  # type: ignore[attr-defined]
    user = await make_user(database, roles=("platform_admin",), mfa=False)
    async with relaxed.router.lifespan_context(relaxed), new_client(relaxed) as client:
        await sign_in(client, user.email)
        response = await client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "Another-long-passphrase-9"},
        )
        assert response.status_code == 200
