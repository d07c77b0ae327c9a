"""User administration (platform_admin): list, create, read, (de)activate, roles."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.authz.guard import Access, guard, require
from ctcp.core.db import SessionDep
from ctcp.core.errors import NotFoundError, ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.core.schemas import problem_responses
from ctcp.identity import service
from ctcp.identity.dependencies import HasherDep
from ctcp.identity.models import User, UserRole
from ctcp.identity.schemas import RolesUpdate, UserCreate, UserRead, UserUpdate
from ctcp.identity.service import Account
from ctcp.organizations.models import Organization

router = APIRouter(prefix="/api/v1/users", tags=["administration"])
CanManageUsers = Annotated[Access, guard("user", "manage")]
CanManageRoles = Annotated[Access, guard("role", "manage")]


async def _account(session: AsyncSession, user_id: uuid.UUID) -> Account:
    account = await service.load_account(session, user_id=user_id)
    if account is None:
        raise NotFoundError("No such user.")
    return account


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
    statement = select(User, Organization).join(
        Organization, col(Organization.id) == col(User.organization_id)
    )
    if organization_id is not None:
        statement = statement.where(col(User.organization_id) == organization_id)
    if active is not None:
        statement = statement.where(col(User.active) == active)
    if role is not None:
        statement = statement.where(
            col(User.id).in_(select(UserRole.user_id).where(col(UserRole.role) == role))
        )
    if q:
        pattern = f"%{q.lower()}%"
        statement = statement.where(
            or_(col(User.email).ilike(pattern), col(User.name).ilike(pattern))
        )
    rows = (
        await session.exec(keyset(statement, order=[col(User.email)], limit=limit, cursor=cursor))
    ).all()
    user_ids = [user.id for user, _ in rows]
    roles: dict[uuid.UUID, set[str]] = {user_id: set() for user_id in user_ids}
    if user_ids:
        for user_id, granted in (
            await session.exec(
                select(UserRole.user_id, UserRole.role).where(col(UserRole.user_id).in_(user_ids))
            )
        ).all():
            roles[user_id].add(granted)
    audit.record(
        session,
        access.audit,
        "user.list",
        object_type="user",
        details={"ids": [str(user.id) for user, _ in rows[:limit]]},
        read=True,
    )
    return page_of(
        rows,
        limit=limit,
        key=lambda row: [row[0].email],
        item=lambda row: UserRead.of(Account(row[0], row[1], frozenset(roles[row[0].id]))),
    )


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
    organization = await session.get(Organization, body.organization_id)
    if organization is None:
        raise ValidationError("No such organization.", loc=["body", "organization_id"])
    account = await service.create_user(
        session,
        email=body.email,
        name=body.name,
        organization=organization,
        password=body.password,
        roles=body.roles,
        hasher=hasher,
        context=access.audit,
        admin_may_hold_content_roles=request.app.state.settings.admin_may_hold_content_roles,
    )
    return UserRead.of(account)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    summary="One user",
    responses=problem_responses(401, 403, 404),
)
async def get_user(user_id: uuid.UUID, session: SessionDep, access: CanManageUsers) -> UserRead:
    account = await _account(session, user_id)
    audit.record(
        session, access.audit, "user.read", object_type="user", object_id=user_id, read=True
    )
    return UserRead.of(account)


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
    account = await _account(session, user_id)
    if body.name is not None and body.name != account.user.name:
        before = account.user.name
        account.user.name = body.name
        session.add(account.user)
        await session.flush()
        audit.record(
            session,
            access.audit,
            "user.update",
            object_type="user",
            object_id=user_id,
            details={"name": {"before": before, "after": body.name}},
        )
    if body.active is not None:
        await service.set_active(
            session, user=account.user, active=body.active, context=access.audit
        )
    return UserRead.of(account)


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
    account = await service.set_roles(
        session,
        account=await _account(session, user_id),
        roles=body.roles,
        context=access.audit,
        admin_may_hold_content_roles=request.app.state.settings.admin_may_hold_content_roles,
    )
    return UserRead.of(account)
