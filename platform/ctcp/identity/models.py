"""Identity tables: users, role assignments, sessions, recovery codes, sign-in throttles."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from ctcp.core.clock import clock
from ctcp.core.db import UTCDateTime


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    organization_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    password_hash: str = Field(max_length=255)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    password_changed_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    # The TOTP secret, encrypted with the platform key; set at enrolment, live once confirmed.
    totp_secret_encrypted: str | None = Field(default=None, max_length=512)
    mfa_enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last accepted TOTP time step: a code is accepted once only.
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    role: str = Field(max_length=40, primary_key=True)
    granted_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    granted_by: uuid.UUID | None = Field(default=None)


class UserSession(SQLModel, table=True):
    __tablename__ = "user_sessions"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    # SHA-256 of the 256-bit session id: a database leak gives no usable cookie.
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    mfa_verified: bool = Field(default=False)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_codes"

    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins counted under one key: a source address, an e-mail at an address, an e-mail.

    E-mails are counted whether an account has them or not, so a lock reveals no account.
    """

    __tablename__ = "login_throttles"

    # "address:<ip>", "account_address:<email> <ip>", "account:<email>" or "device:<nonce>"
    # (see throttle.py).
    key: str = Field(max_length=400, primary_key=True)
    failures: int = Field(default=0)
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lockouts: int = Field(default=0)
