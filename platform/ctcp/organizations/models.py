"""Organization table."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class OrganizationKind(StrEnum):
    MEMBER_STATE = "member_state"
    COMPACT_ENTITY = "compact_entity"
    SECRETARIAT = "secretariat"


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    kind: str = Field(max_length=20, index=True)
    name_en: str = Field(max_length=200)
    name_fr: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
