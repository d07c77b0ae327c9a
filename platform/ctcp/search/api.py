"""GET /api/v1/search: scoped full-text search with highlighted snippets."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ctcp.authz.guard import Access, granted, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, LimitQuery, Page
from ctcp.core.schemas import problem_responses
from ctcp.search import service
from ctcp.search.schemas import SearchHit

router = APIRouter(prefix="/api/v1", tags=["search"])
CanSearch = Annotated[Access, guard("publication", "read")]


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
    return await service.search(
        session, access, service.SearchFilters(q=q), limit, report_access=report_access
    )
