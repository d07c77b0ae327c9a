"""The `ctcp` command: migrations, reference data, accounts, the server, the audit chain, mail."""

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.core import migrations
from ctcp.core.config import get_settings
from ctcp.core.db import Database
from ctcp.core.errors import DomainError
from ctcp.demo import large as large_data
from ctcp.demo import service as demo_data
from ctcp.demo.content import DEMO_PASSWORD
from ctcp.identity import service as identity
from ctcp.identity.passwords import PasswordHasher
from ctcp.identity.roles import Role
from ctcp.notifications import service as notifications
from ctcp.organizations import service as organizations
from ctcp.organizations.service import reference_organizations

app = typer.Typer(help="CTCP — Counter-Terrorism Coordination Platform", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit chain.", no_args_is_help=True)
policy_app = typer.Typer(help="The access policy (policies/).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
notifications_app = typer.Typer(help="E-mail notifications.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")
console = Console(stderr=True)
CLI_CONTEXT = AuditContext(user_agent="ctcp-cli")
T = TypeVar("T")


def _run_or_refuse(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; a rule's refusal is printed and exits 2 (nothing changed)."""
    try:
        return asyncio.run(work)
    except DomainError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(2) from error


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database of CTCP_DATABASE_URL to the latest revision."""
    settings = get_settings()
    migrations.upgrade(settings.database_url)
    console.print(f"database at revision {migrations.head_revision()}")


@app.command("load-reference-data")
def load_reference_data() -> None:
    """Load or update the Member States, Compact entities and the Secretariat (idempotent)."""
    total = sum(1 for _ in reference_organizations())

    async def run() -> organizations.LoadResult:
        database = Database(get_settings().database_url)
        try:
            with Progress(
                TextColumn("organizations"), BarColumn(), MofNCompleteColumn(), console=console
            ) as progress:
                task = progress.add_task("load", total=total)
                async with database.transaction() as session:
                    return await organizations.load_reference_data(
                        session, context=CLI_CONTEXT, progress=lambda n: progress.advance(task, n)
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
                    context=CLI_CONTEXT,
                )
                return "created"
        finally:
            await database.dispose()

    outcome = _run_or_refuse(run())
    console.print(f"administrator {email}: {outcome}")


@app.command("demo")
def demo(
    password: Annotated[
        str, typer.Option(help="The password of every demo account (documented in the README)")
    ] = DEMO_PASSWORD,
    force: Annotated[
        bool, typer.Option("--force", help="Load even when CTCP_ENVIRONMENT=production")
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Instead, build the seeded bulk data set for benchmarks: "
            + ", ".join(large_data.SCALES)
            + " (large: 20,000 users, 10,000 reports, 1,000,000 audit events)"
        ),
    ] = None,
) -> None:
    """Fill a fictional demo data set through the services (idempotent)."""
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
                    session, password=password, hasher=hasher, context=CLI_CONTEXT
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
                    context=CLI_CONTEXT,
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
    lines = policy.read_policy_file()

    async def run() -> policy.SyncResult:
        database = Database(get_settings().database_url)
        try:
            async with database.transaction() as session:
                return await policy.sync_policy(session, lines, context=CLI_CONTEXT)
        finally:
            await database.dispose()

    result = asyncio.run(run())
    console.print(f"policy: {len(lines)} lines, {result.added} added, {result.removed} removed")


@policy_app.command("show")
def policy_show() -> None:
    """Print the effective permission matrix, as the running platform applies it."""

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
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit chain: exit 0 when intact, 1 naming the first bad event."""

    async def run() -> audit.VerifyResult:
        database = Database(get_settings().database_url)
        try:
            async with database.read_sessionmaker() as session:
                total = await audit.chain_length(session)
                with Progress(
                    TextColumn("audit events"), BarColumn(), MofNCompleteColumn(), console=console
                ) as bar:
                    task = bar.add_task("verify", total=total)
                    result = await audit.verify_chain(
                        session, progress=lambda n: bar.advance(task, n)
                    )
                    bar.update(task, completed=result.checked)
                    return result
        finally:
            await database.dispose()

    result = asyncio.run(run())
    if result.valid:
        console.print(f"audit chain intact: {result.checked} events")
        return
    console.print(
        f"[red]audit chain broken at event {result.first_invalid_id}[/red] "
        f"({result.checked} events verified before it)"
    )
    sys.exit(1)


@notifications_app.command("send")
def notifications_send(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep polling, every CTCP_NOTIFICATION_POLL_SECONDS")
    ] = False,
) -> None:
    """Deliver due notifications by SMTP: one pass, or a sender process with --loop."""
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


if __name__ == "__main__":
    app()
