"""Activities: who does what, where, when; the needs each answers, its partners, and the
plan measures it carries out."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Numeric, Text
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class ActivityStatus(StrEnum):
    PLANNED = "planned"
    ONGOING = "ongoing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# The statuses of work that is, or will be, going on: what closes a gap and what overlaps.
AT_WORK = (ActivityStatus.PLANNED.value, ActivityStatus.ONGOING.value)

# The moves an activity's status may make; a completed or cancelled activity is closed.
MOVES: dict[str, frozenset[str]] = {
    ActivityStatus.PLANNED.value: frozenset(
        {
            ActivityStatus.ONGOING.value,
            ActivityStatus.COMPLETED.value,
            ActivityStatus.CANCELLED.value,
        }
    ),
    ActivityStatus.ONGOING.value: frozenset(
        {ActivityStatus.COMPLETED.value, ActivityStatus.CANCELLED.value}
    ),
    ActivityStatus.COMPLETED.value: frozenset(),
    ActivityStatus.CANCELLED.value: frozenset(),
}


class ActivityKind(StrEnum):
    TRAINING = "training"
    LEGISLATIVE_DRAFTING = "legislative_drafting"
    EQUIPMENT = "equipment"
    MENTORING = "mentoring"
    ASSESSMENT = "assessment"
    OTHER = "other"


class Activity(SQLModel, table=True):
    """A Compact entity's capacity-building work in a State."""

    __tablename__ = "activities"
    # The matrix groups by State and area, and pairs activities of one cell for overlaps.
    __table_args__ = (Index("ix_activities_state_area", "state_id", "area"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    area: str = Field(max_length=40, index=True)
    programme: str | None = Field(default=None, max_length=200, index=True)
    kind: str = Field(default=ActivityKind.OTHER.value, max_length=30)
    title: str = Field(max_length=300)
    description: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=ActivityStatus.PLANNED.value, max_length=20, index=True)
    starts_on: date = Field(index=True)
    ends_on: date | None = Field(default=None)
    lead_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    budget: Decimal | None = Field(default=None, sa_column=Column(Numeric(16, 2), nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    # The offer it came from: one activity per accepted offer.
    offer_id: uuid.UUID | None = Field(
        default=None, foreign_key="assistance_offers.id", unique=True
    )
    # What a completed activity produced, as plain figures: [{"name", "value", "unit"?}].
    outputs: list[dict[str, object]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime, index=True)
    created_by: uuid.UUID | None = Field(default=None)
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)


class ActivityPartner(SQLModel, table=True):
    """A Compact entity working on an activity beside its lead."""

    __tablename__ = "activity_partners"

    activity_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True)
    )
    organization_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("organizations.id"), primary_key=True, index=True)
    )


class ActivityNeed(SQLModel, table=True):
    """A need of the activity's State that the activity answers."""

    __tablename__ = "activity_needs"

    activity_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True)
    )
    need_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("assistance_needs.id"), primary_key=True, index=True)
    )


class ActivityMeasure(SQLModel, table=True):
    """An implementation-plan measure in the lead's charge that the activity carries out;
    a measure is carried out by one activity at most."""

    __tablename__ = "activity_measures"

    measure_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("plan_measures.id", ondelete="CASCADE"), primary_key=True)
    )
    activity_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("activities.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
