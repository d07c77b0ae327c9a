"""The dashboard: what needs the reader's attention, composed of the features' own
audited service reads (the same the API and their pages make)."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ctcp.assistance import consultations, needs, offers, requests
from ctcp.assistance.models import OfferStatus, RequestStatus
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent import service as consent_service
from ctcp.contacts import service as contacts
from ctcp.contacts.schemas import STALE_AFTER_DAYS
from ctcp.core.pagination import PageRequest
from ctcp.planning import service as planning
from ctcp.planning.schemas import MatrixCell
from ctcp.reports import service as reports
from ctcp.web.paths import PREFIX
from ctcp.web.portal import Portal, SignedIn

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LATEST = PageRequest(limit=5)


@dataclass
class Panel:
    """One box of the dashboard: a heading, a few rows, and where to see them all."""

    key: str
    items: list[Any] = field(default_factory=list)
    more: str = ""
    count: int = 0  # how many in all, where the panel shows the first few


async def for_reader(portal: Portal) -> list[Panel]:
    """Each list the reader may read, newest first, a few rows each (reads are audited)."""
    panels: list[Panel] = []
    session = portal.session
    if access := await portal.access_for("report", "read"):
        page = await reports.list_reports(session, access, reports.ReportFilters(), LATEST)
        panels.append(Panel("reports", page.items, "/portal/reports"))
        consent = await portal.access_for("consent", "read")
        if consent is not None and DataScope.OWN_STATE in consent.scopes:
            # The State's own question (the policy grants it its own State's consent):
            # what of its latest adopted reports is published?
            adopted = [report for report in page.items if report.status == "adopted"]
            states = [
                (report, await consent_service.read_consent(session, consent, report.id))
                for report in adopted
            ]
            panels.append(Panel("consent", states, "/portal/reports"))
    keeper = await portal.access_for("contact", "write")
    if keeper is not None and DataScope.OWN_STATE in keeper.scopes:
        # A State's focal points keep their State's entries: those due for confirmation.
        due = await contacts.entries_to_confirm(session, keeper, limit=LATEST.limit)
        own = urlencode({"state": keeper.organization.code})
        panels.append(Panel("contacts", due.items, f"/portal/contacts?{own}"))
    if access := await portal.access_for("publication", "read"):
        publications = await consent_service.list_publications(
            session, access, consent_service.PublicationFilters(), LATEST
        )
        panels.append(Panel("publications", publications.items, "/portal/publications"))
    if access := await portal.access_for("request", "read"):
        latest = await requests.list_requests(session, access, requests.RequestFilters(), LATEST)
        open_requests = [
            item
            for item in latest.items
            if item.status not in (RequestStatus.WITHDRAWN, RequestStatus.DECLINED)
        ]
        panels.append(Panel("requests", open_requests, "/portal/requests"))
    if access := await portal.access_for("offer", "read"):
        pending = await offers.list_offers(
            session, access, offers.OfferFilters(status=OfferStatus.PENDING), LATEST
        )
        panels.append(Panel("offers", pending.items, "/portal/offers"))
    if access := await portal.access_for("need", "read"):
        latest_needs = await needs.list_needs(session, access, needs.NeedFilters(), LATEST)
        panels.append(Panel("needs", latest_needs.items, "/portal/needs"))
    if access := await portal.access_for("consultation", "read"):
        plans = await consultations.list_consultations(
            session, access, consultations.ConsultationFilters(), LATEST
        )
        panels.append(Panel("plans", plans.items, "/portal/plans"))
    if access := await portal.access_for("activity", "read"):
        panels.append(await coordination_panel(portal, access))
    return panels


@dataclass
class RowSummary:
    """A State's own row of the coordination matrix, in figures."""

    state: str
    open_needs: int
    at_work: int
    gaps: int
    overlaps: int


async def coordination_panel(portal: Portal, access: Access) -> Panel:
    """Each reader's slice of the coordination matrix (one audited read of it): the
    Secretariat the cells where entities overlap, a State its own row, an entity the gaps
    in the areas it works in (where it leads or partners in planned or ongoing work)."""
    matrix = await planning.read_matrix(portal.session, access, planning.MatrixFilters())
    cells = matrix.cells
    more = "/portal/coordination"
    if DataScope.ALL in access.scopes:
        overlaps = [cell for cell in cells if cell.overlap]
        return Panel("overlaps", overlaps[: LATEST.limit], f"{more}?show=overlaps", len(overlaps))
    if DataScope.OWN_STATE in access.scopes:
        own = access.organization.code
        row = [cell for cell in cells if cell.state == own]
        summary = RowSummary(
            own,
            sum(cell.open_needs for cell in row),
            sum(cell.activities.planned + cell.activities.ongoing for cell in row),
            sum(cell.gap for cell in row),
            sum(cell.overlap for cell in row),
        )
        return Panel("state_row", [summary], f"{more}/states/{own}")
    return Panel("gaps", *_entity_gaps(cells, access.organization.code, more))


def _entity_gaps(cells: list[MatrixCell], entity: str, more: str) -> tuple[list[Any], str, int]:
    """The gaps (open needs, no one at work) in the areas where the entity is at work,
    the most open needs first."""
    areas = sorted({cell.area or "" for cell in cells if entity in cell.entities})
    gaps = sorted(
        (cell for cell in cells if cell.gap and cell.area in areas),
        key=lambda cell: (-cell.open_needs, cell.state),
    )
    query = {"show": "gaps"} | ({"area": areas[0]} if len(areas) == 1 else {})
    return gaps[: LATEST.limit], f"{more}?{urlencode(query)}", len(gaps)


@router.get("", response_class=HTMLResponse)
async def dashboard(portal: SignedIn) -> Response:
    return await portal.render(
        "dashboard.html",
        panels=await for_reader(portal),
        stale_after=timedelta(days=STALE_AFTER_DAYS),
    )
