"""Failed sign-ins are counted per account in the database, across instances."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.factories import PASSWORD, attempt_sign_in, audit_events, make_user, new_client

WRONG = {"password": "definitely-not-it-99"}


@pytest.fixture
async def second_instance(settings: Settings) -> AsyncIterator[FastAPI]:
    """Another app with its own engine and pool on the same database: a second instance."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other


async def test_five_failures_lock_the_account_even_for_the_right_password(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(5):
        assert await attempt_sign_in(app, user.email, WRONG["password"]) == 401
    async with new_client(app) as client:
        response = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"] == "application/problem+json"
    events = await audit_events(database, object_id=str(user.id), action="session.create")
    assert events[-1].outcome == "denied" and '"reason": "locked"' in events[-1].details


async def test_lock_lifts_after_retry_after_and_back_off_grows(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(5):
        await attempt_sign_in(app, user.email, WRONG["password"])
    async with new_client(app) as client:
        first = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
    first_wait = int(first.headers["Retry-After"])
    clock.advance(timedelta(seconds=first_wait + 1))
    for _ in range(5):
        assert await attempt_sign_in(app, user.email, WRONG["password"]) == 401
    async with new_client(app) as client:
        second = await client.post(
            "/api/v1/session", json={"email": user.email, "password": PASSWORD}
        )
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > first_wait
    clock.advance(timedelta(seconds=int(second.headers["Retry-After"]) + 1))
    assert await attempt_sign_in(app, user.email, PASSWORD) == 200


async def test_failures_older_than_15_minutes_do_not_count(
    app: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(4):
        await attempt_sign_in(app, user.email, WRONG["password"])
    clock.advance(timedelta(minutes=16))
    for _ in range(4):
        assert await attempt_sign_in(app, user.email, WRONG["password"]) == 401
    assert await attempt_sign_in(app, user.email, PASSWORD) == 200


async def test_success_resets_the_count(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    for _ in range(4):
        await attempt_sign_in(app, user.email, WRONG["password"])
    assert await attempt_sign_in(app, user.email, PASSWORD) == 200
    for _ in range(4):
        assert await attempt_sign_in(app, user.email, WRONG["password"]) == 401
    assert await attempt_sign_in(app, user.email, PASSWORD) == 200


async def test_unknown_email_is_locked_the_same_way(app: FastAPI) -> None:
    email = "nobody-at-all@ctcp.example"
    statuses = [await attempt_sign_in(app, email, "whatever-password") for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_throttle_holds_across_two_app_instances(
    app: FastAPI, second_instance: FastAPI, database: Database
) -> None:
    user = await make_user(database)
    for instance in (app, second_instance, app, second_instance, app):
        assert await attempt_sign_in(instance, user.email, WRONG["password"]) == 401
    assert await attempt_sign_in(second_instance, user.email, PASSWORD) == 429
    assert await attempt_sign_in(app, user.email, PASSWORD) == 429
