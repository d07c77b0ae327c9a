"""Change-feed tables: the head (numbering, sweep, retention), the entries, the last
known readers of each object, and the webhook endpoints with their outbox."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class FeedHead(SQLModel, table=True):
    """One row: the last number given, how far time-driven changes (expiries, entries
    turning stale) have been recorded, and the highest number retention has removed.
    Locking it numbers the entries in commit order."""

    __tablename__ = "change_feed_head"

    id: int = Field(default=1, primary_key=True)
    last_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    swept_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    purged_through: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # How many retention passes removed something: a cursor names the pass it was issued
    # after, so a read begun without a cursor after a pass is not taken for an old one.
    purges: int = Field(default=0)


class ChangeEntry(SQLModel, table=True):
    """One change of one object, and who among the feed's readers could read it just
    before and just after: `generic_*` for every Compact entity, `secretariat_*` for the
    Secretariat's organizations, `orgs_*` for the organizations tied to it (an activity's
    lead and partners, a request's offerers)."""

    __tablename__ = "change_entries"
    __table_args__ = (Index("ix_change_entries_object", "object_type", "object_id", "seq"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    object_type: str = Field(max_length=20)
    object_id: uuid.UUID
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    generic_before: bool = Field(default=False)
    generic_after: bool = Field(default=False)
    # The same for an entity focal point of the Secretariat (CTED, UNOCT), which reads
    # more than a Compact entity (e.g. contact points for the Secretariat only).
    secretariat_before: bool = Field(default=False)
    secretariat_after: bool = Field(default=False)
    orgs_before: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    orgs_after: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class FeedObject(SQLModel, table=True):
    """Who could read an object at its latest entry: the `before` of its next one."""

    __tablename__ = "change_objects"

    object_type: str = Field(max_length=20, primary_key=True)
    object_id: uuid.UUID = Field(primary_key=True)
    generic: bool = Field(default=False)
    secretariat: bool = Field(default=False)
    orgs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latest_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """Where an API client's system is told of its changes, signed (Standard Webhooks)."""

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    api_client_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("api_clients.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    url: str = Field(max_length=2000)
    # Kinds of the feed ("publication", "need", ...); a kind also needs the client's scope.
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # The signing secret (`whsec_...`), encrypted with the platform key: it must be
    # readable to sign, so it cannot be hashed like a client secret. Shown once.
    secret_encrypted: str = Field(max_length=512)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    created_by: uuid.UUID | None = Field(default=None)
    secret_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one message to one endpoint, queued in the change's own transaction."""

    __tablename__ = "webhook_deliveries"
    # The sender's query: due rows by status, oldest first.
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    endpoint_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False)
    )
    # `webhook-id`: the same on every attempt, so a receiver recognises a duplicate.
    message_id: str = Field(max_length=64, unique=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=WebhookDeliveryStatus.PENDING, max_length=10)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    # While `sending`, the sender's lease: past it, another pass may take the row again.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
