"""The dashboard: what needs the reader's attention, through the same reads as the API."""

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ctcp.assistance import api as assistance_api
from ctcp.assistance import consultations_api
from ctcp.assistance.models import OfferStatus, RequestStatus
from ctcp.authz.scopes import DataScope
from ctcp.consent import api as consent_api
from ctcp.reports import api as reports_api
from ctcp.web.portal import PREFIX, Portal, SignedIn

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LATEST = 5


@dataclass
class Panel:
    """One box of the dashboard: a heading, a few rows, and where to see them all."""

    key: str
    items: list[Any] = field(default_factory=list)
    more: str = ""


async def for_reader(portal: Portal) -> list[Panel]:
    """Each list the reader may read, newest first, a few rows each (reads are audited)."""
    panels: list[Panel] = []
    session = portal.session
    if access := await portal.access_for("report", "read"):
        page = await reports_api.list_reports(session, access, limit=LATEST)
        panels.append(Panel("reports", page.items, "/portal/reports"))
        consent = await portal.access_for("consent", "read")
        if consent is not None and DataScope.OWN_STATE in consent.scopes:
            # The State's own question (the policy grants it its own State's consent):
            # what of its latest adopted reports is published?
            adopted = [report for report in page.items if report.status == "adopted"]
            states = [
                (report, await consent_api.get_consent(report.id, session, consent))
                for report in adopted
            ]
            panels.append(Panel("consent", states, "/portal/reports"))
    if access := await portal.access_for("publication", "read"):
        publications = await consent_api.list_publications(session, access, limit=LATEST)
        panels.append(Panel("publications", publications.items, "/portal/publications"))
    if access := await portal.access_for("request", "read"):
        requests = await assistance_api.list_requests(session, access, limit=LATEST)
        open_requests = [
            item
            for item in requests.items
            if item.status not in (RequestStatus.WITHDRAWN, RequestStatus.DECLINED)
        ]
        panels.append(Panel("requests", open_requests, "/portal/requests"))
    if access := await portal.access_for("offer", "read"):
        offers = await assistance_api.list_offers(
            session, access, offer_status=OfferStatus.PENDING, limit=LATEST
        )
        panels.append(Panel("offers", offers.items, "/portal/offers"))
    if access := await portal.access_for("need", "read"):
        needs = await assistance_api.list_needs(session, access, limit=LATEST)
        panels.append(Panel("needs", needs.items, "/portal/needs"))
    if access := await portal.access_for("consultation", "read"):
        plans = await consultations_api.list_consultations(session, access, limit=LATEST)
        panels.append(Panel("plans", plans.items, "/portal/plans"))
    return panels


@router.get("", response_class=HTMLResponse)
async def dashboard(portal: SignedIn) -> Response:
    return await portal.render("dashboard.html", panels=await for_reader(portal))
