"""Consent (consent officers; a State's focal points may only narrow or withdraw) and
publications (consented sections only, for the audience consented to)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from ctcp.authz.guard import Access, granted, guard
from ctcp.consent import downloads, needs_sharing, service
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
from ctcp.core.db import DatabaseDep, SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.routes import PUBLIC
from ctcp.core.schemas import problem_responses
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
    return await service.read_consent(session, access, report_id)


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
    return await service.record(session, access, report_id, body, may_broaden=may_broaden)


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
    return await service.withdraw(session, access, report_id, body.reason)


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
    return await needs_sharing.read_sharing(session, access, state_code)


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
    return await needs_sharing.record(session, access, state, body, may_broaden=may_broaden)


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
    return await needs_sharing.withdraw(session, access, state, body.reason)


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
    filters = service.PublicationFilters(state=state, area=area, year=year)
    return await service.list_publications(session, access, filters, PageRequest(limit, cursor))


@router.get(
    "/publications/{publication_id}",
    response_model=PublicationRead,
    summary="One publication",
    responses=problem_responses(401, 403, 404),
)
async def get_publication(
    publication_id: uuid.UUID, session: SessionDep, access: CanReadPublications
) -> PublicationRead:
    return await service.read_publication(session, access, publication_id)


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
    filters = service.PublicationFilters(state=state)
    return await service.list_public_publications(session, filters, PageRequest(limit, cursor))


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
    attachment = await service.read_attachment(
        session,
        attachment_id,
        report_access=granted(request, access, "report", "read"),
        publication_access=access,
    )
    return downloads.streamed(database, attachment, access.audit)
