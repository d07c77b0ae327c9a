"""API-client administration (platform_admin): create, list, read, disable, rotate."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.errors import NotFoundError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.schemas import problem_responses
from ctcp.oauth import service
from ctcp.oauth.models import ApiClient
from ctcp.oauth.schemas import ApiClientCreate, ApiClientIssued, ApiClientRead, ClientSecret
from ctcp.organizations.models import Organization

router = APIRouter(prefix="/api/v1/api-clients", tags=["administration"])
CanManage = Annotated[Access, guard("api_client", "manage")]


async def _client(session: AsyncSession, client_id: uuid.UUID) -> tuple[ApiClient, Organization]:
    found = await service.load_client(session, id=client_id)
    if found is None:
        raise NotFoundError("No such API client.")
    return found


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
    statement = service.clients_with_organizations()
    if organization_id is not None:
        statement = statement.where(col(ApiClient.organization_id) == organization_id)
    if active is not None:
        statement = statement.where(col(ApiClient.active) == active)
    statement = keyset(statement, order=[col(ApiClient.client_id)], limit=limit, cursor=cursor)
    rows = (await session.exec(statement)).all()
    page = page_of(
        rows,
        limit=limit,
        key=lambda row: [row[0].client_id],
        item=lambda row: ApiClientRead.of(row[0], row[1]),
    )
    audit.record(
        session,
        access.audit,
        "api_client.list",
        object_type="api_client",
        details={"ids": [str(item.id) for item in page.items]},
        read=True,
    )
    return page


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
    organization = await session.get(Organization, body.organization_id)
    if organization is None:
        raise NotFoundError("No such organization.")
    issued = await service.create_client(
        session,
        organization=organization,
        name=body.name,
        scopes=[scope.value for scope in body.scopes],
        context=access.audit,
    )
    read = ApiClientRead.of(issued.client, issued.organization)
    return ApiClientIssued(**read.model_dump(), client_secret=issued.secret)


@router.get(
    "/{api_client_id}",
    response_model=ApiClientRead,
    summary="One API client",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_api_client(
    api_client_id: uuid.UUID, session: SessionDep, access: CanManage
) -> ApiClientRead:
    found = await _client(session, api_client_id)
    audit.record(
        session,
        access.audit,
        "api_client.read",
        object_type="api_client",
        object_id=api_client_id,
        read=True,
    )
    return ApiClientRead.of(*found)


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
    client, _ = await _client(session, api_client_id)
    await service.disable_client(session, client=client, context=access.audit)
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
    client, _ = await _client(session, api_client_id)
    secret = await service.rotate_secret(session, client=client, context=access.audit)
    return ClientSecret(client_id=client.client_id, client_secret=secret)
