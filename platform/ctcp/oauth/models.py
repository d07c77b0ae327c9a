"""OAuth tables: API clients of Compact entities and the access tokens issued to them."""

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class ApiClient(SQLModel, table=True):
    """A system of one organization, acting with its entity-focal-point rights, narrowed."""

    __tablename__ = "api_clients"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # The public identifier the client sends (RFC 6749 §2.2); not a secret.
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    organization_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    # Space-separated, as on the wire (RFC 6749 §3.3).
    scopes: str = Field(max_length=200)
    # SHA-256 of the 256-bit secret: the secret itself is shown once and never stored.
    secret_hash: str = Field(max_length=64)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)
    secret_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_by: uuid.UUID | None = Field(default=None)


class AccessToken(SQLModel, table=True):
    """An opaque bearer token: only its SHA-256 is kept; refused once revoked or expired."""

    __tablename__ = "oauth_access_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    api_client_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("api_clients.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    scopes: str = Field(max_length=200)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
