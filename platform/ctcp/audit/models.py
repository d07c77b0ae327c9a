"""Audit tables: the events and the single chain head that serializes writers."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, Text
from sqlmodel import Field, SQLModel

from ctcp.core.db import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
        )
    )
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_user_id: uuid.UUID | None = Field(default=None, index=True)
    actor_client_id: str | None = Field(default=None, max_length=64, index=True)
    actor_organization: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64, index=True)
    object_type: str | None = Field(default=None, max_length=40)
    object_id: str | None = Field(default=None, max_length=64, index=True)
    outcome: str = Field(max_length=10)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)
    request_id: str | None = Field(default=None, max_length=64)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditChainHead(SQLModel, table=True):
    """One row: the last event's id and hash. Writers lock it, so the chain never forks."""

    __tablename__ = "audit_chain_head"

    id: int = Field(default=1, primary_key=True)
    last_id: int = Field(default=0, sa_type=BigInteger)
    last_hash: str = Field(max_length=64)
