"""Attachment storage full or read-only: a clear answer, and nothing half-written.

Attachments live in the database (1 MiB chunks), so "the disk is full" is the database
refusing to grow: SQLite's SQLITE_FULL (made here with `PRAGMA max_page_count`), or
PostgreSQL's disk_full (53100). The answer is 507 Insufficient Storage; a read-only
database (a replica promoted late, `default_transaction_read_only`, SQLite's
`query_only`) answers 503 with a Retry-After. Either way the upload's blob, chunks,
attachment row and audit event are all absent, the chain verifies, and once the space
or the write access is back the same upload succeeds and downloads byte for byte.
"""

import os
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from ctcp.app import create_app
from ctcp.audit.models import AuditEvent
from ctcp.audit.service import WRITER_KEY, verify_chain
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.reports.models import Attachment, AttachmentBlob, AttachmentChunk, VisitReport
from tests.conftest import _pg_execute
from tests.factories import make_org, make_user, new_client, sign_in

PDF = b"%PDF-1.7\n" + os.urandom(2 * 1024 * 1024 + 1000)  # three chunks
_FAULT_STATEMENTS: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()
INTERNALS = ("sqlite", "postgres", "asyncpg", "sqlalchemy", "INSERT", "Traceback", "disk I/O")


@pytest.fixture
async def fresh_app(fresh_database_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    """The app on a database of this test's own (it is about to be damaged)."""
    application = create_app(settings.model_copy(update={"database_url": fresh_database_url}))
    async with application.router.lifespan_context(application):
        yield application


def _engines(app: FastAPI) -> list[AsyncEngine]:
    """Every engine the app writes through: the requests' and the audit group writer's."""
    database: Database = app.state.database
    writer = database.sessionmaker.kw["info"][WRITER_KEY]
    return [database.engine, writer.engine]


async def _on_every_connection(app: FastAPI, statement: str | None) -> None:
    """Run `statement` on each connection the app opens from now on (None: stop)."""
    for engine in _engines(app):
        target = engine.sync_engine
        if target not in _FAULT_STATEMENTS:

            def hook(dbapi_connection: Any, _record: Any, target: Engine = target) -> None:
                if _FAULT_STATEMENTS.get(target):
                    cursor = dbapi_connection.cursor()
                    cursor.execute(_FAULT_STATEMENTS[target])
                    cursor.close()

            event.listen(target, "connect", hook)
        _FAULT_STATEMENTS[target] = statement or ""
        await engine.dispose()  # the pooled connections predate the change


@dataclass
class World:
    analyst: httpx.AsyncClient
    state: str
    report_id: str
    database: Database


@pytest.fixture
async def world(fresh_app: FastAPI, fresh_database_url: str) -> AsyncIterator[World]:
    """An analyst signed in, and one draft report of theirs to attach files to."""
    database = Database(fresh_database_url)
    state = await make_org(database)
    analyst = new_client(fresh_app)
    await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
    created = await analyst.post("/api/v1/reports", json=_report(state.code, "Findings."))
    assert created.status_code == 201, created.text
    yield World(analyst, state.code, created.json()["id"], database)
    await analyst.aclose()
    await database.dispose()


def _report(state: str, body: str) -> dict[str, Any]:
    return {
        "state": state,
        "title": "Storage",
        "kind": "focused",
        "visit_start": "2026-07-01",
        "visit_end": "2026-07-02",
        "sections": [
            {"area": area, "title": area, "body": body}
            for area in ("legislation", "law_enforcement", "border_management", "human_rights")
        ],
    }


async def _upload(client: httpx.AsyncClient, report_id: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/reports/{report_id}/attachments", files={"file": ("annex.pdf", PDF)}
    )


def _assert_problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and words in body["detail"]
    assert all(word.lower() not in response.text.lower() for word in INTERNALS), response.text


async def _assert_nothing_stored(database: Database, reports_before: int) -> None:
    async with database.read_sessionmaker() as session:
        for table in (Attachment, AttachmentBlob, AttachmentChunk):
            count = (await session.exec(select(func.count()).select_from(table))).one()
            assert count == 0, table.__tablename__
        assert (await session.exec(select(func.count()).select_from(VisitReport))).one() == (
            reports_before
        )
        actions = (
            await session.exec(
                select(AuditEvent.action).where(
                    AuditEvent.action.in_(("attachment.create", "report.create"))  # type: ignore[attr-defined]
                )
            )
        ).all()
        assert actions == ["report.create"] * reports_before
        assert (await verify_chain(session)).valid


async def _assert_upload_works_again(client: httpx.AsyncClient, report_id: str) -> None:
    uploaded = await _upload(client, report_id)
    assert uploaded.status_code == 201, uploaded.text
    download = await client.get(f"/api/v1/attachments/{uploaded.json()['id']}")
    assert download.status_code == 200 and download.content == PDF


@pytest.mark.sqlite_only
async def test_full_disk_refuses_upload_with_507_and_stores_nothing(
    fresh_app: FastAPI, world: World
) -> None:
    async with world.database.read_sessionmaker() as session:
        pages = (await session.exec(text("PRAGMA page_count"))).one()[0]  # type: ignore[call-overload]
    # Room for sign-ins and audit events, not for a 2 MiB file or a 400 kB report.
    await _on_every_connection(fresh_app, f"PRAGMA max_page_count = {pages + 48}")
    try:
        _assert_problem(await _upload(world.analyst, world.report_id), 507, "storage is full")
        big = await world.analyst.post("/api/v1/reports", json=_report(world.state, "x" * 100_000))
        _assert_problem(big, 507, "storage is full")
        await _assert_nothing_stored(world.database, reports_before=1)
        # Small changes still fit.
        small = await world.analyst.post("/api/v1/reports", json=_report(world.state, "Short."))
        assert small.status_code == 201, small.text
    finally:
        await _on_every_connection(fresh_app, None)
    await _assert_upload_works_again(world.analyst, world.report_id)


async def test_read_only_database_refuses_upload_with_503_and_stores_nothing(
    fresh_app: FastAPI, world: World, fresh_database_url: str, backend: str
) -> None:
    name = make_url(fresh_database_url).database
    # Altered from another database: this one refuses even to be made writable again.
    admin = make_url(fresh_database_url).set(database="postgres").render_as_string(False)
    if backend == "postgresql":
        await _pg_execute(admin, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await _on_every_connection(fresh_app, None)
    else:
        await _on_every_connection(fresh_app, "PRAGMA query_only = 1")
    try:
        response = await _upload(world.analyst, world.report_id)
        _assert_problem(response, 503, "read-only")
        assert response.headers["Retry-After"]
        # Even a read writes its audit event: refused the same way, never a 500.
        read = await world.analyst.get(f"/api/v1/reports/{world.report_id}")
        _assert_problem(read, 503, "read-only")
        await _assert_nothing_stored(world.database, reports_before=1)
    finally:
        if backend == "postgresql":
            await _pg_execute(admin, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await _on_every_connection(fresh_app, None)
    await _assert_upload_works_again(world.analyst, world.report_id)
