"""Portal pages of consent and publications (HTML), over the same service functions as the
JSON API; the preview of a decision is built by the code that builds its publication."""

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ctcp.authz.guard import granted
from ctcp.consent import downloads
from ctcp.consent import service as consent_service
from ctcp.consent.models import AUDIENCE_RANK, Audience, ConsentScope
from ctcp.consent.schemas import ConsentDecision, ConsentRead, ConsentState, Withdrawal
from ctcp.core.clock import clock
from ctcp.core.db import DatabaseDep
from ctcp.core.errors import ForbiddenError
from ctcp.core.pagination import PageRequest
from ctcp.reports import service as reports_service
from ctcp.reports.models import ReportStatus, ThematicArea
from ctcp.reports.pages import choice, year_of
from ctcp.reports.schemas import ReportRead
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CanReadConsent = Annotated[GuardedPortal, page_guard("consent", "read")]
CanNarrow = Annotated[GuardedPortal, page_guard("consent", "narrow")]
CanReadPublications = Annotated[GuardedPortal, page_guard("publication", "read")]


# --- the consent page and its decision form ---------------------------------------------


def latest_sequence(state: ConsentState) -> int:
    """What a decision form sends as `after_sequence`: the latest decision the reader saw."""
    return state.history[-1].sequence if state.history else 0


def values_of(current: ConsentRead | None) -> dict[str, Any]:
    """The decision form, prefilled with the current decision (the reference is new each time)."""
    if current is None:
        return {
            "scope": ConsentScope.FULL.value,
            "sections": [],
            "audience": Audience.COMPACT.value,
            "share_needs": False,
            "reference": "",
            "expires_on": "",
            "expires_exact": "",
        }
    return {
        "scope": current.scope,
        "sections": [str(section) for section in current.sections],
        "audience": current.audience or Audience.COMPACT.value,
        "share_needs": current.share_needs,
        "reference": "",
        "expires_on": current.expires_at.date().isoformat() if current.expires_at else "",
        # The exact current expiry: kept when the day is left as it was, so saving the
        # prefilled form never moves an expiry set at another hour of that day.
        "expires_exact": current.expires_at.isoformat() if current.expires_at else "",
    }


def submitted_values(portal: GuardedPortal) -> dict[str, Any]:
    return {
        "scope": portal.field("scope"),
        "sections": portal.fields("sections"),
        "audience": portal.field("audience"),
        "share_needs": portal.field("share_needs") == "1",
        "reference": portal.field("reference"),
        "expires_on": portal.field("expires_on"),
        "expires_exact": portal.field("expires_exact"),
        "after_sequence": portal.field("after_sequence"),
    }


def _datetime_or_none(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def validate_decision(
    portal: GuardedPortal, values: dict[str, Any]
) -> tuple[ConsentDecision | None, dict[str, str]]:
    """The API's ConsentDecision from the form (expiry: 00:00 UTC of the chosen day)."""
    errors: dict[str, str] = {}
    expires_at: datetime | None = None
    if values["expires_on"]:
        try:
            day = date.fromisoformat(values["expires_on"])
        except ValueError:
            errors["expires_on"] = portal.gettext("Enter a valid date.")
        else:
            expires_at = datetime.combine(day, time(0), tzinfo=UTC)
            exact = _datetime_or_none(values.get("expires_exact", ""))
            if exact is not None and exact.astimezone(UTC).date() == day:
                expires_at = exact
            if expires_at <= clock.now():
                errors["expires_on"] = portal.gettext("The expiry must be in the future.")
    partial = values["scope"] == ConsentScope.PARTIAL.value
    if partial and not values["sections"]:
        errors["sections"] = portal.gettext("Choose at least one section.")
    if not values["after_sequence"]:
        errors["_"] = portal.gettext("This form has expired; reload the page and try again.")
    data = {
        "scope": values["scope"],
        "sections": values["sections"] if partial else [],
        "audience": values["audience"] or Audience.COMPACT.value,
        "share_needs": values["share_needs"],
        "reference": values["reference"] or None,
        "expires_at": expires_at,
        "after_sequence": values["after_sequence"] or None,
    }
    model, schema_errors = portal.validate(ConsentDecision, data)
    for name, message in schema_errors.items():
        if name.startswith("sections"):
            errors.setdefault("sections", portal.gettext("Choose sections from the list."))
        elif name == "expires_at":
            errors.setdefault("expires_on", message)
        elif name in ("scope", "audience", "reference"):
            errors.setdefault(name, message)
        else:
            errors.setdefault(
                "_", portal.gettext("This form has expired; reload the page and try again.")
            )
    return (model if not errors else None), errors


def decision_options(
    portal: GuardedPortal, report: ReportRead | None, current: ConsentRead | None, may_broaden: bool
) -> dict[str, Any]:
    """What the form offers: everything to a consent officer; to a State only what narrows."""
    sections = report.sections if report is not None else []
    scopes = [scope.value for scope in ConsentScope]
    audiences = [audience.value for audience in Audience]
    if not may_broaden:
        if current is None or current.scope == ConsentScope.NONE.value:
            sections, scopes, audiences = [], [ConsentScope.NONE.value], []
        else:
            if current.scope == ConsentScope.PARTIAL.value:
                covered = set(current.sections)
                sections = [section for section in sections if section.id in covered]
                scopes = [ConsentScope.NONE.value, ConsentScope.PARTIAL.value]
            rank = AUDIENCE_RANK[Audience(current.audience or Audience.COMPACT.value)]
            audiences = [a.value for a in Audience if AUDIENCE_RANK[a] <= rank]
    return {
        "section_choices": sections,
        "scope_options": portal.options(scopes),
        "audience_options": portal.options(audiences),
        "may_share_needs": may_broaden or (current is not None and current.share_needs),
    }


async def consent_context(
    portal: GuardedPortal,
    report_id: uuid.UUID,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The consent page: the report, the current decision, the history, and the form."""
    consent_access = await portal.access_for("consent", "read")
    if consent_access is None:
        raise ForbiddenError(portal.gettext("Your roles do not allow read on consent."))
    state = await consent_service.read_consent(portal.session, consent_access, report_id)
    report_access = await portal.access_for("report", "read")
    report = (
        await reports_service.read_report(portal.session, report_access, report_id)
        if report_access is not None
        else None
    )
    may_decide = portal.granted("consent", "narrow") and (
        report is not None and report.status == ReportStatus.ADOPTED.value
    )
    may_broaden = portal.granted("consent", "broaden")
    titles = {section.id: section.title for section in report.sections} if report else {}
    return {
        "report": report,
        "report_id": report_id,
        "consent": state,
        "titles": titles,
        # A form shown again keeps the sequence its reader saw: a stale decision stays stale.
        "after_sequence": (values or {}).get("after_sequence") or latest_sequence(state),
        "may_decide": may_decide,
        "may_broaden": may_broaden,
        "may_withdraw": portal.granted("consent", "narrow"),
        "values": values if values and "scope" in values else values_of(state.current),
        "errors": errors or {},
        **decision_options(portal, report, state.current, may_broaden),
    }


@router.get("/reports/{report_id}/consent", response_class=HTMLResponse)
async def consent_page(report_id: uuid.UUID, portal: CanReadConsent) -> Response:
    return await portal.render("consent/consent.html", **await consent_context(portal, report_id))


@router.post("/reports/{report_id}/consent/preview", response_class=HTMLResponse)
async def preview_decision(report_id: uuid.UUID, portal: CanNarrow) -> Response:
    """Exactly what the publication would hold, by the code that builds it; writes nothing."""
    values = submitted_values(portal)
    decision, errors = validate_decision(portal, values)
    if decision is None:
        context = await consent_context(portal, report_id, values, errors)
        return await portal.render("consent/consent.html", status=422, **context)
    may_broaden = portal.granted("consent", "broaden")
    preview = await consent_service.preview(
        portal.session, portal.access, report_id, decision, may_broaden=may_broaden
    )
    return await portal.render(
        "consent/preview.html",
        preview=preview,
        report_id=report_id,
        values=values,
        decision=decision,
    )


@router.post("/reports/{report_id}/consent", response_class=HTMLResponse)
async def record_decision(report_id: uuid.UUID, portal: CanNarrow) -> Response:
    """Record the decision the preview showed (409 if another was recorded meanwhile)."""
    values = submitted_values(portal)
    decision, errors = validate_decision(portal, values)
    if decision is None:
        context = await consent_context(portal, report_id, values, errors)
        return await portal.render("consent/consent.html", status=422, **context)
    # As the API decides it: from the reader's grant.
    may_broaden = granted(portal.request, portal.access, "consent", "broaden") is not None
    await consent_service.record(
        portal.session, portal.access, report_id, decision, may_broaden=may_broaden
    )
    return portal.redirect(
        f"/portal/reports/{report_id}/consent",
        notice=portal.gettext("The consent decision was recorded."),
    )


@router.get("/reports/{report_id}/consent/withdraw", response_class=HTMLResponse)
async def withdraw_confirmation(report_id: uuid.UUID, portal: CanNarrow) -> Response:
    context = await consent_context(portal, report_id)
    return await portal.render("consent/withdraw.html", reason="", **context)


@router.post("/reports/{report_id}/consent/withdraw", response_class=HTMLResponse)
async def withdraw(report_id: uuid.UUID, portal: CanNarrow) -> Response:
    """Withdraw all consent: every publication of the report is revoked at once."""
    reason = portal.field("reason")
    # No after_sequence: a withdrawal is never stale (see service.withdraw).
    body, errors = portal.validate(Withdrawal, {"reason": reason})
    if body is None:
        context = await consent_context(portal, report_id, errors=errors)
        return await portal.render("consent/withdraw.html", status=422, reason=reason, **context)
    await consent_service.withdraw(portal.session, portal.access, report_id, body.reason)
    return portal.redirect(
        f"/portal/reports/{report_id}/consent",
        notice=portal.gettext("Consent was withdrawn; the report's publications are revoked."),
    )


# --- publications -----------------------------------------------------------------------


@router.get("/publications", response_class=HTMLResponse)
async def publications_list(
    portal: CanReadPublications,
    state: Annotated[str | None, Query(max_length=32)] = None,
    area: Annotated[str | None, Query(max_length=40)] = None,
    year: Annotated[str | None, Query(max_length=4)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The live publications the reader may read, newest first."""
    filters = consent_service.PublicationFilters(
        state=state or None, area=choice(ThematicArea, area, "area"), year=year_of(year)
    )
    page = await consent_service.list_publications(
        portal.session, portal.access, filters, PageRequest(cursor=cursor or None)
    )
    return await portal.render(
        "consent/publications.html",
        page=page,
        filters={"state": state or "", "area": area or "", "year": year or ""},
        area_options=portal.options(a.value for a in ThematicArea),
    )


@router.get("/publications/{publication_id}", response_class=HTMLResponse)
async def publication_page(publication_id: uuid.UUID, portal: CanReadPublications) -> Response:
    """Only the consented sections, and the attachments the consent covers."""
    publication = await consent_service.read_publication(
        portal.session, portal.access, publication_id
    )
    return await portal.render("consent/publication.html", publication=publication)


@router.get("/attachments/{attachment_id}")
async def download_attachment(
    attachment_id: uuid.UUID, portal: CanReadPublications, database: DatabaseDep
) -> Response:
    """The API's download: readers of the full report, or of a publication covering the file."""
    attachment = await consent_service.read_attachment(
        portal.session,
        attachment_id,
        report_access=granted(portal.request, portal.access, "report", "read"),
        publication_access=portal.access,
    )
    return downloads.streamed(database, attachment, portal.access.audit)
