"""Consent (consent officers; a State's focal points may only narrow or withdraw) and
publications (consented sections only, for the audience consented to)."""

import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.authz.guard import Access, granted, guard
from ctcp.consent import needs_sharing, service
from ctcp.consent.models import Publication, PublicationSection
from ctcp.consent.schemas import (
    ConsentDecision,
    ConsentRead,
    ConsentState,
    NeedsSharingDecision,
    NeedsSharingRead,
    NeedsSharingState,
    PublicationRead,
    Withdrawal,
)
from ctcp.core.clock import clock
from ctcp.core.db import DatabaseDep, SessionDep
from ctcp.core.errors import NotFoundError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.routes import PUBLIC
from ctcp.core.schemas import problem_responses
from ctcp.organizations.models import Organization
from ctcp.reports import attachments
from ctcp.reports.models import ThematicArea

router = APIRouter(prefix="/api/v1", tags=["consent and publications"])
CanReadConsent = Annotated[Access, guard("consent", "read")]
CanNarrow = Annotated[Access, guard("consent", "narrow")]
CanReadPublications = Annotated[Access, guard("publication", "read")]


@router.get(
    "/reports/{report_id}/consent",
    response_model=ConsentState,
    summary="Current consent and its history",
    responses=problem_responses(401, 403, 404),
)
async def get_consent(
    report_id: uuid.UUID, session: SessionDep, access: CanReadConsent
) -> ConsentState:
    report = await service.consent_report(session, access, report_id)
    events = await service.history(session, report.id)
    current = service.current_of(events, clock.now())
    audit.record(
        session, access.audit, "consent.read", object_type="report", object_id=report.id, read=True
    )
    return ConsentState(
        current=service.as_read(current) if current else None,
        history=[service.as_read(e) for e in events],
    )


@router.post(
    "/reports/{report_id}/consent",
    response_model=ConsentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record a consent decision",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_consent(
    report_id: uuid.UUID,
    body: ConsentDecision,
    request: Request,
    session: SessionDep,
    access: CanNarrow,
) -> ConsentRead:
    """Consent officers record any decision; a State's focal point only a narrower one.
    With `after_sequence`, a decision recorded meanwhile makes this one a 409."""
    may_broaden = granted(request, access, "consent", "broaden") is not None
    event = await service.record(session, access, report_id, body, may_broaden=may_broaden)
    return service.as_read(event)


@router.post(
    "/reports/{report_id}/consent/withdraw",
    response_model=ConsentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Withdraw consent",
    responses=problem_responses(401, 403, 404, 422),
)
async def withdraw_consent(
    report_id: uuid.UUID, body: Withdrawal, session: SessionDep, access: CanNarrow
) -> ConsentRead:
    """Takes effect at once: every publication of the report is revoked in this request.
    Never refused because another decision came first: nothing is narrower."""
    return service.as_read(await service.withdraw(session, access, report_id, body.reason))


StateCode = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_]{1,31}$")]


@router.get(
    "/states/{state_code}/needs-consent",
    response_model=NeedsSharingState,
    summary="Whether a State shares its needs, and the history",
    responses=problem_responses(401, 403, 404),
)
async def get_needs_sharing(
    state_code: StateCode, session: SessionDep, access: CanReadConsent
) -> NeedsSharingState:
    """For needs that come from no report; a report's own consent decides for its needs."""
    state = await needs_sharing.sharing_state(session, access, state_code)
    events = await needs_sharing.history(session, state.id)
    current = service.current_of(events, clock.now())
    audit.record(
        session,
        access.audit,
        "needs_sharing.read",
        object_type="organization",
        object_id=state.id,
        read=True,
    )
    return NeedsSharingState(
        state=state.code,
        current=needs_sharing.as_read(current) if current else None,
        history=[needs_sharing.as_read(e) for e in events],
    )


@router.post(
    "/states/{state_code}/needs-consent",
    response_model=NeedsSharingRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record whether a State shares its needs",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_needs_sharing(
    state_code: StateCode,
    body: NeedsSharingDecision,
    request: Request,
    session: SessionDep,
    access: CanNarrow,
) -> NeedsSharingRead:
    """Consent officers start sharing (with the State's reference); the State may stop it.
    With `after_sequence`, a decision recorded meanwhile makes this one a 409."""
    state = await needs_sharing.sharing_state(session, access, state_code)
    may_broaden = granted(request, access, "consent", "broaden") is not None
    event = await needs_sharing.record(session, access, state, body, may_broaden=may_broaden)
    return needs_sharing.as_read(event)


@router.post(
    "/states/{state_code}/needs-consent/withdraw",
    response_model=NeedsSharingRead,
    status_code=status.HTTP_201_CREATED,
    summary="Stop sharing a State's needs",
    responses=problem_responses(401, 403, 404, 422),
)
async def withdraw_needs_sharing(
    state_code: StateCode, body: Withdrawal, session: SessionDep, access: CanNarrow
) -> NeedsSharingRead:
    """Takes effect at once: the State's needs from no report disappear from the Compact's view."""
    state = await needs_sharing.sharing_state(session, access, state_code)
    return needs_sharing.as_read(await needs_sharing.withdraw(session, access, state, body.reason))


async def _page(
    session: AsyncSession,
    statement: SelectOfScalar[Publication],
    state: str | None,
    limit: int,
    cursor: str | None,
    *,
    area: ThematicArea | None = None,
    year: int | None = None,
) -> Page[PublicationRead]:
    query = statement
    if state is not None:
        query = query.join(
            Organization,
            col(Organization.id) == col(Publication.state_id),
        ).where(col(Organization.code) == state.upper())
    if area is not None:
        query = query.where(
            col(Publication.id).in_(
                select(PublicationSection.publication_id).where(
                    col(PublicationSection.area) == area.value
                )
            )
        )
    if year is not None:
        start = datetime(year, 1, 1, tzinfo=UTC)
        query = query.where(
            col(Publication.published_at) >= start,
            col(Publication.published_at) < start.replace(year=year + 1),
        )
    order = [col(Publication.published_at), col(Publication.id)]
    rows = (
        await session.exec(
            keyset(
                query,
                order=order,
                descending=True,
                limit=limit,
                cursor=cursor,
            )
        )
    ).all()
    page = page_of(rows, limit=limit, key=lambda p: [p.published_at, p.id], item=lambda p: p)
    return Page[PublicationRead](
        items=await service.read_model(session, page.items), next_cursor=page.next_cursor
    )


@router.get(
    "/publications",
    response_model=Page[PublicationRead],
    summary="Publications the caller may read",
    responses=problem_responses(401, 403, 422),
)
async def list_publications(
    session: SessionDep,
    access: CanReadPublications,
    state: Annotated[str | None, Query(max_length=32)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    area: Annotated[ThematicArea | None, Query()] = None,
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
) -> Page[PublicationRead]:
    """Newest first; filter by State, by thematic area (publications holding a section of
    it) or by year of publication."""
    page = await _page(
        session,
        service.readable_publications(access),
        state,
        limit,
        cursor,
        area=area,
        year=year,
    )
    audit.record(
        session,
        access.audit,
        "publication.list",
        object_type="publication",
        details={"ids": [str(p.id) for p in page.items]},
        read=True,
    )
    return page


@router.get(
    "/publications/{publication_id}",
    response_model=PublicationRead,
    summary="One publication",
    responses=problem_responses(401, 403, 404),
)
async def get_publication(
    publication_id: uuid.UUID, session: SessionDep, access: CanReadPublications
) -> PublicationRead:
    publication = await service.read_one(session, access, publication_id)
    audit.record(
        session,
        access.audit,
        "publication.read",
        object_type="publication",
        object_id=publication.id,
        read=True,
    )
    return publication


@router.get(
    "/public/publications",
    response_model=Page[PublicationRead],
    summary="Public publications (no sign-in)",
    dependencies=[PUBLIC],
    responses=problem_responses(422),
)
async def list_public_publications(
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=32)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[PublicationRead]:
    return await _page(session, service.public_publications(), state, limit, cursor)


@router.get(
    "/public/publications/{publication_id}",
    response_model=PublicationRead,
    summary="One public publication (no sign-in)",
    dependencies=[PUBLIC],
    responses=problem_responses(404),
)
async def get_public_publication(publication_id: uuid.UUID, session: SessionDep) -> PublicationRead:
    return await service.read_one(session, None, publication_id)


@router.get(
    "/attachments/{attachment_id}",
    response_class=StreamingResponse,
    summary="Download an attachment",
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **problem_responses(401, 403, 404),
    },
)
async def download_attachment(
    attachment_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    database: DatabaseDep,
    access: CanReadPublications,
) -> StreamingResponse:
    """The exact bytes (checked against their sha256 as they stream), for readers of the
    full report or of a publication that covers it."""
    attachment = await attachments.by_id(session, attachment_id)
    report_access = granted(request, access, "report", "read")
    if not await service.attachment_readable(
        session, attachment=attachment, report_access=report_access, publication_access=access
    ):
        raise NotFoundError("No such attachment.")
    audit.record(
        session,
        access.audit,
        "attachment.read",
        object_type="attachment",
        object_id=attachment.id,
        read=True,
    )
    quoted = quote(attachment.filename, safe="")
    return StreamingResponse(
        attachments.verified_chunks(database, attachment, access.audit),
        media_type=attachment.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "Content-Length": str(attachment.size),
            "X-Content-Type-Options": "nosniff",
        },
    )
