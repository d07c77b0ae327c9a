"""Capacity consultations and implementation plans (CTED writes; the State reads; entities
in charge of measures see and report on those)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from ctcp.assistance import consultations
from ctcp.assistance.models import Programme
from ctcp.assistance.schemas import (
    ConsultationCreate,
    ConsultationRead,
    IndicatorRead,
    MeasureIn,
    MeasureRead,
    ProgressIn,
)
from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["capacity consultations"])
CanRead = Annotated[Access, guard("consultation", "read")]
CanWrite = Annotated[Access, guard("consultation", "write")]
CanReport = Annotated[Access, guard("consultation", "progress")]


@router.post(
    "/consultations",
    response_model=ConsultationRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record a capacity consultation and its plan",
    responses=problem_responses(401, 403, 422),
)
async def create_consultation(
    body: ConsultationCreate, session: SessionDep, access: CanWrite
) -> ConsultationRead:
    """Dates, participants, baseline findings, and the measures of the implementation plan
    with the Compact entity in charge and target indicators."""
    return await consultations.record_consultation(session, access, body)


@router.get(
    "/consultations",
    response_model=Page[ConsultationRead],
    summary="List capacity consultations",
    responses=problem_responses(401, 403, 422),
)
async def list_consultations(
    session: SessionDep,
    access: CanRead,
    state: Annotated[str | None, Query(max_length=32)] = None,
    programme: Annotated[Programme | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ConsultationRead]:
    """The State's own; for an entity, those where it is in charge of a measure; newest
    first."""
    filters = consultations.ConsultationFilters(state=state, programme=programme)
    return await consultations.list_consultations(
        session, access, filters, PageRequest(limit, cursor)
    )


@router.get(
    "/consultations/{consultation_id}",
    response_model=ConsultationRead,
    summary="A capacity consultation and its plan",
    responses=problem_responses(401, 403, 404),
)
async def get_consultation(
    consultation_id: uuid.UUID, session: SessionDep, access: CanRead
) -> ConsultationRead:
    """An entity sees only the measures it is in charge of, without the findings."""
    return await consultations.read_consultation(session, access, consultation_id)


@router.post(
    "/consultations/{consultation_id}/measures",
    response_model=MeasureRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a measure to an implementation plan",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_measure(
    consultation_id: uuid.UUID, body: MeasureIn, session: SessionDep, access: CanWrite
) -> MeasureRead:
    return await consultations.add_measure(session, access, consultation_id, body)


@router.post(
    "/indicators/{indicator_id}/progress",
    response_model=IndicatorRead,
    status_code=status.HTTP_201_CREATED,
    summary="Report progress on an indicator",
    responses=problem_responses(401, 403, 404, 422),
)
async def report_progress(
    indicator_id: uuid.UUID, body: ProgressIn, session: SessionDep, access: CanReport
) -> IndicatorRead:
    """CTED, or the entity in charge of the measure; every update is kept as history."""
    return await consultations.record_progress(session, access, indicator_id, body)
