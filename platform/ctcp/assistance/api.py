"""Technical assistance: needs, requests and their workflow, offers, suggestions, overview."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.assistance import needs, offers, overview, requests
from ctcp.assistance.models import NeedStatus, OfferStatus, RequestStatus
from ctcp.assistance.schemas import (
    NeedCreate,
    NeedRead,
    NeedUpdate,
    OfferCreate,
    OfferDecision,
    OfferRead,
    Overview,
    RequestCreate,
    RequestRead,
    Suggestion,
    TransitionIn,
)
from ctcp.authz.guard import Access, granted, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.reports.models import Priority, ThematicArea

router = APIRouter(prefix="/api/v1", tags=["technical assistance"])
CanReadNeeds = Annotated[Access, guard("need", "read")]
CanWriteNeeds = Annotated[Access, guard("need", "write")]
CanMatchNeeds = Annotated[Access, guard("need", "match")]
CanReadRequests = Annotated[Access, guard("request", "read")]
CanFileRequests = Annotated[Access, guard("request", "create")]
CanMoveRequests = Annotated[Access, guard("request", "transition")]
CanOffer = Annotated[Access, guard("offer", "create")]
CanReadOffers = Annotated[Access, guard("offer", "read")]
CanDecideOffers = Annotated[Access, guard("offer", "decide")]
StateQuery = Annotated[str | None, Query(max_length=32, description="A State's code")]


@router.get(
    "/needs",
    response_model=Page[NeedRead],
    summary="List needs",
    responses=problem_responses(401, 403, 422),
)
async def list_needs(
    session: SessionDep,
    access: CanReadNeeds,
    state: StateQuery = None,
    area: Annotated[ThematicArea | None, Query()] = None,
    need_status: Annotated[NeedStatus | None, Query(alias="status")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[NeedRead]:
    """The caller's own State's needs, needs States share with the Compact, or all; newest
    first."""
    filters = needs.NeedFilters(state=state, area=area, status=need_status, priority=priority)
    return await needs.list_needs(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "/needs",
    response_model=NeedRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record a need",
    responses=problem_responses(401, 403, 422),
)
async def create_need(body: NeedCreate, session: SessionDep, access: CanWriteNeeds) -> NeedRead:
    """From a recommendation of an adopted report, a capacity consultation, or the State's
    own request."""
    return await needs.record_need(session, access, body)


@router.get(
    "/needs/{need_id}",
    response_model=NeedRead,
    summary="A need",
    responses=problem_responses(401, 403, 404),
)
async def get_need(need_id: uuid.UUID, session: SessionDep, access: CanReadNeeds) -> NeedRead:
    """Outside the caller's scope, or no longer shared, 404."""
    return await needs.read_need(session, access, need_id)


@router.patch(
    "/needs/{need_id}",
    response_model=NeedRead,
    summary="Update a need",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_need(
    need_id: uuid.UUID, body: NeedUpdate, session: SessionDep, access: CanWriteNeeds
) -> NeedRead:
    """Its description, priority or status (`open`, `partially_met`, `met`, `closed`)."""
    return await needs.update_need(session, access, need_id, body)


@router.get(
    "/needs/{need_id}/suggestions",
    response_model=list[Suggestion],
    summary="Entities and programmes to circulate a need to",
    responses=problem_responses(401, 403, 404),
)
async def suggest_for_need(
    need_id: uuid.UUID, session: SessionDep, access: CanMatchNeeds
) -> list[Suggestion]:
    """Those that offered on needs of the same thematic area before, best first, each with
    the reason."""
    return await needs.read_suggestions(session, access, need_id)


@router.get(
    "/assistance-requests",
    response_model=Page[RequestRead],
    summary="List assistance requests",
    responses=problem_responses(401, 403, 422),
)
async def list_requests(
    session: SessionDep,
    access: CanReadRequests,
    state: StateQuery = None,
    request_status: Annotated[RequestStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RequestRead]:
    """The caller's State's requests; for the Compact, circulated requests whose needs are
    shared (and those it offered on); newest first."""
    filters = requests.RequestFilters(state=state, status=request_status)
    return await requests.list_requests(session, access, filters, PageRequest(limit, cursor))


@router.post(
    "/assistance-requests",
    response_model=RequestRead,
    status_code=status.HTTP_201_CREATED,
    summary="File an assistance request",
    responses=problem_responses(401, 403, 422),
)
async def create_request(
    body: RequestCreate, session: SessionDep, access: CanFileRequests
) -> RequestRead:
    """For the caller's own State, or by CTED on a State's behalf; names open needs."""
    return await requests.file_request(session, access, body)


@router.get(
    "/assistance-requests/{request_id}",
    response_model=RequestRead,
    summary="An assistance request",
    responses=problem_responses(401, 403, 404),
)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, access: CanReadRequests
) -> RequestRead:
    """With its needs and workflow history; outside the caller's scope, 404."""
    return await requests.read_request(session, access, request_id)


@router.post(
    "/assistance-requests/{request_id}/transition",
    response_model=RequestRead,
    summary="Move an assistance request along its workflow",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def transition_request(
    request_id: uuid.UUID, body: TransitionIn, session: SessionDep, access: CanMoveRequests
) -> RequestRead:
    """`submitted → under_review → circulated` (CTED), `matched` (by accepting an offer),
    `→ in_progress → completed` (the State or CTED); exits `declined` (CTED) and
    `withdrawn` (the State), each with a reason. An illegal move is 409; a move the
    caller's role does not own is 403. On circulation, `notify` may name the Compact
    entities whose focal points are told (e.g. from the need's suggestions); all otherwise."""
    return await requests.transition(session, access, request_id, body)


@router.post(
    "/assistance-requests/{request_id}/offers",
    response_model=OfferRead,
    status_code=status.HTTP_201_CREATED,
    summary="Offer assistance on a circulated request",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_offer(
    request_id: uuid.UUID, body: OfferCreate, session: SessionDep, access: CanOffer
) -> OfferRead:
    """A Compact entity's project: programme, description, timeline, optional budget."""
    return await offers.make_offer(session, access, request_id, body)


@router.get(
    "/offers",
    response_model=Page[OfferRead],
    summary="List offers",
    responses=problem_responses(401, 403, 422),
)
async def list_offers(
    session: SessionDep,
    access: CanReadOffers,
    request_id: Annotated[uuid.UUID | None, Query()] = None,
    offer_status: Annotated[OfferStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[OfferRead]:
    """An entity's own offers; the offers on a State's requests; all for CTED."""
    filters = offers.OfferFilters(request_id=request_id, status=offer_status)
    return await offers.list_offers(session, access, filters, PageRequest(limit, cursor))


@router.get(
    "/offers/{offer_id}",
    response_model=OfferRead,
    summary="An offer",
    responses=problem_responses(401, 403, 404),
)
async def get_offer(offer_id: uuid.UUID, session: SessionDep, access: CanReadOffers) -> OfferRead:
    return await offers.read_offer(session, access, offer_id)


@router.post(
    "/offers/{offer_id}/accept",
    response_model=OfferRead,
    summary="Accept an offer",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def accept_offer(
    offer_id: uuid.UUID,
    session: SessionDep,
    access: CanDecideOffers,
    body: OfferDecision | None = None,
) -> OfferRead:
    """The request becomes `matched`; the other pending offers are closed as not selected."""
    return await _decide(session, access, offer_id, body, accept=True)


@router.post(
    "/offers/{offer_id}/decline",
    response_model=OfferRead,
    summary="Decline an offer",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def decline_offer(
    offer_id: uuid.UUID,
    session: SessionDep,
    access: CanDecideOffers,
    body: OfferDecision | None = None,
) -> OfferRead:
    """The request stays circulated for other offers."""
    return await _decide(session, access, offer_id, body, accept=False)


async def _decide(
    session: AsyncSession,
    access: Access,
    offer_id: uuid.UUID,
    body: OfferDecision | None,
    *,
    accept: bool,
) -> OfferRead:
    reason = body.reason if body else None
    return await offers.decide(session, access, offer_id, accept=accept, reason=reason)


@router.get(
    "/assistance/overview",
    response_model=Overview,
    summary="Needs and requests per thematic area and per State",
    responses=problem_responses(401, 403),
)
async def assistance_overview(
    request: Request, session: SessionDep, access: CanReadNeeds
) -> Overview:
    """Open needs, and requests circulated, matched, in progress and completed, counted
    only over what the caller may see."""
    return await overview.read_overview(
        session, access, granted(request, access, "request", "read")
    )
