"""The application factory: middleware, error handlers, routers."""

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import Headers
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ctcp import __version__
from ctcp.assistance import pages as assistance_pages
from ctcp.assistance.api import router as assistance_router
from ctcp.assistance.consultations_api import router as consultations_router
from ctcp.audit import checkpoints
from ctcp.audit import pages as audit_pages
from ctcp.audit import service as audit
from ctcp.audit.api import router as audit_router
from ctcp.audit.service import WRITER_KEY, AuditContext, AuditWriter, Outcome
from ctcp.authn.subject import current
from ctcp.authz.openapi import install_openapi
from ctcp.authz.policy import PolicyWatcher, load_engine
from ctcp.changes import service as changes_service
from ctcp.changes import webhooks
from ctcp.changes.api import router as changes_router
from ctcp.changes.webhooks_api import router as webhooks_router
from ctcp.consent import pages as consent_pages
from ctcp.consent.api import router as consent_router
from ctcp.contacts import pages as contacts_pages
from ctcp.contacts import service as contacts_service
from ctcp.contacts.api import router as contacts_router
from ctcp.core import database_roles
from ctcp.core.api_docs import install_api_docs
from ctcp.core.background import BackgroundTask
from ctcp.core.changes import LOCAL_LISTENERS_KEY, read_versions
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp.core.errors import install_problem_handlers
from ctcp.core.health import router as health_router
from ctcp.core.http import BodyLimitMiddleware, OriginCheckMiddleware, RequestContextMiddleware
from ctcp.core.rate_limits import RateLimiter
from ctcp.core.routes import PUBLIC
from ctcp.dashboard import pages as dashboard_pages
from ctcp.identity import admin_pages as identity_admin_pages
from ctcp.identity import pages as identity_pages
from ctcp.identity.api import router as identity_router
from ctcp.identity.dependencies import audit_context_of
from ctcp.identity.passwords import PasswordHasher
from ctcp.identity.principal_cache import PrincipalCache
from ctcp.identity.users_api import router as users_router
from ctcp.notifications.service import deliver_forever
from ctcp.oauth import pages as oauth_pages
from ctcp.oauth.api import router as oauth_router
from ctcp.oauth.bearer import TokenCache
from ctcp.oauth.clients_api import router as api_clients_router
from ctcp.organizations import pages as organizations_pages
from ctcp.organizations.api import router as organizations_router
from ctcp.planning import pages as planning_pages
from ctcp.planning.api import router as planning_router
from ctcp.reports import pages as reports_pages
from ctcp.reports.api import router as reports_router
from ctcp.search import pages as search_pages
from ctcp.search.api import router as search_router
from ctcp.web.pages import install_portal

logger = logging.getLogger("ctcp")


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs for the process's lifetime: the database, the policy watcher, the caches,
    the audit writer, the checkpointer, the mail sender and the contact-point reminders,
    started and stopped in order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything starts: in production a role that could rewrite the audit log
        # is refused (unless CTCP_ALLOW_UNSAFE_DATABASE_ROLE), elsewhere logged.
        await database_roles.check_app_role(
            settings.database_url,
            refuse=settings.environment == "production" and not settings.allow_unsafe_database_role,
        )
        database = Database(settings.database_url, pool_size=settings.db_pool_size)
        app.state.database = database
        async with database.sessionmaker() as session:
            engine = await load_engine(session)
            _, grants_version = await read_versions(session)
        if not engine.matrix():
            logger.warning("no access policy loaded: run `ctcp policy load`")
        sessions, tokens = PrincipalCache(), TokenCache()
        app.state.principal_cache, app.state.token_cache = sessions, tokens

        def forget_grants() -> None:
            sessions.invalidate()
            tokens.invalidate()

        database.share(LOCAL_LISTENERS_KEY, [forget_grants])
        app.state.policy = PolicyWatcher(
            database, engine, grants_version=grants_version, on_grants_changed=forget_grants
        )
        await app.state.policy.start()
        writer = AuditWriter(database)
        writer.start()
        database.share(WRITER_KEY, writer)
        # Signed checkpoints of the audit chain, where this process holds the signing key.
        checkpointer = checkpoints.checkpointer_for(database, settings)
        if checkpointer is not None:
            checkpointer.start()
        # Mail goes out only where SMTP is configured: development sends nothing.
        sender = (
            BackgroundTask("ctcp-notification-sender", lambda: deliver_forever(database, settings))
            if settings.smtp_host
            else None
        )
        app.state.notification_sender = sender
        if sender is not None:
            sender.start()
        # Reminders of contact points to confirm; 0 seconds: none from this process.
        reminders = (
            BackgroundTask(
                "ctcp-contact-reminders",
                lambda: contacts_service.remind_forever(
                    database, settings.contact_reminder_seconds
                ),
            )
            if settings.contact_reminder_seconds
            else None
        )
        app.state.contact_reminders = reminders
        if reminders is not None:
            reminders.start()
        # Retention of the change feed; 0 seconds: none from this process.
        feed_retention = (
            BackgroundTask(
                "ctcp-change-feed-retention",
                lambda: changes_service.purge_forever(
                    database,
                    settings.change_feed_retention_days,
                    settings.change_feed_purge_seconds,
                ),
            )
            if settings.change_feed_purge_seconds
            else None
        )
        if feed_retention is not None:
            feed_retention.start()
        # Expiries recorded in time for webhook receivers; 0 seconds: none from this process.
        feed_sweeper = (
            BackgroundTask(
                "ctcp-change-feed-sweeper",
                lambda: changes_service.sweep_forever(database, settings.change_feed_sweep_seconds),
            )
            if settings.change_feed_sweep_seconds
            else None
        )
        if feed_sweeper is not None:
            feed_sweeper.start()
        # Webhook deliveries of the change feed; 0 seconds: no sender in this process.
        webhook_sender = (
            BackgroundTask(
                "ctcp-webhook-sender", lambda: webhooks.deliver_forever(database, settings)
            )
            if settings.webhook_poll_seconds
            else None
        )
        if webhook_sender is not None:
            webhook_sender.start()
        # What start-up built (routes, models, policy, caches) lives as long as the process:
        # move it out of the collector's reach, so full collections stay short under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if webhook_sender is not None:
                await webhook_sender.stop()
            if feed_sweeper is not None:
                await feed_sweeper.stop()
            if feed_retention is not None:
                await feed_retention.stop()
            if reminders is not None:
                await reminders.stop()
            if sender is not None:
                await sender.stop()
            await app.state.policy.stop()
            await app.state.rate_limiter.stop(database)
            if checkpointer is not None:
                await checkpointer.stop()
            await writer.stop()
            await database.dispose()

    return lifespan


def _include_routes(app: FastAPI, settings: Settings) -> None:
    """Error handlers, the OpenAPI document and its docs page, the API and the portal."""
    install_problem_handlers(app)
    install_openapi(app, cookie_name=settings.session_cookie_name)
    install_api_docs(app)
    app.include_router(health_router)
    app.include_router(identity_router)
    app.include_router(users_router)
    app.include_router(api_clients_router)
    app.include_router(oauth_router)
    app.include_router(organizations_router)
    app.include_router(audit_router)
    app.include_router(reports_router)
    app.include_router(consent_router)
    app.include_router(search_router)
    app.include_router(assistance_router)
    app.include_router(consultations_router)
    app.include_router(contacts_router)
    app.include_router(planning_router)
    app.include_router(changes_router)
    app.include_router(webhooks_router)

    install_portal(
        app,
        [
            identity_pages.router,
            dashboard_pages.router,
            identity_admin_pages.router,
            organizations_pages.router,
            oauth_pages.router,
            audit_pages.router,
            reports_pages.router,
            consent_pages.router,
            assistance_pages.router,
            contacts_pages.router,
            planning_pages.router,
            search_pages.router,
        ],
    )

    @app.get("/", include_in_schema=False, dependencies=[PUBLIC])
    async def index() -> RedirectResponse:
        return RedirectResponse("/portal")


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware and the audit of what it refuses or what fails unexpectedly."""

    # Outermost last: request ids and headers wrap everything, including refusals.
    async def audit_foreign_origin(scope: Scope, origin: str) -> None:
        client = scope.get("client")
        context = AuditContext(
            ip=client[0] if client else None,
            user_agent=Headers(scope=scope).get("user-agent"),
            request_id=scope.get("state", {}).get("request_id"),
        )
        async with app.state.database.transaction() as session:
            audit.record(
                session,
                context,
                "http.origin",
                outcome=Outcome.DENIED,
                details={
                    "origin": origin[:200],
                    "method": scope["method"],
                    "path": scope["path"][:200],
                },
            )

    async def audit_unexpected_error(request: Request, error: BaseException) -> None:
        subject = current(request)
        context = subject.audit if subject is not None else audit_context_of(request)
        async with app.state.database.transaction() as session:
            audit.record(
                session,
                context,
                f"http.{request.method.lower()}",
                outcome=Outcome.ERROR,
                details={"path": request.url.path[:200], "error": type(error).__name__},
            )

    app.state.error_recorder = audit_unexpected_error

    app.add_middleware(
        OriginCheckMiddleware,
        trusted_origins=settings.trusted_origins,
        on_refusal=audit_foreign_origin,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_json_bytes=settings.max_json_body_bytes,
        # The form's own fields and boundaries on top of the largest attachment allowed.
        max_multipart_bytes=settings.attachment_max_bytes + 1024 * 1024,
    )
    # The client's address and scheme as the trusted proxy saw them (the rightmost address
    # of X-Forwarded-For that is not a trusted proxy); with no proxy trusted, the peer's own.
    app.add_middleware(
        ProxyHeadersMiddleware,
        trusted_hosts=[str(network) for network in settings.trusted_proxies],
    )
    app.add_middleware(
        RequestContextMiddleware,
        hsts=settings.environment == "production",
        trusted_proxies=settings.trusted_proxies,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the CTCP application for these settings (one per process or per test instance)."""
    settings = settings or get_settings()

    app = FastAPI(
        title="CTCP — Counter-Terrorism Coordination Platform",
        version=__version__,
        summary="Visit reports, consent, publications and technical assistance, "
        "under role-based access control with a tamper-evident audit log.",
        lifespan=_lifespan(settings),
        openapi_url="/openapi.json",
        # Served by install_api_docs from installed files; ReDoc was never offered.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(window_seconds=settings.rate_limit_window_seconds)
    app.state.hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    _include_routes(app, settings)
    _install_middleware(app, settings)
    return app
