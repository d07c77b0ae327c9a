"""The audit trail for auditors: filtered list, streamed export, chain verification."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ctcp.audit import checkpoints, service, trail
from ctcp.audit.schemas import AuditEventRead, CheckpointExport, VerifyRead
from ctcp.audit.trail import AuditFilters
from ctcp.authz.guard import Access, guard
from ctcp.core.config import SettingsDep
from ctcp.core.db import DatabaseDep, SessionDep
from ctcp.core.errors import ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])
CanRead = Annotated[Access, guard("audit", "read")]
CanExport = Annotated[Access, guard("audit", "export")]
CanVerify = Annotated[Access, guard("audit", "verify")]


async def audit_filters(
    actor: Annotated[str | None, Query(max_length=64, description="user id or client id")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[service.Outcome | None, Query()] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> AuditFilters:
    # An async function, not the class itself: FastAPI runs sync dependencies in a thread.
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
    return await trail.list_events(session, access, filters, PageRequest(limit, cursor))


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
    return trail.export_events(session, database, access, filters)


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
    return await trail.verify(session, database, access, settings, expected)


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
    return trail.export_checkpoints(session, access, settings)
