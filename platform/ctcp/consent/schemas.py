"""Consent and publication payloads (docs/api.md, "Consent and publications")."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from ctcp.consent.markings import TLP_DESCRIPTION, Tlp
from ctcp.consent.models import Audience, ConsentScope
from ctcp.core.schemas import RequestModel, ResponseModel


class ConsentDecision(RequestModel):
    scope: ConsentScope
    sections: list[uuid.UUID] = Field(default_factory=list, max_length=8)
    audience: Audience = Audience.COMPACT
    share_needs: bool = False
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = (
        None
    )
    expires_at: AwareDatetime | None = None
    # The sequence of the latest decision the decider saw (0: none); when given, a decision
    # recorded meanwhile (a withdrawal, say) makes this one a 409 instead of overriding it.
    after_sequence: int | None = Field(default=None, ge=0, le=2**31)


class Withdrawal(RequestModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ConsentRead(ResponseModel):
    id: uuid.UUID
    sequence: int
    scope: str
    sections: list[uuid.UUID]
    audience: str | None
    share_needs: bool
    reference: str | None
    reason: str | None
    withdrawal: bool
    effective_at: datetime
    expires_at: datetime | None
    recorded_at: datetime
    recorded_by: uuid.UUID | None


class ConsentState(ResponseModel):
    current: ConsentRead | None
    history: list[ConsentRead]


class PublicationSectionRead(ResponseModel):
    id: uuid.UUID
    area: str
    title: str
    body: str


class PublicationRead(ResponseModel):
    id: uuid.UUID
    report_id: uuid.UUID
    state: str
    title: str
    audience: str
    tlp: Tlp = Field(description=TLP_DESCRIPTION)
    published_at: datetime
    expires_at: datetime | None
    sections: list[PublicationSectionRead]
    attachments: list[dict[str, str]] = Field(default_factory=list)


class NeedsSharingDecision(RequestModel):
    share_needs: bool
    reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = (
        None
    )
    expires_at: AwareDatetime | None = None
    # The sequence of the latest decision the decider saw (0: none); when given, a decision
    # recorded meanwhile (a withdrawal, say) makes this one a 409 instead of overriding it.
    after_sequence: int | None = Field(default=None, ge=0, le=2**31)


class NeedsSharingRead(ResponseModel):
    id: uuid.UUID
    sequence: int
    share_needs: bool
    reference: str | None
    reason: str | None
    withdrawal: bool
    effective_at: datetime
    expires_at: datetime | None
    recorded_at: datetime
    recorded_by: uuid.UUID | None


class NeedsSharingState(ResponseModel):
    state: str
    current: NeedsSharingRead | None
    history: list[NeedsSharingRead]
