"""User administration for the API and the portal: list, read, create, update, roles.

Each function answers with the read model both show; the rules of accounts themselves
stay in `service`.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz.guard import Access
from ctcp.core.errors import NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest, keyset, page_of
from ctcp.identity import service
from ctcp.identity.models import User, UserRole
from ctcp.identity.passwords import PasswordHasher
from ctcp.identity.schemas import UserCreate, UserRead
from ctcp.identity.service import Account
from ctcp.organizations.models import Organization


@dataclass(frozen=True)
class UserFilters:
    """The list's filters: organization, a role held, state, text in the e-mail or name."""

    organization_id: uuid.UUID | None = None
    role: str | None = None
    active: bool | None = None
    q: str | None = None


async def _roles_of(session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """The roles of these users, in one query."""
    roles: dict[uuid.UUID, set[str]] = {user_id: set() for user_id in user_ids}
    if user_ids:
        statement = select(UserRole.user_id, UserRole.role).where(
            col(UserRole.user_id).in_(user_ids)
        )
        for user_id, granted in (await session.exec(statement)).all():
            roles[user_id].add(granted)
    return roles


async def list_users(
    session: AsyncSession, access: Access, filters: UserFilters, page: PageRequest
) -> Page[UserRead]:
    """Users by e-mail; audited as `user.list` with the ids shown."""
    statement = select(User, Organization).join(
        Organization, col(Organization.id) == col(User.organization_id)
    )
    if filters.organization_id is not None:
        statement = statement.where(col(User.organization_id) == filters.organization_id)
    if filters.active is not None:
        statement = statement.where(col(User.active) == filters.active)
    if filters.role is not None:
        statement = statement.where(
            col(User.id).in_(select(UserRole.user_id).where(col(UserRole.role) == filters.role))
        )
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        statement = statement.where(
            or_(col(User.email).ilike(pattern), col(User.name).ilike(pattern))
        )
    rows = (
        await session.exec(
            keyset(statement, order=[col(User.email)], limit=page.limit, cursor=page.cursor)
        )
    ).all()
    roles = await _roles_of(session, [user.id for user, _ in rows])
    audit.record(
        session,
        access.audit,
        "user.list",
        object_type="user",
        details={"ids": [str(user.id) for user, _ in rows[: page.limit]]},
        read=True,
    )
    return page_of(
        rows,
        limit=page.limit,
        key=lambda row: [row[0].email],
        item=lambda row: UserRead.of(Account(row[0], row[1], frozenset(roles[row[0].id]))),
    )


async def _account(session: AsyncSession, user_id: uuid.UUID) -> Account:
    account = await service.load_account(session, user_id=user_id)
    if account is None:
        raise NotFoundError("No such user.")
    return account


async def read_user(session: AsyncSession, access: Access, user_id: uuid.UUID) -> UserRead:
    """One user (404 when there is none); audited as `user.read`."""
    account = await _account(session, user_id)
    audit.record(
        session, access.audit, "user.read", object_type="user", object_id=user_id, read=True
    )
    return UserRead.of(account)


async def create_user(
    session: AsyncSession,
    body: UserCreate,
    *,
    hasher: PasswordHasher,
    context: AuditContext,
    admin_may_hold_content_roles: bool,
) -> UserRead:
    """A new account in the organization the body names (422 when there is none)."""
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
        context=context,
        admin_may_hold_content_roles=admin_may_hold_content_roles,
    )
    return UserRead.of(account)


async def update_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    name: str | None = None,
    active: bool | None = None,
    context: AuditContext,
) -> UserRead:
    """Rename (audited as `user.update`) and/or (de)activate a user (404 when there is
    none); deactivating ends every session of the user at once."""
    account = await _account(session, user_id)
    if name is not None and name != account.user.name:
        before = account.user.name
        account.user.name = name
        session.add(account.user)
        await session.flush()
        audit.record(
            session,
            context,
            "user.update",
            object_type="user",
            object_id=user_id,
            details={"name": {"before": before, "after": name}},
        )
    if active is not None:
        await service.set_active(session, user=account.user, active=active, context=context)
    return UserRead.of(account)


async def set_roles(
    session: AsyncSession,
    user_id: uuid.UUID,
    roles: Iterable[str],
    *,
    context: AuditContext,
    admin_may_hold_content_roles: bool,
) -> UserRead:
    """Replace a user's roles (404 when there is none), by the rules of `service.set_roles`."""
    account = await service.set_roles(
        session,
        account=await _account(session, user_id),
        roles=roles,
        context=context,
        admin_may_hold_content_roles=admin_may_hold_content_roles,
    )
    return UserRead.of(account)
