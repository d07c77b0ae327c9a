"""API-client administration (platform_admin): create, list, read, disable, rotate."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.oauth import service
from ctcp.oauth.schemas import ApiClientCreate, ApiClientIssued, ApiClientRead, ClientSecret
from ctcp.oauth.service import ClientFilters

router = APIRouter(prefix="/api/v1/api-clients", tags=["administration"])
CanManage = Annotated[Access, guard("api_client", "manage")]


@router.get(
    "",
    response_model=Page[ApiClientRead],
    summary="List API clients",
    responses=problem_responses(401, 403, 422),
)
async def list_api_clients(
    session: SessionDep,
    access: CanManage,
    organization_id: Annotated[uuid.UUID | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ApiClientRead]:
    """Every organization's clients, by client id; filter by organization or state."""
    filters = ClientFilters(organization_id=organization_id, active=active)
    return await service.list_clients(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "",
    response_model=ApiClientIssued,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API client",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_api_client(
    body: ApiClientCreate, session: SessionDep, access: CanManage
) -> ApiClientIssued:
    """A client for a Compact entity; the answer holds its secret, shown this once only."""
    return await service.issue_client(session, body, context=access.audit)


@router.get(
    "/{api_client_id}",
    response_model=ApiClientRead,
    summary="One API client",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_api_client(
    api_client_id: uuid.UUID, session: SessionDep, access: CanManage
) -> ApiClientRead:
    return await service.read_client(session, access, api_client_id)


@router.delete(
    "/{api_client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disable an API client",
    responses=problem_responses(401, 403, 404, 422),
)
async def disable_api_client(
    api_client_id: uuid.UUID, session: SessionDep, access: CanManage
) -> Response:
    """Its secret stops working and every token it holds is refused from the next request."""
    await service.disable_client(session, api_client_id=api_client_id, context=access.audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{api_client_id}/secret",
    response_model=ClientSecret,
    summary="Rotate an API client's secret",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rotate_api_client_secret(
    api_client_id: uuid.UUID, session: SessionDep, access: CanManage
) -> ClientSecret:
    """A new secret, shown this once; the old one and every token issued under it die now."""
    return await service.rotate_secret(session, api_client_id=api_client_id, context=access.audit)
