"""index assistance_needs.recommendation_id

Every recommendation a draft edit deletes is checked against this foreign key; without
an index each check read the whole needs table (30,000 rows at the large data set).

Revision ID: 9b1f3c2d7e41
Revises: 477fd4a44fb3
Create Date: 2026-11-22 21:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9b1f3c2d7e41"
down_revision: str | None = "477fd4a44fb3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_assistance_needs_recommendation_id"),
        "assistance_needs",
        ["recommendation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_assistance_needs_recommendation_id"), table_name="assistance_needs")
