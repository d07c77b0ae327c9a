"""Every error is an RFC 9457 problem; bad input is a clear 4xx and writes nothing."""

import base64
import json

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlmodel import func, select

from ctcp.audit.models import AuditEvent
from ctcp.core.db import Database
from tests.factories import audit_events

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/api/v1/no-such-thing"), 404)


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.put("/healthz"), 405)


async def _audit_count(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.exec(select(func.count()).select_from(AuditEvent))).one()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"email": "a@b.org", "password": ', "application/json"),  # malformed JSON
        (b'{"email": 42, "password": ["x"]}', "application/json"),  # wrong types
        # Sign-in only looks an address up (a malformed one is a 401), but an empty one
        # is no input at all.
        (b'{"email": "", "password": "something-long"}', "application/json"),
        (
            b'{"email": "a@un.org", "password": "long-enough-1", "admin": true}',
            "application/json",
        ),  # unknown field
        (b"[]", "application/json"),
        (b"email=a@un.org", "application/x-www-form-urlencoded"),
    ],
)
async def test_bad_input_is_a_422_with_errors_and_writes_nothing(
    client: httpx.AsyncClient, database: Database, body: bytes, content_type: str
) -> None:
    before = await _audit_count(database)
    response = await client.post(
        "/api/v1/session", content=body, headers={"content-type": content_type}
    )
    problem = _assert_problem(response, 422)
    errors = problem["errors"]
    assert isinstance(errors, list) and errors
    assert all(set(error) == {"loc", "msg"} for error in errors)
    assert "something-long" not in response.text  # input is never echoed back
    assert await _audit_count(database) == before


async def test_oversized_json_body_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"email": "a@un.org", "password": "' + b"x" * (1024 * 1024) + b'"}'
    _assert_problem(
        await client.post(
            "/api/v1/session", content=big, headers={"content-type": "application/json"}
        ),
        413,
    )


async def test_oversized_streamed_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post(
        "/api/v1/session", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_problem(response, 413)


async def test_unexpected_error_is_a_500_that_reveals_nothing(settings: object) -> None:
    from ctcp.app import create_app

    app: FastAPI = create_app(settings)  # type: ignore[arg-type]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM internals at /srv/ctcp/app.py line 12")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ctcp.test") as client,
    ):
        response = await client.get("/boom")
    body = _assert_problem(response, 500)
    assert "SELECT" not in response.text and "internals" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] == "An unexpected error occurred."
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    database = Database(settings.database_url)  # type: ignore[attr-defined]
    events = await audit_events(database, request_id=response.headers["X-Request-ID"])
    await database.dispose()
    assert [(e.outcome, e.action) for e in events] == [("error", "http.get")]
    assert '"error": "RuntimeError"' in events[0].details and "SELECT" not in events[0].details


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/public/publications?state=%00",
        "/api/v1/public/publications?cursor=a%00b",
        "/api/v1/public/publications/%00",
    ],
)
async def test_nul_in_a_query_or_path_is_422_never_a_database_error(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["msg"] == "NUL characters are not accepted."


def _cursor(*values: object) -> str:
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        # A timestamp without a zone, and one with no UTC instant: never made by the server.
        _cursor("2020-01-01T00:00:00", "6b1f7c2e-0d8a-4f43-9d55-0c1e3d4f5a6b"),
        _cursor("0001-01-01T00:00:00+14:00", "6b1f7c2e-0d8a-4f43-9d55-0c1e3d4f5a6b"),
        _cursor("2020-01-01T00:00:00+00:00", "not a uuid"),
        _cursor(12, None, 3),
        "%%%",
    ],
)
async def test_a_crafted_cursor_is_422_never_a_server_error(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get("/api/v1/public/publications", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


class _DriverError(Exception):
    """What a driver raises: asyncpg's errors carry `sqlstate`, sqlite3's `sqlite_errorname`."""

    def __init__(self, message: str, **attributes: str) -> None:
        super().__init__(message)
        self.__dict__.update(attributes)


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        # PostgreSQL starting up or shutting down: plain PostgresErrors, not OperationalErrors.
        (
            DBAPIError("SELECT 1", {}, _DriverError("starting", sqlstate="57P03")),
            503,
            "unavailable",
        ),
        (
            DBAPIError("SELECT 1", {}, _DriverError("shutdown", sqlstate="57P01")),
            503,
            "unavailable",
        ),
        (
            DBAPIError("SELECT 1", {}, _DriverError("too many", sqlstate="53300")),
            503,
            "unavailable",
        ),
        (
            DBAPIError("INSERT", {}, _DriverError("no space", sqlstate="53100")),
            507,
            "storage is full",
        ),
        (DBAPIError("INSERT", {}, _DriverError("read-only", sqlstate="25006")), 503, "read-only"),
        (
            OperationalError("INSERT", {}, _DriverError("full", sqlite_errorname="SQLITE_FULL")),
            507,
            "storage is full",
        ),
        (
            OperationalError("INSERT", {}, _DriverError("ro", sqlite_errorname="SQLITE_READONLY")),
            503,
            "read-only",
        ),
        (SQLAlchemyTimeoutError("QueuePool limit reached"), 503, "unavailable"),
        (TimeoutError("connect timed out"), 503, "unavailable"),
        # A statement the database refused for itself is the app's bug: a 500.
        (DBAPIError("SELEC 1", {}, _DriverError("syntax", sqlstate="42601")), 500, "unexpected"),
        # So is SQLite's (SQLITE_ERROR: no such table, a syntax error), never a 503.
        (
            OperationalError(
                "SELEC 1", {}, _DriverError("no table", sqlite_errorname="SQLITE_ERROR")
            ),
            500,
            "unexpected",
        ),
    ],
)
async def test_database_faults_are_problems_that_say_what_and_reveal_nothing(
    settings: object, error: Exception, status: int, words: str
) -> None:
    from ctcp.app import create_app

    app: FastAPI = create_app(settings)  # type: ignore[arg-type]

    @app.get("/api/v1/fault")
    async def fault() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ctcp.test") as client,
    ):
        response = await client.get("/api/v1/fault")
    body = _assert_problem(response, status)
    assert words in str(body["detail"])
    assert all(word not in response.text for word in ("SELECT", "INSERT", "QueuePool", "57P"))
    if status == 503:
        assert response.headers["Retry-After"]
