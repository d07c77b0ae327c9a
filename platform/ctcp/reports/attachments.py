"""Attachments: streamed upload, type from content, stored once, downloads that follow consent."""

import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

import filetype
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.core.db import Database
from ctcp.core.errors import ConflictError, NotFoundError, PayloadTooLargeError, ValidationError
from ctcp.reports.models import (
    Attachment,
    AttachmentBlob,
    AttachmentChunk,
    ReportSection,
    ReportStatus,
    VisitReport,
)

CHUNK_BYTES = 1024 * 1024
logger = logging.getLogger("ctcp.attachments")
# Each accepted type and the file-name extensions it is stored under (the first by default).
EXTENSIONS = {
    "application/pdf": ("pdf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
    "application/vnd.oasis.opendocument.text": ("odt",),
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg"),
}
ALLOWED_MEDIA_TYPES = frozenset(EXTENSIONS)


def safe_filename(name: str | None) -> str:
    """The file name without any path, control or separator characters, at most 200 long."""
    base = re.split(r"[\\\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*')
    base = base.strip(" .")
    return base[:200] or "attachment"


def named_for_type(name: str, media_type: str) -> str:
    """The name ending with an extension of the detected type: a PDF sent as `x.html`
    is stored as `x.pdf`, so no reader's system opens it as something else."""
    stem, dot, extension = name.rpartition(".")
    allowed = EXTENSIONS[media_type]
    if dot and extension.lower() in allowed:
        return name
    base = stem if dot and stem else name
    return f"{base[: 200 - len(allowed[0]) - 1]}.{allowed[0]}"


async def store(
    session: AsyncSession,
    access: Access,
    report: VisitReport,
    section_id: uuid.UUID | None,
    upload: BinaryIO,
    filename: str | None,
    max_bytes: int,
) -> Attachment:
    """Attach an uploaded file (already spooled to disk by the server) to a report.

    Two passes over the file in 1 MiB chunks: measure, hash and sniff the type; then,
    only if this content is new, store it. An adopted version is immutable, files
    included: 409, amend it (a publication must never gain a file its consent did not see).
    """
    if report.status != ReportStatus.DRAFT.value:
        audit.record(
            session,
            access.audit,
            "attachment.create",
            outcome=audit.Outcome.DENIED,
            object_type="report",
            object_id=report.id,
            details={"reason": "adopted report", "version": report.version},
        )
        raise ConflictError("An adopted report accepts no new attachment: amend it.")
    if section_id is not None:
        found = await session.exec(
            select(ReportSection.id).where(
                col(ReportSection.id) == section_id, col(ReportSection.report_id) == report.id
            )
        )
        if found.first() is None:
            raise ValidationError(
                "The section does not belong to this report.", loc=["body", "section_id"]
            )
    digest, size, head = hashlib.sha256(), 0, b""
    upload.seek(0)
    while chunk := upload.read(CHUNK_BYTES):
        if not head:
            head = chunk[:8192]
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"Attachments are limited to {max_bytes} bytes.")
        digest.update(chunk)
    kind = filetype.guess(head) if head else None
    if kind is None or kind.mime not in ALLOWED_MEDIA_TYPES:
        raise ValidationError(
            "Only PDF, DOCX, XLSX, ODT, PNG and JPEG files are accepted.", loc=["body", "file"]
        )
    sha256 = digest.hexdigest()
    known = await session.get(AttachmentBlob, sha256) is not None
    if not known:
        session.add(AttachmentBlob(sha256=sha256, size=size, media_type=kind.mime))
        await session.flush()
        upload.seek(0)
        sequence = 0
        while chunk := upload.read(CHUNK_BYTES):
            session.add(AttachmentChunk(sha256=sha256, sequence=sequence, data=chunk))
            await session.flush()
            session.expunge_all()  # keep no chunk in the session's memory
            sequence += 1
    attachment = Attachment(
        report_id=report.id,
        section_id=section_id,
        filename=named_for_type(safe_filename(filename), kind.mime),
        media_type=kind.mime,
        size=size,
        sha256=sha256,
        uploaded_by=access.subject.user_id,
    )
    session.add(attachment)
    await session.flush()
    audit.record(
        session,
        access.audit,
        "attachment.create",
        object_type="attachment",
        object_id=attachment.id,
        details={
            "report": str(report.id),
            "sha256": sha256,
            "size": size,
            "media_type": kind.mime,
            "stored": not known,
        },
    )
    return attachment


class AttachmentIntegrityError(Exception):
    """The stored bytes are not the file's (tampered or damaged): never served."""


async def by_id(session: AsyncSession, attachment_id: uuid.UUID) -> Attachment:
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFoundError("No such attachment.")
    return attachment


async def chunks(database: Database, sha256: str) -> AsyncIterator[bytes]:
    """The stored bytes, one chunk per short read transaction."""
    sequence = 0
    while True:
        async with database.read_sessionmaker() as session:
            chunk = (
                await session.exec(
                    select(AttachmentChunk.data).where(
                        col(AttachmentChunk.sha256) == sha256,
                        col(AttachmentChunk.sequence) == sequence,
                    )
                )
            ).first()
        if chunk is None:
            return
        yield chunk
        sequence += 1


async def verified_chunks(
    database: Database, attachment: Attachment, context: audit.AuditContext
) -> AsyncIterator[bytes]:
    """The attachment's bytes, checked against its sha256 and size while they stream.

    Each chunk is held back until the next is read, and the last until the whole file
    has been checked: on a mismatch the transfer breaks off short of its Content-Length
    (logged and audited as an error), so no client ever takes a wrong file for the right one.
    """
    digest, size, held = hashlib.sha256(), 0, b""
    async for chunk in chunks(database, attachment.sha256):
        digest.update(chunk)
        size += len(chunk)
        if size > attachment.size:
            break
        if held:
            yield held
        held = chunk
    if size != attachment.size or digest.hexdigest() != attachment.sha256:
        await _refuse_corrupt(database, attachment, context, size)
    if held:
        yield held


async def _refuse_corrupt(
    database: Database, attachment: Attachment, context: audit.AuditContext, size: int
) -> None:
    logger.error(
        "attachment %s: stored content does not match sha256 %s and size %d (read %d bytes)",
        attachment.id,
        attachment.sha256,
        attachment.size,
        size,
    )
    try:
        async with database.transaction() as session:
            audit.record(
                session,
                context,
                "attachment.read",
                outcome=audit.Outcome.ERROR,
                object_type="attachment",
                object_id=attachment.id,
                details={"reason": "content does not match", "sha256": attachment.sha256},
            )
    except Exception:  # the transfer is refused all the same
        logger.exception("could not record the corrupt attachment in the audit log")
    raise AttachmentIntegrityError(f"attachment {attachment.id}: stored content does not match")
