"""Portal pages of user administration (HTML), over the same service functions as the API."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ctcp.authz.guard import require
from ctcp.core.errors import ValidationError
from ctcp.core.pagination import CursorQuery, PageRequest
from ctcp.identity import service, users
from ctcp.identity.passwords import PasswordHasher, password_problems
from ctcp.identity.roles import Role, role_fits
from ctcp.identity.schemas import RolesUpdate, UserCreate, UserRead
from ctcp.identity.users import UserFilters
from ctcp.organizations.models import Organization
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ManageUsers = Annotated[GuardedPortal, page_guard("user", "manage")]
ManageRoles = Annotated[GuardedPortal, page_guard("role", "manage")]
ROLES = [role.value for role in Role]
USERS = f"{PREFIX}/admin/users"


class UserQuery(BaseModel):
    """The list's filters as the API takes them (blank fields left out)."""

    organization_id: uuid.UUID | None = None
    role: Role | None = None
    active: bool | None = None
    q: str | None = Field(default=None, min_length=1, max_length=100)


def _hasher(portal: GuardedPortal) -> PasswordHasher:
    hasher: PasswordHasher = portal.request.app.state.hasher
    return hasher


async def organization_options(portal: GuardedPortal, kinds: set[str] | None = None) -> list[Any]:
    """(id, "Name (CODE)") of the organizations, by name, optionally of some kinds only."""
    organizations = (await portal.organization_names()).values()
    chosen = [org for org in organizations if kinds is None or org.kind in kinds]
    return [
        (str(org.id), f"{portal.org_name(org.code)} ({org.code})")
        for org in sorted(chosen, key=lambda org: portal.org_name(org.code).lower())
    ]


def _mfa_required_roles(portal: GuardedPortal) -> frozenset[str]:
    roles: frozenset[str] = portal.request.app.state.settings.mfa_required_roles
    return roles


def _admin_may_hold_content_roles(portal: GuardedPortal) -> bool:
    allowed: bool = portal.request.app.state.settings.admin_may_hold_content_roles
    return allowed


@router.get("/admin/users", response_class=HTMLResponse)
async def users_page(portal: ManageUsers, cursor: CursorQuery = None) -> Response:
    """Users by e-mail, filtered as the API filters them."""
    typed = {
        name: portal.request.query_params.get(name, "").strip()
        for name in ("organization_id", "role", "active", "q")
    }
    query, errors = portal.validate(UserQuery, {k: v for k, v in typed.items() if v})
    page = None
    if query is not None:
        filters = UserFilters(
            organization_id=query.organization_id,
            role=query.role.value if query.role else None,
            active=query.active,
            q=query.q,
        )
        page = await users.list_users(
            portal.session, portal.access, filters, PageRequest(cursor=cursor)
        )
    return await portal.render(
        "identity/admin_users.html",
        status=422 if errors else 200,
        page=page,
        typed=typed,
        errors=errors,
        organizations=await organization_options(portal),
        roles=portal.options(ROLES),
    )


async def _new_user_form(
    portal: GuardedPortal, typed: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return await portal.render(
        "identity/admin_user_new.html",
        status=status,
        typed=typed,
        errors=errors,
        organizations=await organization_options(portal),
        roles=portal.options(ROLES),
        may_grant=portal.granted("role", "manage"),
        mfa_roles=sorted(_mfa_required_roles(portal)),
    )


@router.get("/admin/users/new", response_class=HTMLResponse)
async def new_user_page(
    portal: ManageUsers,
    organization_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    typed = {"email": "", "name": "", "organization_id": organization_id or "", "roles": []}
    return await _new_user_form(portal, typed, {})


@router.post("/admin/users/new", response_class=HTMLResponse)
async def create_user(portal: ManageUsers) -> Response:
    """The API's user creation; roles that need MFA make the user enrol at first sign-in."""
    typed: dict[str, Any] = {
        "email": portal.field("email"),
        "name": portal.field("name"),
        "organization_id": portal.field("organization_id"),
        "roles": portal.fields("roles"),
    }
    password = portal.field("password")
    body, errors = portal.validate(UserCreate, {**typed, "password": password})
    checked = await _check_new_user(portal, typed, password)
    errors |= {name: message for name, message in checked.items() if name not in errors}
    if body is None or errors:
        return await _new_user_form(portal, typed, errors, status=422)
    if body.roles:
        require(portal.request, portal.access, "role", "manage")
    created = await users.create_user(
        portal.session,
        body,
        hasher=_hasher(portal),
        context=portal.access.audit,
        admin_may_hold_content_roles=_admin_may_hold_content_roles(portal),
    )
    return portal.redirect(f"{USERS}/{created.id}", notice=portal.gettext("The user was created."))


async def _check_new_user(
    portal: GuardedPortal, typed: dict[str, Any], password: str
) -> dict[str, str]:
    """The service's rules checked first, so the form comes back with the fields marked."""
    errors: dict[str, str] = {}
    roles: list[str] = typed["roles"]
    try:
        organization = await portal.session.get(Organization, uuid.UUID(typed["organization_id"]))
    except ValueError:
        organization = None
    if set(roles) - set(ROLES):
        errors["roles"] = portal.gettext("Choose a value from the list.")
    elif organization is not None:
        misfits = [role for role in roles if not role_fits(role, organization.kind)]
        if misfits:
            errors["roles"] = portal.gettext(
                "These roles cannot be held in this organization: %(roles)s.",
                roles=", ".join(portal.label(role) for role in misfits),
            )
    if typed["organization_id"] and organization is None:
        errors["organization_id"] = portal.gettext("Choose a value from the list.")
    problems = password_problems(password, email=service.normalise_email(typed["email"]))
    if password and problems:
        errors["password"] = portal.gettext(
            "The password is not accepted: %(problems)s.", problems="; ".join(problems)
        )
    return errors


async def _user_page(
    portal: GuardedPortal, user: UserRead, errors: dict[str, str], status: int = 200
) -> Response:
    mfa_roles = _mfa_required_roles(portal)
    return await portal.render(
        "identity/admin_user.html",
        status=status,
        user=user,
        errors=errors,
        roles=portal.options(role for role in ROLES if role_fits(role, user.organization.kind)),
        may_set_roles=portal.granted("role", "manage") and user.id != portal.principal.user.id,
        is_self=user.id == portal.principal.user.id,
        mfa_pending=bool(set(user.roles) & mfa_roles) and not user.mfa_enabled,
    )


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
async def user_page(user_id: uuid.UUID, portal: ManageUsers) -> Response:
    user = await users.read_user(portal.session, portal.access, user_id)
    return await _user_page(portal, user, {})


@router.post("/admin/users/{user_id}/roles", response_class=HTMLResponse)
async def set_roles(user_id: uuid.UUID, portal: ManageRoles) -> Response:
    """The API's role replacement (never one's own; each role must fit the organization)."""
    body, errors = portal.validate(RolesUpdate, {"roles": portal.fields("roles")})
    if body is None:
        raise ValidationError(next(iter(errors.values())), loc=["roles"])
    await users.set_roles(
        portal.session,
        user_id,
        body.roles,
        context=portal.access.audit,
        admin_may_hold_content_roles=_admin_may_hold_content_roles(portal),
    )
    return portal.redirect(f"{USERS}/{user_id}", notice=portal.gettext("The roles were saved."))


@router.get("/admin/users/{user_id}/active", response_class=HTMLResponse)
async def confirm_active_page(user_id: uuid.UUID, portal: ManageUsers) -> Response:
    """The confirmation step before an account is deactivated (or reactivated)."""
    user = await users.read_user(portal.session, portal.access, user_id)
    return await portal.render("identity/admin_user_active.html", user=user)


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
async def set_active(user_id: uuid.UUID, portal: ManageUsers) -> Response:
    """The API's (de)activation: deactivating ends every session of the user at once."""
    wanted = portal.field("active")
    if wanted not in ("true", "false"):
        raise ValidationError(portal.gettext("Choose a value from the list."), loc=["active"])
    active = wanted == "true"
    await users.update_user(portal.session, user_id, active=active, context=portal.access.audit)
    notice = (
        portal.gettext("The account was reactivated.")
        if active
        else portal.gettext("The account was deactivated and its sessions ended.")
    )
    return portal.redirect(f"{USERS}/{user_id}", notice=notice)
