"""Downloads check the bytes they stream against the file's sha256 and size: stored content
that is not the file's breaks the transfer off (logged and audited), never serves it."""

import hashlib
import logging
import secrets
import uuid

import httpx
import pytest
from fastapi import FastAPI

from ctcp.audit.service import AuditContext
from ctcp.core.db import Database
from ctcp.reports import attachments
from ctcp.reports.models import Attachment, AttachmentBlob, AttachmentChunk
from tests.factories import (
    audit_events,
    make_org,
    make_user,
    new_client,
    one_section_report,
    sign_in,
)

PDF = b"%PDF-1.7\n"


async def _analyst(app: FastAPI, database: Database) -> httpx.AsyncClient:
    client = new_client(app)
    await sign_in(client, (await make_user(database, roles=("cted_analyst",))).email)
    return client


async def _draft(analyst: httpx.AsyncClient, database: Database) -> uuid.UUID:
    state = await make_org(database)
    created = await analyst.post(
        "/api/v1/reports",
        json=one_section_report(state.code),
    )
    assert created.status_code == 201, created.text
    return uuid.UUID(created.json()["id"])


async def _stored(
    database: Database, report_id: uuid.UUID, content: bytes, stored: list[bytes]
) -> Attachment:
    """A file of `content` whose chunks hold `stored`: what reaches the database when its
    bytes were changed or lost after upload (inserted so, as the triggers refuse changes)."""
    sha256 = hashlib.sha256(content).hexdigest()
    async with database.transaction() as session:
        session.add(AttachmentBlob(sha256=sha256, size=len(content), media_type="application/pdf"))
        await session.flush()
        for sequence, data in enumerate(stored):
            session.add(AttachmentChunk(sha256=sha256, sequence=sequence, data=data))
        attachment = Attachment(
            report_id=report_id,
            filename="annex.pdf",
            media_type="application/pdf",
            size=len(content),
            sha256=sha256,
        )
        session.add(attachment)
    return attachment


def _pieces() -> tuple[bytes, list[bytes], list[bytes]]:
    """A three-chunk file, and the same chunks with one byte of the middle one changed."""
    pieces = [PDF + secrets.token_bytes(16), secrets.token_bytes(25), secrets.token_bytes(25)]
    tampered = [pieces[0], bytes([pieces[1][0] ^ 1]) + pieces[1][1:], pieces[2]]
    return b"".join(pieces), pieces, tampered


async def test_an_intact_file_streams_whole(app: FastAPI, database: Database) -> None:
    analyst = await _analyst(app, database)
    content, pieces, _ = _pieces()
    attachment = await _stored(database, await _draft(analyst, database), content, pieces)
    download = await analyst.get(f"/api/v1/attachments/{attachment.id}")
    assert download.status_code == 200 and download.content == content


async def test_a_tampered_chunk_breaks_the_download(
    app: FastAPI, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    analyst = await _analyst(app, database)
    content, _, tampered = _pieces()
    attachment = await _stored(database, await _draft(analyst, database), content, tampered)
    with (
        caplog.at_level(logging.ERROR, logger="ctcp.attachments"),
        pytest.raises(attachments.AttachmentIntegrityError),
    ):
        await analyst.get(f"/api/v1/attachments/{attachment.id}")
    assert any(str(attachment.id) in record.getMessage() for record in caplog.records)
    errors = await audit_events(database, object_id=str(attachment.id), action="attachment.read")
    assert [event.outcome for event in errors] == ["allowed", "error"]
    assert attachment.sha256 in str(errors[1].details)


@pytest.mark.parametrize("damage", ["tampered", "missing", "extra"])
async def test_the_last_chunk_is_held_back_until_the_file_is_checked(
    app: FastAPI, database: Database, damage: str
) -> None:
    analyst = await _analyst(app, database)
    content, pieces, tampered = _pieces()
    stored = {
        "tampered": tampered,
        "missing": pieces[:2],
        "extra": [*pieces, b"appended"],
    }[damage]
    attachment = await _stored(database, await _draft(analyst, database), content, stored)
    sent: list[bytes] = []
    with pytest.raises(attachments.AttachmentIntegrityError):
        async for chunk in attachments.verified_chunks(database, attachment, AuditContext()):
            sent.append(chunk)
    # Never the whole Content-Length: the client cannot take it for a complete file.
    assert len(b"".join(sent)) < len(content)
