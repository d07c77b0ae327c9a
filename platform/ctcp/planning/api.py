"""Joint planning over HTTP: activities, their exports, the coordination matrix. Thin
callers of the service."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from ctcp.assistance.models import Programme
from ctcp.authz.guard import Access, guard
from ctcp.core.concurrency import IfMatch
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.planning import exchange, service
from ctcp.planning.models import ActivityStatus
from ctcp.planning.regions import RegionalGroup
from ctcp.planning.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityUpdate,
    EntitySummary,
    Matrix,
)
from ctcp.planning.service import ActivityFilters, MatrixBy, MatrixFilters
from ctcp.reports.models import ThematicArea

router = APIRouter(prefix="/api/v1", tags=["joint planning"])
CanRead = Annotated[Access, guard("activity", "read")]
Writer = Annotated[Access, guard("activity", "write")]


async def audited_writer(request: Request, access: Writer, session: SessionDep) -> Access:
    """The write grant, with the refusals of the write (409, 422) audited."""
    service.audit_refusals(
        session,
        access,
        object_id=request.path_params.get("activity_id"),
        method=request.method,
        path=request.url.path[:200],
    )
    return access


CanWrite = Annotated[Access, Depends(audited_writer)]
Year = Annotated[int | None, Query(ge=1990, le=2100, description="A calendar year")]
ProgrammeQuery = Annotated[Programme | None, Query()]


async def activity_filters(
    state: Annotated[str | None, Query(max_length=32, description="A State's code")] = None,
    area: Annotated[ThematicArea | None, Query()] = None,
    lead: Annotated[str | None, Query(max_length=32, description="The lead's code")] = None,
    status: Annotated[ActivityStatus | None, Query()] = None,
    year: Year = None,
    programme: ProgrammeQuery = None,
) -> ActivityFilters:
    return ActivityFilters(
        state=state, area=area, lead=lead, status=status, year=year, programme=programme
    )


async def matrix_filters(
    area: Annotated[ThematicArea | None, Query()] = None,
    programme: ProgrammeQuery = None,
    year: Year = None,
    region: Annotated[RegionalGroup | None, Query(description="A UN regional group")] = None,
    by: Annotated[MatrixBy, Query(description="Columns: thematic areas or programmes")] = (
        MatrixBy.AREA
    ),
) -> MatrixFilters:
    return MatrixFilters(area=area, programme=programme, year=year, region=region, by=by)


Filters = Annotated[ActivityFilters, Depends(activity_filters)]
CellFilters = Annotated[MatrixFilters, Depends(matrix_filters)]


def _etag(response: Response, activity: ActivityRead) -> ActivityRead:
    response.headers["ETag"] = f'"{activity.version}"'
    return activity


@router.get(
    "/activities",
    response_model=Page[ActivityRead],
    summary="List activities",
    responses=problem_responses(401, 403, 422),
)
async def list_activities(
    session: SessionDep,
    access: CanRead,
    filters: Filters,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ActivityRead]:
    """The activities the caller may read, newest first; filter by State, area, lead,
    status, programme and the year their period touches."""
    return await service.list_activities(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "/activities",
    response_model=ActivityRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record an activity",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_activity(
    body: ActivityCreate, session: SessionDep, access: CanWrite, response: Response
) -> ActivityRead:
    """An entity's focal points for the activities their organization leads; CTED analysts
    any. The needs must be the State's."""
    return _etag(response, await service.create_activity(session, access, body))


@router.get(
    "/activities/export",
    summary="Export activities as CSV, HXL-tagged CSV or IATI activity XML 2.03",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/xml": {}}},
        **problem_responses(401, 403, 422),
    },
)
async def export_activities(
    session: SessionDep,
    access: CanRead,
    filters: Filters,
    format: Annotated[Literal["csv", "hxl", "iati"], Query()] = "csv",
) -> Response:
    """Every activity the caller may list under the filters, in one file."""
    found = await service.export_activities(session, access, filters, format=format)
    if format == "iati":
        body, media_type, name = exchange.to_iati(found), "application/xml", "activities.xml"
    elif format == "hxl":
        body, media_type, name = exchange.to_hxl(found), "text/csv", "activities-hxl.csv"
    else:
        body, media_type, name = exchange.to_csv(found), "text/csv", "activities.csv"
    return Response(
        content=body.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/activities/{activity_id}",
    response_model=ActivityRead,
    summary="Read an activity",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_activity(
    activity_id: uuid.UUID, session: SessionDep, access: CanRead, response: Response
) -> ActivityRead:
    """The activity, with its version as the ETag; 404 outside the caller's reach."""
    return _etag(response, await service.read_activity(session, access, activity_id))


@router.patch(
    "/activities/{activity_id}",
    response_model=ActivityRead,
    summary="Change an activity",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_activity(
    activity_id: uuid.UUID,
    body: ActivityUpdate,
    session: SessionDep,
    access: CanWrite,
    if_match: IfMatch,
    response: Response,
) -> ActivityRead:
    """Change some fields (the State and the lead stay); a status moves forward only;
    outputs go with a completed activity; a stale `version` or `If-Match` is 409."""
    found = await service.update_activity(session, access, activity_id, body, if_match=if_match)
    return _etag(response, found)


@router.get(
    "/coordination/matrix",
    response_model=Matrix,
    summary="The coordination matrix: State x area, with gaps and overlaps",
    responses=problem_responses(401, 403, 422),
)
async def coordination_matrix(session: SessionDep, access: CanRead, filters: CellFilters) -> Matrix:
    """One cell per State and area (or programme) the caller may see: open needs,
    activities by status, the entities at work; `gap` (open needs, no planned or ongoing
    activity) and `overlap` (two or more leads at work in overlapping periods)."""
    return await service.read_matrix(session, access, filters)


@router.get(
    "/coordination/entities",
    response_model=list[EntitySummary],
    summary="Per lead entity: activities by status, States and areas",
    responses=problem_responses(401, 403, 422),
)
async def coordination_entities(
    session: SessionDep, access: CanRead, filters: CellFilters
) -> list[EntitySummary]:
    """What each entity leads, over the activities the matrix counts."""
    return await service.entity_summaries(session, access, filters)
