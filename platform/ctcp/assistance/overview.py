"""Counts per thematic area and per State, computed in SQL inside the caller's scope."""

from collections import defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.assistance import needs as needs_service
from ctcp.assistance import requests as requests_service
from ctcp.assistance.models import (
    OPEN_NEED_STATUSES,
    AssistanceRequest,
    AssistanceRequestNeed,
    Need,
    RequestStatus,
)
from ctcp.assistance.schemas import Overview, OverviewRow
from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.organizations.models import Organization

COUNTED = (
    RequestStatus.CIRCULATED,
    RequestStatus.MATCHED,
    RequestStatus.IN_PROGRESS,
    RequestStatus.COMPLETED,
)


# Per dimension ("area", "state"), per key, per column ("open_needs" or a request status).
Counts = dict[str, dict[str, dict[str, int]]]


async def read_overview(
    session: AsyncSession, need_access: Access, request_access: Access | None
) -> Overview:
    """Open needs from the caller's readable needs, requests from their readable requests;
    audited as `assistance.overview`.

    An entity's scopes admit only needs its States share, so no count ever covers a State
    that does not share; a caller with no request grant counts no requests.
    """
    counts: Counts = {
        "area": defaultdict(lambda: defaultdict(int)),
        "state": defaultdict(lambda: defaultdict(int)),
    }
    await _count_open_needs(session, need_access, counts)
    if request_access is not None:
        await _count_requests(session, request_access, counts)
    audit.record(session, need_access.audit, "assistance.overview", object_type="need", read=True)
    return Overview(by_area=_rows(counts["area"]), by_state=_rows(counts["state"]))


async def _count_open_needs(session: AsyncSession, access: Access, counts: Counts) -> None:
    needs = (
        needs_service.readable_needs(access)
        .where(col(Need.status).in_(OPEN_NEED_STATUSES))
        .subquery()
    )
    by_area = select(needs.c.area, func.count()).group_by(needs.c.area)
    by_state = (
        select(Organization.code, func.count())
        .join(needs, needs.c.state_id == col(Organization.id))
        .group_by(col(Organization.code))
    )
    for dimension, statement in (("area", by_area), ("state", by_state)):
        for key, count in (await session.exec(statement)).all():
            counts[dimension][key]["open_needs"] = count


async def _count_requests(session: AsyncSession, access: Access, counts: Counts) -> None:
    requests = (
        requests_service.readable_requests(access)
        .where(col(AssistanceRequest.status).in_([s.value for s in COUNTED]))
        .subquery()
    )
    # A request naming needs of two areas counts once in each.
    by_area: Any = (
        select(Need.area, requests.c.status, func.count(func.distinct(requests.c.id)))
        .join(AssistanceRequestNeed, col(AssistanceRequestNeed.request_id) == requests.c.id)
        .join(Need, col(Need.id) == col(AssistanceRequestNeed.need_id))
        .group_by(col(Need.area), requests.c.status)
    )
    by_state: Any = (
        select(Organization.code, requests.c.status, func.count())
        .join(requests, requests.c.state_id == col(Organization.id))
        .group_by(col(Organization.code), requests.c.status)
    )
    for dimension, statement in (("area", by_area), ("state", by_state)):
        for key, status, count in (await session.exec(statement)).all():
            counts[dimension][key][status] = count


def _rows(counts: dict[str, dict[str, int]]) -> list[OverviewRow]:
    return [
        OverviewRow(
            key=key,
            open_needs=row.get("open_needs", 0),
            circulated=row.get(RequestStatus.CIRCULATED.value, 0),
            matched=row.get(RequestStatus.MATCHED.value, 0),
            in_progress=row.get(RequestStatus.IN_PROGRESS.value, 0),
            completed=row.get(RequestStatus.COMPLETED.value, 0),
        )
        for key, row in sorted(counts.items())
    ]
