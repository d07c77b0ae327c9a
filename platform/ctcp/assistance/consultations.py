"""Capacity consultations and implementation plans: measures, indicators and progress."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, false, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance.models import (
    CapacityConsultation,
    IndicatorUpdate,
    PlanIndicator,
    PlanMeasure,
    Programme,
)
from ctcp.assistance.schemas import (
    ConsultationCreate,
    ConsultationRead,
    IndicatorRead,
    MeasureIn,
    MeasureRead,
    OrganizationRef,
    ProgressIn,
    ProgressRead,
)
from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.core.clock import clock
from ctcp.core.errors import NotFoundError
from ctcp.core.pagination import Page, PageRequest
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization
from ctcp.reports import service as reports


@dataclass(frozen=True)
class ConsultationFilters:
    """What a reader narrows the list of consultations to; None filters nothing."""

    state: str | None = None  # a State's code, in any case
    programme: Programme | None = None


def readable_consultations(access: Access) -> SelectOfScalar[CapacityConsultation]:
    """The one place a consultation scope becomes SQL: the State's own, or those where the
    caller's entity is in charge of a measure, or all."""
    statement = select(CapacityConsultation)
    if DataScope.ALL in access.scopes:
        return statement
    allowed = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(CapacityConsultation.state_id) == access.organization.id)
    if DataScope.OWN_ORG in access.scopes:
        allowed.append(
            exists().where(
                col(PlanMeasure.consultation_id) == col(CapacityConsultation.id),
                col(PlanMeasure.entity_id) == access.organization.id,
            )
        )
    return statement.where(or_(*allowed)) if allowed else statement.where(false())


def sees_whole_plan(access: Access, consultation: CapacityConsultation) -> bool:
    """The State and the Secretariat see everything; an entity only its own measures."""
    return DataScope.ALL in access.scopes or (
        DataScope.OWN_STATE in access.scopes and consultation.state_id == access.organization.id
    )


async def get_consultation(
    session: AsyncSession, access: Access, consultation_id: uuid.UUID, *, lock: bool = False
) -> CapacityConsultation:
    statement = readable_consultations(access).where(
        col(CapacityConsultation.id) == consultation_id
    )
    if lock:
        statement = statement.with_for_update()
    found = (await session.exec(statement)).first()
    if found is None:
        raise NotFoundError("No such consultation.")
    return found


async def list_consultations(
    session: AsyncSession, access: Access, filters: ConsultationFilters, page: PageRequest
) -> Page[ConsultationRead]:
    """One page of the readable consultations, latest start first, audited as
    `consultation.list`."""
    statement = readable_consultations(access)
    if filters.state is not None:
        statement = statement.join(
            Organization, col(Organization.id) == col(CapacityConsultation.state_id)
        ).where(col(Organization.code) == filters.state.upper())
    if filters.programme is not None:
        statement = statement.where(col(CapacityConsultation.programme) == filters.programme.value)
    return await audited_page(
        session,
        access,
        statement,
        order=[CapacityConsultation.start_date, CapacityConsultation.id],
        page=page,
        read_models=lambda reader, rows: _read_models(reader, access, rows),
    )


async def read_consultation(
    session: AsyncSession, access: Access, consultation_id: uuid.UUID
) -> ConsultationRead:
    """A consultation and its plan (404 outside scope), audited as `consultation.read`; an
    entity sees only the measures it is in charge of, without the findings."""
    consultation = await get_consultation(session, access, consultation_id)
    audit.record(
        session,
        access.audit,
        "consultation.read",
        object_type="consultation",
        object_id=consultation.id,
        read=True,
    )
    return (await _read_models(session, access, [consultation]))[0]


async def _add_measure(
    session: AsyncSession,
    consultation: CapacityConsultation,
    position: int,
    measure_in: MeasureIn,
    entity: Organization,
) -> PlanMeasure:
    measure = PlanMeasure(
        consultation_id=consultation.id,
        position=position,
        title=measure_in.title,
        recommendations=measure_in.recommendations,
        entity_id=entity.id,
    )
    session.add(measure)
    await session.flush()  # the measure before the indicators that point at it
    session.add_all(
        PlanIndicator(
            measure_id=measure.id,
            name=indicator.name,
            unit=indicator.unit,
            baseline=indicator.baseline,
            target=indicator.target,
            current=indicator.baseline,
            due_date=indicator.due_date,
        )
        for indicator in measure_in.indicators
    )
    await session.flush()
    return measure


async def create_consultation(
    session: AsyncSession, access: Access, body: ConsultationCreate
) -> CapacityConsultation:
    """A consultation with its baseline and the plan's measures and indicators."""
    state = await reports.member_state(session, body.state)
    entities = await organizations.compact_entities(
        session, (m.entity for m in body.measures), loc=["body", "measures"]
    )
    consultation = CapacityConsultation(
        state_id=state.id,
        programme=body.programme.value,
        start_date=body.start_date,
        end_date=body.end_date,
        participants=[p.model_dump() for p in body.participants],
        baseline_findings=body.baseline_findings,
        created_by=access.subject.user_id,
    )
    session.add(consultation)
    await session.flush()
    for position, measure_in in enumerate(body.measures):
        await _add_measure(session, consultation, position, measure_in, entities[measure_in.entity])
    audit.record(
        session,
        access.audit,
        "consultation.create",
        object_type="consultation",
        object_id=consultation.id,
        details={
            "state": state.code,
            "programme": consultation.programme,
            "measures": len(body.measures),
        },
    )
    return consultation


async def record_consultation(
    session: AsyncSession, access: Access, body: ConsultationCreate
) -> ConsultationRead:
    """`create_consultation`, answered with its read model (the writer's view of the plan)."""
    consultation = await create_consultation(session, access, body)
    return (await _read_models(session, access, [consultation]))[0]


async def add_measure(
    session: AsyncSession, access: Access, consultation_id: uuid.UUID, body: MeasureIn
) -> MeasureRead:
    """Add a measure at the end of the plan."""
    consultation = await get_consultation(session, access, consultation_id, lock=True)
    entity = (await organizations.compact_entities(session, [body.entity], loc=["body", "entity"]))[
        body.entity
    ]
    last = (
        await session.exec(
            select(func.max(PlanMeasure.position)).where(
                col(PlanMeasure.consultation_id) == consultation.id
            )
        )
    ).one()
    position = 0 if last is None else last + 1
    measure = await _add_measure(session, consultation, position, body, entity)
    audit.record(
        session,
        access.audit,
        "consultation.add_measure",
        object_type="consultation",
        object_id=consultation.id,
        details={"measure_id": str(measure.id), "entity": entity.code},
    )
    return (await _measure_reads(session, [measure]))[0]


async def record_progress(
    session: AsyncSession, access: Access, indicator_id: uuid.UUID, body: ProgressIn
) -> IndicatorRead:
    """A progress update: kept as history, and the indicator's current value."""
    statement = (
        select(PlanIndicator)
        .join(PlanMeasure, col(PlanMeasure.id) == col(PlanIndicator.measure_id))
        .where(col(PlanIndicator.id) == indicator_id)
    )
    if DataScope.ALL not in access.scopes:
        if DataScope.OWN_ORG not in access.scopes:
            raise NotFoundError("No such indicator.")
        statement = statement.where(col(PlanMeasure.entity_id) == access.organization.id)
    indicator = (await session.exec(statement.with_for_update())).first()
    if indicator is None:
        raise NotFoundError("No such indicator.")
    now = clock.now()
    session.add(
        IndicatorUpdate(
            indicator_id=indicator.id,
            previous=indicator.current,
            value=body.value,
            note=body.note,
            recorded_at=now,
            recorded_by_user=access.subject.user_id,
            recorded_by_client=access.subject.client_id,
            recorded_by_org=access.organization.id,
        )
    )
    before = indicator.current
    indicator.current, indicator.updated_at = body.value, now
    session.add(indicator)
    await session.flush()
    audit.record(
        session,
        access.audit,
        "consultation.progress",
        object_type="indicator",
        object_id=indicator.id,
        details={"before": before, "after": body.value},
    )
    return (await _indicator_reads(session, [indicator]))[indicator.id]


async def _read_models(
    session: AsyncSession, access: Access, consultations: Sequence[CapacityConsultation]
) -> list[ConsultationRead]:
    """Consultations with their plans; an entity's view holds only its own measures."""
    ids = [c.id for c in consultations]
    if not ids:
        return []
    whole = {c.id for c in consultations if sees_whole_plan(access, c)}
    # An entity's view: only the measures in its charge, filtered in SQL.
    visible = col(PlanMeasure.consultation_id).in_(whole) | (
        col(PlanMeasure.entity_id) == access.organization.id
    )
    measures = (
        await session.exec(
            select(PlanMeasure)
            .where(col(PlanMeasure.consultation_id).in_(ids), visible)
            .order_by(col(PlanMeasure.position))
        )
    ).all()
    orgs = await organizations.organizations_by_id(session, {c.state_id for c in consultations})
    measures_of: dict[uuid.UUID, list[MeasureRead]] = {i: [] for i in ids}
    for measure, read in zip(measures, await _measure_reads(session, measures), strict=True):
        measures_of[measure.consultation_id].append(read)
    return [
        ConsultationRead(
            id=c.id,
            state=OrganizationRef.of(orgs[c.state_id]),
            programme=c.programme,
            start_date=c.start_date,
            end_date=c.end_date,
            participants=c.participants if c.id in whole else None,
            baseline_findings=c.baseline_findings if c.id in whole else None,
            measures=measures_of[c.id],
            created_at=c.created_at,
        )
        for c in consultations
    ]


async def _measure_reads(
    session: AsyncSession, measures: Sequence[PlanMeasure]
) -> list[MeasureRead]:
    """Measures with their entity in charge and their indicators, in the order given."""
    indicators = (
        await session.exec(
            select(PlanIndicator)
            .where(col(PlanIndicator.measure_id).in_([m.id for m in measures]))
            .order_by(col(PlanIndicator.name), col(PlanIndicator.id))
        )
    ).all()
    reads = await _indicator_reads(session, indicators)
    entities = await organizations.organizations_by_id(session, {m.entity_id for m in measures})
    indicators_of: dict[uuid.UUID, list[IndicatorRead]] = {m.id: [] for m in measures}
    for indicator in indicators:
        indicators_of[indicator.measure_id].append(reads[indicator.id])
    return [
        MeasureRead(
            id=measure.id,
            position=measure.position,
            title=measure.title,
            recommendations=measure.recommendations,
            entity=OrganizationRef.of(entities[measure.entity_id]),
            indicators=indicators_of[measure.id],
        )
        for measure in measures
    ]


async def _indicator_reads(
    session: AsyncSession, indicators: Sequence[PlanIndicator]
) -> dict[uuid.UUID, IndicatorRead]:
    """Indicators with their progress history, oldest update first."""
    updates = (
        await session.exec(
            select(IndicatorUpdate)
            .where(col(IndicatorUpdate.indicator_id).in_([i.id for i in indicators]))
            .order_by(col(IndicatorUpdate.recorded_at), col(IndicatorUpdate.id))
        )
    ).all()
    orgs = await organizations.organizations_by_id(session, {u.recorded_by_org for u in updates})
    history: dict[uuid.UUID, list[ProgressRead]] = {i.id: [] for i in indicators}
    for update in updates:
        history[update.indicator_id].append(
            ProgressRead(
                previous=update.previous,
                value=update.value,
                note=update.note,
                recorded_at=update.recorded_at,
                by_organization=orgs[update.recorded_by_org].code,
            )
        )
    return {
        indicator.id: IndicatorRead(
            id=indicator.id,
            name=indicator.name,
            unit=indicator.unit,
            baseline=indicator.baseline,
            target=indicator.target,
            current=indicator.current,
            due_date=indicator.due_date,
            history=history[indicator.id],
        )
        for indicator in indicators
    }
