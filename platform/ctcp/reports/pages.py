"""Portal pages of reports (HTML), over the same service functions as the JSON API."""

import re
import uuid
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from ctcp.core.errors import ForbiddenError, ValidationError
from ctcp.core.pagination import PageRequest
from ctcp.organizations.models import OrganizationKind
from ctcp.reports import service
from ctcp.reports.models import Priority, ReportKind, ReportStatus, ThematicArea
from ctcp.reports.schemas import ReportContent, ReportCreate, ReportRead
from ctcp.reports.service import ReportFilters
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CanRead = Annotated[GuardedPortal, page_guard("report", "read")]
CanWrite = Annotated[GuardedPortal, page_guard("report", "write")]

SECTION_BLOCKS = 8
LANGUAGES = ("en", "fr", "es", "ar", "ru", "zh")
RECOMMENDATION_LINE = re.compile(r"^(high|medium|low)\s*:\s*(.*)$", re.IGNORECASE)
EnumT = TypeVar("EnumT", bound=StrEnum)


def choice(kind: type[EnumT], value: str | None, name: str) -> EnumT | None:
    """A filter's coded value: blank is no filter, anything else must be a known code."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"Unknown value for {name}.", loc=["query", name]) from None


def year_of(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1990 <= int(value) <= 2200:
        raise ValidationError("The year must be between 1990 and 2200.", loc=["query", "year"])
    return int(value)


# --- the report form ------------------------------------------------------------------


def recommendations_text(recommendations: list[Any]) -> str:
    """Recommendations as the form shows them: one per line, `priority: text`."""
    return "\n".join(f"{r.priority}: {r.text}" for r in recommendations)


def parse_recommendations(text: str) -> list[dict[str, str]]:
    """One recommendation per non-blank line; a leading `high:`/`medium:`/`low:` sets its
    priority (medium when absent)."""
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = RECOMMENDATION_LINE.match(line)
        if match:
            result.append({"priority": match.group(1).lower(), "text": match.group(2).strip()})
        else:
            result.append({"priority": Priority.MEDIUM.value, "text": line})
    return result


def blank_values() -> dict[str, Any]:
    return {
        "state": "",
        "title": "",
        "kind": "",
        "language": "en",
        "visit_start": "",
        "visit_end": "",
        "sections": [
            {"area": "", "title": "", "body": "", "recommendations": ""}
            for _ in range(SECTION_BLOCKS)
        ],
    }


def values_of(report: ReportRead) -> dict[str, Any]:
    """A report as the form's values (for editing a draft)."""
    values = blank_values()
    values |= {
        "state": report.state.code,
        "title": report.title,
        "kind": report.kind,
        "language": report.language,
        "visit_start": report.visit_start.isoformat(),
        "visit_end": report.visit_end.isoformat(),
    }
    for index, section in enumerate(report.sections[:SECTION_BLOCKS]):
        values["sections"][index] = {
            "area": section.area,
            "title": section.title,
            "body": section.body,
            "recommendations": recommendations_text(section.recommendations),
        }
    return values


def submitted_values(portal: GuardedPortal) -> dict[str, Any]:
    """What the analyst typed, as the form's values (shown again when there are errors)."""
    values: dict[str, Any] = {
        name: portal.field(name)
        for name in ("state", "title", "kind", "language", "visit_start", "visit_end")
    }
    values["sections"] = [
        {
            "area": portal.field(f"sections.{index}.area"),
            "title": portal.field(f"sections.{index}.title"),
            # Browsers send a textarea's line breaks as CRLF.
            "body": portal.field(f"sections.{index}.body").replace("\r\n", "\n"),
            "recommendations": portal.field(f"sections.{index}.recommendations"),
        }
        for index in range(SECTION_BLOCKS)
    ]
    return values


def validate_content(
    portal: GuardedPortal, values: dict[str, Any], *, with_state: bool
) -> tuple[ReportContent | None, dict[str, str]]:
    """The API's request schema from the form; blank section blocks are left out.

    Error names are the form's field names (`sections.3.title`), whichever blocks were blank.
    """
    blocks = [
        index
        for index, section in enumerate(values["sections"])
        if any(section[name] for name in ("area", "title", "body", "recommendations"))
    ]
    data: dict[str, Any] = {
        name: values[name] for name in ("title", "kind", "language", "visit_start", "visit_end")
    }
    data["sections"] = [
        {
            "area": values["sections"][index]["area"],
            "title": values["sections"][index]["title"],
            "body": values["sections"][index]["body"],
            "recommendations": parse_recommendations(values["sections"][index]["recommendations"]),
        }
        for index in blocks
    ]
    if with_state:
        data["state"] = values["state"]
    schema: type[ReportContent] = ReportCreate if with_state else ReportContent
    model, raw = portal.validate(schema, data)
    errors: dict[str, str] = {}
    for name, message in raw.items():
        parts = name.split(".")
        if parts[0] == "sections" and len(parts) >= 3 and parts[1].isdigit():
            field = "recommendations" if parts[2] == "recommendations" else parts[2]
            errors.setdefault(f"sections.{blocks[int(parts[1])]}.{field}", message)
        elif name == "sections":
            errors.setdefault(
                "sections.0.area",
                portal.gettext("Fill in at least one section.")
                if not blocks
                else portal.gettext("A report has at most eight sections."),
            )
        elif name == "_":
            errors.update(_consistency_errors(portal, values, blocks))
        elif name == "state" or name == "language":
            errors[name] = portal.gettext("Choose a value from the list.")
        else:
            errors[name] = message
    if raw and not errors:
        errors["_"] = raw.get("_", portal.gettext("Check the form."))
    return model, errors


def _consistency_errors(
    portal: GuardedPortal, values: dict[str, Any], blocks: list[int]
) -> dict[str, str]:
    """The schema's whole-report rules, said at the field they concern."""
    errors: dict[str, str] = {}
    if values["visit_end"] < values["visit_start"]:
        errors["visit_end"] = portal.gettext("The visit cannot end before it starts.")
    seen: set[str] = set()
    for index in blocks:
        area = values["sections"][index]["area"]
        if area in seen:
            errors[f"sections.{index}.area"] = portal.gettext(
                "Each thematic area may appear once in a report."
            )
        seen.add(area)
    return errors


def section_options(portal: GuardedPortal, report: ReportRead) -> list[tuple[str, str]]:
    return [
        (str(section.id), f"{portal.label(section.area)} — {section.title}")
        for section in report.sections
    ]


async def form_context(portal: GuardedPortal) -> dict[str, Any]:
    names = await portal.organization_names()
    states = sorted(
        (org for org in names.values() if org.kind == OrganizationKind.MEMBER_STATE.value),
        key=lambda org: portal.org_name(org.code),
    )
    return {
        "state_options": [(org.code, portal.org_name(org.code)) for org in states],
        "kind_options": portal.options(kind.value for kind in ReportKind),
        "area_options": portal.options(area.value for area in ThematicArea),
        "language_options": [(code, code) for code in LANGUAGES],
        "blocks": SECTION_BLOCKS,
    }


# --- pages ---------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
async def reports_list(
    portal: CanRead,
    state: Annotated[str | None, Query(max_length=32)] = None,
    report_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    year: Annotated[str | None, Query(max_length=4)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Reports in the reader's scope, newest visit first (a State sees only its own)."""
    everything = portal.access.everything
    filters = ReportFilters(
        state=(state or None) if everything else None,
        status=choice(ReportStatus, report_status, "status"),
        kind=choice(ReportKind, kind, "kind"),
        year=year_of(year),
    )
    page = await service.list_reports(
        portal.session, portal.access, filters, PageRequest(cursor=cursor or None)
    )
    return await portal.render(
        "reports/list.html",
        page=page,
        filters={
            "state": state or "",
            "status": report_status or "",
            "kind": kind or "",
            "year": year or "",
        },
        show_state_filter=everything,
        status_options=portal.options(s.value for s in ReportStatus),
        kind_options=portal.options(k.value for k in ReportKind),
        can_write=portal.granted("report", "write"),
    )


@router.get("/reports/new", response_class=HTMLResponse)
async def new_report_form(portal: CanWrite) -> Response:
    return await portal.render(
        "reports/form.html",
        report=None,
        values=blank_values(),
        errors={},
        **await form_context(portal),
    )


@router.post("/reports/new", response_class=HTMLResponse)
async def create_report(portal: CanWrite) -> Response:
    """Draft a report; the form comes back with its errors (422) and nothing is written."""
    values = submitted_values(portal)
    model, errors = validate_content(portal, values, with_state=True)
    if model is None or errors:
        return await portal.render(
            "reports/form.html",
            status=422,
            report=None,
            values=values,
            errors=errors,
            **await form_context(portal),
        )
    assert isinstance(model, ReportCreate)
    report = await service.draft_report(portal.session, portal.access, model)
    return portal.redirect(
        f"/portal/reports/{report.id}", notice=portal.gettext("The draft report was saved.")
    )


@router.get("/reports/{report_id}", response_class=HTMLResponse)
async def report_page(report_id: uuid.UUID, portal: CanRead) -> Response:
    """One version in full, its attachments and the other versions the reader may read."""
    report = await service.read_report(portal.session, portal.access, report_id)
    versions = await service.list_reports(
        portal.session,
        portal.access,
        ReportFilters(lineage=report.lineage_id),
        PageRequest(limit=200),
    )
    return await portal.render(
        "reports/detail.html",
        report=report,
        versions=sorted(versions.items, key=lambda v: v.version),
        section_titles={section.id: section.title for section in report.sections},
        can_write=portal.granted("report", "write"),
        can_read_consent=portal.granted("consent", "read"),
        latest_version=max([v.version for v in versions.items] + [report.version]),
    )


async def _readable(portal: GuardedPortal, report_id: uuid.UUID) -> ReportRead:
    """A report for an analyst's form, read (and audited) as the API reads it."""
    access = await portal.access_for("report", "read")
    if access is None:
        raise ForbiddenError(portal.gettext("Your roles do not allow read on report."))
    return await service.read_report(portal.session, access, report_id)


@router.get("/reports/{report_id}/edit", response_class=HTMLResponse)
async def edit_report_form(report_id: uuid.UUID, portal: CanWrite) -> Response:
    report = await _readable(portal, report_id)
    if report.status != ReportStatus.DRAFT.value:
        return portal.redirect(
            f"/portal/reports/{report.id}",
            notice=portal.gettext("An adopted report cannot be edited: amend it."),
        )
    return await portal.render(
        "reports/form.html",
        report=report,
        values=values_of(report),
        errors={},
        **await form_context(portal),
    )


@router.post("/reports/{report_id}/edit", response_class=HTMLResponse)
async def update_report(report_id: uuid.UUID, portal: CanWrite) -> Response:
    values = submitted_values(portal)
    model, errors = validate_content(portal, values, with_state=False)
    if model is None or errors:
        report = await _readable(portal, report_id)
        values["state"] = report.state.code
        return await portal.render(
            "reports/form.html",
            status=422,
            report=report,
            values=values,
            errors=errors,
            **await form_context(portal),
        )
    report = await service.update_report(portal.session, portal.access, report_id, model)
    return portal.redirect(
        f"/portal/reports/{report.id}", notice=portal.gettext("The draft report was saved.")
    )


@router.get("/reports/{report_id}/adopt", response_class=HTMLResponse)
async def adopt_confirmation(report_id: uuid.UUID, portal: CanWrite) -> Response:
    report = await _readable(portal, report_id)
    return await portal.render("reports/adopt.html", report=report)


@router.post("/reports/{report_id}/adopt", response_class=HTMLResponse)
async def adopt_report(report_id: uuid.UUID, portal: CanWrite) -> Response:
    report = await service.adopt_report(portal.session, portal.access, report_id)
    return portal.redirect(
        f"/portal/reports/{report.id}", notice=portal.gettext("The report was adopted.")
    )


@router.post("/reports/{report_id}/amend", response_class=HTMLResponse)
async def amend_report(report_id: uuid.UUID, portal: CanWrite) -> Response:
    """A new draft version; the analyst continues on its edit form."""
    report = await service.amend_report(portal.session, portal.access, report_id)
    return portal.redirect(
        f"/portal/reports/{report.id}/edit",
        notice=portal.gettext(
            "Version %(version)s was created as a draft.", version=report.version
        ),
    )


@router.get("/reports/{report_id}/attachments", response_class=HTMLResponse)
async def upload_form(report_id: uuid.UUID, portal: CanWrite) -> Response:
    report = await _readable(portal, report_id)
    return await portal.render(
        "reports/upload.html",
        report=report,
        errors={},
        section="",
        section_options=section_options(portal, report),
    )


@router.post("/reports/{report_id}/attachments", response_class=HTMLResponse)
async def upload_attachment(report_id: uuid.UUID, portal: CanWrite) -> Response:
    """The API's upload (type from content, size limit, audit), from a multipart form."""
    upload = portal.form.get("file") if portal.form is not None else None
    section = portal.field("section_id")
    errors: dict[str, str] = {}
    section_id: uuid.UUID | None = None
    if not isinstance(upload, StarletteUploadFile) or not upload.filename:
        errors["file"] = portal.gettext("Choose a file.")
    if section:
        try:
            section_id = uuid.UUID(section)
        except ValueError:
            errors["section_id"] = portal.gettext("Choose a value from the list.")
    if errors or not isinstance(upload, StarletteUploadFile):
        report = await _readable(portal, report_id)
        return await portal.render(
            "reports/upload.html",
            status=422,
            report=report,
            errors=errors,
            section=section,
            section_options=section_options(portal, report),
        )
    attachment = await service.attach_file(
        portal.session,
        portal.access,
        report_id,
        section_id,
        upload.file,
        upload.filename,
        portal.request.app.state.settings.attachment_max_bytes,
    )
    return portal.redirect(
        f"/portal/reports/{report_id}#attachments",
        notice=portal.gettext("%(name)s was attached.", name=attachment.filename),
    )
