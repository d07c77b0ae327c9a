"""Portal pages of joint planning (HTML): the activities, the coordination matrix, a
State's timeline, and the charts drawn for them.

Every page calls the service function its API route calls, with the grant of the same
guard (`activity` read or write), so the scope (no row of a State that does not share,
404 outside it), the refusals and the audit events are the API's. The charts are SVG
images served from their own routes: a page has no script and no inline style, and its
CSP stays the portal's; each chart's numbers are also on its page as a table.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from ctcp.assistance import needs
from ctcp.assistance.models import NeedStatus, Programme
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.core.errors import ConflictError, DomainError, NotFoundError, ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from ctcp.organizations.models import OrganizationKind
from ctcp.planning import charts, exchange, service
from ctcp.planning.models import MOVES, ActivityKind, ActivityStatus
from ctcp.planning.regions import RegionalGroup, group_of
from ctcp.planning.schemas import (
    MAX_OUTPUTS,
    ActivityCreate,
    ActivityRead,
    ActivityUpdate,
    EntitySummary,
    Matrix,
    MatrixCell,
)
from ctcp.planning.service import ActivityFilters, MatrixBy, MatrixFilters
from ctcp.reports.models import ThematicArea
from ctcp.web import i18n
from ctcp.web.labels import N_
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ReadActivities = Annotated[GuardedPortal, page_guard("activity", "read")]
WriteActivities = Annotated[GuardedPortal, page_guard("activity", "write")]


async def _audited_writer(request: Request, portal: WriteActivities) -> GuardedPortal:
    """The write grant of a form's POST, with the refusals the page does not answer itself
    (409, 422) audited as the API audits them."""
    service.audit_refusals(
        portal.session,
        portal.access,
        object_id=request.path_params.get("activity_id"),
        method=request.method,
        path=request.url.path[:200],
    )
    return portal


SubmitActivities = Annotated[GuardedPortal, Depends(_audited_writer)]

FilterQuery = Annotated[str | None, Query(max_length=64)]
CursorParam = Annotated[str | None, Query(max_length=512)]
FormatQuery = Annotated[Literal["csv", "hxl", "iati"], Query()]
StateCode = Annotated[str, Path(max_length=32)]
E = TypeVar("E", bound=StrEnum)

# A chart is an image: it may style itself (pygal writes a <style>), and nothing else.
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'"
EXPORTS = {
    "csv": ("text/csv", "activities.csv"),
    "hxl": ("text/csv", "activities-hxl.csv"),
    "iati": ("application/xml", "activities.xml"),
}
# A State's timeline shows this many activities a page (the chart stays readable).
TIMELINE_LIMIT = charts.MOST_ACTIVITIES
# Blank rows of outputs the edit form offers beside those recorded.
BLANK_OUTPUTS = 3

# Words for the codes of this feature, in the reader's language.
PLANNING_LABELS: dict[str, str] = {
    "planned": N_("Planned"),
    "ongoing": N_("Ongoing"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "training": N_("Training"),
    "legislative_drafting": N_("Legislative drafting support"),
    "equipment": N_("Equipment"),
    "mentoring": N_("Mentoring"),
    "assessment": N_("Assessment"),
    "other": N_("Other"),
    "african": N_("African Group"),
    "asia_pacific": N_("Asia-Pacific Group"),
    "eastern_european": N_("Eastern European Group"),
    "latin_american_caribbean": N_("Latin American and Caribbean Group"),
    "western_european_others": N_("Western European and Others Group"),
}
SHOW_CHOICES = {
    "gaps": N_("States with a gap"),
    "overlaps": N_("States with an overlap"),
}
BY_CHOICES = {
    MatrixBy.AREA.value: N_("Thematic area"),
    MatrixBy.PROGRAMME.value: N_("Programme"),
}
# What the schema's checks across fields mean, said next to the field they concern.
MODEL_RULES = (
    ("end date", "ends_on", N_("The end date is before the start date.")),
    ("budget", "budget", N_("A budget and its currency go together: fill in both or neither.")),
    ("outputs", "outputs", N_("Outputs are recorded for a completed activity.")),
)
# The service's refusals of a form, by the field they name.
SERVICE_MESSAGES = {
    "state": N_("Choose a State from the list."),
    "lead": N_("Choose a Compact entity from the list."),
    "partners": N_("Choose Compact entities from the list; the lead is not also a partner."),
    "need_ids": N_("Choose needs of this State from the list."),
    "measure_ids": N_("Choose plan measures of this State in the lead's charge."),
    "ends_on": N_("The end date is before the start date."),
    "budget": N_("A budget and its currency go together: fill in both or neither."),
    "outputs": N_("Outputs are recorded for a completed activity."),
    "offer_id": N_("Not an accepted offer of the lead to this State."),
}
# What a malformed value of these fields should be (the schema says it in English): the
# start of the schema's message, and the reader's.
FIELD_MESSAGES = {
    "currency": ("not ", N_("Enter an ISO 4217 currency code, such as USD or EUR.")),
    "starts_on": ("must fall", N_("Enter a date between 1990 and 2100.")),
    "ends_on": ("must fall", N_("Enter a date between 1990 and 2100.")),
}
TEXT_FIELDS = (
    "area",
    "programme",
    "kind",
    "title",
    "description",
    "status",
    "starts_on",
    "ends_on",
    "budget",
    "currency",
)
REQUIRED = ("area", "kind", "title", "description", "status", "starts_on")
OUTPUT_PARTS = ("name", "value", "unit")


# --- small helpers ------------------------------------------------------------------


def labeller(portal: GuardedPortal) -> Callable[[object], str]:
    """`label(code)` for this feature's pages: its own codes first, then the portal's."""

    def label(code: object) -> str:
        if code is None:
            return ""
        text = PLANNING_LABELS.get(str(code))
        return portal.gettext(text) if text is not None else portal.label(str(code))

    return label


def _options(portal: GuardedPortal, codes: Iterable[str]) -> list[tuple[str, str]]:
    label = labeller(portal)
    return [(str(code), label(code)) for code in codes]


def _choice(kind: type[E], value: str | None, name: str) -> E | None:
    """A coded filter from the query string; blank means none, anything else unknown is 422."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"Unknown {name}: {value!r}.", loc=["query", name]) from None


def _year(value: str | None) -> int | None:
    """A calendar year from the query string (the API's bounds); blank means none."""
    text = (value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 1990 <= int(text) <= 2100):
        raise ValidationError(f"Not a year: {value!r}.", loc=["query", "year"])
    return int(text)


def _code(value: str | None) -> str | None:
    return value.strip().upper() or None if value else None


def _version(value: str) -> int | None:
    """The version a form was based on (its hidden field); blank: none named."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValidationError("The form's version is not a version.", loc=["body", "version"])
    return int(value)


async def _organizations(
    portal: GuardedPortal, *kinds: OrganizationKind, leave_out: str | None = None
) -> list[tuple[str, str]]:
    """(code, name) of the active organizations of these kinds, for selects."""
    names = await portal.organization_names()
    wanted = {kind.value for kind in kinds}
    found = [
        (code, portal.org_name(code))
        for code, organization in names.items()
        if organization.kind in wanted and organization.active and code != leave_out
    ]
    return sorted(found, key=lambda pair: pair[1].casefold())


def _may_write(access: Access | None, activity: ActivityRead) -> bool:
    """The service's rule for writers: CTED any activity, an entity those it leads."""
    return access is not None and service.may_write(access, activity)


def _query(**values: object) -> str:
    """A query string of the values given (blank ones left out)."""
    kept = {name: str(value) for name, value in values.items() if value not in (None, "")}
    return urlencode(kept)


def _svg(body: str) -> Response:
    """A chart: its own CSP (set before the middleware's default, which then leaves it)."""
    return Response(
        content=body.encode("utf-8"),
        media_type="image/svg+xml",
        headers={"Content-Security-Policy": CHART_CSP},
    )


# --- the activities -----------------------------------------------------------------


def _activity_filters(
    state: str | None,
    area: str | None,
    lead: str | None,
    status: str | None,
    year: str | None,
    programme: str | None,
) -> tuple[ActivityFilters, dict[str, str]]:
    """The service's filters from the filter form, and the form's values to show again."""
    filters = ActivityFilters(
        state=_code(state),
        area=_choice(ThematicArea, area, "area"),
        lead=_code(lead),
        status=_choice(ActivityStatus, status, "status"),
        year=_year(year),
        programme=_choice(Programme, programme, "programme"),
    )
    typed = {
        "state": filters.state or "",
        "area": area or "",
        "lead": filters.lead or "",
        "status": status or "",
        "year": str(filters.year or ""),
        "programme": programme or "",
    }
    return filters, typed


@router.get("/activities", response_class=HTMLResponse)
async def activities_page(
    portal: ReadActivities,
    state: FilterQuery = None,
    area: FilterQuery = None,
    lead: FilterQuery = None,
    status: FilterQuery = None,
    year: FilterQuery = None,
    programme: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    """The activities the reader may read, newest first, with the API's filters."""
    filters, typed = _activity_filters(state, area, lead, status, year, programme)
    page = await service.list_activities(
        portal.session, portal.access, filters, PageRequest(DEFAULT_LIMIT, cursor or None)
    )
    used = {name: value for name, value in typed.items() if value}
    return await portal.render(
        "planning/activities.html",
        label=labeller(portal),
        page=page,
        filters=typed,
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        lead_options=await _organizations(
            portal, OrganizationKind.COMPACT_ENTITY, OrganizationKind.SECRETARIAT
        ),
        area_options=_options(portal, ThematicArea),
        programme_options=_options(portal, Programme),
        status_options=_options(portal, ActivityStatus),
        exports={
            format: f"{PREFIX}/activities/export?" + urlencode(used | {"format": format})
            for format in EXPORTS
        },
        can_add=portal.granted("activity", "write"),
    )


@router.get("/activities/export")
async def export_download(
    portal: ReadActivities,
    format: FormatQuery = "csv",
    state: FilterQuery = None,
    area: FilterQuery = None,
    lead: FilterQuery = None,
    status: FilterQuery = None,
    year: FilterQuery = None,
    programme: FilterQuery = None,
) -> Response:
    """The API's export of what the reader may list under the filters, as a download
    (audited alike, as `activity.export`)."""
    filters, _ = _activity_filters(state, area, lead, status, year, programme)
    found = await service.export_activities(portal.session, portal.access, filters, format=format)
    if format == "iati":
        body = exchange.to_iati(found)
    elif format == "hxl":
        body = exchange.to_hxl(found)
    else:
        body = exchange.to_csv(found)
    media_type, name = EXPORTS[format]
    return Response(
        content=body.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the activity form --------------------------------------------------------------


@dataclass
class NeedChoice:
    id: str
    text: str


async def _need_choices(
    portal: GuardedPortal, state: str, linked: Iterable[uuid.UUID] = ()
) -> list[NeedChoice]:
    """The State's open needs the writer may read (and those the activity answers)."""
    access = await portal.access_for("need", "read")
    label = labeller(portal)
    found: list[NeedChoice] = []
    seen: set[str] = set()
    if access is not None:
        whole = PageRequest(limit=MAX_LIMIT)
        for wanted in (NeedStatus.OPEN, NeedStatus.PARTIALLY_MET):
            filters = needs.NeedFilters(state=state, status=wanted)
            for need in (await needs.list_needs(portal.session, access, filters, whole)).items:
                text = f"{label(need.area)} · {label(need.priority)} · {need.description[:100]}"
                found.append(NeedChoice(str(need.id), text))
                seen.add(str(need.id))
    for need_id in linked:
        if str(need_id) not in seen:
            text = portal.gettext("A need no longer open (%(id)s)", id=str(need_id)[:8])
            found.append(NeedChoice(str(need_id), text))
    return found


def _output_rows(portal: GuardedPortal) -> list[tuple[int, dict[str, str]]]:
    """The outputs typed in the form: (row on the form, its fields), blank rows left out."""
    rows = []
    for index in range(MAX_OUTPUTS):
        row = {part: portal.field(f"outputs-{index}-{part}") for part in OUTPUT_PARTS}
        if any(row.values()):
            rows.append((index, row))
    return rows


def _submitted(portal: GuardedPortal) -> dict[str, Any]:
    values: dict[str, Any] = {name: portal.field(name) for name in TEXT_FIELDS}
    values["currency"] = values["currency"].upper()
    values["partners"] = portal.fields("partners")
    values["need_ids"] = portal.fields("need_ids")
    rows = _output_rows(portal)
    values["outputs"] = [row for _, row in rows]
    values["output_rows"] = rows
    return values


def _outputs_data(values: dict[str, Any]) -> list[dict[str, str]]:
    return [{part: value for part, value in row.items() if value} for row in values["outputs"]]


def _plain_errors(
    portal: GuardedPortal, errors: dict[str, str], rows: list[tuple[int, dict[str, str]]]
) -> dict[str, str]:
    """The schema's errors named by the form's fields, in the reader's language."""
    plain: dict[str, str] = {}
    for name, message in errors.items():
        parts = name.split(".")
        if parts[0] == "outputs" and len(parts) == 3 and parts[1].isdigit():
            index = int(parts[1])
            form_index = rows[index][0] if index < len(rows) else index
            plain.setdefault(f"outputs-{form_index}-{parts[2]}", message)
            continue
        english, instead = FIELD_MESSAGES.get(parts[0], ("", ""))
        if english and message.startswith(english):
            message = portal.gettext(instead)
        if parts[0] in ("_", ""):
            for words, field_name, text in MODEL_RULES:
                if words in message:
                    plain.setdefault(field_name, portal.gettext(text))
                    break
            else:
                plain.setdefault("_", message)
            continue
        plain.setdefault(parts[0], message)
    return plain


def _required_errors(portal: GuardedPortal, values: dict[str, Any]) -> dict[str, str]:
    return {
        name: portal.gettext("Fill in this field.") for name in REQUIRED if not values.get(name)
    }


def _refused(
    portal: GuardedPortal, error: DomainError, activity_id: uuid.UUID | None = None
) -> dict[str, str]:
    """A refusal of the service (the form's content breaks a rule), audited as the API
    audits its own (`service.audit_refusals`: the page answers with the form, so nothing
    rolls back to record it), and said next to the field it names."""
    service.record_refusal(
        portal.session,
        portal.access,
        status=error.status,
        reason=error.detail,
        object_id=str(activity_id) if activity_id else None,
        method=portal.request.method,
        path=portal.request.url.path[:200],
    )
    errors = error.extra.get("errors") or [{"loc": [], "msg": error.detail}]
    shown: dict[str, str] = {}
    for item in errors:
        loc = [str(part) for part in item.get("loc", [])]
        name = loc[-1] if loc else "_"
        message = SERVICE_MESSAGES.get(name)
        shown.setdefault(
            name if message else "_", portal.gettext(message) if message else error.detail
        )
    return shown


async def _activity_form(
    portal: GuardedPortal,
    activity: ActivityRead | None,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status: int = 200,
) -> Response:
    """The form of a new activity (`activity` None) or of an edit; a new one asks for
    its State first, whose open needs the form then lists."""
    on_behalf = DataScope.ALL in portal.access.scopes
    state = activity.state.code if activity else values.get("state", "")
    state_options = await _organizations(portal, OrganizationKind.MEMBER_STATE)
    known_state = state in {code for code, _ in state_options}
    lead = activity.lead.code if activity else (values.get("lead") or "")
    linked = [uuid.UUID(i) for i in values.get("need_ids", []) if _is_uuid(i)]
    statuses: list[str] = [status_.value for status_ in ActivityStatus]
    if activity is not None:
        statuses = [activity.status, *sorted(MOVES[activity.status])]
    rows = values.get("output_rows") or list(enumerate(values.get("outputs", [])))
    blank = {part: "" for part in OUTPUT_PARTS}
    next_index = max((index for index, _ in rows), default=-1) + 1
    output_rows = [
        *rows,
        *(
            (index, blank)
            for index in range(next_index, min(next_index + BLANK_OUTPUTS, MAX_OUTPUTS))
        ),
    ]
    return await portal.render(
        "planning/activity_form.html",
        status=status,
        label=labeller(portal),
        activity=activity,
        values=values,
        errors=errors,
        state=state if known_state else "",
        state_options=state_options,
        on_behalf=on_behalf,
        lead=lead or portal.access.organization.code,
        lead_options=await _organizations(
            portal, OrganizationKind.COMPACT_ENTITY, OrganizationKind.SECRETARIAT
        )
        if on_behalf and activity is None
        else [],
        partner_options=await _organizations(
            portal,
            OrganizationKind.COMPACT_ENTITY,
            OrganizationKind.SECRETARIAT,
            leave_out=None if on_behalf else portal.access.organization.code,
        ),
        needs=await _need_choices(portal, state, linked) if known_state else [],
        area_options=_options(portal, ThematicArea),
        programme_options=_options(portal, Programme),
        kind_options=_options(portal, ActivityKind),
        status_options=_options(portal, statuses),
        output_rows=output_rows,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _blank_values(state: str) -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in TEXT_FIELDS}
    values |= {
        "state": state,
        "kind": ActivityKind.OTHER.value,
        "status": ActivityStatus.PLANNED.value,
        "lead": "",
        "partners": [],
        "need_ids": [],
        "outputs": [],
    }
    return values


@router.get("/activities/new", response_class=HTMLResponse)
async def new_activity_page(portal: WriteActivities, state: FilterQuery = None) -> Response:
    """Record an activity: first its State, then the rest (with the State's open needs)."""
    return await _activity_form(portal, None, _blank_values(_code(state) or ""), {})


@router.post("/activities/new", response_class=HTMLResponse)
async def create_activity(portal: SubmitActivities) -> Response:
    """An entity's focal point records an activity their organization leads; CTED
    chooses the lead."""
    on_behalf = DataScope.ALL in portal.access.scopes
    values = _submitted(portal)
    values["state"] = portal.field("state").upper()
    values["lead"] = portal.field("lead").upper() if on_behalf else ""
    data: dict[str, Any] = {
        name: value for name, value in values.items() if name in TEXT_FIELDS and value != ""
    }
    data |= {
        "state": values["state"],
        "partners": values["partners"],
        "need_ids": values["need_ids"],
        "outputs": _outputs_data(values),
    }
    if values["lead"]:
        data["lead"] = values["lead"]
    body, schema_errors = portal.validate(ActivityCreate, data)
    errors = _plain_errors(portal, schema_errors, values["output_rows"])
    if on_behalf and not values["lead"]:
        errors.setdefault("lead", portal.gettext("Choose a Compact entity from the list."))
    states = {code for code, _ in await _organizations(portal, OrganizationKind.MEMBER_STATE)}
    if values["state"] not in states:
        errors["state"] = portal.gettext("Choose a State from the list.")
    if body is None or errors:
        return await _activity_form(portal, None, values, errors, status=422)
    try:
        created = await service.create_activity(portal.session, portal.access, body)
    except (ValidationError, ConflictError) as error:
        errors = _refused(portal, error)
        return await _activity_form(portal, None, values, errors, status=error.status)
    return portal.redirect(
        f"{PREFIX}/activities/{created.id}", notice=portal.gettext("The activity was recorded.")
    )


def _values_of(activity: ActivityRead) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: "" if getattr(activity, name) is None else str(getattr(activity, name))
        for name in TEXT_FIELDS
    }
    values["budget"] = "" if activity.budget is None else f"{activity.budget:f}"
    values["partners"] = [partner.code for partner in activity.partners]
    values["need_ids"] = [str(need_id) for need_id in activity.need_ids]
    values["outputs"] = [
        {part: _figure(output.get(part)) for part in OUTPUT_PARTS} for output in activity.outputs
    ]
    values["version"] = str(activity.version)
    return values


def _figure(value: object) -> str:
    """An output's part as the form shows it (40.0 as 40)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def _writable(portal: GuardedPortal, activity_id: uuid.UUID) -> ActivityRead:
    """The activity, if the reader may write it; otherwise 404, as the API's PATCH."""
    activity = await service.read_activity(portal.session, portal.access, activity_id)
    if not _may_write(portal.access, activity):
        raise NotFoundError("No such activity.")
    return activity


@router.get("/activities/{activity_id}/edit", response_class=HTMLResponse)
async def edit_activity_page(activity_id: uuid.UUID, portal: WriteActivities) -> Response:
    activity = await _writable(portal, activity_id)
    return await _activity_form(portal, activity, _values_of(activity), {})


@router.post("/activities/{activity_id}/edit", response_class=HTMLResponse)
async def update_activity(activity_id: uuid.UUID, portal: SubmitActivities) -> Response:
    """Save the form over the version it was based on; a stale edit saves nothing and
    comes back (409) with a message, the reader's form kept."""
    activity = await _writable(portal, activity_id)
    values = _submitted(portal) | {"version": portal.field("version")}
    based_on = _version(values["version"])
    data: dict[str, Any] = {
        name: values[name] or None for name in TEXT_FIELDS if values[name] or name not in REQUIRED
    }
    data |= {
        "partners": values["partners"],
        "need_ids": values["need_ids"],
        "outputs": _outputs_data(values),
        "version": based_on,
    }
    body, schema_errors = portal.validate(ActivityUpdate, data)
    errors = _required_errors(portal, values) | _plain_errors(
        portal, schema_errors, values["output_rows"]
    )
    wanted = values["status"]
    if wanted and wanted != activity.status and wanted not in MOVES[activity.status]:
        errors.setdefault(
            "status",
            portal.gettext(
                "An activity that is %(now)s cannot become %(wanted)s.",
                now=labeller(portal)(activity.status),
                wanted=labeller(portal)(wanted),
            ),
        )
    if values["outputs"] and wanted != ActivityStatus.COMPLETED.value:
        errors.setdefault(
            "outputs", portal.gettext("Outputs are recorded for a completed activity.")
        )
    if body is None or errors:
        return await _activity_form(portal, activity, values, errors, status=422)
    try:
        updated = await service.update_activity(portal.session, portal.access, activity_id, body)
    except ConflictError as error:
        current = await service.read_activity(portal.session, portal.access, activity_id)
        _refused(portal, error, activity_id)
        message = portal.gettext(
            "Someone changed this activity after you opened it (it is now at version "
            "%(version)s). Nothing was saved. Check the activity, then save your form again.",
            version=current.version,
        )
        return await _activity_form(
            portal,
            current,
            values | {"version": str(current.version)},
            {"_": message},
            status=409,
        )
    except ValidationError as error:
        errors = _refused(portal, error, activity_id)
        return await _activity_form(portal, activity, values, errors, status=422)
    notice = (
        portal.gettext("Saved.")
        if updated.version != activity.version
        else portal.gettext("Nothing was changed.")
    )
    return portal.redirect(f"{PREFIX}/activities/{activity_id}", notice=notice)


@router.post("/activities/{activity_id}/status", response_class=HTMLResponse)
async def move_activity(activity_id: uuid.UUID, portal: SubmitActivities) -> Response:
    """A status button of the activity's page: forward only, over the version shown."""
    try:
        wanted = ActivityStatus(portal.field("status"))
    except ValueError:
        raise ValidationError(
            portal.gettext("Name the new status."), loc=["body", "status"]
        ) from None
    body = ActivityUpdate(status=wanted, version=_version(portal.field("version")))
    back = f"{PREFIX}/activities/{activity_id}"
    try:
        await service.update_activity(portal.session, portal.access, activity_id, body)
    except ConflictError as error:
        _refused(portal, error, activity_id)
        return portal.redirect(
            back,
            notice=portal.gettext(
                "Nothing was done: the activity changed after you opened it, or cannot "
                "take that status. Check it, then try again."
            ),
        )
    notice = portal.gettext("The activity is now %(status)s.", status=labeller(portal)(wanted))
    if wanted is ActivityStatus.COMPLETED:
        notice += " " + portal.gettext("Record its outputs with Edit.")
    return portal.redirect(back, notice=notice)


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
async def activity_page(activity_id: uuid.UUID, portal: ReadActivities) -> Response:
    activity = await service.read_activity(portal.session, portal.access, activity_id)
    can_write = _may_write(await portal.access_for("activity", "write"), activity)
    return await portal.render(
        "planning/activity.html",
        label=labeller(portal),
        activity=activity,
        can_write=can_write,
        moves=sorted(MOVES[activity.status]) if can_write else [],
        matrix_link=f"{PREFIX}/coordination?"
        + _query(area=activity.area, year=activity.starts_on.year),
        timeline_link=f"{PREFIX}/coordination/states/{activity.state.code}",
    )


# --- the coordination matrix --------------------------------------------------------


@dataclass
class CellView:
    """A cell as the table shows it: the service's cell (None: nothing there), its shade
    (0-4, by open needs) and the activities behind it."""

    cell: MatrixCell | None
    heat: int
    link: str

    def breakdown(self) -> list[tuple[str, int]]:
        """The cell's activities by status, the statuses it has only."""
        if self.cell is None:
            return []
        counts = self.cell.activities
        found = [
            ("planned", counts.planned),
            ("ongoing", counts.ongoing),
            ("completed", counts.completed),
            ("cancelled", counts.cancelled),
        ]
        return [(status, count) for status, count in found if count]


@dataclass
class RowView:
    """A State's row, with its totals (the per-State summary and the map's figures)."""

    state: str
    name: str
    group: str | None
    cells: list[CellView] = field(default_factory=list)
    open_needs: int = 0
    at_work: int = 0
    completed: int = 0
    gaps: int = 0
    overlaps: int = 0
    heat: int = 0


@dataclass
class ColumnView:
    key: str
    name: str
    open_needs: int = 0
    at_work: int = 0
    gaps: int = 0
    overlaps: int = 0


@dataclass
class RegionView:
    group: str | None
    rows: list[RowView]


@dataclass
class Coordination:
    """What the matrix page shows, from one read of the service's matrix."""

    columns: list[ColumnView]
    rows: list[RowView]
    regions: list[RegionView]
    most_needs: int
    cells: int


def _heat(value: int, most: int) -> int:
    """A shade of 0 (none) to 4 (the most): a quarter of the largest value each."""
    if value <= 0 or most <= 0:
        return 0
    return min(4, 1 + (4 * value - 1) // most)


def _at_work(cell: MatrixCell) -> int:
    return cell.activities.planned + cell.activities.ongoing


def _matrix_filters(
    area: str | None,
    programme: str | None,
    year: str | None,
    region: str | None,
    by: str | None,
    show: str | None,
) -> tuple[MatrixFilters, dict[str, str]]:
    filters = MatrixFilters(
        area=_choice(ThematicArea, area, "area"),
        programme=_choice(Programme, programme, "programme"),
        year=_year(year),
        region=_choice(RegionalGroup, region, "region"),
        by=_choice(MatrixBy, by, "by") or MatrixBy.AREA,
    )
    if show and show not in SHOW_CHOICES:
        raise ValidationError(f"Unknown show: {show!r}.", loc=["query", "show"])
    typed = {
        "area": area or "",
        "programme": programme or "",
        "year": str(filters.year or ""),
        "region": region or "",
        "by": filters.by.value,
        "show": show or "",
    }
    return filters, typed


def _column_keys(matrix: Matrix, filters: MatrixFilters) -> list[str]:
    """The matrix's columns: every thematic area (or the one filtered), or the programmes
    its cells name."""
    if filters.by is MatrixBy.PROGRAMME:
        return sorted({cell.programme or "" for cell in matrix.cells})
    if filters.area is not None:
        return [filters.area.value]
    return [area.value for area in ThematicArea]


def _cells_by_state(
    matrix: Matrix, filters: MatrixFilters, show: str
) -> dict[str, dict[str, MatrixCell]]:
    """State -> column -> cell; `show` keeps the States with a gap or with an overlap."""
    by_programme = filters.by is MatrixBy.PROGRAMME
    grouped: dict[str, dict[str, MatrixCell]] = {}
    for cell in matrix.cells:
        key = (cell.programme if by_programme else cell.area) or ""
        grouped.setdefault(cell.state, {})[key] = cell
    if show == "gaps":
        return {s: c for s, c in grouped.items() if any(x.gap for x in c.values())}
    if show == "overlaps":
        return {s: c for s, c in grouped.items() if any(x.overlap for x in c.values())}
    return grouped


def _row(
    portal: GuardedPortal,
    state: str,
    cells: dict[str, MatrixCell],
    columns: dict[str, ColumnView],
    filters: MatrixFilters,
    most: int,
) -> RowView:
    """A State's row, its cells linked to their activities, added to the columns' totals."""
    group = group_of(state)
    row = RowView(state, portal.org_name(state), group.value if group else None)
    for key, column in columns.items():
        found = cells.get(key)
        where = {"programme": key} if filters.by is MatrixBy.PROGRAMME else {"area": key}
        link = f"{PREFIX}/activities?" + _query(state=state, year=filters.year, **where)
        row.cells.append(CellView(found, _heat(found.open_needs, most) if found else 0, link))
        if found is None:
            continue
        for totals in (column, row):
            totals.open_needs += found.open_needs
            totals.at_work += _at_work(found)
            totals.gaps += found.gap
            totals.overlaps += found.overlap
        row.completed += found.activities.completed
    return row


def _coordination(
    portal: GuardedPortal, matrix: Matrix, filters: MatrixFilters, show: str
) -> Coordination:
    """The matrix as rows of States and columns of areas (or programmes), shaded by open
    needs, with the totals of each row and column and the rows by regional group."""
    label = labeller(portal)
    columns = {key: ColumnView(key, label(key)) for key in _column_keys(matrix, filters)}
    grouped = _cells_by_state(matrix, filters, show)
    shown = [cell for cells in grouped.values() for cell in cells.values()]
    most = max((cell.open_needs for cell in shown), default=0)
    rows = [_row(portal, state, cells, columns, filters, most) for state, cells in grouped.items()]
    rows.sort(key=lambda row: row.name.casefold())
    most_in_row = max((row.open_needs for row in rows), default=0)
    for row in rows:
        row.heat = _heat(row.open_needs, most_in_row)
    order = [group.value for group in RegionalGroup]
    regions = [
        RegionView(group, [row for row in rows if row.group == group])
        for group in [*order, None]
        if any(row.group == group for row in rows)
    ]
    return Coordination(list(columns.values()), rows, regions, most, len(shown))


@router.get("/coordination", response_class=HTMLResponse)
async def coordination_page(
    portal: ReadActivities,
    area: FilterQuery = None,
    programme: FilterQuery = None,
    year: FilterQuery = None,
    region: FilterQuery = None,
    by: FilterQuery = None,
    show: FilterQuery = None,
) -> Response:
    """Who does what where: the matrix, the States on a tile map by regional group, the
    per-State and per-entity summaries, and the charts (each with its table)."""
    filters, typed = _matrix_filters(area, programme, year, region, by, show)
    matrix = await service.read_matrix(portal.session, portal.access, filters)
    entities = await service.entity_summaries(portal.session, portal.access, filters)
    await portal.organization_names()
    query = _query(**typed)
    return await portal.render(
        "planning/coordination.html",
        label=labeller(portal),
        view=_coordination(portal, matrix, filters, typed["show"]),
        entities=entities,
        filters=typed,
        by_programme=filters.by is MatrixBy.PROGRAMME,
        area_options=_options(portal, ThematicArea),
        programme_options=_options(portal, Programme),
        region_options=_options(portal, RegionalGroup),
        by_options=[(code, portal.gettext(text)) for code, text in BY_CHOICES.items()],
        show_options=[(code, portal.gettext(text)) for code, text in SHOW_CHOICES.items()],
        columns_chart=f"{PREFIX}/coordination/charts/columns.svg" + (f"?{query}" if query else ""),
        entities_chart=f"{PREFIX}/coordination/charts/entities.svg"
        + (f"?{query}" if query else ""),
    )


@router.get("/coordination/charts/columns.svg")
async def columns_chart(
    portal: ReadActivities,
    area: FilterQuery = None,
    programme: FilterQuery = None,
    year: FilterQuery = None,
    region: FilterQuery = None,
    by: FilterQuery = None,
    show: FilterQuery = None,
) -> Response:
    """Open needs and activities at work per column of the matrix, as on its page."""
    filters, typed = _matrix_filters(area, programme, year, region, by, show)
    matrix = await service.read_matrix(portal.session, portal.access, filters)
    await portal.organization_names()
    view = _coordination(portal, matrix, filters, typed["show"])
    number = _number(portal)
    title = (
        portal.gettext("Open needs and activities at work, by programme")
        if filters.by is MatrixBy.PROGRAMME
        else portal.gettext("Open needs and activities at work, by thematic area")
    )
    return _svg(
        charts.needs_and_work(
            [(column.name, column.open_needs, column.at_work) for column in view.columns],
            title=title,
            needs_label=portal.gettext("Open needs"),
            work_label=portal.gettext("Activities planned or ongoing"),
            no_data=portal.gettext("Nothing to show"),
            number=number,
        )
    )


@router.get("/coordination/charts/entities.svg")
async def entities_chart(
    portal: ReadActivities,
    area: FilterQuery = None,
    programme: FilterQuery = None,
    year: FilterQuery = None,
    region: FilterQuery = None,
    by: FilterQuery = None,
    show: FilterQuery = None,
) -> Response:
    """Each lead entity's activities by status, as in the page's table of entities."""
    filters, _ = _matrix_filters(area, programme, year, region, by, show)
    summaries = await service.entity_summaries(portal.session, portal.access, filters)
    await portal.organization_names()
    label = labeller(portal)
    return _svg(
        charts.activities_by_status(
            [(portal.org_name(s.entity), _status_counts(s)) for s in summaries],
            title=portal.gettext("Activities by lead entity and status"),
            status_labels={status.value: label(status.value) for status in ActivityStatus},
            no_data=portal.gettext("Nothing to show"),
            number=_number(portal),
        )
    )


def _status_counts(summary: EntitySummary) -> dict[str, int]:
    counts = summary.activities
    return {
        "planned": counts.planned,
        "ongoing": counts.ongoing,
        "completed": counts.completed,
        "cancelled": counts.cancelled,
    }


def _number(portal: GuardedPortal) -> Callable[[int], str]:
    formatter = i18n.Formatter(portal.locale)

    def number(value: int) -> str:
        return formatter.number(value)

    return number


def _month(portal: GuardedPortal) -> Callable[[date], str]:
    """A timeline's dates as the reader's locale writes a month ("Jan 2027", "janv. 2027")."""
    formatter = i18n.Formatter(portal.locale)

    def month(day: date) -> str:
        # pygal hands back the axis's dates as naive datetimes (UTC): the day is the date.
        return formatter.date(day.date() if isinstance(day, datetime) else day, "MMM y")

    return month


# --- a State's timeline -------------------------------------------------------------


async def _state_activities(
    portal: GuardedPortal, code: str, year: str | None, cursor: str | None
) -> tuple[list[ActivityRead], str | None, ActivityFilters]:
    """A page of the State's activities the reader may read, in order of their start;
    none in a State whose matrix row the reader does not get (an entity: a State that
    does not share its needs, even where the entity works there)."""
    filters = ActivityFilters(state=_code(code), year=_year(year))
    # A coordination view: only in a State whose matrix row the reader gets.
    page = await service.list_activities(
        portal.session,
        portal.access,
        filters,
        PageRequest(TIMELINE_LIMIT, cursor or None),
        matrix_rows=True,
    )
    ordered = sorted(page.items, key=lambda a: (a.starts_on, a.ends_on or date.max, a.title))
    return ordered, page.next_cursor, filters


@router.get("/coordination/states/{code}", response_class=HTMLResponse)
async def state_page(
    code: StateCode,
    portal: ReadActivities,
    year: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    """A State's activities on a timeline, with the same as a table."""
    activities, next_cursor, filters = await _state_activities(portal, code, year, cursor)
    state = filters.state or ""
    query = _query(year=filters.year, cursor=cursor)
    return await portal.render(
        "planning/state.html",
        label=labeller(portal),
        state=state,
        activities=activities,
        next_cursor=next_cursor,
        year=str(filters.year or ""),
        chart=f"{PREFIX}/coordination/states/{state}/timeline.svg" + (f"?{query}" if query else ""),
        matrix_link=f"{PREFIX}/coordination?" + _query(year=filters.year)
        if filters.year
        else f"{PREFIX}/coordination",
    )


@router.get("/coordination/states/{code}/timeline.svg")
async def timeline_chart(
    code: StateCode,
    portal: ReadActivities,
    year: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    activities, _, filters = await _state_activities(portal, code, year, cursor)
    await portal.organization_names()
    label = labeller(portal)
    bars = [
        charts.Bar(
            f"{activity.title} · {label(activity.status)}"
            + ("" if activity.ends_on else " · " + portal.gettext("no end date")),
            activity.status,
            activity.starts_on,
            activity.ends_on,
        )
        for activity in activities
    ]
    return _svg(
        charts.timeline(
            bars,
            title=portal.gettext(
                "Activities in %(state)s", state=portal.org_name(filters.state or "")
            ),
            no_data=portal.gettext("Nothing to show"),
            when=_month(portal),
        )
    )
