"""The migration that fixes files into publications gives existing ones exactly what their
consent covered when they were published: never a file uploaded after."""

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ctcp.consent.models import ConsentEvent, Publication, PublicationSection
from ctcp.core import migrations
from ctcp.core.db import Database
from ctcp.organizations.models import Organization
from ctcp.reports.models import Attachment, AttachmentBlob, ReportSection, VisitReport
from tests.conftest import _pg_admin_url, _pg_execute

BEFORE = "9b1f3c2d7e41"  # the revision before publication_attachments
BACKFILL = "c7a2e5f14b90"


@pytest.fixture
def old_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new database migrated to the revision before the backfill, dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrations.upgrade(url, BEFORE)
        yield url
        return
    admin = _pg_admin_url()
    name = f"ctcp_backfill_{secrets.token_hex(4)}"
    asyncio.run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url, BEFORE)
        yield url
    finally:
        asyncio.run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _published_report(url: str, scope: str) -> dict[str, uuid.UUID]:
    """A report of two sections, published under partial consent of the first (or full
    consent), with a file on each section and one on the whole report, each uploaded
    before and after publication."""
    published_at = datetime(2026, 6, 1, tzinfo=UTC)
    ids: dict[str, uuid.UUID] = {}
    database = Database(url)
    try:
        async with database.transaction() as session:
            state = Organization(code="XBF", kind="member_state", name_en="Backfill")
            session.add(state)
            await session.flush()
            report = VisitReport(
                lineage_id=uuid.uuid4(),
                state_id=state.id,
                kind="focused",
                title="Visit",
                language="en",
                visit_start_date=published_at.date(),
                visit_end_date=published_at.date(),
                status="adopted",
            )
            session.add(report)
            await session.flush()
            consented, other = (
                ReportSection(report_id=report.id, area=area, title=area, body=area, position=n)
                for n, area in enumerate(("legislation", "law_enforcement"))
            )
            session.add_all([consented, other])
            await session.flush()
            event = ConsentEvent(
                report_id=report.id,
                sequence=1,
                scope=scope,
                section_ids=[str(consented.id)] if scope == "partial" else [],
                audience="compact",
                reference="NV/1",
                on_behalf_of=state.id,
                recorded_at=published_at,
                effective_at=published_at,
            )
            session.add(event)
            await session.flush()
            publication = Publication(
                report_id=report.id,
                consent_event_id=event.id,
                state_id=state.id,
                audience="compact",
                title="Visit",
                published_at=published_at,
            )
            session.add(publication)
            await session.flush()
            session.add_all(
                PublicationSection(
                    publication_id=publication.id,
                    section_id=section.id,
                    area=section.area,
                    title=section.title,
                    body=section.body,
                )
                for section in ((consented,) if scope == "partial" else (consented, other))
            )
            session.add(AttachmentBlob(sha256="b" * 64, size=1, media_type="application/pdf"))
            await session.flush()
            for when, moment in (("before", -1), ("after", 1)):
                for where, section in (
                    ("consented", consented.id),
                    ("other", other.id),
                    ("whole", None),
                ):
                    attachment = Attachment(
                        report_id=report.id,
                        section_id=section,
                        filename=f"{where}-{when}.pdf",
                        media_type="application/pdf",
                        size=1,
                        sha256="b" * 64,
                        uploaded_at=published_at + timedelta(days=moment),
                    )
                    session.add(attachment)
                    await session.flush()
                    ids[f"{where} {when}"] = attachment.id
            ids["publication"] = publication.id
    finally:
        await database.dispose()
    return ids


async def _carried(url: str) -> set[tuple[uuid.UUID, uuid.UUID]]:
    database = Database(url)
    try:
        async with database.read_sessionmaker() as session:
            rows = await session.exec(
                text(  # type: ignore[call-overload]
                    "SELECT publication_id, attachment_id FROM publication_attachments"
                )
            )
            return {(uuid.UUID(str(p)), uuid.UUID(str(a))) for p, a in rows.all()}
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("scope", "files"),
    [
        # One section: its file from before publication; not the other section's, not the
        # report's own (full consent only), nothing uploaded later.
        ("partial", {"consented before"}),
        ("full", {"consented before", "other before", "whole before"}),
    ],
)
def test_backfill_carries_only_what_consent_covered_when_published(
    old_database_url: str, scope: str, files: set[str]
) -> None:
    ids = asyncio.run(_published_report(old_database_url, scope))
    migrations.upgrade(old_database_url, BACKFILL)
    carried = asyncio.run(_carried(old_database_url))
    assert carried == {(ids["publication"], ids[name]) for name in files}
    migrations.upgrade(old_database_url)  # and on to head
