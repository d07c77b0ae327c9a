"""Signed webhooks of the change feed (Standard Webhooks): registration, the outbox, the sender.

An administrator registers an endpoint for an API client and the kinds it wants; each
unit of work that records feed entries queues, in its own transaction, the deliveries of
each endpoint: the entries the client's organization would get from the feed (`seq`,
`type`, `id`, `op`: no content — the receiver reads it with its own token), of the kinds
the client may read under the stored policy, at most `MAX_ENTRIES_PER_DELIVERY` each. A
sender claims due deliveries under a lease and POSTs them signed (`webhook-id`,
`webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the endpoint's `whsec_`
secret), to several endpoints at once, each endpoint's in feed order; right before each
attempt it reads the endpoint, its client, organization, secret and granted kinds again.
What failed is retried with exponential back-off, up to a number of attempts; final
outcomes are audited (`webhook.deliver`). The feed stays the source of truth: a receiver
that was down, or gave up, resumes from its cursor.

Server-side request forgery: an endpoint is https on port 443 or 1024-65535, and every
address its host resolves to must be public (outside the IANA special-purpose blocks of
`DENIED_NETWORKS` and global for `ipaddress`, IPv4 embedded in IPv6 included), unless
the host, or a network holding the address, is listed in `CTCP_WEBHOOK_ALLOWED_HOSTS`;
outside production a listed host may also use plain http (a development receiver on
127.0.0.1). The check runs at
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
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field
from sqlalchemy import and_, delete, func, null, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.guard import decide_stored
from ctcp.authz.oauth_scopes import CLIENT_ROLE, scope_role
from ctcp.authz.policy import policy_version
from ctcp.authz.scopes import DataScope
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

EVENT_TYPE = "ctcp.changes"
SECRET_PREFIX = "whsec_"  # noqa: S105  (the secrets' prefix, not a secret)
SECRET_BYTES = 32
BATCH_SIZE = 20
# The most entries one delivery carries: a unit of work with more (a State's decision
# widened to its needs, requests and activities; a backfill) is split into several
# deliveries, in feed order, so a body stays well under a receiver's limits (~85 bytes an
# entry: about 43 kB at most).
MAX_ENTRIES_PER_DELIVERY = 500
# Endpoints sent to at the same time by one pass: one slow receiver holds only its own
# deliveries (each endpoint's are sent one after the other, in feed order).
PARALLEL_ENDPOINTS = 8
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
    """This URL may not receive webhooks. The message is what the caller is told (never a
    resolved address); `detail` says more, for the log and the audit trail only."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


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


# Special-purpose address blocks that never receive a webhook, whatever the interpreter's
# `ipaddress` thinks (Python 3.11 predates some registry updates): the IANA IPv4 and IPv6
# Special-Purpose Address Registries (RFC 6890 and updates, 2024), plus multicast, the
# deprecated site-local fec0::/10 and 240/4. An address in none of them must still be
# `is_global`. NAT64 and IPv4-mapped addresses are judged by the IPv4 address they carry.
_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "protocol-assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "special-purpose"),
    ("192.52.193.0/24", "special-purpose"),
    ("192.88.99.0/24", "special-purpose"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "special-purpose"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b:1::/48", "special-purpose"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy"),
    ("2001::/23", "protocol-assignment"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("2620:4f:8000::/48", "special-purpose"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment-routing"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
DENIED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), name) for network, name in _DENIED
)
# Ports a receiver may listen on: 443, or an unprivileged port. The well-known ports below
# 1024 are other services' (ssh, smtp, ldap, ...): a webhook has no business there.
HTTPS_PORT = 443
LOWEST_PORT = 1024
# What an administrator is told of a refused address: never the address itself, nor why
# (private, loopback...), which would make registration a scanner of the internal network.
REFUSED_ADDRESS = (
    "The URL's host does not resolve to an address that may receive webhooks: only public "
    "addresses do, unless CTCP_WEBHOOK_ALLOWED_HOSTS lists the host or its network."
)


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
        # IPv4-mapped and NAT64 (64:ff9b::/96) reach exactly the IPv4 address they carry:
        # judged by it alone (an IPv6-only network reaches public receivers through NAT64).
        carried = isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped is not None or address in _NAT64
        )
        if refusal is not None or carried:
            return refusal
    for network, name in DENIED_NETWORKS:
        if address.version == network.version and address in network:
            return name
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
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
    allowed host outside production), port 443 or 1024-65535, and every address of the
    host public or allowed."""
    url = parse_url(raw)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    port = url.port or (443 if url.scheme == "https" else 80)
    allowed = AllowList.of(settings)
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            addresses = await (resolve or resolve_host)(host, port)
    except (OSError, UnicodeError) as error:  # TimeoutError included
        raise RefusedTargetError(
            "The URL's host does not resolve.", f"{host} does not resolve ({error})"
        ) from None
    if not addresses:
        raise RefusedTargetError("The URL's host does not resolve.", f"{host}: no address")
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None and not allowed.admits(host, address):
            raise RefusedTargetError(
                REFUSED_ADDRESS, f"{host} resolves to {address}, a {refusal} address"
            )
    if url.scheme == "http":
        listed = all(allowed.admits(host, address) for address in addresses)
        if settings.environment == "production" or not listed:
            raise RefusedTargetError(
                "Webhooks go over https (plain http only to a host of "
                "CTCP_WEBHOOK_ALLOWED_HOSTS, and never in production)."
            )
    if port != HTTPS_PORT and not LOWEST_PORT <= port <= 65535:
        raise RefusedTargetError("The port must be 443, or between 1024 and 65535.")
    return Target(url, host, addresses[0])


# --- Wire models ------------------------------------------------------------------------


class WebhookCreate(RequestModel):
    url: str = Field(min_length=8, max_length=2000)
    types: list[str] = Field(min_length=1, max_length=len(KINDS))


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


GrantKey = tuple[frozenset[str], str, str]
# Decisions by database and policy version, shared by every unit of work and pass of this
# process: a unit reads the version (one query) and decides afresh only after a policy
# edit, as the request path's PolicyWatcher reloads its engine on a new version.
_DECISIONS: dict[str, tuple[int, dict[GrantKey, frozenset[DataScope]]]] = {}


class KindGrants:
    """Which kinds of the feed a client may read, decided from the stored policy as the
    feed decides it per request (`authz.guard.decide` for a client): its organization's
    `entity_focal_point` grant AND one of its OAuth scopes' lines must allow `read` on the
    kind's resource. One object serves a unit of work (queueing) or a delivery pass
    (sending); `refresh` reads the policy's version again, and decisions are kept per
    version (a policy edit bumps it)."""

    def __init__(self, session: AsyncSession | None = None) -> None:
        self.session = session
        self.version: int | None = None
        self._memo: dict[GrantKey, frozenset[DataScope]] = {}

    async def refresh(self, session: AsyncSession | None = None) -> None:
        """Read the policy's version again (in `session`, if given): decisions made under
        another version are not used."""
        if session is not None:
            self.session = session
        assert self.session is not None, "KindGrants needs a session"
        version = await policy_version(self.session)
        bind = self.session.bind
        engine = bind.engine if isinstance(bind, AsyncConnection) else bind
        database = "" if engine is None else str(engine.url)
        cached = _DECISIONS.get(database)
        if cached is None or cached[0] != version:
            cached = _DECISIONS[database] = (version, {})
        self.version, self._memo = cached

    async def _grant(
        self, roles: frozenset[str], organization: str, resource: str
    ) -> frozenset[DataScope]:
        key = (roles, organization, resource)
        if key not in self._memo:
            assert self.session is not None, "KindGrants needs a session"
            self._memo[key] = await decide_stored(
                self.session, roles, organization, resource, "read"
            )
        return self._memo[key]

    async def kinds(
        self, organization: Organization, scopes: str, wanted: Iterable[str]
    ) -> set[str]:
        """The kinds among `wanted` that a client of `organization` holding `scopes` reads."""
        if self.version is None:
            await self.refresh()
        roles = frozenset(scope_role(scope) for scope in scopes.split())
        found: set[str] = set()
        for name in wanted:
            kind = KINDS.get(name)
            if kind is None or not roles:
                continue
            # Both grants, as `decide` intersects them (a scope line in another domain, or
            # an organization grant no scope narrows to, opens nothing).
            code = organization.code
            role_grant = await self._grant(frozenset({CLIENT_ROLE}), code, kind.resource)
            if role_grant and role_grant & await self._grant(roles, code, kind.resource):
                found.add(name)
        return found


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
    attempted: dict[str, Any] = {
        "api_client_id": str(api_client_id),
        "url": body.url[:300],
        "types": body.types,
    }
    try:
        client, organization = await _client(session, api_client_id)
        types = sorted(set(body.types))
        unknown = sorted(set(types) - KINDS.keys())
        if unknown:
            raise ValidationError(
                f"Unknown types: {', '.join(unknown)} (known: {', '.join(sorted(KINDS))}).",
                loc=["body", "types"],
            )
        granted = await KindGrants(session).kinds(organization, client.scopes, types)
        ungranted = sorted(set(types) - granted)
        if ungranted:
            raise ValidationError(
                f"The client may not read: {', '.join(ungranted)} (its scopes, or its "
                "organization's rights, do not reach them).",
                loc=["body", "types"],
            )
        if not client.active:
            raise ConflictError("The API client is disabled.")
        if not organization.active:
            raise ConflictError("The API client's organization is inactive.")
        try:
            await check_target(body.url, settings, resolve)
        except RefusedTargetError as error:
            # The audit keeps what was refused (the resolved address); the answer does not.
            attempted["detail"] = error.detail[:300]
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


def _timestamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def queue_deliveries(session: AsyncSession, entries: Sequence[ChangeEntry]) -> None:
    """The recorder's listener: for each active endpoint with entries in this unit, its
    deliveries, in the unit's own transaction (so a rolled-back change sends nothing).

    The kinds an endpoint hears are its types that the client may read under the stored
    policy now (decided once per unit of work); entries go in feed order, at most
    `MAX_ENTRIES_PER_DELIVERY` per delivery, so a State's decision or a backfill that
    touches thousands of objects never makes one huge body.
    """
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
    endpoints = (await session.exec(statement)).all()
    if not endpoints:
        return
    ordered = sorted(entries, key=lambda entry: entry.seq)
    present = {entry.object_type for entry in ordered}
    grants = KindGrants(session)
    # What each organization is told of each entry: decided once per organization.
    told: dict[uuid.UUID, list[tuple[ChangeEntry, str]]] = {}
    queued = False
    for endpoint, scopes, client_id, organization in endpoints:
        wanted = present & set(endpoint.event_types)
        if not wanted:
            continue
        kinds = await grants.kinds(organization, scopes, wanted)
        if not kinds:
            continue
        if organization.id not in told:
            told[organization.id] = [
                (entry, op) for entry in ordered if (op := operation(entry, organization))
            ]
        items = [
            {"seq": entry.seq, "type": entry.object_type, "id": str(entry.object_id), "op": op}
            for entry, op in told[organization.id]
            if entry.object_type in kinds
        ]
        for start in range(0, len(items), MAX_ENTRIES_PER_DELIVERY):
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    message_id=f"msg_{uuid.uuid4().hex}",
                    payload={
                        "type": EVENT_TYPE,
                        "timestamp": _timestamp(ordered[0].at),
                        "data": {
                            "client_id": client_id,
                            "entries": items[start : start + MAX_ENTRIES_PER_DELIVERY],
                        },
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

    @property
    def entries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.payload.get("data", {}).get("entries", [])
        return found

    @property
    def first_seq(self) -> int:
        return min((int(entry["seq"]) for entry in self.entries), default=0)


@dataclass
class _Attempt:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    # No point trying again (the endpoint or its client is gone, nothing is left to tell,
    # the secret can no longer be read).
    final: bool = False
    at: datetime = field(default_factory=clock.now)
    # The payload as sent when it lost entries of kinds no longer granted (stored back).
    payload: dict[str, Any] | None = None
    # Who was told, for the audit trail.
    client_id: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class _Live:
    """An endpoint as it stands right before an attempt: read again for each one."""

    endpoint: WebhookEndpoint
    client_id: str
    organization: str
    kinds: set[str]


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The base, doubled for every attempt after the first, at most the maximum."""
    seconds = settings.webhook_retry_base_seconds * 2 ** min(attempts - 1, 32)
    return timedelta(seconds=min(seconds, settings.webhook_retry_max_seconds))


def _due(now: datetime, endpoints: Collection[uuid.UUID] | None = None) -> Any:
    """Rows to send now: pending and due, or `sending` under a lease that ran out (of
    `endpoints` only, when given)."""
    table = _deliveries
    due = or_(
        and_(
            table.c.status == WebhookDeliveryStatus.PENDING.value,
            table.c.next_attempt_at <= now,
        ),
        and_(
            table.c.status == WebhookDeliveryStatus.SENDING.value,
            table.c.claimed_until < now,
        ),
    )
    if endpoints is not None:
        return and_(due, table.c.endpoint_id.in_(list(endpoints)))
    return due


async def _anything_due(database: Database, endpoints: Collection[uuid.UUID] | None) -> bool:
    """A read that takes no write lock: an idle outbox costs every process no write."""
    async with database.read_sessionmaker() as session:
        statement = select(_deliveries.c.id).where(_due(clock.now(), endpoints)).limit(1)
        return (await session.exec(statement)).first() is not None


async def _claim(
    database: Database,
    *,
    limit: int,
    lease: timedelta,
    endpoints: Collection[uuid.UUID] | None = None,
) -> tuple[datetime, list[_Claimed]]:
    """Take due rows (and rows whose sender's lease ran out) in a transaction of their own,
    in feed order (by their first entry)."""
    now = clock.now()
    until = now + lease
    table = _deliveries
    due = (
        select(table.c.id)
        .where(_due(now, endpoints))
        .order_by(table.c.next_attempt_at, table.c.created_at)
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
            )
        )
        claimed = [_Claimed(*row) for row in rows.all()]
    claimed.sort(key=lambda row: (row.first_seq, row.message_id))
    return until, claimed


async def _live(database: Database, endpoint_id: uuid.UUID, grants: KindGrants) -> _Live | str:
    """The endpoint, its client, organization, secret and granted kinds as they are now
    (a short read of its own), or why nothing may be sent to it any more."""
    async with database.read_sessionmaker() as session:
        row = (
            await session.exec(_endpoints().where(col(WebhookEndpoint.id) == endpoint_id))
        ).first()
        if row is None:
            return "not sent: the endpoint was deleted"
        endpoint, client, organization = row[0], row[1], row[2]
        if not endpoint.active:
            return "not sent: the endpoint is disabled"
        if not client.active:
            return "not sent: the API client is disabled"
        if not organization.active:
            return "not sent: the API client's organization is inactive"
        await grants.refresh(session)
        kinds = await grants.kinds(organization, client.scopes, endpoint.event_types)
    return _Live(endpoint, client.client_id, organization.code, kinds)


def _error_text(error: BaseException) -> str:
    """What an administrator is told of a failed connection: its kind, never its message
    (which may carry the address it went to)."""
    return f"{type(error).__name__}: no answer from the receiver"[:MAX_ERROR_LENGTH]


async def send_one(
    row: _Claimed,
    endpoint: WebhookEndpoint,
    settings: Settings,
    *,
    payload: dict[str, Any] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: Resolver | None = None,
) -> _Attempt:
    """One signed POST of `payload` (the row's, by default) to the endpoint, at the
    address just checked, signed with the endpoint's current secret; never raises."""
    secret = decrypt_secret(endpoint.secret_encrypted, settings)
    if secret is None:
        return _Attempt(False, error="the secret cannot be read: rotate it", final=True)
    try:
        target = await check_target(endpoint.url, settings, resolve)
    except RefusedTargetError as error:
        logger.warning("webhook %s: %s", endpoint.id, error.detail)
        return _Attempt(False, error=f"refused: {error}"[:MAX_ERROR_LENGTH])
    body = body_of(payload if payload is not None else row.payload)
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
        logger.warning("webhook %s: %s: %s", endpoint.id, type(error).__name__, error)
        return _Attempt(False, error=_error_text(error), at=now)
    if 200 <= response.status_code < 300:
        return _Attempt(True, status_code=response.status_code, at=now)
    return _Attempt(
        False, status_code=response.status_code, error=f"HTTP {response.status_code}", at=now
    )


async def _attempt(
    database: Database,
    settings: Settings,
    row: _Claimed,
    grants: KindGrants,
    *,
    transport: httpx.AsyncBaseTransport | None,
    resolve: Resolver | None,
) -> _Attempt:
    """One attempt, from what stands right now: the endpoint, its client and organization
    still live, the kinds still granted (entries of others dropped), the current secret."""
    live = await _live(database, row.endpoint_id, grants)
    if isinstance(live, str):
        return _Attempt(False, error=live, final=True)
    told = [entry for entry in row.entries if entry.get("type") in live.kinds]
    if not told:
        return _Attempt(
            False,
            error="not sent: the client may no longer read any of its entries' kinds",
            final=True,
            client_id=live.client_id,
            organization=live.organization,
        )
    payload = None
    if len(told) < len(row.entries):
        payload = row.payload | {"data": row.payload["data"] | {"entries": told}}
    attempt = await send_one(
        row, live.endpoint, settings, payload=payload, transport=transport, resolve=resolve
    )
    attempt.payload, attempt.client_id, attempt.organization = (
        payload,
        live.client_id,
        live.organization,
    )
    return attempt


def _audit_outcome(session: AsyncSession, row: _Claimed, attempt: _Attempt, sent: bool) -> None:
    """`webhook.deliver`: allowed when delivered, error when it failed for good."""
    entries = (attempt.payload or row.payload).get("data", {}).get("entries", [])
    details: dict[str, Any] = {
        "message_id": row.message_id,
        "entries": len(entries),
        "attempts": row.attempts + 1,
    }
    if sent:
        details["ids"] = [str(entry.get("id")) for entry in entries]
    else:
        details["reason"] = attempt.error
    audit.record(
        session,
        AuditContext(
            client_id=attempt.client_id, organization=attempt.organization, user_agent=USER_AGENT
        ),
        "webhook.deliver",
        outcome=Outcome.ALLOWED if sent else Outcome.ERROR,
        object_type="webhook",
        object_id=row.endpoint_id,
        details=details,
    )


async def _record(
    database: Database,
    settings: Settings,
    claimed: list[_Claimed],
    attempts: dict[uuid.UUID, _Attempt],
    lease_until: datetime,
) -> DeliveryReport:
    """Write each claimed row's outcome; rows never tried go back to `pending` untouched.
    A final outcome (delivered, failed) is audited as `webhook.deliver`."""
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
            if attempt.payload is not None:
                values["payload"] = attempt.payload
            final = True
            if attempt.delivered:
                report.delivered += 1
                values |= {
                    "status": WebhookDeliveryStatus.DELIVERED.value,
                    "delivered_at": attempt.at,
                }
            elif not attempt.final and count < settings.webhook_max_attempts:
                final = False
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
            result = await session.exec(update(table).where(where).values(**values))
            # Only under our own lease, and only once: a deleted endpoint's rows are gone.
            if final and (result.rowcount or 0) > 0:
                _audit_outcome(session, row, attempt, attempt.delivered)
    return report


async def deliver_due(
    database: Database,
    settings: Settings,
    *,
    limit: int = BATCH_SIZE,
    transport: httpx.AsyncBaseTransport | None = None,
    resolve: Resolver | None = None,
    endpoints: Collection[uuid.UUID] | None = None,
) -> DeliveryReport:
    """One pass: claim due deliveries, POST each signed, record each outcome.

    The claim commits before anything is sent, so another pass (another instance) skips
    these rows; a pass starts no attempt it could not finish before its lease runs out.
    Endpoints are sent to concurrently (at most `PARALLEL_ENDPOINTS` at once); one
    endpoint's deliveries go one after the other in feed order, and after a failed one
    the rest of that endpoint's wait for a later pass. Before each attempt the endpoint,
    its client, organization, secret and granted kinds are read again. Delivery is at
    least once: a receiver recognises a repeat by its `webhook-id`. `endpoints`: only
    those endpoints' deliveries (None: every endpoint's).
    """
    if not await _anything_due(database, endpoints):
        return DeliveryReport()
    timeout = settings.webhook_timeout_seconds
    # Re-reading, resolving, connecting, sending, reading the status: a few timeouts.
    per_attempt = timedelta(seconds=timeout * 3)
    lease_until, claimed = await _claim(
        database, limit=limit, lease=per_attempt * (limit + 1), endpoints=endpoints
    )
    if not claimed:
        return DeliveryReport()
    attempts: dict[uuid.UUID, _Attempt] = {}
    by_endpoint: dict[uuid.UUID, list[_Claimed]] = {}
    for row in claimed:
        by_endpoint.setdefault(row.endpoint_id, []).append(row)
    gate = asyncio.Semaphore(PARALLEL_ENDPOINTS)

    async def send_in_order(rows: list[_Claimed]) -> None:
        async with gate:
            grants = KindGrants()  # decisions kept while the policy's version stays
            for row in rows:
                if clock.now() + per_attempt > lease_until:
                    return  # the rest goes back to pending, untried
                try:
                    # The whole attempt, resolution included: a receiver that trickles its
                    # answer cannot hold the pass past its lease.
                    attempt = await asyncio.wait_for(
                        _attempt(
                            database,
                            settings,
                            row,
                            grants,
                            transport=transport,
                            resolve=resolve,
                        ),
                        per_attempt.total_seconds(),
                    )
                except TimeoutError:
                    attempt = _Attempt(False, error="timed out")
                except Exception:
                    logger.exception("webhook delivery %s failed", row.message_id)
                    attempt = _Attempt(False, error="the attempt failed")
                attempts[row.id] = attempt
                if not attempt.delivered and not attempt.final:
                    return  # this receiver is failing: the rest wait, untried

    try:
        await asyncio.gather(*(send_in_order(rows) for rows in by_endpoint.values()))
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


async def purge_deliveries(session: AsyncSession, older_than: datetime) -> int:
    """Remove delivered and failed deliveries queued before `older_than` (the feed's
    retention: their entries' ids need not outlive the entries themselves)."""
    table = _deliveries
    removed = await session.exec(
        delete(table).where(
            table.c.status.in_(
                [WebhookDeliveryStatus.DELIVERED.value, WebhookDeliveryStatus.FAILED.value]
            ),
            table.c.created_at < older_than,
        )
    )
    return int(removed.rowcount or 0)


async def _purge_due(database: Database, settings: Settings) -> None:
    older_than = clock.now() - timedelta(days=settings.change_feed_retention_days)
    async with database.transaction() as session:
        removed = await purge_deliveries(session, older_than)
    if removed:
        logger.info("webhooks: %d deliveries past retention removed", removed)


async def deliver_forever(database: Database, settings: Settings) -> None:
    """Run delivery passes every `webhook_poll_seconds` until cancelled; a failed pass is
    logged, a full one is followed by the next at once. Every
    `change_feed_purge_seconds` (when not 0), delivered and failed rows older than
    `change_feed_retention_days` are removed."""
    purge_every = settings.change_feed_purge_seconds
    purged_at: datetime | None = None
    while True:
        report: DeliveryReport | None = None
        try:
            report = await deliver_due(database, settings)
        except Exception:
            logger.exception("webhook delivery pass failed")
        now = clock.now()
        if purge_every and (purged_at is None or now - purged_at >= timedelta(seconds=purge_every)):
            purged_at = now
            try:
                await _purge_due(database, settings)
            except Exception:
                logger.exception("webhook retention pass failed")
        if report is None or report.claimed < BATCH_SIZE:
            await asyncio.sleep(settings.webhook_poll_seconds)
