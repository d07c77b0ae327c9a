"""Technical-assistance payloads (docs/api.md, "Technical assistance")."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ctcp.assistance.models import NeedSource, NeedStatus, Programme, RequestStatus
from ctcp.consent.markings import (
    SHARED_AUDIENCE_DESCRIPTION,
    TLP_DESCRIPTION,
    SharedAudience,
    Tlp,
)
from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.reports.models import Priority, ThematicArea
from ctcp.reports.schemas import StateRef

# A Compact entity, named as a State is.
OrganizationRef = StateRef

StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class NeedCreate(RequestModel):
    """A need for a State. From a recommendation, the area may be left out (the section's)."""

    state: StateCode
    area: ThematicArea | None = None
    description: Text
    priority: Priority
    source: NeedSource
    recommendation_id: uuid.UUID | None = None
    consultation_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _source_link(self) -> "NeedCreate":
        wants = {
            NeedSource.RECOMMENDATION: "recommendation_id",
            NeedSource.CONSULTATION: "consultation_id",
        }.get(self.source)
        for link in ("recommendation_id", "consultation_id"):
            given = getattr(self, link) is not None
            if given and link != wants:
                raise ValueError(f"{link} goes only with source {link.removesuffix('_id')!r}")
            if not given and link == wants:
                raise ValueError(f"source {self.source.value!r} needs {link}")
        if self.area is None and self.source is not NeedSource.RECOMMENDATION:
            raise ValueError("area is required unless the need comes from a recommendation")
        return self


class NeedUpdate(RequestModel):
    description: Text | None = None
    priority: Priority | None = None
    status: NeedStatus | None = None


class NeedRead(ResponseModel):
    id: uuid.UUID
    state: StateRef
    area: str
    description: str
    priority: str
    status: str
    source: str
    report_id: uuid.UUID | None
    recommendation_id: uuid.UUID | None
    consultation_id: uuid.UUID | None
    audience: SharedAudience = Field(description=SHARED_AUDIENCE_DESCRIPTION)
    tlp: Tlp = Field(description=TLP_DESCRIPTION)
    created_at: datetime
    updated_at: datetime


class Suggestion(ResponseModel):
    """A Compact entity to circulate a need to: first those already at work in the need's
    State and area (planned or ongoing activities), then those that offered before on
    needs of the same area."""

    organization: OrganizationRef
    programme: str | None
    offers: int
    accepted: int
    last_offered_at: datetime | None
    # Planned or ongoing activities the entity leads in the need's State and area.
    active_activities: int = 0
    reason: str


class RequestCreate(RequestModel):
    """A State's focal point may leave `state` out (their own); an analyst names it."""

    state: StateCode | None = None
    title: Title
    description: Text
    need_ids: list[uuid.UUID] = Field(min_length=1, max_length=20)


class TransitionIn(RequestModel):
    to: RequestStatus
    reason: Reason | None = None
    # On circulation: the Compact entities (codes) whose focal points are told, e.g. those
    # the suggestions name. Every entity may see a circulated request; left out, all are told.
    notify: list[StateCode] | None = Field(default=None, min_length=1, max_length=100)


class TransitionRead(ResponseModel):
    from_status: str | None
    to_status: str
    reason: str | None
    at: datetime
    by_organization: str


class RequestRead(ResponseModel):
    id: uuid.UUID
    state: StateRef
    title: str
    description: str
    status: str
    needs: list[NeedRead]
    history: list[TransitionRead]
    audience: SharedAudience = Field(description=SHARED_AUDIENCE_DESCRIPTION)
    tlp: Tlp = Field(description=TLP_DESCRIPTION)
    created_at: datetime
    updated_at: datetime


class OfferCreate(RequestModel):
    programme: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    description: Text
    timeline: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    budget: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None

    @model_validator(mode="after")
    def _budget_currency(self) -> "OfferCreate":
        if (self.budget is None) != (self.currency is None):
            raise ValueError("a budget and its currency go together")
        return self


class OfferDecision(RequestModel):
    reason: Reason | None = None


class OfferRead(ResponseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    organization: OrganizationRef
    programme: str
    description: str
    timeline: str
    budget: Decimal | None
    currency: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None


class OverviewRow(ResponseModel):
    key: str
    open_needs: int
    circulated: int
    matched: int
    in_progress: int
    completed: int


class Overview(ResponseModel):
    """Counts within the caller's scope: nothing about States that do not share needs."""

    by_area: list[OverviewRow]
    by_state: list[OverviewRow]


class Participant(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    organization: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None


class IndicatorIn(RequestModel):
    name: Title
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    baseline: float = Field(allow_inf_nan=False)
    target: float = Field(allow_inf_nan=False)
    due_date: date


class MeasureIn(RequestModel):
    title: Title
    recommendations: Text
    entity: StateCode
    indicators: list[IndicatorIn] = Field(default_factory=list, max_length=20)


class ConsultationCreate(RequestModel):
    state: StateCode
    programme: Programme
    start_date: date
    end_date: date
    participants: list[Participant] = Field(default_factory=list, max_length=200)
    baseline_findings: Text
    measures: list[MeasureIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _dates(self) -> "ConsultationCreate":
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class ProgressIn(RequestModel):
    value: float = Field(allow_inf_nan=False)
    note: Reason | None = None


class ProgressRead(ResponseModel):
    previous: float
    value: float
    note: str | None
    recorded_at: datetime
    by_organization: str


class IndicatorRead(ResponseModel):
    id: uuid.UUID
    name: str
    unit: str
    baseline: float
    target: float
    current: float
    due_date: date
    history: list[ProgressRead]


class MeasureRead(ResponseModel):
    id: uuid.UUID
    position: int
    title: str
    recommendations: str
    entity: OrganizationRef
    indicators: list[IndicatorRead]


class ConsultationRead(ResponseModel):
    """Entities taking part see only their own measures: no findings, no participants."""

    id: uuid.UUID
    state: StateRef
    programme: str
    start_date: date
    end_date: date
    participants: list[dict[str, str | None]] | None
    baseline_findings: str | None
    measures: list[MeasureRead]
    created_at: datetime
