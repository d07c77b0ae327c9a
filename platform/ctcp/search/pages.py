"""Portal page of search (HTML), over the same service function as the JSON API."""

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from sqlmodel import col

from ctcp.authz.guard import granted
from ctcp.consent import service as consent_service
from ctcp.consent.models import Publication
from ctcp.core.pagination import DEFAULT_LIMIT
from ctcp.reports import service as reports_service
from ctcp.reports.models import VisitReport
from ctcp.search import service as search_service
from ctcp.search.schemas import SearchHit
from ctcp.search.service import MARK_END, MARK_START
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
# The API's guard: publications are what every reader of content may read.
CanSearch = Annotated[GuardedPortal, page_guard("publication", "read")]
MIN_LENGTH, MAX_LENGTH = 2, 200
# Each kind of hit and the portal page that shows it.
PAGES = {
    "report": f"{PREFIX}/reports",
    "publication": f"{PREFIX}/publications",
    "need": f"{PREFIX}/needs",
    "request": f"{PREFIX}/requests",
}


@dataclass
class Group:
    kind: str
    hits: list[SearchHit] = field(default_factory=list)

    @property
    def base(self) -> str:
        return PAGES.get(self.kind, PREFIX)


def highlighted(snippet: str) -> Markup:
    """The snippet as HTML: its text escaped, only the search's own <mark> kept."""
    escaped = str(escape(snippet))
    return Markup(  # noqa: S704 - escaped above; only our own markers become tags
        escaped.replace(str(escape(MARK_START)), "<mark>").replace(str(escape(MARK_END)), "</mark>")
    )


async def document_titles(portal: GuardedPortal, hits: list[SearchHit]) -> dict[uuid.UUID, str]:
    """The title of each hit's report or publication, read through the same scopes."""
    access = portal.access
    titles: dict[uuid.UUID, str] = {}
    report_ids = {hit.id for hit in hits if hit.type == "report"}
    report_access = await portal.access_for("report", "read")
    if report_ids and report_access is not None:
        reports = reports_service.readable_reports(report_access).where(
            col(VisitReport.id).in_(report_ids)
        )
        titles |= {row.id: row.title for row in (await portal.session.exec(reports)).all()}
    publication_ids = {hit.id for hit in hits if hit.type == "publication"}
    if publication_ids:
        publications = consent_service.readable_publications(access).where(
            col(Publication.id).in_(publication_ids)
        )
        titles |= {row.id: row.title for row in (await portal.session.exec(publications)).all()}
    return titles


@router.get("/search", response_class=HTMLResponse)
async def search_page(portal: CanSearch) -> Response:
    """Full reports in the reader's scope and publications for the rest, grouped by kind."""
    q = portal.request.query_params.get("q", "").strip()
    errors: dict[str, str] = {}
    groups: list[Group] = []
    titles: dict[uuid.UUID, str] = {}
    if q and len(q) < MIN_LENGTH:
        errors["q"] = portal.gettext("Type at least two characters.")
    elif len(q) > MAX_LENGTH:
        errors["q"] = portal.gettext("This is too long.")
    elif q:
        access = portal.access
        assert access is not None
        page = await search_service.search(
            portal.session,
            access,
            search_service.SearchFilters(q=q),
            DEFAULT_LIMIT,
            report_access=granted(portal.request, access, "report", "read"),
        )
        titles = await document_titles(portal, page.items)
        by_kind: dict[str, Group] = {}
        for hit in page.items:
            by_kind.setdefault(hit.type, Group(hit.type)).hits.append(hit)
        groups = [by_kind[kind] for kind in PAGES if kind in by_kind]
        groups += [group for kind, group in by_kind.items() if kind not in PAGES]
    return await portal.render(
        "search/results.html",
        status=422 if errors else 200,
        q=q,
        errors=errors,
        groups=groups,
        titles=titles,
        searched=bool(q) and not errors,
        highlighted=highlighted,
    )
