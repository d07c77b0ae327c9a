"""Capacity consultations and implementation plans (CTED writes; the State reads; entities
in charge of measures see and report on those)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import col

from ctcp.assistance import consultations
from ctcp.assistance.models import CapacityConsultation, Programme
from ctcp.assistance.schemas import (
    ConsultationCreate,
    ConsultationRead,
    IndicatorRead,
    MeasureIn,
    MeasureRead,
    ProgressIn,
)
from ctcp.audit import service as audit
from ctcp.authz.guard import Access, guard
from ctcp.authz.listing import audited_page
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses
from ctcp.organizations.models import Organization

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
    consultation = await consultations.create_consultation(session, access, body)
    return (await consultations.read_models(session, access, [consultation]))[0]


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
    statement = consultations.readable_consultations(access)
    if state is not None:
        statement = statement.join(
            Organization, col(Organization.id) == col(CapacityConsultation.state_id)
        ).where(col(Organization.code) == state.upper())
    if programme is not None:
        statement = statement.where(col(CapacityConsultation.programme) == programme.value)
    page = await audited_page(
        session,
        access,
        statement,
        order=[CapacityConsultation.start_date, CapacityConsultation.id],
        page=PageRequest(limit, cursor),
    )
    return Page[ConsultationRead](
        items=await consultations.read_models(session, access, page.items),
        next_cursor=page.next_cursor,
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
    consultation = await consultations.get_consultation(session, access, consultation_id)
    audit.record(
        session,
        access.audit,
        "consultation.read",
        object_type="consultation",
        object_id=consultation.id,
        read=True,
    )
    return (await consultations.read_models(session, access, [consultation]))[0]


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
    measure = await consultations.add_measure(session, access, consultation_id, body)
    return (await consultations.measure_reads(session, [measure]))[0]


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
    indicator = await consultations.record_progress(session, access, indicator_id, body)
    return await consultations.indicator_read(session, indicator)
