"""The directory of national contact points over HTTP: thin callers of the service."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status

from ctcp.authz.guard import Access, guard
from ctcp.contacts import exchange, service
from ctcp.contacts.models import ContactAudience, ContactKind
from ctcp.contacts.schemas import (
    ContactPointCreate,
    ContactPointRead,
    ContactPointUpdate,
    ContactPointVersionRead,
    StateCoverage,
)
from ctcp.contacts.service import ContactFilters, ContactSort
from ctcp.core.concurrency import IfMatch
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["contact points"])
CanRead = Annotated[Access, guard("contact", "read")]
CanWrite = Annotated[Access, guard("contact", "write")]
CanReadHistory = Annotated[Access, guard("contact", "history")]
CanSurvey = Annotated[Access, guard("contact", "coverage")]


async def contact_filters(
    state: Annotated[str | None, Query(max_length=32, description="A State's code")] = None,
    kind: Annotated[ContactKind | None, Query()] = None,
    language: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z]{2}$", description="An ISO 639-1 code the authority accepts"),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in authority names and notes")
    ] = None,
    stale: Annotated[bool | None, Query(description="Not confirmed for 365 days")] = None,
    audience: Annotated[ContactAudience | None, Query()] = None,
    sort: Annotated[ContactSort, Query()] = ContactSort.UPDATED,
) -> ContactFilters:
    return ContactFilters(
        state=state, kind=kind, language=language, q=q, stale=stale, audience=audience, sort=sort
    )


Filters = Annotated[ContactFilters, Depends(contact_filters)]


def _etag(response: Response, entry: ContactPointRead) -> ContactPointRead:
    response.headers["ETag"] = f'"{entry.version}"'
    return entry


@router.get(
    "/contact-points",
    response_model=Page[ContactPointRead],
    summary="List contact points",
    responses=problem_responses(401, 403, 422),
)
async def list_contact_points(
    session: SessionDep,
    access: CanRead,
    filters: Filters,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ContactPointRead]:
    """The entries the caller may read: a State's own, and others' by their audience;
    filter by State, kind, accepted language, words, staleness; sort by State."""
    return await service.list_contact_points(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "/contact-points",
    response_model=ContactPointRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a contact point",
    responses=problem_responses(401, 403, 422),
)
async def create_contact_point(
    body: ContactPointCreate, session: SessionDep, access: CanWrite, response: Response
) -> ContactPointRead:
    """A State's focal points for their own State; CTED analysts for any State."""
    return _etag(response, await service.create_contact_point(session, access, body))


@router.get(
    "/contact-points/export",
    summary="Export contact points as CSV or vCard 4.0",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "text/vcard": {}}},
        **problem_responses(401, 403, 422),
    },
)
async def export_contact_points(
    session: SessionDep,
    access: CanRead,
    filters: Filters,
    format: Annotated[Literal["csv", "vcard"], Query()] = "csv",
) -> Response:
    """Every entry the caller may list under the filters, in one file."""
    entries = await service.export_contact_points(session, access, filters, format=format)
    if format == "vcard":
        body, media_type, name = exchange.to_vcards(entries), "text/vcard", "contact-points.vcf"
    else:
        body, media_type, name = exchange.to_csv(entries), "text/csv", "contact-points.csv"
    return Response(
        content=body.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/contact-points/coverage",
    response_model=list[StateCoverage],
    summary="Which States have which kinds of contact points",
    responses=problem_responses(401, 403),
)
async def contact_point_coverage(session: SessionDep, access: CanSurvey) -> list[StateCoverage]:
    """Every Member State with its entries and stale entries per kind, and the kinds it has
    none of (CTED)."""
    return await service.read_coverage(session, access)


@router.get(
    "/contact-points/{contact_id}",
    response_model=ContactPointRead,
    summary="Read a contact point",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contact_point(
    contact_id: uuid.UUID, session: SessionDep, access: CanRead, response: Response
) -> ContactPointRead:
    """The entry, with its version as the ETag; 404 outside the caller's reach."""
    return _etag(response, await service.read_contact_point(session, access, contact_id))


@router.patch(
    "/contact-points/{contact_id}",
    response_model=ContactPointRead,
    summary="Edit a contact point",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_contact_point(
    contact_id: uuid.UUID,
    body: ContactPointUpdate,
    session: SessionDep,
    access: CanWrite,
    if_match: IfMatch,
    response: Response,
) -> ContactPointRead:
    """Change some fields; name the version the edit is based on (`version` or
    `If-Match`) and a stale edit is refused with 409."""
    entry = await service.update_contact_point(session, access, contact_id, body, if_match=if_match)
    return _etag(response, entry)


@router.post(
    "/contact-points/{contact_id}/confirm",
    response_model=ContactPointRead,
    summary="Confirm a contact point is current",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def confirm_contact_point(
    contact_id: uuid.UUID,
    session: SessionDep,
    access: CanWrite,
    if_match: IfMatch,
    response: Response,
) -> ContactPointRead:
    """Nothing changed: `confirmed_at` becomes now and the entry is no longer stale."""
    entry = await service.confirm_contact_point(session, access, contact_id, based_on=if_match)
    return _etag(response, entry)


@router.delete(
    "/contact-points/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Retire a contact point",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def retire_contact_point(
    contact_id: uuid.UUID, session: SessionDep, access: CanWrite, if_match: IfMatch
) -> Response:
    """404 to everyone from then on; the history keeps it."""
    await service.retire_contact_point(session, access, contact_id, based_on=if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/contact-points/{contact_id}/history",
    response_model=list[ContactPointVersionRead],
    summary="Who changed a contact point, what and when",
    responses=problem_responses(401, 403, 404, 422),
)
async def contact_point_history(
    contact_id: uuid.UUID, session: SessionDep, access: CanReadHistory
) -> list[ContactPointVersionRead]:
    """Every version, newest first (the State's focal points and the Secretariat)."""
    return await service.read_history(session, access, contact_id)
