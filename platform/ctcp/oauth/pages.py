"""Portal pages of API clients (HTML), over the same service functions as the JSON API.

A client's secret is shown once, on the page that answers the POST that made it (no
redirect, so it is never in a page that can be loaded again; the portal sends no-store).
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from ctcp.authz.oauth_scopes import CLIENT_ROLE, OAuthScope
from ctcp.core.pagination import CursorQuery, PageRequest
from ctcp.identity.roles import role_fits
from ctcp.oauth import service
from ctcp.oauth.schemas import ApiClientCreate
from ctcp.oauth.service import ClientFilters
from ctcp.organizations.models import OrganizationKind
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ManageClients = Annotated[GuardedPortal, page_guard("api_client", "manage")]
CLIENTS = f"{PREFIX}/admin/api-clients"
SCOPES = [scope.value for scope in OAuthScope]
# Organizations whose members' rights a client acts with (Member States have none).
CLIENT_KINDS = {kind.value for kind in OrganizationKind if role_fits(CLIENT_ROLE, kind.value)}


class ClientQuery(BaseModel):
    """The API's list filters, from the filter form."""

    organization_id: uuid.UUID | None = None
    active: bool | None = None


async def _organizations(portal: GuardedPortal) -> list[tuple[str, str]]:
    organizations = (await portal.organization_names()).values()
    chosen = [org for org in organizations if org.kind in CLIENT_KINDS and org.active]
    return [
        (str(org.id), f"{portal.org_name(org.code)} ({org.code})")
        for org in sorted(chosen, key=lambda org: portal.org_name(org.code).lower())
    ]


@router.get("/admin/api-clients", response_class=HTMLResponse)
async def clients_page(portal: ManageClients, cursor: CursorQuery = None) -> Response:
    """Every organization's clients, by client id; filter by organization or state."""
    typed = {
        name: portal.request.query_params.get(name, "").strip()
        for name in ("organization_id", "active")
    }
    query, errors = portal.validate(ClientQuery, {k: v for k, v in typed.items() if v})
    page = None
    if query is not None:
        page = await service.list_clients(
            portal.session,
            portal.access,
            ClientFilters(organization_id=query.organization_id, active=query.active),
            PageRequest(cursor=cursor),
        )
    return await portal.render(
        "oauth/list.html",
        status=422 if errors else 200,
        page=page,
        typed=typed,
        errors=errors,
        organizations=await _organizations(portal),
    )


async def _form(
    portal: GuardedPortal, typed: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return await portal.render(
        "oauth/new.html",
        status=status,
        typed=typed,
        errors=errors,
        organizations=await _organizations(portal),
        scopes=SCOPES,
    )


@router.get("/admin/api-clients/new", response_class=HTMLResponse)
async def new_client_page(portal: ManageClients) -> Response:
    return await _form(portal, {"organization_id": "", "name": "", "scopes": []}, {})


@router.post("/admin/api-clients/new", response_class=HTMLResponse)
async def create_client(portal: ManageClients) -> Response:
    """The API's creation; the answer shows the secret, this once (rendered, not redirected)."""
    typed: dict[str, Any] = {
        "organization_id": portal.field("organization_id"),
        "name": portal.field("name"),
        "scopes": portal.fields("scopes"),
    }
    body, errors = portal.validate(ApiClientCreate, typed)
    if "scopes" in errors or any(name.startswith("scopes.") for name in errors):
        errors = {k: v for k, v in errors.items() if not k.startswith("scopes.")}
        errors["scopes"] = portal.gettext("Choose at least one scope from the list.")
    if body is None:
        return await _form(portal, typed, errors, status=422)
    issued = await service.issue_client(portal.session, body, context=portal.access.audit)
    return await portal.render(
        "oauth/secret.html",
        status=201,
        client=issued,
        client_id=issued.client_id,
        secret=issued.client_secret,
        created=True,
    )


@router.get("/admin/api-clients/{api_client_id}", response_class=HTMLResponse)
async def client_page(api_client_id: uuid.UUID, portal: ManageClients) -> Response:
    client = await service.read_client(portal.session, portal.access, api_client_id)
    return await portal.render("oauth/client.html", client=client)


@router.get("/admin/api-clients/{api_client_id}/disable", response_class=HTMLResponse)
async def confirm_disable_page(api_client_id: uuid.UUID, portal: ManageClients) -> Response:
    """The confirmation step before a client is disabled."""
    client = await service.read_client(portal.session, portal.access, api_client_id)
    return await portal.render("oauth/confirm.html", client=client, action="disable")


@router.post("/admin/api-clients/{api_client_id}/disable", response_class=HTMLResponse)
async def disable_client(api_client_id: uuid.UUID, portal: ManageClients) -> Response:
    """The API's disabling: the secret stops working and every token dies at once."""
    await service.disable_client(
        portal.session, api_client_id=api_client_id, context=portal.access.audit
    )
    return portal.redirect(
        f"{CLIENTS}/{api_client_id}", notice=portal.gettext("The API client was disabled.")
    )


@router.get("/admin/api-clients/{api_client_id}/secret", response_class=HTMLResponse)
async def confirm_rotate_page(api_client_id: uuid.UUID, portal: ManageClients) -> Response:
    """The confirmation step before a secret is replaced (the old one dies at once)."""
    client = await service.read_client(portal.session, portal.access, api_client_id)
    return await portal.render("oauth/confirm.html", client=client, action="rotate")


@router.post("/admin/api-clients/{api_client_id}/secret", response_class=HTMLResponse)
async def rotate_secret(api_client_id: uuid.UUID, portal: ManageClients) -> Response:
    """The API's rotation; the new secret is shown on this answer only."""
    access = portal.access
    assert access is not None
    rotated = await service.rotate_secret(
        portal.session, api_client_id=api_client_id, context=access.audit
    )
    client = await service.read_client(portal.session, access, api_client_id)
    return await portal.render(
        "oauth/secret.html",
        client=client,
        client_id=rotated.client_id,
        secret=rotated.client_secret,
        created=False,
    )
