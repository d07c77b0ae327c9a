"""GET /api/v1/search: scoped full-text search with highlighted snippets."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ctcp.audit import service as audit
from ctcp.authz.guard import Access, granted, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, LimitQuery, Page
from ctcp.core.schemas import ResponseModel, problem_responses
from ctcp.search import service

router = APIRouter(prefix="/api/v1", tags=["search"])
CanSearch = Annotated[Access, guard("publication", "read")]


class SearchHit(ResponseModel):
    type: str
    id: uuid.UUID
    section_id: uuid.UUID
    area: str
    title: str
    snippet: str


@router.get(
    "/search",
    response_model=Page[SearchHit],
    summary="Search what you may read",
    responses=problem_responses(401, 403, 422),
)
async def search(
    request: Request,
    session: SessionDep,
    access: CanSearch,
    q: Annotated[str, Query(min_length=2, max_length=200)],
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[SearchHit]:
    """Full reports in the caller's scope and publications for the rest; snippets mark the
    matched words with <mark></mark> (plain text otherwise: escape it before showing)."""
    report_access = granted(request, access, "report", "read")
    hits = await service.search(
        session, q=q, report_access=report_access, publication_access=access, limit=limit
    )
    audit.record(
        session,
        access.audit,
        "search",
        object_type="search",
        details={"q": q, "hits": [str(h.section_id) for h in hits]},
        read=True,
    )
    return Page[SearchHit](
        items=[
            SearchHit(
                type=h.kind,
                id=h.id,
                section_id=h.section_id,
                area=h.area,
                title=h.title,
                snippet=h.snippet,
            )
            for h in hits
        ],
        next_cursor=None,
    )
