"""The change feed over HTTP (Compact-entity systems and focal points). A thin caller of
the service."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ctcp.authz.guard import Access, granted, guard
from ctcp.changes import service
from ctcp.changes.kinds import KINDS
from ctcp.changes.service import ChangePage, FeedRequest
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from ctcp.core.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["change feed"])
CanRead = Annotated[Access, guard("change", "read")]
TypesQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description=f"Comma-separated kinds, among: {', '.join(sorted(KINDS))}",
    ),
]


@router.get(
    "/changes",
    response_model=ChangePage,
    responses=problem_responses(401, 403, 410, 422),
)
async def list_changes(
    request: Request,
    access: CanRead,
    session: SessionDep,
    cursor: CursorQuery = None,
    types: TypesQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> ChangePage:
    """What changed since `cursor` among what the caller may read: `upsert` with the
    object as the caller may see it now, `revoke` with the id alone. Resume from
    `next_cursor` (always present); 410: the cursor is past retention, start again
    without one."""
    readers = {
        name: reader
        for name, kind in KINDS.items()
        if (reader := granted(request, access, kind.resource, "read")) is not None
    }
    feed = FeedRequest(cursor=cursor, types=service.parse_types(types), limit=limit)
    return await service.read_changes(session, access, readers, feed)
