"""Portal pages of assistance (HTML), over the same service functions as the JSON API.

Needs, assistance requests and their workflow, offers, and implementation plans. Every
page calls the service function its API route calls, with the grant of the same guard,
so scoping (404 outside scope), refusals and audit events are the API's.
"""

import uuid
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ctcp.assistance import consultations, needs, offers, requests
from ctcp.assistance.consultations import ConsultationFilters
from ctcp.assistance.models import (
    NeedSource,
    NeedStatus,
    OfferStatus,
    Programme,
    RequestStatus,
)
from ctcp.assistance.needs import NeedFilters
from ctcp.assistance.offers import OfferFilters
from ctcp.assistance.requests import BY_ACCEPTING_AN_OFFER, EXITS, TRANSITIONS, RequestFilters
from ctcp.assistance.schemas import (
    ConsultationCreate,
    MeasureIn,
    NeedCreate,
    NeedRead,
    NeedUpdate,
    OfferCreate,
    OfferDecision,
    OfferRead,
    ProgressIn,
    RequestCreate,
    RequestRead,
    Suggestion,
    TransitionIn,
)
from ctcp.authz.scopes import DataScope
from ctcp.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from ctcp.organizations.models import OrganizationKind
from ctcp.reports.models import Priority, ThematicArea
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ReadNeeds = Annotated[GuardedPortal, page_guard("need", "read")]
WriteNeeds = Annotated[GuardedPortal, page_guard("need", "write")]
ReadRequests = Annotated[GuardedPortal, page_guard("request", "read")]
FileRequests = Annotated[GuardedPortal, page_guard("request", "create")]
MoveRequests = Annotated[GuardedPortal, page_guard("request", "transition")]
MakeOffers = Annotated[GuardedPortal, page_guard("offer", "create")]
ReadOffers = Annotated[GuardedPortal, page_guard("offer", "read")]
DecideOffers = Annotated[GuardedPortal, page_guard("offer", "decide")]
ReadPlans = Annotated[GuardedPortal, page_guard("consultation", "read")]
WritePlans = Annotated[GuardedPortal, page_guard("consultation", "write")]
ReportProgress = Annotated[GuardedPortal, page_guard("consultation", "progress")]

FilterQuery = Annotated[str | None, Query(max_length=64)]
CursorParam = Annotated[str | None, Query(max_length=512)]
E = TypeVar("E", bound=StrEnum)
# Blank indicator rows offered by the add-measure form.
INDICATOR_ROWS = 3
INDICATOR_FIELDS = ("name", "unit", "baseline", "target", "due_date")
# Moves made by a plain button; the others ask for confirmation (and a reason).
DIRECT_MOVES = (RequestStatus.UNDER_REVIEW, RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED)
# Lists shown whole on a page (a request's offers, a State's open needs): the largest page.
WHOLE_LIST = PageRequest(limit=MAX_LIMIT)


def _choice(kind: type[E], value: str | None, name: str) -> E | None:
    """A coded filter from the query string; blank means none, anything else unknown is 422."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"Unknown {name}: {value!r}.", loc=["query", name]) from None


def _state_filter(value: str | None) -> str | None:
    return value.strip().upper() or None if value else None


def _page_at(cursor: str | None) -> PageRequest:
    """The page a list page shows: the usual size, after the cursor if any."""
    return PageRequest(DEFAULT_LIMIT, cursor or None)


async def _organizations(portal: GuardedPortal, kind: OrganizationKind) -> list[tuple[str, str]]:
    """(code, name) of the active organizations of a kind, for selects and checkboxes."""
    names = await portal.organization_names()
    found = [
        (code, portal.org_name(code))
        for code, organization in names.items()
        if organization.kind == kind.value and organization.active
    ]
    return sorted(found, key=lambda pair: pair[1].casefold())


def _filled(data: dict[str, Any]) -> dict[str, Any]:
    """The fields filled in: a blank optional field is left out, a blank required one is
    reported as missing ("Fill in this field.")."""
    return {name: value for name, value in data.items() if value != ""}


# --- Needs -----------------------------------------------------------------------------


@router.get("/needs", response_class=HTMLResponse)
async def needs_page(
    portal: ReadNeeds,
    state: FilterQuery = None,
    area: FilterQuery = None,
    status: FilterQuery = None,
    priority: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    filters = NeedFilters(
        state=_state_filter(state),
        area=_choice(ThematicArea, area, "area"),
        status=_choice(NeedStatus, status, "status"),
        priority=_choice(Priority, priority, "priority"),
    )
    page = await needs.list_needs(portal.session, portal.access, filters, _page_at(cursor))
    return await portal.render(
        "assistance/needs.html",
        page=page,
        filters={
            "state": _state_filter(state) or "",
            "area": area or "",
            "status": status or "",
            "priority": priority or "",
        },
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        area_options=portal.options(ThematicArea),
        status_options=portal.options(NeedStatus),
        priority_options=portal.options(Priority),
        own_state_only=DataScope.ALL not in portal.access.scopes
        and DataScope.CONSENTED not in portal.access.scopes,
    )


def _need_form_context(
    portal: GuardedPortal, values: dict[str, str], errors: dict[str, str]
) -> Any:
    return {
        "values": values,
        "errors": errors,
        "area_options": portal.options(ThematicArea),
        "status_options": portal.options(NeedStatus),
        "priority_options": portal.options(Priority),
        "source_options": portal.options(NeedSource),
    }


@router.get("/needs/new", response_class=HTMLResponse)
async def new_need_page(portal: WriteNeeds, state: FilterQuery = None) -> Response:
    values = {
        "state": _state_filter(state) or "",
        "area": "",
        "description": "",
        "priority": Priority.MEDIUM.value,
        "status": NeedStatus.OPEN.value,
        "source": NeedSource.STATE_REQUEST.value,
        "recommendation_id": "",
        "consultation_id": "",
    }
    return await portal.render(
        "assistance/need_form.html",
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        **_need_form_context(portal, values, {}),
    )


@router.post("/needs/new", response_class=HTMLResponse)
async def create_need(portal: WriteNeeds) -> Response:
    names = ("state", "area", "description", "priority", "source")
    values = {name: portal.field(name) for name in (*names, "recommendation_id", "consultation_id")}
    values["status"] = portal.field("status") or NeedStatus.OPEN.value
    data = _filled({name: value for name, value in values.items() if name != "status"})
    body, errors = portal.validate(NeedCreate, data)
    wanted = _choice_or_error(portal, NeedStatus, values["status"], "status", errors)
    if body is None or wanted is None:
        return await portal.render(
            "assistance/need_form.html",
            status=422,
            state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
            **_need_form_context(portal, values, errors),
        )
    created = await needs.record_need(portal.session, portal.access, body)
    if wanted is not NeedStatus.OPEN:
        # A need recorded as already (partly) met: the API's create, then its update.
        await needs.update_need(
            portal.session, portal.access, created.id, NeedUpdate(status=wanted)
        )
    return portal.redirect(f"/portal/needs/{created.id}", notice=portal.gettext("Need recorded."))


def _choice_or_error(
    portal: GuardedPortal, kind: type[E], value: str, name: str, errors: dict[str, str]
) -> E | None:
    try:
        return kind(value)
    except ValueError:
        errors[name] = portal.gettext("Choose a value from the list.")
        return None


async def _need_page(
    portal: GuardedPortal,
    need_id: uuid.UUID,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """A need; its suggestions for CTED; the edit form for those who may write needs."""
    access = await portal.access_for("need", "read")
    assert access is not None  # every writer of needs reads them
    need = await needs.read_need(portal.session, access, need_id)
    suggestions: list[Suggestion] | None = None
    if match := await portal.access_for("need", "match"):
        suggestions = await needs.read_suggestions(portal.session, match, need_id)
    return await portal.render(
        "assistance/need.html",
        status=status,
        need=need,
        suggestions=suggestions,
        can_edit=portal.granted("need", "write"),
        values=values
        or {"description": need.description, "priority": need.priority, "status": need.status},
        errors=errors or {},
        status_options=portal.options(NeedStatus),
        priority_options=portal.options(Priority),
    )


@router.get("/needs/{need_id}", response_class=HTMLResponse)
async def need_page(need_id: uuid.UUID, portal: ReadNeeds) -> Response:
    return await _need_page(portal, need_id)


@router.post("/needs/{need_id}", response_class=HTMLResponse)
async def update_need(need_id: uuid.UUID, portal: WriteNeeds) -> Response:
    values = {name: portal.field(name) for name in ("description", "priority", "status")}
    body, errors = portal.validate(NeedUpdate, values)
    if body is None:
        return await _need_page(portal, need_id, status=422, values=values, errors=errors)
    await needs.update_need(portal.session, portal.access, need_id, body)
    return portal.redirect(f"/portal/needs/{need_id}", notice=portal.gettext("Saved."))


# --- Requests --------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(
    portal: ReadRequests,
    state: FilterQuery = None,
    status: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    filters = RequestFilters(
        state=_state_filter(state), status=_choice(RequestStatus, status, "status")
    )
    page = await requests.list_requests(portal.session, portal.access, filters, _page_at(cursor))
    return await portal.render(
        "assistance/requests.html",
        page=page,
        filters={"state": _state_filter(state) or "", "status": status or ""},
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        status_options=portal.options(RequestStatus),
        own_state_only=portal.access.scopes == {DataScope.OWN_STATE},
        can_file=portal.granted("request", "create"),
    )


async def _open_needs(portal: GuardedPortal, state: str | None) -> list[NeedRead]:
    """The State's needs a request may name (open or partially met), from the needs list."""
    access = await portal.access_for("need", "read")
    if access is None or (state is None and DataScope.ALL in access.scopes):
        return []
    found: list[NeedRead] = []
    for wanted in (NeedStatus.OPEN, NeedStatus.PARTIALLY_MET):
        filters = NeedFilters(state=state, status=wanted)
        found.extend((await needs.list_needs(portal.session, access, filters, WHOLE_LIST)).items)
    return sorted(found, key=lambda need: need.created_at)


async def _request_form(
    portal: GuardedPortal,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    on_behalf = DataScope.ALL in portal.access.scopes
    state = values.get("state") or None
    return await portal.render(
        "assistance/request_form.html",
        status=status,
        values=values,
        errors=errors,
        on_behalf=on_behalf,
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE)
        if on_behalf
        else [],
        needs=await _open_needs(portal, state if on_behalf else None),
    )


@router.get("/requests/new", response_class=HTMLResponse)
async def new_request_page(portal: FileRequests, state: FilterQuery = None) -> Response:
    values = {"state": _state_filter(state) or "", "title": "", "description": "", "need_ids": []}
    return await _request_form(portal, values, {})


@router.post("/requests/new", response_class=HTMLResponse)
async def create_request(portal: FileRequests) -> Response:
    on_behalf = DataScope.ALL in portal.access.scopes
    values: dict[str, Any] = {
        "state": portal.field("state").upper() if on_behalf else "",
        "title": portal.field("title"),
        "description": portal.field("description"),
        "need_ids": portal.fields("need_ids"),
    }
    data = values | {"state": values["state"] or None}
    body, errors = portal.validate(RequestCreate, data)
    if body is None:
        if "need_ids" in errors and not values["need_ids"]:
            errors["need_ids"] = portal.gettext("Choose at least one need.")
        return await _request_form(portal, values, errors, status=422)
    filed = await requests.file_request(portal.session, portal.access, body)
    return portal.redirect(f"/portal/requests/{filed.id}", notice=portal.gettext("Request filed."))


def _moves_for(portal: GuardedPortal, filed: RequestRead) -> list[RequestStatus]:
    """The next moves the TRANSITIONS table allows the reader's roles from here."""
    if portal.principal is None or not portal.granted("request", "transition"):
        return []
    roles = portal.principal.roles
    current = RequestStatus(filed.status)
    return [
        to
        for (source, to), owners in TRANSITIONS.items()
        if source is current and roles & owners and (source, to) != BY_ACCEPTING_AN_OFFER
    ]


async def _request_page(
    portal: GuardedPortal,
    request_id: uuid.UUID,
    *,
    status: int = 200,
    offer_values: dict[str, str] | None = None,
    offer_errors: dict[str, str] | None = None,
) -> Response:
    """A request: its needs, history, the offers the reader may read, and the next moves."""
    access = await portal.access_for("request", "read")
    assert access is not None  # every role that moves, offers or decides also reads requests
    filed = await requests.read_request(portal.session, access, request_id)
    offered: list[OfferRead] | None = None
    if offer_access := await portal.access_for("offer", "read"):
        filters = OfferFilters(request_id=request_id)
        offered = (
            await offers.list_offers(portal.session, offer_access, filters, WHOLE_LIST)
        ).items
    circulated = filed.status == RequestStatus.CIRCULATED.value
    return await portal.render(
        "assistance/request.html",
        status=status,
        filed=filed,
        offers=offered,
        moves=_moves_for(portal, filed),
        direct_moves=DIRECT_MOVES,
        can_offer=circulated and portal.granted("offer", "create"),
        can_decide=circulated and portal.granted("offer", "decide"),
        offer_values=offer_values
        or {"programme": "", "description": "", "timeline": "", "budget": "", "currency": ""},
        offer_errors=offer_errors or {},
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_page(request_id: uuid.UUID, portal: ReadRequests) -> Response:
    return await _request_page(portal, request_id)


async def _move_page(
    portal: GuardedPortal,
    request_id: uuid.UUID,
    to: RequestStatus,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    # Read with the read grant, as the API's read does (the move's grant is for the POST).
    reading = await portal.access_for("request", "read")
    if reading is None:
        raise NotFoundError(portal.gettext("No such request."))
    filed = await requests.read_request(portal.session, reading, request_id)
    step = (RequestStatus(filed.status), to)
    if step not in TRANSITIONS or step == BY_ACCEPTING_AN_OFFER:
        raise ConflictError(portal.gettext("This move is not available for this request now."))
    if to not in _moves_for(portal, filed):  # as the API: a move of another role is 403
        raise ForbiddenError(portal.gettext("Your roles may not make this move."))
    suggested: set[str] = set()
    if to is RequestStatus.CIRCULATED and (match := await portal.access_for("need", "match")):
        for need in filed.needs:
            for suggestion in await needs.read_suggestions(portal.session, match, need.id):
                suggested.add(suggestion.organization.code)
    return await portal.render(
        "assistance/request_move.html",
        status=status,
        filed=filed,
        to=to.value,
        needs_reason=to in EXITS,
        entities=await _organizations(portal, OrganizationKind.COMPACT_ENTITY)
        if to is RequestStatus.CIRCULATED
        else [],
        suggested=suggested,
        values=values or {"reason": "", "notify": []},
        errors=errors or {},
    )


@router.get("/requests/{request_id}/transition", response_class=HTMLResponse)
async def move_request_page(
    request_id: uuid.UUID, portal: MoveRequests, to: FilterQuery = None
) -> Response:
    """The confirmation step of a move (a reason for an exit; entities to tell on circulation)."""
    wanted = _choice(RequestStatus, to, "to")
    if wanted is None:
        raise ValidationError(portal.gettext("Name the move."), loc=["query", "to"])
    return await _move_page(portal, request_id, wanted)


@router.post("/requests/{request_id}/transition", response_class=HTMLResponse)
async def move_request(request_id: uuid.UUID, portal: MoveRequests) -> Response:
    values: dict[str, Any] = {
        "to": portal.field("to"),
        "reason": portal.field("reason"),
        "notify": [code.upper() for code in portal.fields("notify")],
    }
    body, errors = portal.validate(
        TransitionIn,
        {
            "to": values["to"],
            "reason": values["reason"] or None,
            "notify": values["notify"] or None,
        },
    )
    if body is not None and body.to in EXITS and body.reason is None:
        errors["reason"] = portal.gettext("Say why the request ends here.")
    if body is None or errors:
        to = _choice(RequestStatus, values["to"], "to")
        if to is None:
            raise ValidationError(portal.gettext("Name the move."), loc=["body", "to"])
        return await _move_page(portal, request_id, to, status=422, values=values, errors=errors)
    await requests.transition(portal.session, portal.access, request_id, body)
    return portal.redirect(
        f"/portal/requests/{request_id}",
        notice=portal.gettext("The request is now: %(status)s.", status=portal.label(body.to)),
    )


# --- Offers ----------------------------------------------------------------------------


@router.post("/requests/{request_id}/offers", response_class=HTMLResponse)
async def create_offer(request_id: uuid.UUID, portal: MakeOffers) -> Response:
    names = ("programme", "description", "timeline", "budget", "currency")
    values = {name: portal.field(name) for name in names}
    values["currency"] = values["currency"].upper()
    body, errors = portal.validate(OfferCreate, _filled(values))
    if body is None:
        return await _request_page(
            portal, request_id, status=422, offer_values=values, offer_errors=errors
        )
    await offers.make_offer(portal.session, portal.access, request_id, body)
    return portal.redirect(
        f"/portal/requests/{request_id}", notice=portal.gettext("Your offer was sent.")
    )


@router.get("/offers", response_class=HTMLResponse)
async def offers_page(
    portal: ReadOffers, status: FilterQuery = None, cursor: CursorParam = None
) -> Response:
    filters = OfferFilters(status=_choice(OfferStatus, status, "status"))
    page = await offers.list_offers(portal.session, portal.access, filters, _page_at(cursor))
    return await portal.render(
        "assistance/offers.html",
        page=page,
        filters={"status": status or ""},
        status_options=portal.options(OfferStatus),
    )


async def _decision_page(
    portal: GuardedPortal,
    offer_id: uuid.UUID,
    accept: bool,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    reading = await portal.access_for("offer", "read")
    if reading is None:
        raise NotFoundError(portal.gettext("No such offer."))
    offer = await offers.read_offer(portal.session, reading, offer_id)
    return await portal.render(
        "assistance/offer_decide.html",
        status=status,
        offer=offer,
        accept=accept,
        values=values or {"reason": ""},
        errors=errors or {},
    )


async def _decide(portal: GuardedPortal, offer_id: uuid.UUID, accept: bool) -> Response:
    values = {"reason": portal.field("reason")}
    body, errors = portal.validate(OfferDecision, {"reason": values["reason"] or None})
    if body is None:
        return await _decision_page(
            portal, offer_id, accept, status=422, values=values, errors=errors
        )
    offer = await offers.decide(
        portal.session, portal.access, offer_id, accept=accept, reason=body.reason
    )
    notice = portal.gettext("Offer accepted.") if accept else portal.gettext("Offer declined.")
    return portal.redirect(f"/portal/requests/{offer.request_id}", notice=notice)


@router.get("/offers/{offer_id}/accept", response_class=HTMLResponse)
async def accept_offer_page(offer_id: uuid.UUID, portal: DecideOffers) -> Response:
    return await _decision_page(portal, offer_id, True)


@router.post("/offers/{offer_id}/accept", response_class=HTMLResponse)
async def accept_offer(offer_id: uuid.UUID, portal: DecideOffers) -> Response:
    return await _decide(portal, offer_id, True)


@router.get("/offers/{offer_id}/decline", response_class=HTMLResponse)
async def decline_offer_page(offer_id: uuid.UUID, portal: DecideOffers) -> Response:
    return await _decision_page(portal, offer_id, False)


@router.post("/offers/{offer_id}/decline", response_class=HTMLResponse)
async def decline_offer(offer_id: uuid.UUID, portal: DecideOffers) -> Response:
    return await _decide(portal, offer_id, False)


# --- Implementation plans --------------------------------------------------------------


@router.get("/plans", response_class=HTMLResponse)
async def plans_page(
    portal: ReadPlans,
    state: FilterQuery = None,
    programme: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    filters = ConsultationFilters(
        state=_state_filter(state), programme=_choice(Programme, programme, "programme")
    )
    page = await consultations.list_consultations(
        portal.session, portal.access, filters, _page_at(cursor)
    )
    return await portal.render(
        "assistance/plans.html",
        page=page,
        filters={"state": _state_filter(state) or "", "programme": programme or ""},
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        programme_options=portal.options(Programme),
        own_state_only=portal.access.scopes == {DataScope.OWN_STATE},
        can_write=portal.granted("consultation", "write"),
    )


async def _plan_form(
    portal: GuardedPortal, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return await portal.render(
        "assistance/plan_form.html",
        status=status,
        values=values,
        errors=errors,
        state_options=await _organizations(portal, OrganizationKind.MEMBER_STATE),
        programme_options=portal.options(Programme),
    )


@router.get("/plans/new", response_class=HTMLResponse)
async def new_plan_page(portal: WritePlans, state: FilterQuery = None) -> Response:
    values = {
        "state": _state_filter(state) or "",
        "programme": "",
        "start_date": "",
        "end_date": "",
        "participants": "",
        "baseline_findings": "",
    }
    return await _plan_form(portal, values, {})


def _participants(text: str) -> list[dict[str, str | None]]:
    """One participant a line: `name; organization` (the organization is optional)."""
    found: list[dict[str, str | None]] = []
    for line in text.splitlines():
        name, _, organization = line.partition(";")
        if name.strip() or organization.strip():
            found.append({"name": name.strip(), "organization": organization.strip() or None})
    return found


@router.post("/plans/new", response_class=HTMLResponse)
async def create_plan(portal: WritePlans) -> Response:
    names = ("state", "programme", "start_date", "end_date", "participants", "baseline_findings")
    values = {name: portal.field(name) for name in names}
    values["state"] = values["state"].upper()
    data: dict[str, Any] = _filled(values) | {
        "participants": _participants(values["participants"]),
        "measures": [],
    }
    body, errors = portal.validate(ConsultationCreate, data)
    if body is None:
        if any(name.startswith("participants.") for name in errors):
            errors["participants"] = portal.gettext(
                "Write one participant a line: the name, then a semicolon and the organization."
            )
        if "_" in errors and not {"start_date", "end_date"} & errors.keys():
            errors["end_date"] = errors.pop("_")
        return await _plan_form(portal, values, errors, status=422)
    created = await consultations.record_consultation(portal.session, portal.access, body)
    return portal.redirect(f"/portal/plans/{created.id}", notice=portal.gettext("Plan recorded."))


def _blank_measure() -> dict[str, str]:
    values = {"title": "", "recommendations": "", "entity": ""}
    for row in range(INDICATOR_ROWS):
        for name in INDICATOR_FIELDS:
            values[f"indicators.{row}.{name}"] = ""
    return values


async def _plan_page(
    portal: GuardedPortal,
    plan_id: uuid.UUID,
    *,
    status: int = 200,
    measure_values: dict[str, str] | None = None,
    measure_errors: dict[str, str] | None = None,
    progress_errors: dict[str, dict[str, str]] | None = None,
    progress_values: dict[str, dict[str, str]] | None = None,
) -> Response:
    """A plan: the whole of it for the State and CTED, an entity's own measures only."""
    access = await portal.access_for("consultation", "read")
    assert access is not None  # writers and reporters of plans read them
    plan = await consultations.read_consultation(portal.session, access, plan_id)
    reporter = await portal.access_for("consultation", "progress")
    reports_on: set[uuid.UUID] = set()
    if reporter is not None:
        everything = DataScope.ALL in reporter.scopes
        reports_on = {
            measure.id
            for measure in plan.measures
            if everything or measure.entity.code == reporter.organization.code
        }
    can_write = portal.granted("consultation", "write")
    return await portal.render(
        "assistance/plan.html",
        status=status,
        plan=plan,
        reports_on=reports_on,
        can_write=can_write,
        entities=await _organizations(portal, OrganizationKind.COMPACT_ENTITY) if can_write else [],
        indicator_rows=range(INDICATOR_ROWS),
        measure_values=measure_values or _blank_measure(),
        measure_errors=measure_errors or {},
        progress_errors=progress_errors or {},
        progress_values=progress_values or {},
    )


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
async def plan_page(plan_id: uuid.UUID, portal: ReadPlans) -> Response:
    return await _plan_page(portal, plan_id)


@router.post("/plans/{plan_id}/measures", response_class=HTMLResponse)
async def add_measure(plan_id: uuid.UUID, portal: WritePlans) -> Response:
    values = {name: portal.field(name) for name in _blank_measure()}
    values["entity"] = values["entity"].upper()
    indicators = []
    for row in range(INDICATOR_ROWS):
        fields = {name: values[f"indicators.{row}.{name}"] for name in INDICATOR_FIELDS}
        if any(fields.values()):  # a row left blank is no indicator
            indicators.append(_filled(fields))
    data = {
        "title": values["title"],
        "recommendations": values["recommendations"],
        "entity": values["entity"],
        "indicators": indicators,
    }
    body, errors = portal.validate(MeasureIn, data)
    if body is None:
        # Errors name the indicators as submitted, in the order of the rows used.
        used = [
            row
            for row in range(INDICATOR_ROWS)
            if any(values[f"indicators.{row}.{name}"] for name in INDICATOR_FIELDS)
        ]
        renamed = {}
        for name, message in errors.items():
            parts = name.split(".")
            if parts[0] == "indicators" and len(parts) > 1 and parts[1].isdigit():
                parts[1] = str(used[int(parts[1])])
            renamed[".".join(parts)] = message
        return await _plan_page(
            portal, plan_id, status=422, measure_values=values, measure_errors=renamed
        )
    await consultations.add_measure(portal.session, portal.access, plan_id, body)
    return portal.redirect(f"/portal/plans/{plan_id}", notice=portal.gettext("Measure added."))


@router.post("/plans/{plan_id}/indicators/{indicator_id}/progress", response_class=HTMLResponse)
async def report_progress(
    plan_id: uuid.UUID, indicator_id: uuid.UUID, portal: ReportProgress
) -> Response:
    values = {"value": portal.field("value"), "note": portal.field("note")}
    body, errors = portal.validate(
        ProgressIn, {"value": values["value"], "note": values["note"] or None}
    )
    if body is None:
        key = str(indicator_id)
        return await _plan_page(
            portal,
            plan_id,
            status=422,
            progress_errors={key: errors},
            progress_values={key: values},
        )
    await consultations.record_progress(portal.session, portal.access, indicator_id, body)
    return portal.redirect(
        f"/portal/plans/{plan_id}#indicator-{indicator_id}",
        notice=portal.gettext("Progress recorded."),
    )
