"""full-text search over report and publication sections

Revision ID: 5e4fa1c0b7d2
Revises: daa253335228
Create Date: 2026-11-22 15:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e4fa1c0b7d2"
down_revision: str | None = "daa253335228"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("report_sections", "publication_sections")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(
                f"CREATE INDEX ix_{table}_search ON {table} USING gin "
                f"(to_tsvector('simple', title || ' ' || body))"
            )
        return
    for table in TABLES:
        # External-content FTS5 index over the table's title and body, kept in step by
        # triggers (the tables' implicit integer rowid links the two).
        op.execute(
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5("
            f"title, body, content='{table}', content_rowid='rowid')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {table}_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);"
            " END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {table}_fts({table}_fts, rowid, title, body) "
            "VALUES ('delete', old.rowid, old.title, old.body); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE ON {table} BEGIN "
            f"INSERT INTO {table}_fts({table}_fts, rowid, title, body) "
            "VALUES ('delete', old.rowid, old.title, old.body); "
            f"INSERT INTO {table}_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);"
            " END"
        )
        op.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
        return
    for table in TABLES:
        for suffix in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {table}_fts")
