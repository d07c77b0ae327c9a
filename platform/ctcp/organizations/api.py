"""Organizations: listed by every role, created by platform administrators."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import col, or_

from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.errors import NotFoundError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.schemas import problem_responses
from ctcp.organizations import service
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.organizations.schemas import OrganizationCreate, OrganizationRead

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
    statement = service.readable_organizations()
    if kind is not None:
        statement = statement.where(col(Organization.kind) == kind.value)
    if q:
        pattern = f"%{q.lower()}%"
        statement = statement.where(
            or_(
                col(Organization.code).ilike(pattern),
                col(Organization.name_en).ilike(pattern),
                col(Organization.name_fr).ilike(pattern),
            )
        )
    statement = keyset(statement, order=[col(Organization.code)], limit=limit, cursor=cursor)
    rows = (await session.exec(statement)).all()
    return page_of(
        rows, limit=limit, key=lambda org: [org.code], item=OrganizationRead.model_validate
    )


@router.get(
    "/{organization_id}",
    response_model=OrganizationRead,
    summary="One organization",
    responses=problem_responses(401, 403, 404),
)
async def get_organization(
    organization_id: uuid.UUID, session: SessionDep, access: CanRead
) -> OrganizationRead:
    statement = service.readable_organizations().where(col(Organization.id) == organization_id)
    organization = (await session.exec(statement)).first()
    if organization is None:
        raise NotFoundError("No such organization.")
    return OrganizationRead.model_validate(organization)


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
    organization = await service.create_organization(
        session,
        code=body.code,
        name=body.name,
        name_fr=body.name_fr,
        kind=body.kind,
        context=access.audit,
    )
    return OrganizationRead.model_validate(organization)
