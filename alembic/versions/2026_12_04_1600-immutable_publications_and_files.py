"""immutable publications and files: the database refuses to rewrite what a State consented to

The app's role has DML on these tables, so without this it could widen a publication's
audience, un-revoke it, change its sections, attachments or the stored file bytes, or
rewrite a State's needs-sharing history, all without an audit event. Now, as for
audit_events and consent_events:

- publications: INSERT; UPDATE only to set revoked_at once (NULL to a time), nothing else;
- publication_sections, publication_attachments, attachment_blobs (content addressed by
  its sha256), attachment_chunks, needs_sharing_events: INSERT only;
- TRUNCATE refused on PostgreSQL for all of them, and for consent_events too.

Nothing deletes these rows: reports are never deleted, and only a draft's sections and
files are (consent, hence a publication, needs an adopted version), so the ON DELETE
CASCADE from publications and attachments never reaches a row kept here.

Revision ID: e5c9a3d70b12
Revises: d4b8f2a61c37
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e5c9a3d70b12"
down_revision: str | None = "d4b8f2a61c37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = (
    "publication_sections",
    "publication_attachments",
    "attachment_blobs",
    "attachment_chunks",
    "needs_sharing_events",
)
# Every column of publications but revoked_at, as of this revision: SQLite compares them
# one by one (a column added later must be added here too); PostgreSQL compares whole rows.
PUBLICATION_COLUMNS = (
    "id",
    "report_id",
    "consent_event_id",
    "state_id",
    "audience",
    "title",
    "published_at",
    "expires_at",
)
PUBLICATIONS_REFUSAL = "publications is append-only: an update may only set revoked_at, once"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _postgresql_guards() -> None:
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )
    # The whole row but revoked_at must stay as it was: a column added later is covered.
    op.execute(
        f"""
        CREATE FUNCTION publications_revoke_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
                AND to_jsonb(NEW) - 'revoked_at' = to_jsonb(OLD) - 'revoked_at' THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{PUBLICATIONS_REFUSAL} (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER publications_no_update_delete BEFORE UPDATE OR DELETE ON publications "
        "FOR EACH ROW EXECUTE FUNCTION publications_revoke_only()"
    )
    op.execute(
        "CREATE TRIGGER publications_no_truncate BEFORE TRUNCATE ON publications "
        "FOR EACH STATEMENT EXECUTE FUNCTION publications_revoke_only()"
    )
    # consent_events refused UPDATE and DELETE from the start, but not TRUNCATE.
    op.execute(
        "CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION consent_events_append_only()"
    )


def _sqlite_guards() -> None:
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} "
                f"ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{table} is append-only ({operation} refused)'); END"
            )
    unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in PUBLICATION_COLUMNS)
    op.execute(
        "CREATE TRIGGER publications_no_update BEFORE UPDATE ON publications "
        f"WHEN NOT (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND {unchanged}) "
        f"BEGIN SELECT RAISE(ABORT, '{PUBLICATIONS_REFUSAL} (UPDATE refused)'); END"
    )
    op.execute(
        "CREATE TRIGGER publications_no_delete BEFORE DELETE ON publications "
        f"BEGIN SELECT RAISE(ABORT, '{PUBLICATIONS_REFUSAL} (DELETE refused)'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_truncate ON consent_events")
        for table, function in (
            *((table, f"{table}_append_only") for table in APPEND_ONLY_TABLES),
            ("publications", "publications_revoke_only"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for table in (*APPEND_ONLY_TABLES, "publications"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
