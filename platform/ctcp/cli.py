"""The `ctcp` command: migrations, reference data, accounts, the server, the audit chain, mail.

Each command imports the application when it runs, not when this module loads: `ctcp
--help` stays instant instead of loading SQLModel, Alembic, Casbin and cryptography.
"""

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from ctcp.audit import checkpoints
    from ctcp.audit.service import AuditContext
    from ctcp.core import database_roles
    from ctcp.core.config import Settings

app = typer.Typer(help="CTCP — Counter-Terrorism Coordination Platform", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit chain.", no_args_is_help=True)
policy_app = typer.Typer(help="The access policy (policies/).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
notifications_app = typer.Typer(help="E-mail notifications.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")
contacts_app = typer.Typer(help="The directory of national contact points.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
sync_app = typer.Typer(
    help="Follow the change feed as a Compact entity's system would.", no_args_is_help=True
)
app.add_typer(sync_app, name="sync")
changes_app = typer.Typer(help="The change feed.", no_args_is_help=True)
app.add_typer(changes_app, name="changes")
console = Console(stderr=True)
T = TypeVar("T")


def _cli_context() -> "AuditContext":
    """Who acts, in the audit log, when an operator runs a command."""
    from ctcp.audit.service import AuditContext

    return AuditContext(user_agent="ctcp-cli")


def _run_or_refuse(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; a rule's refusal is printed and exits 2 (nothing changed)."""
    from ctcp.core.errors import DomainError

    try:
        return asyncio.run(work)
    except DomainError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(2) from error


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate as CTCP_MIGRATION_DATABASE_URL's owner, grant the app role its privileges,
    then load the reviewed policy where none is stored yet."""
    from ctcp.core import database_roles, migrations
    from ctcp.core.config import get_settings

    settings = get_settings()
    migrations.upgrade(settings.migration_database_url)
    console.print(f"database at revision {migrations.head_revision()}")
    if database_roles.is_postgresql(settings.database_url):
        _grant_app_privileges(settings)
    _load_policy_where_none()
    recorded = _run_or_refuse(_backfill_changes(settings.database_url))
    if recorded:
        console.print(f"change feed: {recorded} objects from before it recorded")


async def _backfill_changes(url: str) -> int:
    from ctcp.changes import service as changes
    from ctcp.core.db import Database

    database = Database(url)
    try:
        async with database.transaction() as session:
            return await changes.backfill(session)
    finally:
        await database.dispose()


def _grant_app_privileges(settings: "Settings") -> None:
    """PostgreSQL: the app role's privileges, or a warning when the app is the owner."""
    from ctcp.core import database_roles

    if settings.migration_database_url == settings.database_url:
        console.print(
            "[yellow]the app connects as the schema's owner, which can rewrite the audit "
            "log: set CTCP_MIGRATION_DATABASE_URL (see `ctcp db create-roles`)[/yellow]"
        )
        return
    plan = _run_or_refuse(_role_plan(settings.migration_database_url, settings.database_url))
    _run_or_refuse(database_roles.grant_app_privileges(settings.migration_database_url, plan.app))
    console.print(f"privileges granted to {plan.app} (audit_events: SELECT, INSERT only)")


def _load_policy_where_none() -> None:
    """A new database gets the reviewed policy (policies/policy.csv), so it serves at once.
    A stored policy is an administrator's: never replaced silently (`ctcp policy load` does)."""
    from ctcp.authz import policy
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    async def stored_lines() -> int:
        database = Database(get_settings().database_url)
        try:
            async with database.read_sessionmaker() as session:
                return len(await policy.stored_policy(session))
        finally:
            await database.dispose()

    stored = asyncio.run(stored_lines())
    if stored:
        console.print(f"policy: {stored} lines stored, kept (`ctcp policy load` replaces them)")
    else:
        policy_load()


async def _role_plan(migration_url: str, app_url: str) -> "database_roles.RolePlan":
    from ctcp.core import database_roles

    return database_roles.role_plan(migration_url, app_url)


@db_app.command("create-roles")
def db_create_roles(
    admin_url: Annotated[
        str,
        typer.Option(
            envvar="CTCP_ADMIN_DATABASE_URL",
            help="A cluster administrator's URL (CREATEROLE and CREATEDB); used only here",
        ),
    ],
) -> None:
    """Create the owner role of CTCP_MIGRATION_DATABASE_URL and the app role of
    CTCP_DATABASE_URL (names and passwords from the URLs), and the database (idempotent)."""
    from ctcp.core import database_roles
    from ctcp.core.config import get_settings

    settings = get_settings()
    if not database_roles.is_postgresql(settings.database_url):
        console.print(
            "SQLite has no roles: protect the database file and keep the audit checkpoints "
            'outside it (see README, "The audit log")'
        )
        raise typer.Exit(2)
    plan = _run_or_refuse(_role_plan(settings.migration_database_url, settings.database_url))
    _run_or_refuse(database_roles.create_roles(admin_url, plan))
    console.print(
        f"database {plan.database} owned by {plan.owner}; app role {plan.app} owns nothing "
        "(run `ctcp db upgrade` to migrate and grant)"
    )


@app.command("load-reference-data")
def load_reference_data() -> None:
    """Load or update the Member States, Compact entities and the Secretariat (idempotent)."""
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database
    from ctcp.organizations import service as organizations

    total = sum(1 for _ in organizations.reference_organizations())

    async def run() -> organizations.LoadResult:
        database = Database(get_settings().database_url)
        try:
            with Progress(
                TextColumn("organizations"), BarColumn(), MofNCompleteColumn(), console=console
            ) as progress:
                task = progress.add_task("load", total=total)
                async with database.transaction() as session:
                    return await organizations.load_reference_data(
                        session,
                        context=_cli_context(),
                        progress=lambda n: progress.advance(task, n),
                    )
        finally:
            await database.dispose()

    result = asyncio.run(run())
    console.print(
        f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}"
    )


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The administrator's e-mail address")],
    org: Annotated[str, typer.Option(help="Code of a Secretariat organization, e.g. CTED")],
    name: Annotated[str, typer.Option(help="Display name")] = "Platform administrator",
) -> None:
    """Create a platform administrator (idempotent on the same e-mail)."""
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database
    from ctcp.core.errors import DomainError
    from ctcp.identity import service as identity
    from ctcp.identity.passwords import PasswordHasher
    from ctcp.identity.roles import Role
    from ctcp.organizations import service as organizations

    settings = get_settings()
    password = os.environ.get("CTCP_ADMIN_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )

    async def run() -> str:
        database = Database(settings.database_url)
        hasher = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        try:
            async with database.transaction() as session:
                if await identity.load_account(session, email=email) is not None:
                    return "exists"
                organization = await organizations.organization_by_code(session, org)
                if organization is None:
                    raise DomainError(
                        f"No organization with code {org!r}: run `ctcp load-reference-data` first."
                    )
                await identity.create_user(
                    session,
                    email=email,
                    name=name,
                    organization=organization,
                    password=password,
                    roles=[Role.PLATFORM_ADMIN],
                    hasher=hasher,
                    context=_cli_context(),
                )
                return "created"
        finally:
            await database.dispose()

    outcome = _run_or_refuse(run())
    console.print(f"administrator {email}: {outcome}")


def _require_demo() -> None:
    """Exit 2 unless the demo package is installed: production installs leave it out."""
    from importlib.util import find_spec

    if find_spec("ctcp_demo") is None:
        console.print(
            "[red]the demo data set is not part of this install: it is the separate "
            "ctcp-demo package (demo/ in the source tree, which scripts/bootstrap installs)[/red]"
        )
        raise typer.Exit(2)


@app.command("demo")
def demo(
    password: Annotated[
        str | None,
        typer.Option(
            help="The password of every demo account (default: the one the README documents)"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Load even when CTCP_ENVIRONMENT=production")
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Instead, build the seeded bulk data set for benchmarks at this scale, e.g. "
            "large: 20,000 users, 10,000 reports, 1,000,000 audit events (an unknown scale "
            "lists them)"
        ),
    ] = None,
) -> None:
    """Fill a fictional demo data set through the services (idempotent)."""
    _require_demo()
    from ctcp.audit import service as audit
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database
    from ctcp.identity.passwords import PasswordHasher
    from ctcp_demo import service as demo_data
    from ctcp_demo.content import DEMO_PASSWORD

    password = DEMO_PASSWORD if password is None else password
    settings = get_settings()
    if settings.environment == "production" and not force:
        console.print(
            "[red]refused: CTCP_ENVIRONMENT=production (add --force to load anyway)[/red]"
        )
        raise typer.Exit(2)
    if scale is not None:
        _demo_at_scale(scale, password)
        return

    async def run() -> tuple[demo_data.DemoSummary | None, int]:
        database = Database(settings.database_url)
        hasher = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        try:
            async with database.read_sessionmaker() as session:
                before = await audit.chain_length(session)
            async with database.transaction() as session:
                summary = await demo_data.load_demo(
                    session, password=password, hasher=hasher, context=_cli_context()
                )
            async with database.read_sessionmaker() as session:
                return summary, await audit.chain_length(session) - before
        finally:
            await database.dispose()

    summary, audit_events = _run_or_refuse(run())
    if summary is None:
        console.print("demo data already present: nothing added")
        return
    counts = Table("demo data", "added")
    for label, number in [*summary.counts.items(), ("audit events", audit_events)]:
        counts.add_row(label, str(number))
    accounts = Table(title=f"Demo accounts, password {password}")
    for column in ("e-mail", "role", "org", "MFA"):
        accounts.add_column(column, no_wrap=True)
    for account in summary.accounts:
        mfa = "yes" if account.role.value in settings.mfa_required_roles else "no"
        accounts.add_row(account.email, account.role.value, account.organization, mfa)
    output = Console()
    output.print(counts)
    output.print(accounts)
    output.print("MFA: enrol a TOTP authenticator at first sign-in (the portal shows a QR code).")


class _PhaseBar:
    """The large build's phases as rich progress bars, one after the other."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            task = self.progress.tasks[-1]
            self.progress.update(self.task, completed=task.total)
        self.task = self.progress.add_task(phase, total=total)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)


def _demo_at_scale(name: str, password: str) -> None:
    """`ctcp demo --scale NAME`: the seeded bulk data set, with its timings."""
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database
    from ctcp.identity.passwords import PasswordHasher
    from ctcp_demo import large as large_data

    if name not in large_data.SCALES:
        console.print(f"[red]unknown scale {name!r}: one of {', '.join(large_data.SCALES)}[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    scale = large_data.SCALES[name]

    async def run() -> large_data.BuildResult | None:
        database = Database(settings.database_url)
        hasher = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        try:
            with Progress(
                TextColumn("{task.description:<32}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                return await large_data.build(
                    database,
                    scale=scale,
                    password=password,
                    hasher=hasher,
                    context=_cli_context(),
                    progress=_PhaseBar(progress),
                )
        finally:
            await database.dispose()

    result = _run_or_refuse(run())
    if result is None:
        console.print("large data set already present: nothing added")
        return
    output = Console()
    counts = Table(f"data set ({scale.name})", "rows")
    for label, number in result.counts.items():
        counts.add_row(label, f"{number:,}")
    counts.add_row("audit chain length", f"{result.chain_length:,}")
    output.print(counts)
    timings = Table("phase", "seconds")
    for phase, seconds in result.phases:
        timings.add_row(phase, f"{seconds:.1f}")
    timings.add_row("total", f"{result.total_seconds:.1f}")
    output.print(timings)
    output.print(
        f"Every generated account has the password {password} "
        f"(e.g. {large_data.MARKER_EMAIL}; State focal points: focal.NNNNN@<iso3>."
        f"{large_data.DOMAIN})."
    )


@policy_app.command("load")
def policy_load() -> None:
    """Bring the stored policy in line with policies/policy.csv (idempotent)."""
    from ctcp.authz import policy
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    lines = policy.read_policy_file()

    async def run() -> policy.SyncResult:
        database = Database(get_settings().database_url)
        try:
            async with database.transaction() as session:
                return await policy.sync_policy(session, lines, context=_cli_context())
        finally:
            await database.dispose()

    result = asyncio.run(run())
    console.print(f"policy: {len(lines)} lines, {result.added} added, {result.removed} removed")


@app.command("setup")
def setup(
    admin_url: Annotated[
        str | None,
        typer.Option(
            envvar="CTCP_ADMIN_DATABASE_URL",
            help="PostgreSQL: a cluster administrator's URL, to create the owner and app "
            "roles first (`ctcp db create-roles`)",
        ),
    ] = None,
    admin_email: Annotated[
        str | None,
        typer.Option(help="Create this platform administrator (password: CTCP_ADMIN_PASSWORD)"),
    ] = None,
    admin_org: Annotated[str, typer.Option(help="The administrator's organization")] = "CTED",
    with_demo: Annotated[bool, typer.Option("--demo", help="Load the demo data set")] = False,
) -> None:
    """A database ready to serve, in order: the owner and app roles (PostgreSQL, given an
    admin URL), migrations as the owner with the app role's grants and the reviewed policy
    where none is stored yet, the reference data, an administrator, the demo data."""
    if with_demo:
        _require_demo()  # before any step, not after the migrations
    if admin_url:
        db_create_roles(admin_url)
    db_upgrade()
    load_reference_data()
    if admin_email:
        create_admin(email=admin_email, org=admin_org, name="Platform administrator")
    if with_demo:
        demo(password=None, force=False, scale=None)


@policy_app.command("show")
def policy_show() -> None:
    """Print the effective permission matrix, as the running platform applies it."""
    from ctcp.authz import policy
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    async def run() -> list[policy.PolicyLine]:
        database = Database(get_settings().database_url)
        try:
            async with database.sessionmaker() as session:
                return (await policy.load_engine(session)).matrix()
        finally:
            await database.dispose()

    table = Table("role", "domain", "resource", "action", "scope", title="Effective policy")
    for line in sorted(asyncio.run(run())):
        table.add_row(*line)
    Console().print(table)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Run the server."""
    import uvicorn

    uvicorn.run(
        "ctcp.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The app reads forwarded headers itself, from CTCP_TRUSTED_PROXIES only: uvicorn's
        # own reading (and FORWARDED_ALLOW_IPS, which could trust "*") stays off.
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


@audit_app.command("verify")
def audit_verify(
    expect_checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint exported earlier (its JSON, or export-checkpoints' output: the "
            "last line counts); it must still be stored and still match the chain",
        ),
    ] = None,
    expect_position: Annotated[
        int | None, typer.Option(help="Instead of a file: the expected checkpoint's event")
    ] = None,
    expect_hash: Annotated[str | None, typer.Option(help="... and that event's hash")] = None,
) -> None:
    """Walk the audit chain and hold it against the signed checkpoints: exit 0 when
    intact, 1 naming the first event after the last good checkpoint."""
    from ctcp.audit import checkpoints
    from ctcp.audit import service as audit
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    settings = get_settings()

    async def run() -> checkpoints.ChainVerdict:
        expected = _expected_checkpoint(settings, expect_checkpoint, expect_position, expect_hash)
        database = Database(settings.database_url)
        try:
            async with database.read_sessionmaker() as session:
                total = await audit.chain_length(session)
                with Progress(
                    TextColumn("audit events"), BarColumn(), MofNCompleteColumn(), console=console
                ) as bar:
                    task = bar.add_task("verify", total=total)
                    result = await checkpoints.verify_audit_chain(
                        session,
                        settings,
                        expected=expected,
                        progress=lambda n: bar.advance(task, n),
                    )
                    bar.update(task, completed=result.checked)
                    return result
        finally:
            await database.dispose()

    result = _run_or_refuse(run())
    if result.valid:
        console.print(f"audit chain intact: {result.checked} events")
        if result.checkpoint_status == "protected":
            console.print(
                f"signed checkpoints: {result.checkpoints}, the last at event "
                f"{result.last_checkpoint_id}; {result.unprotected_events} later events are "
                "only as safe as the database"
            )
        else:
            console.print(f"[yellow]warning: {result.reason}[/yellow]")
        return
    if result.stale:
        console.print(
            f"[red]audit chain not vouched for from event {result.first_invalid_id}[/red] "
            f"({result.checked} events vouched for before it): {result.reason}"
        )
    else:
        console.print(
            f"[red]audit chain broken at event {result.first_invalid_id}[/red] "
            f"({result.checked} events verified before it): {result.reason}"
        )
    sys.exit(1)


def _expected_checkpoint(
    settings: "Settings", path: Path | None, position: int | None, event_hash: str | None
) -> "checkpoints.ExpectedCheckpoint | None":
    """The checkpoint an auditor kept, from a file (signature checked) or a position+hash."""
    from ctcp.audit import checkpoints
    from ctcp.core.errors import ValidationError

    if path is not None:
        try:
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            checkpoint = checkpoints.parse_checkpoint(lines[-1] if lines else "")
        except (OSError, ValueError) as error:
            raise ValidationError(f"{path}: not a checkpoint ({error})") from error
        problem = checkpoints.signature_problem(checkpoint, checkpoints.verifying_keys(settings))
        if problem is not None:
            raise ValidationError(f"{path}: the checkpoint you expect is {problem}")
        return checkpoints.ExpectedCheckpoint(
            checkpoint.position, checkpoint.hash, checkpoint.sequence
        )
    if (position is None) != (event_hash is None):
        raise ValidationError("give both --expect-position and --expect-hash, or neither")
    if position is None or event_hash is None:
        return None
    return checkpoints.ExpectedCheckpoint(position, event_hash.lower())


@audit_app.command("keygen")
def audit_keygen(
    path: Annotated[
        Path | None,
        typer.Argument(help="Private key file (default: CTCP_AUDIT_SIGNING_KEY_FILE)"),
    ] = None,
    public: Annotated[
        Path | None, typer.Option(help="Public key file (default: PATH + .pub)")
    ] = None,
) -> None:
    """Make an Ed25519 key that signs audit checkpoints (0600; never overwrites a key)."""
    from ctcp.audit import checkpoints
    from ctcp.core.config import get_settings

    settings = get_settings()
    target = path or settings.audit_signing_key_file
    if target is None:
        console.print("[red]give a PATH or set CTCP_AUDIT_SIGNING_KEY_FILE[/red]")
        raise typer.Exit(2)
    public_path = public or target.with_name(target.name + ".pub")

    async def run() -> str:
        return checkpoints.key_id(checkpoints.generate_signing_key(target, public_path))

    signer = _run_or_refuse(run())
    console.print(
        f"signing key {target} (key id {signer}); public key {public_path}\n"
        f"set CTCP_AUDIT_SIGNING_KEY_FILE={target} where checkpoints are signed, and "
        f"CTCP_AUDIT_PUBLIC_KEY_FILE={public_path} where they are verified"
    )


@audit_app.command("checkpoint")
def audit_checkpoint(
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Keep signing, every CTCP_AUDIT_CHECKPOINT_EVERY_EVENTS events or "
            "_EVERY_MINUTES minutes",
        ),
    ] = False,
) -> None:
    """Sign the audit chain's head into CTCP_AUDIT_CHECKPOINT_DIR (once, for cron, or --loop)."""
    from ctcp.audit import checkpoints
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    settings = get_settings()
    if settings.audit_signing_key_file is None:
        console.print("[red]no signing key: set CTCP_AUDIT_SIGNING_KEY_FILE[/red]")
        raise typer.Exit(2)
    key_file = settings.audit_signing_key_file

    async def run() -> checkpoints.Checkpoint | None:
        signing_key = checkpoints.load_signing_key(key_file)
        database = Database(settings.database_url)
        try:
            if loop:
                signer = checkpoints.Checkpointer(
                    database,
                    signing_key=signing_key,
                    directory=settings.audit_checkpoints,
                    every_events=settings.audit_checkpoint_every_events,
                    every_minutes=settings.audit_checkpoint_every_minutes,
                    keys=checkpoints.verifying_keys(settings),
                )
                signer.start()
                try:
                    await asyncio.Event().wait()
                finally:
                    await signer.stop()
            async with database.read_sessionmaker() as session:
                # One shot: only the events since the last checkpoint are checked (a
                # rewrite of those goes unseen; the --loop signer remembers its last head).
                return await checkpoints.take_checkpoint(
                    session,
                    signing_key=signing_key,
                    directory=settings.audit_checkpoints,
                    keys=checkpoints.verifying_keys(settings),
                )
        finally:
            await database.dispose()

    try:
        checkpoint = _run_or_refuse(run())
    except KeyboardInterrupt:
        console.print("stopped")
        return
    if checkpoint is None:
        console.print("the audit chain is empty: nothing to sign")
        return
    console.print(
        f"checkpoint {checkpoint.sequence} at event {checkpoint.position} "
        f"({checkpoint.hash[:16]}…) in {settings.audit_checkpoints}"
    )


@audit_app.command("export-checkpoints")
def audit_export_checkpoints() -> None:
    """Print every signed checkpoint as JSON Lines, in chain order, for an auditor."""
    from ctcp.audit import checkpoints
    from ctcp.core.config import get_settings

    settings = get_settings()
    for checkpoint in checkpoints.exported_checkpoints(settings.audit_checkpoints):
        print(json.dumps(checkpoint.as_json(), sort_keys=True))


@notifications_app.command("send")
def notifications_send(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep polling, every CTCP_NOTIFICATION_POLL_SECONDS")
    ] = False,
) -> None:
    """Deliver due notifications by SMTP: one pass, or a sender process with --loop."""
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database
    from ctcp.notifications import service as notifications

    settings = get_settings()
    if settings.smtp_host is None:
        console.print("[red]delivery disabled: set CTCP_SMTP_HOST[/red]")
        raise typer.Exit(2)

    def show(report: notifications.DeliveryReport) -> None:
        if report.claimed or not loop:
            console.print(f"sent {report.sent}, retried {report.retried}, failed {report.failed}")

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            if loop:
                await notifications.deliver_forever(database, settings, on_pass=show)
            else:
                show(await notifications.deliver_due(database, settings))
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        console.print("stopped")


def _advancing(lines: Iterable[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    """The lines, moving a progress bar by the bytes each one takes."""
    for line in lines:
        advance(len(line))
        yield line


@contacts_app.command("import")
def contacts_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A UTF-8 CSV file with the columns of the CSV export",
        ),
    ],
    as_email: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="A CTED analyst's e-mail: the entries' history and the audit log name them "
            "(default: the command line)",
        ),
    ] = None,
) -> None:
    """Load contact points from a CSV file with the export's columns. Every row is checked
    as the API checks it; if any row is bad, each problem is printed with its line, nothing
    of the file is written, and the exit code is 1."""
    from ctcp.contacts import exchange
    from ctcp.contacts import service as contacts
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    settings = get_settings()

    async def run() -> int | list[exchange.ImportProblem]:
        database = Database(settings.database_url)
        try:
            with (
                file.open("rb") as source,
                Progress(
                    TextColumn("contact points"),
                    BarColumn(),
                    DownloadColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bar,
            ):
                task = bar.add_task("import", total=file.stat().st_size)
                lines = _advancing(source, lambda size: bar.advance(task, size))
                try:
                    async with database.transaction() as session:
                        editor = await contacts.import_editor(session, _cli_context(), as_email)
                        report = await contacts.import_contact_points(
                            session, editor, lines, source=file.name
                        )
                except contacts.ImportRefusedError as refused:
                    return refused.problems
                return report.created
        finally:
            await database.dispose()

    outcome = _run_or_refuse(run())
    if isinstance(outcome, int):
        console.print(f"imported {outcome} contact points from {file.name}", markup=False)
        return
    for problem in outcome:
        console.print(str(problem), markup=False, highlight=False)
    console.print(
        f"[red]nothing imported: {len(outcome)} problems in {file.name}[/red]", highlight=False
    )
    raise typer.Exit(1)


@contacts_app.command("remind")
def contacts_remind() -> None:
    """Remind States' focal points, by notification, of entries that turn stale within 30
    days or have turned stale (once per confirmation each): one pass, e.g. from cron."""
    from ctcp.contacts import service as contacts
    from ctcp.contacts.schemas import REMIND_DAYS_BEFORE_STALE
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    settings = get_settings()

    async def run() -> contacts.ReminderReport:
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                return await contacts.send_reminders(session)
        finally:
            await database.dispose()

    report = _run_or_refuse(run())
    console.print(
        f"reminders sent: {report.soon} entries turning stale within "
        f"{REMIND_DAYS_BEFORE_STALE} days, {report.stale} entries stale",
        highlight=False,
    )


@changes_app.command("purge")
def changes_purge() -> None:
    """Apply the change feed's retention once (CTCP_CHANGE_FEED_RETENTION_DAYS), as every
    app process does every CTCP_CHANGE_FEED_PURGE_SECONDS."""
    from datetime import timedelta

    from ctcp.changes import service as changes
    from ctcp.changes import webhooks
    from ctcp.core.clock import clock
    from ctcp.core.config import get_settings
    from ctcp.core.db import Database

    settings = get_settings()

    async def run() -> int:
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                older_than = clock.now() - timedelta(days=settings.change_feed_retention_days)
                await webhooks.purge_deliveries(session, older_than)
                return await changes.purge(session, older_than)
        finally:
            await database.dispose()

    console.print(f"change feed: {_run_or_refuse(run())} entries past retention removed")


@changes_app.command("backfill")
def changes_backfill() -> None:
    """Give every object the feed has never recorded its first entry (after a bulk load
    that wrote tables directly; `ctcp db upgrade` runs this too)."""
    from ctcp.core.config import get_settings

    recorded = _run_or_refuse(_backfill_changes(get_settings().database_url))
    console.print(f"change feed: {recorded} objects recorded")


@sync_app.command("pull")
def sync_pull(
    base_url: Annotated[str, typer.Option(help="The platform, e.g. https://ctcp.example.org")],
    client_id: Annotated[str, typer.Option(help="The API client's client_id")],
    into: Annotated[
        Path, typer.Option(dir_okay=False, help="The SQLite mirror (created if missing)")
    ],
    follow: Annotated[
        bool, typer.Option(help="Keep polling every --interval seconds (Ctrl-C stops)")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 5.0,
    types: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated kinds (default: all the client reads); a mirror keeps "
            "the types it was built with"
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Accept a plain http:// --base-url that is not loopback (development only: "
            "the client secret would cross the network in clear)",
        ),
    ] = False,
) -> None:
    """Bring a local SQLite mirror up to date with what the API client may read: upserts
    replace objects, revokes delete them, each page applied with its cursor in one
    transaction. The secret comes from CTCP_SYNC_CLIENT_SECRET or a prompt, never from
    the command line (it would show in the process list and the shell's history). The
    platform is reached over https (plain http only on a loopback address, or with
    --insecure); the mirror file is created readable by its owner only."""
    import httpx

    from ctcp.changes.consumer import FeedConsumer, FeedError, Mirror, check_base_url

    try:
        check_base_url(httpx.URL(base_url), insecure=insecure)
    except (FeedError, httpx.InvalidURL) as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(1) from error

    secret = os.environ.get("CTCP_SYNC_CLIENT_SECRET") or typer.prompt(
        "Client secret", hide_input=True
    )
    kinds = [part.strip() for part in types.split(",") if part.strip()] if types else None

    async def run() -> str:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            with Mirror(into) as mirror:
                consumer = FeedConsumer(
                    http,
                    mirror,
                    client_id=client_id,
                    client_secret=secret,
                    types=kinds,
                    insecure=insecure,
                )
                if follow:
                    await consumer.follow(interval)
                report = await consumer.pull()
                return (
                    f"{report.pages} pages: {report.upserts} upserts, {report.revokes} revokes"
                    + (f", {report.resets} resynchronisations (410)" if report.resets else "")
                    + f"; the mirror holds {len(mirror.objects())} objects"
                )

    try:
        summary = asyncio.run(run())
    except FeedError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(1) from error
    except httpx.HTTPError as error:
        console.print(f"[red]{base_url} unreachable: {error}[/red]", highlight=False)
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    console.print(summary, highlight=False, markup=False)


if __name__ == "__main__":
    app()
