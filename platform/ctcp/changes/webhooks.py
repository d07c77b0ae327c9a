"""Signed webhooks of the change feed (Standard Webhooks): registration, the outbox, the sender.

An administrator registers an endpoint for an API client and the kinds it wants; each
unit of work that records feed entries queues, in its own transaction, one delivery per
endpoint with the entries the client's organization would get from the feed (`seq`,
`type`, `id`, `op`: no content — the receiver reads it with its own token). A sender
claims due deliveries under a lease, POSTs them signed (`webhook-id`, `webhook-timestamp`,
`webhook-signature`: HMAC-SHA256 with the endpoint's `whsec_` secret) and retries what
failed with exponential back-off, up to a number of attempts. The feed stays the source
of truth: a receiver that was down, or gave up, resumes from its cursor.

Server-side request forgery: an endpoint is https, and every address its host resolves to
must be public (not private, loopback, link-local, shared, reserved, multicast or
unspecified, IPv4 embedded in IPv6 included), unless the host, or a network holding the
address, is listed in `CTCP_WEBHOOK_ALLOWED_HOSTS`; outside production a listed host may
also use plain http (a development receiver on 127.0.0.1). The check runs at
registration and again before every attempt, and the request goes to the very address
that was checked (no second DNS lookup for the connection to rebind); redirects are not
followed.
"""

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field
from sqlalchemy import and_, func, null, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.changes import recorder
from ctcp.changes.kinds import KINDS
from ctcp.changes.models import (
    ChangeEntry,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest, keyset, page_of
from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.identity.schemas import OrganizationSummary
from ctcp.oauth.models import ApiClient
from ctcp.organizations.models import Organization

logger = logging.getLogger("ctcp.webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# The OAuth scope that opens each kind of the feed to a client (policies/policy.csv).
KIND_SCOPES = {
    "publication": "publications:read",
    "need": "needs:read",
    "request": "requests:read",
    "contact_point": "contacts:read",
    "activity": "activities:read",
}
EVENT_TYPE = "ctcp.changes"
SECRET_PREFIX = "whsec_"  # noqa: S105  (the secrets' prefix, not a secret)
SECRET_BYTES = 32
BATCH_SIZE = 20
# Deliveries shown with an endpoint: the latest, and the latest failures.
SHOWN_DELIVERIES = 20
MAX_ERROR_LENGTH = 500
USER_AGENT = "CTCP-Webhooks/1"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]


# --- Secrets ------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _fernet(key: bytes) -> Fernet:
    derived = hashlib.sha256(b"ctcp-webhook-secret:" + key).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret: str, settings: Settings) -> str:
    return _fernet(settings.secret()).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, settings: Settings) -> str | None:
    """The endpoint's secret, or None when the platform key that encrypted it changed."""
    try:
        return _fernet(settings.secret()).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


# --- Where deliveries may go (SSRF) -------------------------------------------------------


class RefusedTargetError(Exception):
    """This URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, settings: Settings) -> "AllowList":
        hosts: set[str] = set()
        networks = []
        for entry in settings.webhook_allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def admits(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    """A checked destination: the URL as registered, and the address to connect to."""

    url: httpx.URL
    host: str
    address: IPAddress


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to this address (e.g. "private"), or None if public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        refusal = address_refusal(embedded)
        mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
        if refusal is not None or mapped:
            return refusal
    for name, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return name
    if not address.is_global:
        return "non-public"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (the system resolver); an IP literal is itself."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def parse_url(raw: str) -> httpx.URL:
    """The URL, if it has the shape of an endpoint (scheme, host, no credentials)."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError) as error:
        raise RefusedTargetError(f"Not a URL: {error}.") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise RefusedTargetError("The URL must be https://host/path.")
    if url.userinfo:
        raise RefusedTargetError("Credentials in the URL are not accepted.")
    if url.fragment:
        raise RefusedTargetError("A fragment has no place in an endpoint's URL.")
    return url


async def check_target(raw: str, settings: Settings, resolve: Resolver | None = None) -> Target:
    """Where a delivery to `raw` may go, or RefusedTargetError: https (http only to an
    allowed host outside production), and every address of the host public or allowed."""
    url = parse_url(raw)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    allowed = AllowList.of(settings)
    try:
        addresses = await (resolve or resolve_host)(
            host, url.port or (443 if url.scheme == "https" else 80)
        )
    except (OSError, UnicodeError) as error:
        raise RefusedTargetError(f"{host} does not resolve ({error}).") from None
    if not addresses:
        raise RefusedTargetError(f"{host} does not resolve.")
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None and not allowed.admits(host, address):
            raise RefusedTargetError(
                f"{host} resolves to {address}, a {refusal} address: only public addresses "
                "receive webhooks, unless CTCP_WEBHOOK_ALLOWED_HOSTS lists the host."
            )
    if url.scheme == "http":
        listed = all(allowed.admits(host, address) for address in addresses)
        if settings.environment == "production" or not listed:
            raise RefusedTargetError(
                "Webhooks go over https (plain http only to a host of "
                "CTCP_WEBHOOK_ALLOWED_HOSTS, and never in production)."
            )
    return Target(url, host, addresses[0])


# --- Wire models ------------------------------------------------------------------------


class WebhookCreate(RequestModel):
    url: str = Field(min_length=8, max_length=2000)
    types: list[str] = Field(min_length=1, max_length=len(KIND_SCOPES))


class WebhookRead(ResponseModel):
    id: uuid.UUID
    api_client_id: uuid.UUID
    client_id: str
    organization: OrganizationSummary
    url: str
    types: list[str]
    active: bool
    created_at: datetime
    secret_rotated_at: datetime | None

    @classmethod
    def of(
        cls, endpoint: WebhookEndpoint, client: ApiClient, organization: Organization
    ) -> "WebhookRead":
        return cls(
            id=endpoint.id,
            api_client_id=client.id,
            client_id=client.client_id,
            organization=OrganizationSummary(
                id=organization.id,
                code=organization.code,
                kind=organization.kind,
                name=organization.name_en,
            ),
            url=endpoint.url,
            types=list(endpoint.event_types),
            active=endpoint.active,
            created_at=endpoint.created_at,
            secret_rotated_at=endpoint.secret_rotated_at,
        )


class WebhookIssued(WebhookRead):
    """An endpoint with its signing secret: shown in this answer only, never again."""

    secret: str


class WebhookSecret(ResponseModel):
    id: uuid.UUID
    secret: str
    secret_rotated_at: datetime


class DeliveryRead(ResponseModel):
    message_id: str
    status: str
    entries: int
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> "DeliveryRead":
        waiting = delivery.status in (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.SENDING)
        return cls(
            message_id=delivery.message_id,
            status=delivery.status,
            entries=len(delivery.payload.get("data", {}).get("entries", [])),
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at if waiting else None,
            delivered_at=delivery.delivered_at,
        )


class WebhookDetail(WebhookRead):
    """An endpoint with its outbox: counts by status, the latest deliveries and failures."""

    counts: dict[str, int]
    deliveries: list[DeliveryRead]
    failures: list[DeliveryRead]


# --- Administration ---------------------------------------------------------------------


async def _client(
    session: AsyncSession, api_client_id: uuid.UUID
) -> tuple[ApiClient, Organization]:
    statement = (
        select(ApiClient, Organization)
        .join(Organization, col(Organization.id) == col(ApiClient.organization_id))
        .where(col(ApiClient.id) == api_client_id)
    )
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFoundError("No such API client.")
    return row[0], row[1]


def _endpoints() -> Any:
    return (
        select(WebhookEndpoint, ApiClient, Organization)
        .join(ApiClient, col(ApiClient.id) == col(WebhookEndpoint.api_client_id))
        .join(Organization, col(Organization.id) == col(ApiClient.organization_id))
    )


async def _endpoint(
    session: AsyncSession, webhook_id: uuid.UUID
) -> tuple[WebhookEndpoint, ApiClient, Organization]:
    row = (await session.exec(_endpoints().where(col(WebhookEndpoint.id) == webhook_id))).first()
    if row is None:
        raise NotFoundError("No such webhook.")
    return row[0], row[1], row[2]


def _refuse(
    session: AsyncSession,
    context: AuditContext,
    action: str,
    error: Exception,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        context,
        action,
        outcome=Outcome.DENIED,
        object_type="webhook",
        details=details | {"reason": str(error)[:300]},
    )


def granted_kinds(scopes: str) -> set[str]:
    """The kinds of the feed a client's OAuth scopes open to it."""
    held = set(scopes.split())
    return {kind for kind, scope in KIND_SCOPES.items() if scope in held}


async def create_webhook(
    session: AsyncSession,
    api_client_id: uuid.UUID,
    body: WebhookCreate,
    *,
    settings: Settings,
    context: AuditContext,
    resolve: Resolver | None = None,
) -> WebhookIssued:
    """Register an endpoint for a client; the answer holds its secret, shown this once.
    Refusals (unknown client, types, a URL that may not receive webhooks) are audited."""
    attempted = {"api_client_id": str(api_client_id), "url": body.url[:300], "types": body.types}
    try:
        client, organization = await _client(session, api_client_id)
        types = sorted(set(body.types))
        unknown = sorted(set(types) - KINDS.keys())
        if unknown:
            raise ValidationError(
                f"Unknown types: {', '.join(unknown)} (known: {', '.join(sorted(KINDS))}).",
                loc=["body", "types"],
            )
        ungranted = sorted(set(types) - granted_kinds(client.scopes))
        if ungranted:
            raise ValidationError(
                f"The client's scopes do not reach: {', '.join(ungranted)}.",
                loc=["body", "types"],
            )
        if not client.active:
            raise ConflictError("The API client is disabled.")
        try:
            await check_target(body.url, settings, resolve)
        except RefusedTargetError as error:
            raise ValidationError(str(error), loc=["body", "url"]) from None
    except (NotFoundError, ValidationError, ConflictError) as error:
        _refuse(session, context, "webhook.create", error, attempted)
        raise
    secret = new_secret()
    endpoint = WebhookEndpoint(
        api_client_id=client.id,
        url=body.url,
        event_types=types,
        secret_encrypted=encrypt_secret(secret, settings),
        created_by=context.user_id,
    )
    session.add(endpoint)
    await session.flush()
    audit.record(
        session,
        context,
        "webhook.create",
        object_type="webhook",
        object_id=endpoint.id,
        details={"client_id": client.client_id, "url": endpoint.url, "types": types},
    )
    read = WebhookRead.of(endpoint, client, organization)
    return WebhookIssued(**read.model_dump(), secret=secret)


async def list_webhooks(
    session: AsyncSession,
    context: AuditContext,
    page: PageRequest,
    api_client_id: uuid.UUID | None = None,
) -> Page[WebhookRead]:
    """Every endpoint, oldest first; audited as `webhook.list` with the ids."""
    statement = _endpoints()
    if api_client_id is not None:
        statement = statement.where(col(WebhookEndpoint.api_client_id) == api_client_id)
    statement = keyset(
        statement,
        order=[col(WebhookEndpoint.created_at), col(WebhookEndpoint.id)],
        limit=page.limit,
        cursor=page.cursor,
    )
    rows = (await session.exec(statement)).all()
    shown = page_of(
        rows,
        limit=page.limit,
        key=lambda row: [row[0].created_at, row[0].id],
        item=lambda row: WebhookRead.of(row[0], row[1], row[2]),
    )
    audit.record(
        session,
        context,
        "webhook.list",
        object_type="webhook",
        details={"ids": [str(item.id) for item in shown.items]},
        read=True,
    )
    return shown


async def read_webhook(
    session: AsyncSession, context: AuditContext, webhook_id: uuid.UUID
) -> WebhookDetail:
    """One endpoint with its latest deliveries and failures; audited as `webhook.read`."""
    endpoint, client, organization = await _endpoint(session, webhook_id)
    mine = col(WebhookDelivery.endpoint_id) == webhook_id
    counts = {status.value: 0 for status in WebhookDeliveryStatus}
    by_status = select(col(WebhookDelivery.status), func.count()).where(mine)
    for status, count in (
        await session.exec(by_status.group_by(col(WebhookDelivery.status)))
    ).all():
        counts[status] = count
    recent = (
        select(WebhookDelivery)
        .where(mine)
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        .limit(SHOWN_DELIVERIES)
    )
    failed = (
        select(WebhookDelivery)
        .where(mine, col(WebhookDelivery.last_error).is_not(None))
        .order_by(col(WebhookDelivery.last_attempt_at).desc(), col(WebhookDelivery.id).desc())
        .limit(SHOWN_DELIVERIES)
    )
    audit.record(
        session, context, "webhook.read", object_type="webhook", object_id=webhook_id, read=True
    )
    return WebhookDetail(
        **WebhookRead.of(endpoint, client, organization).model_dump(),
        counts=counts,
        deliveries=[DeliveryRead.of(row) for row in (await session.exec(recent)).all()],
        failures=[DeliveryRead.of(row) for row in (await session.exec(failed)).all()],
    )


async def rotate_secret(
    session: AsyncSession, webhook_id: uuid.UUID, *, settings: Settings, context: AuditContext
) -> WebhookSecret:
    """A new secret, shown this once: every attempt from now on is signed with it only."""
    try:
        endpoint, _, _ = await _endpoint(session, webhook_id)
    except NotFoundError as error:
        _refuse(session, context, "webhook.rotate_secret", error, {"id": str(webhook_id)})
        raise
    secret = new_secret()
    endpoint.secret_encrypted = encrypt_secret(secret, settings)
    endpoint.secret_rotated_at = clock.now()
    session.add(endpoint)
    await session.flush()
    audit.record(
        session, context, "webhook.rotate_secret", object_type="webhook", object_id=endpoint.id
    )
    return WebhookSecret(
        id=endpoint.id, secret=secret, secret_rotated_at=endpoint.secret_rotated_at
    )


async def delete_webhook(
    session: AsyncSession, webhook_id: uuid.UUID, *, context: AuditContext
) -> None:
    """Remove an endpoint and its outbox: nothing more is sent to it."""
    try:
        endpoint, client, _ = await _endpoint(session, webhook_id)
    except NotFoundError as error:
        _refuse(session, context, "webhook.delete", error, {"id": str(webhook_id)})
        raise
    details = {"client_id": client.client_id, "url": endpoint.url}
    await session.delete(endpoint)
    await session.flush()
    audit.record(
        session,
        context,
        "webhook.delete",
        object_type="webhook",
        object_id=webhook_id,
        details=details,
    )


# --- The outbox: queued with the change ---------------------------------------------------


def operation(entry: ChangeEntry, organization: Organization) -> str | None:
    """What the feed tells `organization` of this entry, from the recorder's snapshots:
    `upsert` if it may read the object after it, `revoke` if only before, else nothing."""
    if recorder.reads(entry, organization, after=True):
        return "upsert"
    if recorder.reads(entry, organization, after=False):
        return "revoke"
    return None


async def queue_deliveries(session: AsyncSession, entries: Sequence[ChangeEntry]) -> None:
    """The recorder's listener: one delivery per active endpoint that has entries in this
    unit, in the unit's own transaction (so a rolled-back change sends nothing)."""
    if not entries:
        return
    statement = (
        select(WebhookEndpoint, ApiClient.scopes, ApiClient.client_id, Organization)
        .join(ApiClient, col(ApiClient.id) == col(WebhookEndpoint.api_client_id))
        .join(Organization, col(Organization.id) == col(ApiClient.organization_id))
        .where(
            col(WebhookEndpoint.active),
            col(ApiClient.active),
            col(Organization.active),
        )
    )
    queued = False
    for endpoint, scopes, client_id, organization in (await session.exec(statement)).all():
        kinds = set(endpoint.event_types) & granted_kinds(scopes)
        items = [
            {"seq": entry.seq, "type": entry.object_type, "id": str(entry.object_id), "op": op}
            for entry in entries
            if entry.object_type in kinds and (op := operation(entry, organization)) is not None
        ]
        if not items:
            continue
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id=f"msg_{uuid.uuid4().hex}",
                payload={
                    "type": EVENT_TYPE,
                    "timestamp": entries[0].at.isoformat().replace("+00:00", "Z"),
                    "data": {"client_id": client_id, "entries": items},
                },
            )
        )
        queued = True
    if queued:
        await session.flush()


recorder.LISTENERS.append(queue_deliveries)


# --- The sender -------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class _Attempt:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    # No point trying again (the secret can no longer be read).
    final: bool = False
    at: datetime = field(default_factory=clock.now)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The base, doubled for every attempt after the first, at most the maximum."""
    seconds = settings.webhook_retry_base_seconds * 2 ** min(attempts - 1, 32)
    return timedelta(seconds=min(seconds, settings.webhook_retry_max_seconds))


def _due(now: datetime) -> Any:
    """Rows to send now: pending and due, or `sending` under a lease that ran out."""
    table = _deliveries
    return or_(
        and_(
            table.c.status == WebhookDeliveryStatus.PENDING.value,
            table.c.next_attempt_at <= now,
        ),
        and_(
            table.c.status == WebhookDeliveryStatus.SENDING.value,
            table.c.claimed_until < now,
        ),
    )


async def _anything_due(database: Database) -> bool:
    """A read that takes no write lock: an idle outbox costs every process no write."""
    async with database.read_sessionmaker() as session:
        statement = select(_deliveries.c.id).where(_due(clock.now())).limit(1)
        return (await session.exec(statement)).first() is not None


async def _claim(
    database: Database, *, limit: int, lease: timedelta
) -> tuple[datetime, list[_Claimed], dict[uuid.UUID, WebhookEndpoint]]:
    """Take due rows (and rows whose sender's lease ran out) in a transaction of their own."""
    now = clock.now()
    until = now + lease
    table = _deliveries
    due = (
        select(table.c.id)
        .where(_due(now))
        .order_by(table.c.next_attempt_at)
        .limit(limit)
        # PostgreSQL: rows another sender is claiming are skipped, not waited for.
        .with_for_update(skip_locked=True)
    )
    async with database.transaction() as session:
        rows = await session.exec(
            update(table)
            .where(col(table.c.id).in_(due))
            .values(status=WebhookDeliveryStatus.SENDING.value, claimed_until=until)
            .returning(
                table.c.id,
                table.c.endpoint_id,
                table.c.message_id,
                table.c.payload,
                table.c.attempts,
                table.c.next_attempt_at,
            )
        )
        claimed = [_Claimed(*row[:5]) for row in sorted(rows.all(), key=lambda r: r[5])]
        ids = sorted({row.endpoint_id for row in claimed})
        # Only endpoints still live, of clients and organizations still active: a client
        # disabled since the change hears nothing more.
        live = (
            select(WebhookEndpoint)
            .join(ApiClient, col(ApiClient.id) == col(WebhookEndpoint.api_client_id))
            .join(Organization, col(Organization.id) == col(ApiClient.organization_id))
            .where(
                col(WebhookEndpoint.id).in_(ids),
                col(WebhookEndpoint.active),
                col(ApiClient.active),
                col(Organization.active),
            )
        )
        endpoints = {endpoint.id: endpoint for endpoint in (await session.exec(live)).all()}
    return until, claimed, endpoints


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]


async def send_one(
    row: _Claimed,
    endpoint: WebhookEndpoint,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: Resolver | None = None,
) -> _Attempt:
    """One signed POST to the endpoint, at the address just checked; never raises."""
    secret = decrypt_secret(endpoint.secret_encrypted, settings)
    if secret is None:
        return _Attempt(False, error="the secret cannot be read: rotate it", final=True)
    try:
        target = await check_target(endpoint.url, settings, resolve)
    except RefusedTargetError as error:
        return _Attempt(False, error=f"refused: {error}"[:MAX_ERROR_LENGTH])
    body = body_of(row.payload)
    now = clock.now()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # The name the URL gives, while the connection goes to the checked address.
        "host": target.url.netloc.decode("ascii"),
    } | signed_headers(secret, row.message_id, now, body)
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    pinned = target.url.copy_with(host=str(target.address))
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    try:
        async with httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(retries=0),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            request = client.build_request(
                "POST", pinned, content=body, headers=headers, extensions=extensions
            )
            # The answer's body is never read: only its status matters.
            response = await client.send(request, stream=True)
            await response.aclose()
    except httpx.HTTPError as error:
        return _Attempt(False, error=_error_text(error), at=now)
    if 200 <= response.status_code < 300:
        return _Attempt(True, status_code=response.status_code, at=now)
    return _Attempt(
        False, status_code=response.status_code, error=f"HTTP {response.status_code}", at=now
    )


async def _record(
    database: Database,
    settings: Settings,
    claimed: list[_Claimed],
    attempts: dict[uuid.UUID, _Attempt],
    lease_until: datetime,
) -> DeliveryReport:
    """Write each claimed row's outcome; rows never tried go back to `pending` untouched."""
    report = DeliveryReport(claimed=len(claimed))
    table = _deliveries
    ours = and_(
        table.c.status == WebhookDeliveryStatus.SENDING.value,
        table.c.claimed_until == lease_until,
    )
    async with database.transaction() as session:
        for row in claimed:
            attempt = attempts.get(row.id)
            where = and_(table.c.id == row.id, ours)
            if attempt is None:
                await session.exec(
                    update(table)
                    .where(where)
                    .values(status=WebhookDeliveryStatus.PENDING.value, claimed_until=null())
                )
                continue
            count = row.attempts + 1
            values: dict[str, object] = {
                "attempts": count,
                "claimed_until": null(),
                "last_attempt_at": attempt.at,
                "last_status_code": attempt.status_code,
            }
            if attempt.delivered:
                report.delivered += 1
                values |= {
                    "status": WebhookDeliveryStatus.DELIVERED.value,
                    "delivered_at": attempt.at,
                }
            elif not attempt.final and count < settings.webhook_max_attempts:
                report.retried += 1
                values |= {
                    "status": WebhookDeliveryStatus.PENDING.value,
                    "next_attempt_at": clock.now() + _retry_delay(settings, count),
                    "last_error": attempt.error,
                }
            else:
                report.failed += 1
                values |= {
                    "status": WebhookDeliveryStatus.FAILED.value,
                    "last_error": attempt.error,
                }
            await session.exec(update(table).where(where).values(**values))
    return report


async def deliver_due(
    database: Database,
    settings: Settings,
    *,
    limit: int = BATCH_SIZE,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: Resolver | None = None,
) -> DeliveryReport:
    """One pass: claim due deliveries, POST each signed, record each outcome.

    The claim commits before anything is sent, so another pass (another instance) skips
    these rows; a pass starts no attempt it could not finish before its lease runs out.
    Delivery is at least once: a receiver recognises a repeat by its `webhook-id`.
    """
    if not await _anything_due(database):
        return DeliveryReport()
    timeout = settings.webhook_timeout_seconds
    # Resolving, connecting, sending, reading the status: a few timeouts per attempt.
    per_attempt = timedelta(seconds=timeout * 3)
    lease_until, claimed, endpoints = await _claim(
        database, limit=limit, lease=per_attempt * (limit + 1)
    )
    if not claimed:
        return DeliveryReport()
    attempts: dict[uuid.UUID, _Attempt] = {}
    try:
        for row in claimed:
            if clock.now() + per_attempt > lease_until:
                break  # the rest goes back to pending, untried
            endpoint = endpoints.get(row.endpoint_id)
            if endpoint is None:
                attempts[row.id] = _Attempt(
                    False, error="the endpoint or its API client is no longer active", final=True
                )
                continue
            try:
                # The whole attempt, resolution included: a receiver that trickles its
                # answer cannot hold the pass past its lease.
                attempts[row.id] = await asyncio.wait_for(
                    send_one(row, endpoint, settings, transport=transport, resolve=resolve),
                    per_attempt.total_seconds(),
                )
            except TimeoutError:
                attempts[row.id] = _Attempt(False, error="timed out")
    finally:
        report = await _record(database, settings, claimed, attempts, lease_until)
        if report.retried or report.failed:
            logger.warning(
                "webhooks: %d delivered, %d to retry, %d failed",
                report.delivered,
                report.retried,
                report.failed,
            )
    return report


async def deliver_forever(database: Database, settings: Settings) -> None:
    """Run delivery passes every `webhook_poll_seconds` until cancelled; a failed pass is
    logged, a full one is followed by the next at once."""
    while True:
        report: DeliveryReport | None = None
        try:
            report = await deliver_due(database, settings)
        except Exception:
            logger.exception("webhook delivery pass failed")
        if report is None or report.claimed < BATCH_SIZE:
            await asyncio.sleep(settings.webhook_poll_seconds)
