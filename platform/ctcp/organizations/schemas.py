"""Organization payloads."""

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.organizations.models import OrganizationKind

Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")]


class OrganizationCreate(RequestModel):
    code: Code
    name: str = Field(min_length=2, max_length=200)
    name_fr: str | None = Field(default=None, min_length=2, max_length=200)
    kind: OrganizationKind


class OrganizationRead(ResponseModel):
    id: uuid.UUID
    code: str
    kind: str
    name: str = Field(validation_alias="name_en")
    name_fr: str | None
    active: bool
