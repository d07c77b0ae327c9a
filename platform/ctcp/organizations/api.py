"""Organizations: listed by every role, created by platform administrators."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.organizations import service
from ctcp.organizations.models import OrganizationKind
from ctcp.organizations.schemas import OrganizationCreate, OrganizationRead
from ctcp.organizations.service import OrganizationFilters

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])
CanRead = Annotated[Access, guard("organization", "read")]
CanManage = Annotated[Access, guard("organization", "manage")]


@router.get(
    "",
    response_model=Page[OrganizationRead],
    summary="List organizations",
    responses=problem_responses(401, 403, 422),
)
async def list_organizations(
    session: SessionDep,
    access: CanRead,
    kind: Annotated[OrganizationKind | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[OrganizationRead]:
    """Member States, Compact entities and the Secretariat, by code; filter by kind or text."""
    filters = OrganizationFilters(kind=kind, q=q)
    return await service.list_organizations(session, access, filters, PageRequest(limit, cursor))


@router.get(
    "/{organization_id}",
    response_model=OrganizationRead,
    summary="One organization",
    responses=problem_responses(401, 403, 404),
)
async def get_organization(
    organization_id: uuid.UUID, session: SessionDep, access: CanRead
) -> OrganizationRead:
    return await service.read_organization(session, access, organization_id)


@router.post(
    "",
    response_model=OrganizationRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add an organization",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_organization(
    body: OrganizationCreate, session: SessionDep, access: CanManage
) -> OrganizationRead:
    return await service.create_organization(session, body, context=access.audit)
