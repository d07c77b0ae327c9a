"""Portal pages of organizations (HTML), over the same service functions as the JSON API."""

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ctcp.core.pagination import CursorQuery, PageRequest
from ctcp.organizations import service
from ctcp.organizations.models import OrganizationKind
from ctcp.organizations.schemas import OrganizationCreate
from ctcp.organizations.service import OrganizationFilters
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ReadOrganizations = Annotated[GuardedPortal, page_guard("organization", "read")]
ManageOrganizations = Annotated[GuardedPortal, page_guard("organization", "manage")]
ORGANIZATIONS = f"{PREFIX}/admin/organizations"
KINDS = [kind.value for kind in OrganizationKind]


class OrganizationQuery(BaseModel):
    """The API's list filters, from the filter form."""

    kind: OrganizationKind | None = None
    q: str | None = Field(default=None, min_length=1, max_length=100)


@router.get("/admin/organizations", response_class=HTMLResponse)
async def organizations_page(portal: ReadOrganizations, cursor: CursorQuery = None) -> Response:
    """Member States, Compact entities and the Secretariat, by code; filter by kind or text."""
    typed = {name: portal.request.query_params.get(name, "").strip() for name in ("kind", "q")}
    query, errors = portal.validate(OrganizationQuery, {k: v for k, v in typed.items() if v})
    page = None
    if query is not None:
        page = await service.list_organizations(
            portal.session,
            portal.access,
            OrganizationFilters(kind=query.kind, q=query.q),
            PageRequest(cursor=cursor),
        )
    return await portal.render(
        "organizations/list.html",
        status=422 if errors else 200,
        page=page,
        typed=typed,
        errors=errors,
        kinds=portal.options(KINDS),
        may_manage=portal.granted("organization", "manage"),
    )


async def _form(
    portal: GuardedPortal, typed: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    return await portal.render(
        "organizations/new.html",
        status=status,
        typed=typed,
        errors=errors,
        kinds=portal.options(KINDS),
    )


@router.get("/admin/organizations/new", response_class=HTMLResponse)
async def new_organization_page(portal: ManageOrganizations) -> Response:
    return await _form(portal, {"code": "", "name": "", "name_fr": "", "kind": ""}, {})


@router.post("/admin/organizations/new", response_class=HTMLResponse)
async def create_organization(portal: ManageOrganizations) -> Response:
    """The API's creation: a unique code; a Member State's is its ISO alpha-3 code."""
    typed = {
        "code": portal.field("code").upper(),
        "name": portal.field("name"),
        "name_fr": portal.field("name_fr"),
        "kind": portal.field("kind"),
    }
    body, errors = portal.validate(
        OrganizationCreate, {**typed, "name_fr": typed["name_fr"] or None}
    )
    if (
        body is not None
        and body.kind is OrganizationKind.MEMBER_STATE
        and not (len(body.code) == 3 and body.code.isalpha())
    ):
        errors["code"] = portal.gettext(
            "A Member State's code is its three-letter ISO 3166-1 alpha-3 code."
        )
    if "code" in errors and not typed["code"]:
        errors["code"] = portal.gettext("Fill in this field.")
    elif "code" in errors and body is None:
        errors["code"] = portal.gettext(
            "Use capital letters, digits and underscores (2 to 32), starting with a letter."
        )
    if body is None or errors:
        return await _form(portal, typed, errors, status=422)
    created = await service.create_organization(portal.session, body, context=portal.access.audit)
    return portal.redirect(
        f"{ORGANIZATIONS}?q={created.code}",
        notice=portal.gettext("The organization %(code)s was added.", code=created.code),
    )
