"""Consent and publication tables."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class ConsentScope(StrEnum):
    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class Audience(StrEnum):
    COMPACT = "compact"
    MEMBER_STATES = "member_states"
    PUBLIC = "public"


# Wider audiences include the narrower ones.
AUDIENCE_RANK = {Audience.COMPACT: 1, Audience.MEMBER_STATES: 2, Audience.PUBLIC: 3}


class ConsentEvent(SQLModel, table=True):
    """One decision of a State about one report version; the latest is current."""

    __tablename__ = "consent_events"
    __table_args__ = (UniqueConstraint("report_id", "sequence", name="uq_consent_events_sequence"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    report_id: uuid.UUID = Field(foreign_key="visit_reports.id", index=True)
    sequence: int
    scope: str = Field(max_length=10)
    section_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    audience: str | None = Field(default=None, max_length=20)
    share_needs: bool = Field(default=False)
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    withdrawal: bool = Field(default=False)
    effective_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    recorded_by: uuid.UUID | None = Field(default=None)
    on_behalf_of: uuid.UUID = Field(foreign_key="organizations.id")


class Publication(SQLModel, table=True):
    """An immutable snapshot of the consented sections for one audience."""

    __tablename__ = "publications"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    report_id: uuid.UUID = Field(foreign_key="visit_reports.id", index=True)
    consent_event_id: uuid.UUID = Field(foreign_key="consent_events.id")
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    audience: str = Field(max_length=20, index=True)
    title: str = Field(max_length=300)
    published_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class PublicationSection(SQLModel, table=True):
    __tablename__ = "publication_sections"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    publication_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("publications.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    section_id: uuid.UUID
    area: str = Field(max_length=40)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    position: int = Field(default=0)


class PublicationAttachment(SQLModel, table=True):
    """A file a publication carries, fixed when its consent was recorded: a file added to
    the report later reaches no audience until a new decision covers it."""

    __tablename__ = "publication_attachments"

    publication_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("publications.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    attachment_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("attachments.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
            nullable=False,
        )
    )
    filename: str = Field(max_length=200)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)


class NeedsSharingEvent(SQLModel, table=True):
    """A State's decision on sharing its needs that come from no report; the latest is current.

    Needs from a report recommendation follow `share_needs` of that report's consent.
    """

    __tablename__ = "needs_sharing_events"
    __table_args__ = (
        UniqueConstraint("state_id", "sequence", name="uq_needs_sharing_events_sequence"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    sequence: int
    share_needs: bool = Field(default=False)
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    withdrawal: bool = Field(default=False)
    effective_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    recorded_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    recorded_by: uuid.UUID | None = Field(default=None)
