"""publication attachments: a publication carries the files its consent covered, fixed

Until now a publication's attachments were worked out when it was read, so a file added
to the report after consent reached every audience of the publication at once. Each
publication now records, when its consent is recorded, exactly which attachments it
carries (id and sha256); the backfill gives each existing publication the files that
existed when it was published and that its consent covered by the rule of the time.

Revision ID: c7a2e5f14b90
Revises: 9b1f3c2d7e41
Create Date: 2026-12-04 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c7a2e5f14b90"
down_revision: str | None = "9b1f3c2d7e41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publication_attachments",
        sa.Column("publication_id", sa.Uuid(), nullable=False),
        sa.Column("attachment_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_publication_attachments_publication_id_publications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_publication_attachments_attachment_id_attachments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "publication_id", "attachment_id", name=op.f("pk_publication_attachments")
        ),
    )
    with op.batch_alter_table("publication_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_publication_attachments_attachment_id"), ["attachment_id"], unique=False
        )
    # The files each existing publication covered when it was published: a section's file
    # with its section, a file of the whole report only under full consent.
    op.execute(
        """
        INSERT INTO publication_attachments
            (publication_id, attachment_id, filename, media_type, size, sha256)
        SELECT p.id, a.id, a.filename, a.media_type, a.size, a.sha256
        FROM publications p
        JOIN consent_events c ON c.id = p.consent_event_id
        JOIN attachments a ON a.report_id = p.report_id
        WHERE a.uploaded_at <= p.published_at
          AND (
            (a.section_id IS NULL AND c.scope = 'full')
            OR a.section_id IN (
                SELECT s.section_id FROM publication_sections s WHERE s.publication_id = p.id
            )
          )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("publication_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_publication_attachments_attachment_id"))
    op.drop_table("publication_attachments")
