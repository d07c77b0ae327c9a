"""Visit-report tables: one row per report version, its sections and recommendations."""

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class ReportKind(StrEnum):
    COMPREHENSIVE = "comprehensive"
    FOCUSED = "focused"
    FOLLOW_UP = "follow_up"


class ReportStatus(StrEnum):
    DRAFT = "draft"
    ADOPTED = "adopted"


class ThematicArea(StrEnum):
    LEGISLATION = "legislation"
    COUNTER_FINANCING = "counter_financing"
    LAW_ENFORCEMENT = "law_enforcement"
    BORDER_MANAGEMENT = "border_management"
    INTERNATIONAL_COOPERATION = "international_cooperation"
    COUNTERING_VIOLENT_EXTREMISM = "countering_violent_extremism"
    HUMAN_RIGHTS = "human_rights"
    CRITICAL_INFRASTRUCTURE = "critical_infrastructure"


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class VisitReport(SQLModel, table=True):
    """One version of a report; amending an adopted version adds the next one."""

    __tablename__ = "visit_reports"
    __table_args__ = (UniqueConstraint("lineage_id", "version", name="uq_visit_reports_version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    lineage_id: uuid.UUID = Field(index=True)
    version: int = Field(default=1)
    state_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=300)
    language: str = Field(max_length=8)
    visit_start_date: date = Field(index=True)
    visit_end_date: date
    status: str = Field(default=ReportStatus.DRAFT.value, max_length=10, index=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)
    adopted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    adopted_by: uuid.UUID | None = Field(default=None)


class ReportSection(SQLModel, table=True):
    __tablename__ = "report_sections"
    __table_args__ = (UniqueConstraint("report_id", "area", name="uq_report_sections_area"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    report_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("visit_reports.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    area: str = Field(max_length=40)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    position: int = Field(default=0)


class Recommendation(SQLModel, table=True):
    __tablename__ = "recommendations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    section_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("report_sections.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    text: str = Field(sa_column=Column(Text, nullable=False))
    priority: str = Field(max_length=10)
    position: int = Field(default=0)


class AttachmentBlob(SQLModel, table=True):
    """Content stored once per SHA-256, whoever uploads it and to whichever report."""

    __tablename__ = "attachment_blobs"

    sha256: str = Field(max_length=64, primary_key=True)
    size: int
    media_type: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)


class AttachmentChunk(SQLModel, table=True):
    """1 MiB pieces of a blob: neither upload nor download holds a file whole in memory."""

    __tablename__ = "attachment_chunks"

    sha256: str = Field(
        sa_column=Column(
            ForeignKey("attachment_blobs.sha256", ondelete="CASCADE"), primary_key=True
        )
    )
    sequence: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Attachment(SQLModel, table=True):
    """A file attached to a report version, or to one of its sections."""

    __tablename__ = "attachments"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    report_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("visit_reports.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    section_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            ForeignKey("report_sections.id", ondelete="CASCADE"), index=True, nullable=True
        ),
    )
    filename: str = Field(max_length=200)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(foreign_key="attachment_blobs.sha256", index=True, max_length=64)
    uploaded_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    uploaded_by: uuid.UUID | None = Field(default=None)
