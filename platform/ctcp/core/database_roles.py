"""PostgreSQL roles: an owner that migrates, an app role that owns nothing.

The app's role may read and write the tables it works with, but only SELECT and INSERT
the append-only logs; it can neither disable their triggers (only an owner or a
superuser can) nor set `session_replication_role` (superuser only). SQLite has no roles.
"""

import logging
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from ctcp.core.db import make_engine
from ctcp.core.errors import DomainError

# The attributes both roles get; the app role also owns nothing (checked after granting).
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
# Tables the app only appends to and reads; their triggers refuse changes, and the app
# role is not granted UPDATE, DELETE or TRUNCATE on them either: the logs, the consent
# histories, what a publication holds and the stored files.
APPEND_ONLY_TABLES = (
    "audit_events",
    "consent_events",
    "needs_sharing_events",
    "publication_sections",
    "publication_attachments",
    "attachment_blobs",
    "attachment_chunks",
    "contact_point_versions",
)
# What the app may do on tables that need less than SELECT, INSERT, UPDATE, DELETE.
NARROWER_GRANTS = {
    "audit_chain_head": "SELECT, UPDATE",
    "alembic_version": "SELECT",
    # A publication is only ever revoked (its trigger also refuses un-revoking).
    "publications": "SELECT, INSERT, UPDATE (revoked_at)",
    **{table: "SELECT, INSERT" for table in APPEND_ONLY_TABLES},
}
logger = logging.getLogger("ctcp.db")
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseRolesError(DomainError):
    title = "Database roles"


@dataclass(frozen=True)
class RolePlan:
    """The database, its owner and the app's role, as the two URLs name them."""

    database: str
    owner: str
    owner_password: str | None
    app: str
    app_password: str | None


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() in ("postgresql", "postgres")


def role_plan(migration_url: str, app_url: str) -> RolePlan:
    """Read the roles from CTCP_MIGRATION_DATABASE_URL and CTCP_DATABASE_URL."""
    owner_url, app = make_url(migration_url), make_url(app_url)
    if owner_url.database != app.database or owner_url.host != app.host:
        raise DatabaseRolesError("the migration and app URLs must name the same database")
    if not owner_url.database or not owner_url.username or not app.username:
        raise DatabaseRolesError("both URLs must name a user and a database")
    if owner_url.username == app.username:
        raise DatabaseRolesError(
            "CTCP_MIGRATION_DATABASE_URL and CTCP_DATABASE_URL name the same user: "
            "the app would own its tables and could rewrite the audit log"
        )
    for name in (owner_url.database, owner_url.username, app.username):
        if not ROLE_NAME.match(name):
            raise DatabaseRolesError(f"{name!r}: use lower-case letters, digits and _")
    return RolePlan(
        database=owner_url.database,
        owner=owner_url.username,
        owner_password=owner_url.password,
        app=app.username,
        app_password=app.password,
    )


def _name(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _ensure_role(connection: AsyncConnection, role: str, password: str | None) -> None:
    exists = (
        await connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    ).first()
    verb = "ALTER" if exists else "CREATE"
    secret = f" PASSWORD {_literal(password)}" if password else ""
    await connection.execute(text(f"{verb} ROLE {_name(role)} WITH {ROLE_ATTRIBUTES}{secret}"))


async def create_roles(admin_url: str, plan: RolePlan) -> None:
    """As a cluster admin: both roles, the database owned by the owner, a closed schema.

    Idempotent: existing roles get the attributes again (and the URLs' passwords), and
    objects an earlier setup left to another role are handed to the owner.
    """
    engine = make_engine(admin_url, pooled=False)
    try:
        async with engine.connect() as raw:
            connection = await raw.execution_options(isolation_level="AUTOCOMMIT")
            await _ensure_role(connection, plan.owner, plan.owner_password)
            await _ensure_role(connection, plan.app, plan.app_password)
            await connection.execute(text(f"REVOKE {_name(plan.owner)} FROM {_name(plan.app)}"))
            exists = (
                await connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": plan.database}
                )
            ).first()
            if exists:
                await connection.execute(
                    text(f"ALTER DATABASE {_name(plan.database)} OWNER TO {_name(plan.owner)}")
                )
            else:
                await connection.execute(
                    text(f"CREATE DATABASE {_name(plan.database)} OWNER {_name(plan.owner)}")
                )
            database = _name(plan.database)
            await connection.execute(text(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC"))
            await connection.execute(
                text(f"GRANT CONNECT ON DATABASE {database} TO {_name(plan.app)}")
            )
    finally:
        await engine.dispose()
    target = make_url(admin_url).set(database=plan.database).render_as_string(False)
    engine = make_engine(target, pooled=False)
    try:
        async with engine.begin() as connection:
            owner = _name(plan.owner)
            await connection.execute(text(f"ALTER SCHEMA public OWNER TO {owner}"))
            await connection.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
            await _hand_over_objects(connection, plan.owner)
    finally:
        await engine.dispose()


async def _hand_over_objects(connection: AsyncConnection, owner: str) -> None:
    """Give the owner every table, sequence and function of the schema (an older setup's)."""
    relations = await connection.execute(
        text(
            "SELECT c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND pg_get_userbyid(c.relowner) <> :owner"
        ),
        {"owner": owner},
    )
    for name, _kind in relations.all():
        # ALTER TABLE serves views too, and takes a table's own sequences along.
        await connection.execute(text(f"ALTER TABLE {_name(name)} OWNER TO {_name(owner)}"))
    sequences = await connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'S' "
            "AND pg_get_userbyid(c.relowner) <> :owner AND NOT EXISTS ("
            "SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))"
        ),
        {"owner": owner},
    )
    for (name,) in sequences.all():
        await connection.execute(text(f"ALTER SEQUENCE {_name(name)} OWNER TO {_name(owner)}"))
    functions = await connection.execute(
        text(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> :owner"
        ),
        {"owner": owner},
    )
    for name, arguments in functions.all():
        await connection.execute(
            text(f"ALTER FUNCTION {_name(name)}({arguments}) OWNER TO {_name(owner)}")
        )


# What `:r` itself owns in the current database: the database, a schema but the system's,
# a relation or a function in one (owning a trigger function is enough to void a trigger).
_OWNED = """
SELECT kind || ' ' || name FROM (
    SELECT 'database' AS kind, datname AS name, datdba AS owner
        FROM pg_database WHERE datname = current_database()
    UNION ALL SELECT 'schema', nspname, nspowner FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
    UNION ALL SELECT 'relation', c.relname, c.relowner
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION ALL SELECT 'function', p.proname, p.proowner
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
) AS objects
WHERE pg_get_userbyid(owner) = :r
ORDER BY 1
LIMIT 5
"""

# The roles `:r` is a member of, at any depth, that are superusers, bypass RLS, create
# roles or own something in the current database (the database itself, a schema but the
# system's, a relation or a function in one).
_POWERFUL_GROUPS = """
WITH owners AS (
    SELECT datdba AS owner FROM pg_database WHERE datname = current_database()
    UNION SELECT nspowner FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
    UNION SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
)
SELECT g.rolname, g.rolsuper, g.rolbypassrls, g.rolcreaterole,
    g.oid IN (SELECT owner FROM owners)
FROM pg_roles g
WHERE g.rolname <> :r AND pg_has_role(:r, g.oid, 'MEMBER')
    AND (g.rolsuper OR g.rolbypassrls OR g.rolcreaterole
        OR g.oid IN (SELECT owner FROM owners))
ORDER BY 1
"""


async def app_role_problems(connection: AsyncConnection, role: str) -> list[str]:
    """What lets `role` rewrite the audit log: superuser, bypassing RLS, CREATEROLE, owning
    objects, or being a member (directly or through other roles) of a role that does."""
    attributes = (
        await connection.execute(
            text("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = :r"),
            {"r": role},
        )
    ).first()
    if attributes is None:
        return [f"role {role} does not exist: run `ctcp db create-roles`"]
    problems = [
        f"role {role} {what}"
        for what, present in zip(
            ("is a superuser", "bypasses row-level security", "may create roles (CREATEROLE)"),
            attributes,
            strict=True,
        )
        if present
    ]
    owned = await connection.execute(text(_OWNED), {"r": role})
    names = [name for (name,) in owned.all()]
    if names:
        problems.append(f"role {role} owns {', '.join(names)}")
    # Membership is followed through every level (pg_has_role's MEMBER: whether or not
    # privileges are inherited, a member may SET ROLE to the other and act as it).
    member_of = await connection.execute(text(_POWERFUL_GROUPS), {"r": role})
    for name, superuser, bypasses, creates, owns in member_of.all():
        powers = [
            what
            for what, present in (
                ("a superuser", superuser),
                ("bypasses row-level security", bypasses),
                ("may create roles", creates),
                ("owns objects of this database", owns),
            )
            if present
        ]
        problems.append(f"role {role} is a member of {name} ({', '.join(powers)})")
    return problems


async def grant_app_privileges(owner_url: str, app_role: str) -> None:
    """As the owner, after every upgrade: the app role's privileges, exactly (idempotent).

    Everything is revoked, then granted again, so new tables are covered and nothing
    granted by hand survives. Refused when the app role could rewrite the audit log.
    """
    engine = make_engine(owner_url, pooled=False)
    try:
        async with engine.begin() as connection:
            problems = await app_role_problems(connection, app_role)
            if problems:
                raise DatabaseRolesError("; ".join(problems))
            app = _name(app_role)
            for statement in (
                f"GRANT USAGE ON SCHEMA public TO {app}",
                f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}",
                f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
            ):
                await connection.execute(text(statement))
            for table, privileges in NARROWER_GRANTS.items():
                exists = (
                    await connection.execute(text("SELECT to_regclass(:t)"), {"t": table})
                ).scalar()
                if exists is None:
                    continue
                await connection.execute(text(f"REVOKE ALL ON {_name(table)} FROM {app}"))
                await connection.execute(text(f"GRANT {privileges} ON {_name(table)} TO {app}"))
    finally:
        await engine.dispose()


async def current_role_problems(url: str) -> list[str]:
    """Why the role the app connects as could rewrite the audit log (empty: it cannot)."""
    engine = make_engine(url, pooled=False)
    try:
        async with engine.connect() as connection:
            role = (await connection.execute(text("SELECT current_user"))).scalar_one()
            return await app_role_problems(connection, str(role))
    finally:
        await engine.dispose()


async def check_app_role(url: str, *, refuse: bool) -> None:
    """At start-up (PostgreSQL): refuse, or warn, when the app's role could rewrite the log.

    An unsafe role is refused where `refuse` says so (production, unless
    CTCP_ALLOW_UNSAFE_DATABASE_ROLE); otherwise it is logged as a warning.
    """
    if not is_postgresql(url):
        return
    try:
        problems = await current_role_problems(url)
    except Exception as error:
        if refuse:  # unchecked is not safe: production does not start on a guess
            raise DatabaseRolesError(f"could not check the app's database role: {error}") from error
        logger.exception("could not check the app's database role")
        return
    if not problems:
        return
    message = (
        f"the app's database role can rewrite the audit log ({'; '.join(problems)}): run "
        "migrations as another role, see `ctcp db create-roles`"
    )
    if refuse:
        raise DatabaseRolesError(
            f"{message}; refusing to start in production (CTCP_ALLOW_UNSAFE_DATABASE_ROLE=true "
            "overrides this)"
        )
    logger.warning(message)
