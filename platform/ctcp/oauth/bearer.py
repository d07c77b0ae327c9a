"""Bearer-token authentication for API requests: a cached lookup, rate limits, no CSRF."""

from datetime import timedelta

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.oauth_scopes import REALM
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.core.errors import TooManyRequestsError, UnauthorizedError
from ctcp.core.rate_limits import Limit, RateLimiter, Refusal
from ctcp.identity.dependencies import audit_context_of, record_denial
from ctcp.identity.principal_cache import Cached, GrantsCache
from ctcp.identity.tokens import token_hash
from ctcp.oauth import service
from ctcp.oauth.service import BearerClient

# A cached token is read again from the database at least this often.
TOKEN_RECHECK = timedelta(seconds=30)
TokenCache = GrantsCache[BearerClient]


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (RFC 6750 §2.1), or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def invalid_token(description: str) -> UnauthorizedError:
    return UnauthorizedError(
        description,
        extra={"error": "invalid_token"},
        headers={
            "WWW-Authenticate": f'{REALM}, error="invalid_token", error_description="{description}"'
        },
    )


def address_limit(settings: Settings, context: AuditContext) -> Limit:
    return Limit(f"address:{context.ip or 'unknown'}", settings.rate_limit_per_address)


def client_limit(settings: Settings, client_id: str) -> Limit:
    return Limit(f"client:{client_id}", settings.rate_limit_per_client)


def record_refusal(session: AsyncSession, context: AuditContext, refusal: Refusal) -> None:
    """Audit the first refusal of a key in each window (a flood writes one event, not many)."""
    if refusal.first_in_window:
        audit.record(
            session,
            context,
            "rate_limit",
            outcome=Outcome.DENIED,
            details={"key": refusal.key, "retry_after": refusal.retry_after},
        )


def too_many(refusal: Refusal) -> TooManyRequestsError:
    return TooManyRequestsError(
        "Too many requests: slow down and retry after the time given.",
        retry_after=refusal.retry_after,
    )


def _token_cache_of(request: Request) -> TokenCache:
    cache: TokenCache = request.app.state.token_cache
    return cache


async def _client_of(request: Request, token: str) -> BearerClient | None:
    """The live client behind a token: from this process's cache, else one query.

    A cached token is used while no grant changed (disabling a client, rotating its
    secret and revoking a token bump the grants version), it has not expired, and it was
    read from the database less than `TOKEN_RECHECK` ago.
    """
    cache = _token_cache_of(request)
    key = token_hash(token)
    now = clock.now()
    entry = cache.get(key)
    if (
        entry is not None
        and now < entry.value.expires_at
        and now - entry.confirmed_at < TOKEN_RECHECK
    ):
        return entry.value
    generation = cache.version  # read before the query: a change meanwhile wins
    database: Database = request.app.state.database
    async with database.read_sessionmaker() as reading:
        client = await service.bearer_client(reading, token)
    if client is not None:
        cache.put(key, Cached(client, generation, confirmed_at=now))
    return client


async def authenticate_bearer(request: Request, session: AsyncSession, token: str) -> BearerClient:
    """The client behind a bearer token, counted against its own and its address's limits.

    The counting runs before the request's own work, in transactions of its own when it
    touches the database at all: a refused or failed request still counts, and on SQLite
    no two write transactions of one request ever wait on each other.
    """
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    limiter: RateLimiter = request.app.state.rate_limiter
    context = audit_context_of(request)
    client = await _client_of(request, token) if token else None
    limits = [address_limit(settings, context)]
    actor = context
    if client is not None:
        limits.append(client_limit(settings, client.client_id))
        actor = context.as_client(client.client_id, client.organization.code)
    refusal = await limiter.hit(database, limits)
    if refusal is not None:
        record_refusal(session, actor, refusal)  # a denial: kept when the request rolls back
        raise too_many(refusal)
    if client is None:
        record_denial(session, request, context, f"http.{request.method.lower()}", "invalid_token")
        raise invalid_token("The access token is invalid, expired or revoked.")
    return client
