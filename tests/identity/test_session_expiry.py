"""Idle timeout and absolute lifetime, with a controllable clock."""

from datetime import timedelta

from fastapi import FastAPI

from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.factories import make_user, new_client, sign_in


async def test_idle_session_expires_after_30_minutes(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        clock.advance(timedelta(minutes=29))
        assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(timedelta(minutes=29))  # activity above kept it alive
        assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(timedelta(minutes=31))
        response = await client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["session_expired"] is True


async def test_session_ends_after_12_hours_even_when_active(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, user.email)
        for _ in range(24):
            clock.advance(timedelta(minutes=29))
            assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(timedelta(minutes=25))  # 12 h 01 min since sign-in
        assert (await client.get("/api/v1/me")).status_code == 401
