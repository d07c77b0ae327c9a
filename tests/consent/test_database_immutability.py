"""The database keeps what a State consented to as it was: publications change only by being
revoked, their sections and files and the stored bytes never, needs-sharing history only grows."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from ctcp.consent.models import NeedsSharingEvent, Publication
from ctcp.core.clock import clock
from ctcp.core.db import Database
from tests.factories import decide, make_org, make_user, new_client, sign_in, unique

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass(frozen=True)
class Consented:
    """An adopted report with a file in a section, fully consented, and a needs-sharing
    decision of its State; each row findable by a value unique to this test."""

    tag: str
    report_id: str
    sha256: str
    officer: httpx.AsyncClient

    @property
    def title(self) -> str:
        return f"Visit {self.tag}"

    @property
    def body(self) -> str:
        return f"Findings {self.tag}"

    @property
    def filename(self) -> str:
        return f"{self.tag}.png"


async def _signed_in(app: FastAPI, database: Database, role: str) -> httpx.AsyncClient:
    client = new_client(app)
    await sign_in(client, (await make_user(database, roles=(role,))).email)
    return client


@pytest.fixture
async def consented(app: FastAPI, database: Database) -> Consented:
    state, tag = await make_org(database), unique("IMM")
    analyst = await _signed_in(app, database, "cted_analyst")
    officer = await _signed_in(app, database, "consent_officer")
    created = await analyst.post(
        "/api/v1/reports",
        json={
            "state": state.code,
            "title": f"Visit {tag}",
            "kind": "focused",
            "visit_start": "2026-05-04",
            "visit_end": "2026-05-06",
            "sections": [{"area": "legislation", "title": "Law", "body": f"Findings {tag}"}],
        },
    )
    assert created.status_code == 201, created.text
    report = created.json()
    content = PNG + secrets.token_bytes(16)  # content of its own: no other test shares the blob
    uploaded = await analyst.post(
        f"/api/v1/reports/{report['id']}/attachments",
        files={"file": (f"{tag}.png", content)},
        data={"section_id": report["sections"][0]["id"]},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert (await analyst.post(f"/api/v1/reports/{report['id']}/adopt")).status_code == 200
    consent = await decide(
        officer,
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "full", "audience": "compact", "reference": "NV/2026/9"},
    )
    assert consent.status_code == 201, consent.text
    async with database.transaction() as session:  # inserting stays allowed
        session.add(
            NeedsSharingEvent(state_id=state.id, sequence=1, share_needs=True, reference=tag)
        )
    return Consented(tag, report["id"], hashlib.sha256(content).hexdigest(), officer)


async def _execute(database: Database, statement: str) -> None:
    async with database.transaction() as session:
        await session.exec(text(statement))  # type: ignore[call-overload]


async def _publication(database: Database, title: str) -> Publication:
    async with database.read_sessionmaker() as session:
        statement = select(Publication).where(col(Publication.title) == title)
        return (await session.exec(statement)).one()


def _new_bytes(backend: str) -> str:
    return "decode('00', 'hex')" if backend == "postgresql" else "X'00'"


REFUSED = [
    "UPDATE publications SET audience = 'public' WHERE title = '{title}'",
    "UPDATE publications SET expires_at = NULL WHERE title = '{title}'",
    # Revoking while changing anything else is no revocation.
    "UPDATE publications SET revoked_at = published_at, audience = 'public' "
    "WHERE title = '{title}'",
    # ... a nullable column included: NULL compared with a value is no match for `=`.
    "UPDATE publications SET revoked_at = published_at, expires_at = published_at "
    "WHERE title = '{title}'",
    "DELETE FROM publications WHERE title = '{title}'",
    "UPDATE publication_sections SET body = 'forged' WHERE body = '{body}'",
    "DELETE FROM publication_sections WHERE body = '{body}'",
    "UPDATE publication_attachments SET sha256 = 'forged' WHERE filename = '{filename}'",
    "DELETE FROM publication_attachments WHERE filename = '{filename}'",
    "UPDATE attachment_blobs SET size = 1 WHERE sha256 = '{sha256}'",
    "DELETE FROM attachment_blobs WHERE sha256 = '{sha256}'",
    "UPDATE attachment_chunks SET data = {new_bytes} WHERE sha256 = '{sha256}'",
    "DELETE FROM attachment_chunks WHERE sha256 = '{sha256}'",
    "UPDATE needs_sharing_events SET share_needs = NOT share_needs WHERE reference = '{tag}'",
    "DELETE FROM needs_sharing_events WHERE reference = '{tag}'",
]


@pytest.mark.parametrize("statement", REFUSED)
async def test_database_refuses_rewriting_what_was_consented(
    consented: Consented, database: Database, backend: str, statement: str
) -> None:
    sql = statement.format(
        title=consented.title,
        body=consented.body,
        filename=consented.filename,
        sha256=consented.sha256,
        tag=consented.tag,
        new_bytes=_new_bytes(backend),
    )
    with pytest.raises(DBAPIError, match="append-only"):
        await _execute(database, sql)
    publication = await _publication(database, consented.title)
    assert publication.audience == "compact" and publication.revoked_at is None


async def test_a_revoked_publication_stays_revoked(
    consented: Consented, database: Database
) -> None:
    withdrawn = await consented.officer.post(
        f"/api/v1/reports/{consented.report_id}/consent/withdraw", json={"reason": "Cabinet"}
    )
    assert withdrawn.status_code == 201, withdrawn.text
    revoked_at = (await _publication(database, consented.title)).revoked_at
    assert revoked_at is not None
    for statement in (
        "UPDATE publications SET revoked_at = NULL WHERE title = '{title}'",
        "UPDATE publications SET revoked_at = published_at WHERE title = '{title}'",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await _execute(database, statement.format(title=consented.title))
    assert (await _publication(database, consented.title)).revoked_at == revoked_at


async def test_revoking_a_publication_is_allowed(consented: Consented, database: Database) -> None:
    """The one change a publication takes: the statement consent's `_apply` runs."""
    now = clock.now()
    async with database.transaction() as session:
        await session.exec(
            update(Publication)
            .where(col(Publication.title) == consented.title, col(Publication.revoked_at).is_(None))
            .values(revoked_at=now)
        )
    assert (await _publication(database, consented.title)).revoked_at == now


@pytest.mark.parametrize(
    "table",
    [
        "publications",
        "publication_sections",
        "publication_attachments",
        "attachment_blobs",
        "attachment_chunks",
        "needs_sharing_events",
        "consent_events",
    ],
)
async def test_postgresql_refuses_truncate(
    consented: Consented, database: Database, backend: str, table: str
) -> None:
    if backend != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    with pytest.raises(DBAPIError, match="append-only"):
        await _execute(database, f"TRUNCATE {table} CASCADE")
    assert (await _publication(database, consented.title)).id is not None
    # A cascade fires the other tables' triggers too: the table's own must exist.
    async with database.read_sessionmaker() as session:
        own = await session.exec(
            text(  # type: ignore[call-overload]
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = :table AND (t.tgtype & 32) <> 0 AND NOT t.tgisinternal"
            ).bindparams(table=table)
        )
        assert own.one()[0] == 1, f"{table} has no TRUNCATE trigger of its own"


async def test_needs_sharing_history_still_grows(consented: Consented, database: Database) -> None:
    async with database.transaction() as session:
        first = (
            await session.exec(
                select(NeedsSharingEvent).where(col(NeedsSharingEvent.reference) == consented.tag)
            )
        ).one()
        session.add(
            NeedsSharingEvent(id=uuid.uuid4(), state_id=first.state_id, sequence=2, withdrawal=True)
        )
    async with database.read_sessionmaker() as session:
        history = (
            await session.exec(
                select(NeedsSharingEvent.sequence).where(
                    col(NeedsSharingEvent.state_id) == first.state_id
                )
            )
        ).all()
    assert sorted(history) == [1, 2]
