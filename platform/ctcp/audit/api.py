"""The audit trail for auditors: filtered list, streamed export, chain verification."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlmodel import col, select
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
from ctcp.authz.guard import Access, guard
from ctcp.core.config import Settings
from ctcp.core.db import DatabaseDep, SessionDep
from ctcp.core.errors import ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.schemas import problem_responses
from ctcp.identity.dependencies import SettingsDep

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])
CanRead = Annotated[Access, guard("audit", "read")]
CanExport = Annotated[Access, guard("audit", "export")]
CanVerify = Annotated[Access, guard("audit", "verify")]
EXPORT_BATCH = 2000


class AuditFilters:
    """The query filters of API.md, shared by the list, the export and the portal pages."""

    def __init__(
        self,
        *,
        actor: str | None,
        action: str | None,
        outcome: service.Outcome | None,
        object_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> None:
        self.values = {
            "actor": actor,
            "action": action,
            "outcome": outcome.value if outcome else None,
            "object_id": object_id,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
        self.actor, self.action, self.outcome = actor, action, outcome
        self.object_id, self.since, self.until = object_id, since, until

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
        return {key: value for key, value in self.values.items() if value is not None}


async def audit_filters(
    actor: Annotated[str | None, Query(max_length=64, description="user id or client id")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[service.Outcome | None, Query()] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> AuditFilters:
    # An async function, not the class itself: FastAPI runs sync dependencies in a thread.
    # Times without an offset are taken as UTC (the API speaks UTC).
    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
    return AuditFilters(
        actor=actor, action=action, outcome=outcome, object_id=object_id, since=since, until=until
    )


Filters = Annotated[AuditFilters, Depends(audit_filters)]


@router.get(
    "",
    response_model=Page[AuditEventRead],
    summary="List audit events",
    responses=problem_responses(401, 403, 422),
)
async def list_events(
    session: SessionDep,
    access: CanRead,
    filters: Filters,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AuditEventRead]:
    """Newest first; filter by actor, action, outcome, object and time."""
    statement = keyset(
        filters.apply(select(AuditEvent)),
        order=[col(AuditEvent.id)],
        descending=True,
        limit=limit,
        cursor=cursor,
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
    return page_of(rows, limit=limit, key=lambda event: [event.id], item=AuditEventRead.of)


@router.get(
    "/export",
    summary="Export audit events as JSON Lines (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **problem_responses(401, 403, 422)},
)
async def export_events(
    session: SessionDep, database: DatabaseDep, access: CanExport, filters: Filters
) -> StreamingResponse:
    """Every matching event, oldest first, one JSON object per line, in constant memory."""
    service.record(
        session,
        access.audit,
        "audit.export",
        object_type="audit",
        details={"filters": filters.used()},
        read=True,
    )

    async def lines() -> AsyncIterator[bytes]:
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

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-events.jsonl"'},
    )


@router.get(
    "/verify",
    response_model=VerifyRead,
    summary="Verify the audit chain",
    responses=problem_responses(401, 403, 422),
)
async def verify(
    session: SessionDep,
    database: DatabaseDep,
    access: CanVerify,
    settings: SettingsDep,
    expect_position: Annotated[
        int | None,
        Query(ge=1, description="event of the newest checkpoint the auditor exported earlier"),
    ] = None,
    expect_hash: Annotated[
        str | None, Query(pattern="^[0-9a-f]{64}$", description="that checkpoint's hash")
    ] = None,
) -> VerifyRead:
    """Recompute every hash and link, and hold the chain against the signed checkpoints:
    valid, how many checked, the first bad event, and how far the checkpoints vouch."""
    if (expect_position is None) != (expect_hash is None):
        raise ValidationError("give both expect_position and expect_hash, or neither")
    expected = (
        checkpoints.ExpectedCheckpoint(position=expect_position, hash=expect_hash)
        if expect_position is not None and expect_hash is not None
        else None
    )
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
            "expected_checkpoint": expect_position,
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


@router.get(
    "/checkpoints",
    response_model=CheckpointExport,
    summary="Export the signed checkpoints of the audit chain",
    responses=problem_responses(401, 403),
)
async def export_checkpoints(
    session: SessionDep, access: CanExport, settings: SettingsDep
) -> CheckpointExport:
    """Every signed checkpoint in chain order, with the public keys that verify them."""
    exported = _checkpoint_export(settings)
    service.record(
        session,
        access.audit,
        "audit.checkpoints.export",
        object_type="audit",
        details={"checkpoints": len(exported.items)},
        read=True,
    )
    return exported


def _checkpoint_export(settings: Settings) -> CheckpointExport:
    keys = checkpoints.verifying_keys(settings)
    return CheckpointExport(
        public_keys=[
            PublicKeyRead(key_id=signer, public_key_pem=checkpoints.public_key_pem(key).decode())
            for signer, key in keys.items()
        ],
        items=[
            CheckpointRead.model_validate(checkpoint.as_json())
            for checkpoint in checkpoints.exported_checkpoints(settings.audit_checkpoints)
        ],
    )
