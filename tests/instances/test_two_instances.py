"""Two instances, one database: what one changes, the other honours within a second.

A change goes through instance A; instance B, where the affected user or client is
already being served (its session cached), is polled every 50 ms until it refuses.
The delay from A's answer to B's first refusal is printed (`pytest -s` shows it); the
test fails if B still serves after one second. Throttling and rate limits are counted
on requests spread over both instances.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from ctcp.core.db import Database
from tests.factories import (
    PASSWORD,
    make_api_client,
    make_publication,
    make_user,
    request_token,
    sign_in,
)
from tests.instances.conftest import LOGIN_MAX_FAILURES, RATE_LIMIT_PER_CLIENT, Instances

pytestmark = pytest.mark.postgresql_only

POLL_SECONDS = 0.05
WITHIN_SECONDS = 1.0

OpenClient = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """`open_client(base)`: an HTTP client of one instance, closed after the test."""
    opened: list[httpx.AsyncClient] = []

    def open_one(base: str) -> httpx.AsyncClient:
        http = httpx.AsyncClient(base_url=base, timeout=10)
        opened.append(http)
        return http

    yield open_one
    for http in opened:
        await http.aclose()


async def _admin_on(database: Database, http: httpx.AsyncClient) -> httpx.AsyncClient:
    """A new platform administrator, signed in (with TOTP) through this client."""
    admin = await make_user(database, roles=("platform_admin",))
    await sign_in(http, admin.email)
    return http


async def _refused_after(
    http: httpx.AsyncClient, path: str, refusal: int, *, headers: dict[str, str] | None = None
) -> float:
    """Poll `path` every 50 ms until it answers `refusal`; the seconds that took."""
    started = time.perf_counter()
    polls = 0
    while True:
        response = await http.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        polls += 1
        if response.status_code == refusal:
            took = f"{elapsed * 1000:.1f} ms ({polls} polls)"
            print(f"\n  {refusal} from the other instance after {took}")
            return elapsed
        assert response.status_code == 200, response.text
        assert elapsed < WITHIN_SECONDS, f"still served {elapsed:.2f} s after the change"
        await asyncio.sleep(POLL_SECONDS)


async def _served(
    http: httpx.AsyncClient, path: str, *, headers: dict[str, str] | None = None
) -> None:
    """A few reads, so the instance has the session or token in hand (and cached)."""
    for _ in range(3):
        response = await http.get(path, headers=headers)
        assert response.status_code == 200, response.text


async def test_a_role_revoked_on_one_instance_is_refused_by_the_other(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    admin = await _admin_on(database, open_client(instances.a))
    analyst = await make_user(database, roles=("cted_analyst",))
    on_b = open_client(instances.b)
    await sign_in(on_b, analyst.email)
    await _served(on_b, "/api/v1/reports")

    revoked = await admin.put(f"/api/v1/users/{analyst.id}/roles", json={"roles": []})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["roles"] == []

    assert await _refused_after(on_b, "/api/v1/reports", 403) < WITHIN_SECONDS
    # The session itself lives on: the user is signed in, without the role.
    me = await on_b.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == []


async def _listener_of(database: Database, pid: int) -> int | None:
    """The database backend of an instance's LISTEN connection, if it has one."""
    async with database.sessionmaker() as session:
        found = await session.exec(  # type: ignore[call-overload]
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            params={"name": f"ctcp-listen-{pid}"},
        )
        backend: int | None = found.scalar()
        return backend


async def test_an_instance_that_lost_its_listen_connection_listens_again(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    """The database drops B's LISTEN connection (as a restart would): B listens again."""
    lost = await _listener_of(database, instances.pids[1])
    assert lost is not None
    async with database.sessionmaker() as session:
        await session.exec(  # type: ignore[call-overload]
            text("SELECT pg_terminate_backend(:pid)"), params={"pid": lost}
        )
    deadline = time.perf_counter() + 3
    while (again := await _listener_of(database, instances.pids[1])) in (None, lost):
        assert time.perf_counter() < deadline, "B did not listen again"
        await asyncio.sleep(POLL_SECONDS)
    assert again != lost

    admin = await _admin_on(database, open_client(instances.a))
    analyst = await make_user(database, roles=("cted_analyst",))
    on_b = open_client(instances.b)
    await sign_in(on_b, analyst.email)
    await _served(on_b, "/api/v1/reports")
    revoked = await admin.put(f"/api/v1/users/{analyst.id}/roles", json={"roles": []})
    assert revoked.status_code == 200, revoked.text
    assert await _refused_after(on_b, "/api/v1/reports", 403) < WITHIN_SECONDS


async def test_a_user_deactivated_on_one_instance_is_signed_out_of_the_other(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    admin = await _admin_on(database, open_client(instances.a))
    analyst = await make_user(database, roles=("cted_analyst",))
    on_b = open_client(instances.b)
    await sign_in(on_b, analyst.email)
    await _served(on_b, "/api/v1/reports")

    deactivated = await admin.patch(f"/api/v1/users/{analyst.id}", json={"active": False})
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False

    assert await _refused_after(on_b, "/api/v1/reports", 401) < WITHIN_SECONDS
    # Nor can they come back in through either instance.
    for base in (instances.a, instances.b):
        again = await open_client(base).post(
            "/api/v1/session", json={"email": analyst.email, "password": PASSWORD}
        )
        assert again.status_code == 401, again.text


async def test_an_api_client_disabled_on_one_instance_is_refused_by_the_other(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    admin = await _admin_on(database, open_client(instances.a))
    credentials = await make_api_client(database)
    on_b = open_client(instances.b)
    issued = await request_token(on_b, credentials)
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    await _served(on_b, "/api/v1/publications", headers=bearer)

    disabled = await admin.delete(f"/api/v1/api-clients/{credentials.id}")
    assert disabled.status_code == 204, disabled.text

    assert await _refused_after(on_b, "/api/v1/publications", 401, headers=bearer) < WITHIN_SECONDS
    refused = await on_b.get("/api/v1/publications", headers=bearer)
    assert refused.json()["error"] == "invalid_token"
    # Its secret no longer earns a token on either instance.
    for base in (instances.a, instances.b):
        token = await request_token(open_client(base), credentials)
        assert token.status_code in (400, 401), token.text


async def test_a_consent_withdrawn_on_one_instance_unpublishes_on_the_other(
    instances: Instances, database: Database, app: FastAPI, open_client: OpenClient
) -> None:
    published = await make_publication(app, database)
    await published.analyst.aclose()
    await published.officer.aclose()
    credentials = await make_api_client(database)
    on_b = open_client(instances.b)
    issued = await request_token(on_b, credentials)
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    path = f"/api/v1/publications/{published.publication_id}"
    await _served(on_b, path, headers=bearer)
    listed = await on_b.get(
        "/api/v1/publications", params={"state": published.state.code}, headers=bearer
    )
    assert [item["id"] for item in listed.json()["items"]] == [published.publication_id]

    focal_point = await make_user(database, org=published.state, roles=("state_focal_point",))
    on_a = open_client(instances.a)
    await sign_in(on_a, focal_point.email)
    withdrawn = await on_a.post(
        f"/api/v1/reports/{published.report_id}/consent/withdraw", json={"reason": "Cabinet"}
    )
    assert withdrawn.status_code == 201, withdrawn.text

    assert await _refused_after(on_b, path, 404, headers=bearer) < WITHIN_SECONDS
    listed = await on_b.get(
        "/api/v1/publications", params={"state": published.state.code}, headers=bearer
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


async def test_sign_in_failures_on_both_instances_lock_the_account_on_both(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    user = await make_user(database, roles=("state_focal_point",))
    a, b = open_client(instances.a), open_client(instances.b)
    wrong = {"email": user.email, "password": "Not-the-password-00"}
    # A, B, A, ...: no instance alone sees the limit reached.
    for attempt in range(LOGIN_MAX_FAILURES):
        failed = await (a if attempt % 2 == 0 else b).post("/api/v1/session", json=wrong)
        assert failed.status_code == 401, failed.text

    for http in (b, a):
        locked = await http.post("/api/v1/session", json=wrong)
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["Retry-After"]) > 0
        # The right password does not open the lock either.
        right = await http.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
        assert right.status_code == 429, right.text


async def test_an_api_clients_requests_on_both_instances_count_against_one_limit(
    instances: Instances, database: Database, open_client: OpenClient
) -> None:
    credentials = await make_api_client(database)
    a, b = open_client(instances.a), open_client(instances.b)
    issued = await request_token(a, credentials)  # the token request counts too
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}

    statuses = []
    for call in range(RATE_LIMIT_PER_CLIENT):
        response = await (b if call % 2 == 0 else a).get(
            "/api/v1/publications", params={"limit": 1}, headers=bearer
        )
        statuses.append(response.status_code)
    # 1 token request + 19 reads = the limit; the 20th read is refused, wherever it goes.
    assert statuses == [200] * (RATE_LIMIT_PER_CLIENT - 1) + [429]

    for http in (a, b):
        refused = await http.get("/api/v1/publications", params={"limit": 1}, headers=bearer)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["content-type"].startswith("application/problem+json")
