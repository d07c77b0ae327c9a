"""Joint-planning payloads (docs/api.md, "Joint planning: activities and the coordination
matrix")."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from ctcp.assistance.models import Programme
from ctcp.assistance.schemas import OrganizationRef, StateCode
from ctcp.consent.markings import (
    SHARED_AUDIENCE_DESCRIPTION,
    TLP_DESCRIPTION,
    SharedAudience,
    Tlp,
)
from ctcp.contacts.schemas import note_text, one_line
from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.planning.models import ActivityKind, ActivityStatus
from ctcp.reports.models import ThematicArea
from ctcp.reports.schemas import StateRef

MAX_PARTNERS = 20
MAX_NEEDS = 50
MAX_OUTPUTS = 20


@cache
def iso_4217_codes() -> frozenset[str]:
    """The currency codes of ISO 4217 (pycountry's copy of the standard)."""
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def iso_4217(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if value not in iso_4217_codes() or value in NOT_MONEY:
        raise ValueError("not an ISO 4217 currency code (e.g. USD, EUR)")
    return value


def in_years(value: date | None) -> date | None:
    """A date of the planning horizon: a typo such as 0202 or 9999 is refused, not planned."""
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must fall between {FIRST_DAY} and {LAST_DAY}")
    return value


# ISO 4217's codes that are no currency: testing (XTS) and "no currency" (XXX).
NOT_MONEY = frozenset({"XTS", "XXX"})
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2100, 12, 31)
Currency = Annotated[str, AfterValidator(iso_4217)]
Day = Annotated[date, AfterValidator(in_years)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(one_line),
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    AfterValidator(note_text),
]
EntityCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")]
Budget = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]


class ActivityOutput(RequestModel):
    """One figure a completed activity produced: 40 participants trained, 2 texts adopted."""

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        AfterValidator(one_line),
    ]
    value: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
    unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None
    ) = None


def _period_and_money(
    starts_on: date | None,
    ends_on: date | None,
    budget: Decimal | None,
    currency: str | None,
) -> None:
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise ValueError("the end date is before the start date")
    if (budget is None) != (currency is None):
        raise ValueError("a budget and its currency go together")


class ActivityCreate(RequestModel):
    state: StateCode
    area: ThematicArea
    programme: Programme | None = None
    kind: ActivityKind = ActivityKind.OTHER
    title: Title
    description: Text
    status: ActivityStatus = ActivityStatus.PLANNED
    starts_on: Day
    ends_on: Day | None = None
    lead: EntityCode | None = None
    partners: Annotated[list[EntityCode], Field(max_length=MAX_PARTNERS)] = []
    need_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_NEEDS)] = []
    measure_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_NEEDS)] = []
    offer_id: uuid.UUID | None = None
    budget: Budget | None = None
    currency: Currency | None = None
    outputs: Annotated[list[ActivityOutput], Field(max_length=MAX_OUTPUTS)] = []

    @model_validator(mode="after")
    def _consistent(self) -> "ActivityCreate":
        _period_and_money(self.starts_on, self.ends_on, self.budget, self.currency)
        if self.outputs and self.status is not ActivityStatus.COMPLETED:
            raise ValueError("outputs are recorded for a completed activity")
        return self


class ActivityUpdate(RequestModel):
    """The fields to change; `version` (or `If-Match`) names the version the edit is based
    on, and a stale edit is refused with 409. The State and the lead never change."""

    area: ThematicArea | None = None
    programme: Programme | None = None
    kind: ActivityKind | None = None
    title: Title | None = None
    description: Text | None = None
    status: ActivityStatus | None = None
    starts_on: Day | None = None
    ends_on: Day | None = None
    partners: Annotated[list[EntityCode], Field(max_length=MAX_PARTNERS)] | None = None
    need_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_NEEDS)] | None = None
    measure_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_NEEDS)] | None = None
    budget: Budget | None = None
    currency: Currency | None = None
    outputs: Annotated[list[ActivityOutput], Field(max_length=MAX_OUTPUTS)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ActivityUpdate":
        if (
            self.starts_on is not None
            and self.ends_on is not None
            and self.ends_on < self.starts_on
        ):
            raise ValueError("the end date is before the start date")
        nulls = {
            name
            for name in ("area", "kind", "title", "description", "status", "starts_on")
            if name in self.model_fields_set and getattr(self, name) is None
        }
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be emptied")
        return self


class ActivityRead(ResponseModel):
    id: uuid.UUID
    state: StateRef
    area: str
    programme: str | None
    kind: str
    title: str
    description: str
    status: str
    starts_on: date
    ends_on: date | None
    lead: OrganizationRef
    partners: list[OrganizationRef]
    need_ids: list[uuid.UUID]
    measure_ids: list[uuid.UUID]
    offer_id: uuid.UUID | None
    budget: Decimal | None
    currency: str | None
    outputs: list[dict[str, object]]
    audience: SharedAudience = Field(description=SHARED_AUDIENCE_DESCRIPTION)
    tlp: Tlp = Field(description=TLP_DESCRIPTION)
    version: int
    created_at: datetime
    updated_at: datetime


class StatusCounts(ResponseModel):
    planned: int = 0
    ongoing: int = 0
    completed: int = 0
    cancelled: int = 0
    total: int = 0


class MatrixCell(ResponseModel):
    """One State x area (or x programme): its open needs, activities by status, the
    entities at work (leads and partners of planned or ongoing activities), and the flags."""

    state: str
    area: str | None = None
    programme: str | None = None
    open_needs: int
    activities: StatusCounts
    entities: list[str]
    gap: bool
    overlap: bool


class Matrix(ResponseModel):
    by: str
    year: int | None
    cells: list[MatrixCell]


class EntitySummary(ResponseModel):
    """What one entity leads or partners in, over the caller's scope."""

    entity: str
    activities: StatusCounts
    states: int
    areas: int
