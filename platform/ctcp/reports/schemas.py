"""Visit-report payloads (docs/api.md, "Visit reports")."""

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.organizations.models import Organization
from ctcp.reports.models import Priority, ReportKind, ThematicArea

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200_000)]


class RecommendationIn(RequestModel):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    priority: Priority


class SectionIn(RequestModel):
    area: ThematicArea
    title: Title
    body: Body
    recommendations: list[RecommendationIn] = Field(default_factory=list, max_length=100)


class ReportContent(RequestModel):
    """What an analyst writes: the same for a new report and for editing a draft."""

    title: Title
    kind: ReportKind
    visit_start: date
    visit_end: date
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en"
    sections: list[SectionIn] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _consistent(self) -> "ReportContent":
        if self.visit_end < self.visit_start:
            raise ValueError("visit_end must not be before visit_start")
        areas = [section.area for section in self.sections]
        if len(set(areas)) != len(areas):
            raise ValueError("each thematic area may appear once in a report")
        return self


class ReportCreate(ReportContent):
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")]


class RecommendationRead(ResponseModel):
    id: uuid.UUID
    text: str
    priority: str


class SectionRead(ResponseModel):
    id: uuid.UUID
    area: str
    title: str
    body: str
    recommendations: list[RecommendationRead]


class StateRef(ResponseModel):
    id: uuid.UUID
    code: str
    name: str

    @classmethod
    def of(cls, organization: Organization) -> "StateRef":
        return cls(id=organization.id, code=organization.code, name=organization.name_en)


class ReportSummary(ResponseModel):
    id: uuid.UUID
    lineage_id: uuid.UUID
    version: int
    state: StateRef
    title: str
    kind: str
    language: str
    visit_start: date
    visit_end: date
    status: str
    created_at: datetime
    adopted_at: datetime | None


class AttachmentRead(ResponseModel):
    id: uuid.UUID
    filename: str
    media_type: str
    size: int
    sha256: str
    section_id: uuid.UUID | None


class ReportRead(ReportSummary):
    sections: list[SectionRead]
    # The files attached to this version (to the whole report or to one of its sections).
    attachments: list[AttachmentRead] = Field(default_factory=list)
