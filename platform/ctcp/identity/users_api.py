"""User administration (platform_admin): list, create, read, (de)activate, roles."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from ctcp.authz.guard import Access, guard, require
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.identity import users
from ctcp.identity.dependencies import HasherDep
from ctcp.identity.schemas import RolesUpdate, UserCreate, UserRead, UserUpdate
from ctcp.identity.users import UserFilters

router = APIRouter(prefix="/api/v1/users", tags=["administration"])
CanManageUsers = Annotated[Access, guard("user", "manage")]
CanManageRoles = Annotated[Access, guard("role", "manage")]


@router.get(
    "",
    response_model=Page[UserRead],
    summary="List users",
    responses=problem_responses(401, 403, 422),
)
async def list_users(
    session: SessionDep,
    access: CanManageUsers,
    organization_id: Annotated[uuid.UUID | None, Query()] = None,
    role: Annotated[str | None, Query(max_length=40)] = None,
    active: Annotated[bool | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[UserRead]:
    """Users by e-mail, filtered by organization, role, state or text."""
    filters = UserFilters(organization_id=organization_id, role=role, active=active, q=q)
    return await users.list_users(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_user(
    body: UserCreate,
    request: Request,
    session: SessionDep,
    access: CanManageUsers,
    hasher: HasherDep,
) -> UserRead:
    """A new account; the password must pass the rules and the roles fit the organization."""
    if body.roles:
        require(request, access, "role", "manage")
    return await users.create_user(
        session,
        body,
        hasher=hasher,
        context=access.audit,
        admin_may_hold_content_roles=request.app.state.settings.admin_may_hold_content_roles,
    )


@router.get(
    "/{user_id}",
    response_model=UserRead,
    summary="One user",
    responses=problem_responses(401, 403, 404),
)
async def get_user(user_id: uuid.UUID, session: SessionDep, access: CanManageUsers) -> UserRead:
    return await users.read_user(session, access, user_id)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Update or (de)activate a user",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, access: CanManageUsers
) -> UserRead:
    """`{"active": false}` ends every session of the user at once."""
    return await users.update_user(
        session, user_id, name=body.name, active=body.active, context=access.audit
    )


@router.put(
    "/{user_id}/roles",
    response_model=UserRead,
    summary="Set a user's roles",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_roles(
    user_id: uuid.UUID,
    body: RolesUpdate,
    request: Request,
    session: SessionDep,
    access: CanManageRoles,
) -> UserRead:
    """Replace the roles; each must fit the organization's kind; never one's own; an
    auditor holds no other role, an administrator no content role (422)."""
    return await users.set_roles(
        session,
        user_id,
        body.roles,
        context=access.audit,
        admin_may_hold_content_roles=request.app.state.settings.admin_may_hold_content_roles,
    )
