"""Reading the audit trail, for auditors: the filtered list, the export, the verification.

Apart from `service` (the chain itself): the guard and the checkpoints are built on that
module, and these reads are built on them. Every read here is itself audited.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import StreamingResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import checkpoints, service
from ctcp.audit.models import AuditEvent
from ctcp.audit.schemas import (
    AuditEventRead,
    CheckpointExport,
    CheckpointRead,
    PublicKeyRead,
    VerifyRead,
)
from ctcp.authz.guard import Access
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.core.pagination import Page, PageRequest, keyset, page_of

EXPORT_BATCH = 2000


@dataclass(frozen=True)
class AuditFilters:
    """The filters of docs/api.md "Audit", shared by the list, the export and the portal pages.

    Times without an offset are taken as UTC (the API speaks UTC).
    """

    actor: str | None = None  # a user id, or else a client id
    action: str | None = None
    outcome: service.Outcome | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))

    def apply(self, statement: SelectOfScalar[AuditEvent]) -> SelectOfScalar[AuditEvent]:
        if self.actor:
            try:
                statement = statement.where(col(AuditEvent.actor_user_id) == uuid.UUID(self.actor))
            except ValueError:
                statement = statement.where(col(AuditEvent.actor_client_id) == self.actor)
        if self.action:
            statement = statement.where(col(AuditEvent.action) == self.action)
        if self.outcome:
            statement = statement.where(col(AuditEvent.outcome) == self.outcome.value)
        if self.object_id:
            statement = statement.where(col(AuditEvent.object_id) == self.object_id)
        if self.since:
            statement = statement.where(col(AuditEvent.at) >= self.since)
        if self.until:
            statement = statement.where(col(AuditEvent.at) < self.until)
        return statement

    def used(self) -> dict[str, Any]:
        """The filters given, as the audit event of a read records them."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome.value if self.outcome else None,
            "object_id": self.object_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in values.items() if value is not None}


async def list_events(
    session: AsyncSession, access: Access, filters: AuditFilters, page: PageRequest
) -> Page[AuditEventRead]:
    """Newest first; audited as `audit.read` with the filters used."""
    statement = keyset(
        filters.apply(select(AuditEvent)),
        order=[col(AuditEvent.id)],
        descending=True,
        limit=page.limit,
        cursor=page.cursor,
    )
    rows = (await session.exec(statement)).all()
    service.record(
        session,
        access.audit,
        "audit.read",
        object_type="audit",
        details={"filters": filters.used()},
        read=True,
    )
    return page_of(rows, limit=page.limit, key=lambda event: [event.id], item=AuditEventRead.of)


async def _export_lines(database: Database, filters: AuditFilters) -> AsyncIterator[bytes]:
    """The matching events, oldest first, one JSON object per line, in batches."""
    after = 0
    while True:
        # A short read transaction per batch, closed before each chunk is sent: a
        # slow client never holds a transaction (or, on SQLite, a lock) open.
        async with database.read_sessionmaker() as own:
            statement = filters.apply(select(AuditEvent)).where(col(AuditEvent.id) > after)
            batch = (
                await own.exec(statement.order_by(col(AuditEvent.id)).limit(EXPORT_BATCH))
            ).all()
            chunk = b"".join(
                AuditEventRead.of(event).model_dump_json().encode() + b"\n" for event in batch
            )
        if not batch:
            return
        yield chunk
        after = batch[-1].id


def export_events(
    session: AsyncSession, database: Database, access: Access, filters: AuditFilters
) -> StreamingResponse:
    """Every matching event as a JSON Lines download, streamed in constant memory;
    audited as `audit.export` with the filters used."""
    service.record(
        session,
        access.audit,
        "audit.export",
        object_type="audit",
        details={"filters": filters.used()},
        read=True,
    )
    return StreamingResponse(
        _export_lines(database, filters),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-events.jsonl"'},
    )


async def verify(
    session: AsyncSession,
    database: Database,
    access: Access,
    settings: Settings,
    expected: checkpoints.ExpectedCheckpoint | None = None,
) -> VerifyRead:
    """The chain walked in a read transaction of its own and held against the signed
    checkpoints (and the one the auditor `expected`); audited as `audit.verify`."""
    async with database.read_sessionmaker() as own:
        result = await checkpoints.verify_audit_chain(own, settings, expected=expected)
    service.record(
        session,
        access.audit,
        "audit.verify",
        object_type="audit",
        details={
            "valid": result.valid,
            "checked": result.checked,
            "first_invalid_id": result.first_invalid_id,
            "checkpoint_status": result.checkpoint_status,
            "last_checkpoint_id": result.last_checkpoint_id,
            "expected_checkpoint": expected.position if expected else None,
        },
        read=True,
    )
    return VerifyRead(
        valid=result.valid,
        checked=result.checked,
        first_invalid_id=result.first_invalid_id,
        checkpoint_status=result.checkpoint_status,
        checkpoints=result.checkpoints,
        last_checkpoint_id=result.last_checkpoint_id,
        last_checkpoint_at=result.last_checkpoint_at,
        unprotected_events=result.unprotected_events,
        reason=result.reason,
    )


def export_checkpoints(
    session: AsyncSession, access: Access, settings: Settings
) -> CheckpointExport:
    """Every signed checkpoint in chain order, with the public keys that verify them;
    audited as `audit.checkpoints.export`."""
    keys = checkpoints.verifying_keys(settings)
    exported = CheckpointExport(
        public_keys=[
            PublicKeyRead(key_id=signer, public_key_pem=checkpoints.public_key_pem(key).decode())
            for signer, key in keys.items()
        ],
        items=[
            CheckpointRead.model_validate(checkpoint.as_json())
            for checkpoint in checkpoints.exported_checkpoints(settings.audit_checkpoints)
        ],
    )
    service.record(
        session,
        access.audit,
        "audit.checkpoints.export",
        object_type="audit",
        details={"checkpoints": len(exported.items)},
        read=True,
    )
    return exported
