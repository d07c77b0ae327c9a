"""Contact-point tables: the live entries, and every version of each (append-only)."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Text
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime
from ctcp.organizations.models import OrganizationKind


class ContactKind(StrEnum):
    """What an authority is designated for (docs/design.md, "Contact point")."""

    ASSET_FREEZE = "asset_freeze"  # receives third-party asset-freeze requests
    MLA_CENTRAL_AUTHORITY = "mla_central_authority"
    EXTRADITION_CENTRAL_AUTHORITY = "extradition_central_authority"
    POLICE_24_7 = "police_24_7"
    FINANCIAL_INTELLIGENCE_UNIT = "financial_intelligence_unit"
    CT_COORDINATOR = "ct_coordinator"


class ContactAudience(StrEnum):
    """Who may read an entry besides its State and the Secretariat, narrowest first."""

    SECRETARIAT = "secretariat"
    COMPACT = "compact"
    MEMBER_STATES = "member_states"


# The audiences an organization of each kind reads through the `consented` scope; the
# Secretariat reads every entry through `all`, and a State its own through `own_state`.
AUDIENCES_FOR_READER: dict[str, tuple[str, ...]] = {
    OrganizationKind.COMPACT_ENTITY.value: (
        ContactAudience.COMPACT.value,
        ContactAudience.MEMBER_STATES.value,
    ),
    OrganizationKind.MEMBER_STATE.value: (ContactAudience.MEMBER_STATES.value,),
    OrganizationKind.SECRETARIAT.value: tuple(audience.value for audience in ContactAudience),
}


class ContactChange(StrEnum):
    """What a version records."""

    CREATED = "created"
    UPDATED = "updated"
    CONFIRMED = "confirmed"
    RETIRED = "retired"


class ContactPoint(SQLModel, table=True):
    """A designated authority: the current version of its entry."""

    __tablename__ = "contact_points"
    __table_args__ = (Index("ix_contact_points_state_id_kind", "state_id", "kind"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    state_id: uuid.UUID = Field(foreign_key="organizations.id")
    kind: str = Field(max_length=40, index=True)
    authority: str = Field(max_length=300)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=16)  # E.164
    fax: str | None = Field(default=None, max_length=16)  # E.164
    website: str | None = Field(default=None, max_length=500)
    request_form_url: str | None = Field(default=None, max_length=500)
    # ISO 639-1 codes, comma-separated and sorted ("en,fr"): the language filter matches
    # `,code,` inside `,languages,`, on both databases.
    languages: str = Field(max_length=200)
    working_hours: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)  # IANA, e.g. "Africa/Nairobi"
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    audience: str = Field(max_length=20)
    # The content's version: every change of content adds one; a confirmation does not.
    version: int = Field(default=1)
    confirmed_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime, index=True)
    # Retired entries answer 404 to everyone; their versions stay.
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The reminders sent for the current confirmation (a confirmation clears both).
    soon_stale_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stale_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ContactPointVersion(SQLModel, table=True):
    """One change of an entry, as it was after the change: who, when, what. Append-only."""

    __tablename__ = "contact_point_versions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contact_point_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("contact_points.id"), index=True, nullable=False)
    )
    version: int
    change: str = Field(max_length=20)
    # The entry's fields after the change (ContactPointRead's content, as JSON).
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The fields this change altered, each {"before", "after"}; empty for a confirmation.
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Who: a person (and their organization), or None for `ctcp contacts import`.
    actor_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)
    actor_organization_id: uuid.UUID | None = Field(
        default=None, foreign_key="organizations.id", index=True
    )
    at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
