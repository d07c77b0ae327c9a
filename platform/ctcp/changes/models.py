"""Change-feed tables: the head (numbering, sweep, retention), the entries, and the last
known readers of each object."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

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


class ChangeEntry(SQLModel, table=True):
    """One change of one object, and who among the Compact entities could read it just
    before and just after: `generic_*` for every Compact entity, `orgs_*` for the
    organizations tied to it (an activity's lead and partners, a request's offerers)."""

    __tablename__ = "change_entries"
    __table_args__ = (Index("ix_change_entries_object", "object_type", "object_id", "seq"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    object_type: str = Field(max_length=20)
    object_id: uuid.UUID
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    generic_before: bool = Field(default=False)
    generic_after: bool = Field(default=False)
    orgs_before: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    orgs_after: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class FeedObject(SQLModel, table=True):
    """Who could read an object at its latest entry: the `before` of its next one."""

    __tablename__ = "change_objects"

    object_type: str = Field(max_length=20, primary_key=True)
    object_id: uuid.UUID = Field(primary_key=True)
    generic: bool = Field(default=False)
    orgs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latest_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
