"""Technical-assistance tables: needs, requests and their workflow, offers, plans."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class NeedStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_MET = "partially_met"
    MET = "met"
    CLOSED = "closed"


# A request may name a need only while it is still to be met.
OPEN_NEED_STATUSES = (NeedStatus.OPEN.value, NeedStatus.PARTIALLY_MET.value)


class NeedSource(StrEnum):
    RECOMMENDATION = "recommendation"  # a recommendation of a visit report
    CONSULTATION = "consultation"  # a capacity consultation
    STATE_REQUEST = "state_request"  # the State's own request


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    CIRCULATED = "circulated"
    MATCHED = "matched"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_SELECTED = "not_selected"  # another offer was accepted
    CLOSED = "closed"  # the request was declined or withdrawn before a decision


class Programme(StrEnum):
    """The programmes under which capacity consultations and plans are run."""

    COUNTERING_TERRORIST_TRAVEL = "countering_terrorist_travel"
    SALW_TERRORISM_NEXUS = "salw_terrorism_nexus"
    PROTECTION_OF_VULNERABLE_TARGETS = "protection_of_vulnerable_targets"
    FUSION_CELLS = "fusion_cells"


class Need(SQLModel, table=True):
    """A need identified for a State; linked to the recommendation or consultation it comes from."""

    __tablename__ = "assistance_needs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    area: str = Field(max_length=40, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    priority: str = Field(max_length=10)
    status: str = Field(default=NeedStatus.OPEN.value, max_length=20, index=True)
    source: str = Field(max_length=20)
    # The report version the need comes from; None: the State's needs-sharing consent
    # decides whether the need is shared.
    report_id: uuid.UUID | None = Field(default=None, foreign_key="visit_reports.id", index=True)
    # Indexed: deleting a draft's recommendations checks this key for every one of them.
    recommendation_id: uuid.UUID | None = Field(
        default=None, foreign_key="recommendations.id", index=True
    )
    # The recommendation's section: its consent decides whether the need is shared.
    section_id: uuid.UUID | None = Field(default=None, foreign_key="report_sections.id", index=True)
    consultation_id: uuid.UUID | None = Field(
        default=None, foreign_key="capacity_consultations.id", index=True
    )
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)


class AssistanceRequest(SQLModel, table=True):
    """A State's request for assistance on one or more of its needs."""

    __tablename__ = "assistance_requests"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    title: str = Field(max_length=300)
    description: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=RequestStatus.SUBMITTED.value, max_length=20, index=True)
    # Who filed it: the State itself, or the Secretariat on its behalf.
    filed_by_org: uuid.UUID = Field(foreign_key="organizations.id")
    filed_by: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)


class AssistanceRequestNeed(SQLModel, table=True):
    __tablename__ = "assistance_request_needs"

    request_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("assistance_requests.id", ondelete="CASCADE"), primary_key=True)
    )
    need_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("assistance_needs.id"), primary_key=True, index=True)
    )


class RequestTransition(SQLModel, table=True):
    """One step of a request's workflow, kept as history."""

    __tablename__ = "assistance_request_transitions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("assistance_requests.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    by_user: uuid.UUID | None = Field(default=None)
    by_org: uuid.UUID = Field(foreign_key="organizations.id")


class Offer(SQLModel, table=True):
    """A Compact entity's proposal to meet a circulated request."""

    __tablename__ = "assistance_offers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="assistance_requests.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    programme: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    timeline: str = Field(max_length=500)
    budget: Decimal | None = Field(default=None, sa_column=Column(Numeric(16, 2), nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    status: str = Field(default=OfferStatus.PENDING.value, max_length=20, index=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by_user: uuid.UUID | None = Field(default=None)
    created_by_client: str | None = Field(default=None, max_length=80)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: uuid.UUID | None = Field(default=None)
    decision_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CapacityConsultation(SQLModel, table=True):
    """A capacity consultation with a State under one programme, and its implementation plan."""

    __tablename__ = "capacity_consultations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    programme: str = Field(max_length=40, index=True)
    start_date: date
    end_date: date
    participants: list[dict[str, str | None]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    baseline_findings: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)


class PlanMeasure(SQLModel, table=True):
    """A measure of an implementation plan, with its recommendations and the entity in charge."""

    __tablename__ = "plan_measures"
    __table_args__ = (
        UniqueConstraint("consultation_id", "position", name="uq_plan_measures_position"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    consultation_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("capacity_consultations.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    position: int
    title: str = Field(max_length=300)
    recommendations: str = Field(sa_column=Column(Text, nullable=False))
    entity_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)


class PlanIndicator(SQLModel, table=True):
    """A target indicator of a measure; `current` is the latest progress update."""

    __tablename__ = "plan_indicators"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    measure_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("plan_measures.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    name: str = Field(max_length=300)
    unit: str = Field(max_length=50)
    baseline: float
    target: float
    current: float
    due_date: date
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)


class IndicatorUpdate(SQLModel, table=True):
    """One progress update of an indicator; never changed, so progress keeps its history."""

    __tablename__ = "plan_indicator_updates"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    indicator_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("plan_indicators.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    previous: float
    value: float
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    recorded_by_user: uuid.UUID | None = Field(default=None)
    recorded_by_client: str | None = Field(default=None, max_length=80)
    recorded_by_org: uuid.UUID = Field(foreign_key="organizations.id")
