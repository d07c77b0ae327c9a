"""sign-in throttle keys: failures counted per address, per account and address, per account

The sign-in throttle counted failures per e-mail only, so anyone could lock an account's
owner out, and one address could try any number of accounts. Its rows are now keyed by
what they count (a source address, an e-mail at an address, or an e-mail). The counters
are short-lived, so the table is recreated rather than converted.

Revision ID: d4b8f2a61c37
Revises: c7a2e5f14b90
Create Date: 2026-12-04 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ctcp.core.db

revision: str = "d4b8f2a61c37"
down_revision: str | None = "c7a2e5f14b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(key_column: sa.Column[str]) -> None:
    op.create_table(
        "login_throttles",
        key_column,
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", ctcp.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", ctcp.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(key_column.name, name=op.f("pk_login_throttles")),
    )


def upgrade() -> None:
    op.drop_table("login_throttles")
    _create(sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False))


def downgrade() -> None:
    op.drop_table("login_throttles")
    _create(sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False))
