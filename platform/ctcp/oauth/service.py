"""API clients and their access tokens: create, list, disable, rotate, issue, revoke, check."""

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz.oauth_scopes import CLIENT_ROLE, OAuthScope
from ctcp.core.changes import bump_grants
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest, keyset, page_of
from ctcp.identity.roles import role_fits
from ctcp.identity.tokens import token_hash
from ctcp.oauth.models import AccessToken, ApiClient
from ctcp.oauth.schemas import ApiClientCreate, ApiClientIssued, ApiClientRead, ClientSecret
from ctcp.oauth.server import (
    ClientRecord,
    TokenRecord,
    new_client_secret,
    normalized_scope,
)
from ctcp.organizations.models import Organization

if TYPE_CHECKING:  # not at run time: the guard authenticates bearer tokens through here
    from ctcp.authz.guard import Access


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    organization: Organization
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class BearerClient:
    """The client behind a live bearer token, and the scopes that token carries."""

    client_id: str
    name: str
    organization: Organization
    scopes: frozenset[str]
    token_id: uuid.UUID
    expires_at: datetime


def _check_scopes(scopes: Iterable[str]) -> str:
    chosen = set(scopes)
    unknown = chosen - {scope.value for scope in OAuthScope}
    if unknown:
        raise ValidationError(
            f"Unknown scopes: {', '.join(sorted(unknown))}.", loc=["body", "scopes"]
        )
    if not chosen:
        raise ValidationError("Give the client at least one scope.", loc=["body", "scopes"])
    return normalized_scope(chosen)


async def create_client(
    session: AsyncSession,
    *,
    organization: Organization,
    name: str,
    scopes: Iterable[str],
    context: AuditContext,
) -> IssuedClient:
    """A new client for a Compact entity; its secret is returned this once."""
    if not role_fits(CLIENT_ROLE, organization.kind):
        raise ValidationError(
            "API clients belong to Compact entities (or the Secretariat), not to Member States.",
            loc=["body", "organization_id"],
        )
    if not organization.active:
        raise ConflictError("The organization is inactive.")
    secret = new_client_secret()
    client = ApiClient(
        client_id=f"ctcp-{organization.code.lower()}-{secrets.token_hex(8)}"[:64],
        name=name,
        organization_id=organization.id,
        scopes=_check_scopes(scopes),
        secret_hash=token_hash(secret),
        created_by=context.user_id,
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        context,
        "api_client.create",
        object_type="api_client",
        object_id=client.id,
        details={
            "client_id": client.client_id,
            "organization": organization.code,
            "scopes": client.scopes,
        },
    )
    return IssuedClient(client, organization, secret)


async def issue_client(
    session: AsyncSession, body: ApiClientCreate, *, context: AuditContext
) -> ApiClientIssued:
    """`create_client` for the organization the body names (404 when there is none): the
    client with its secret, shown in this answer only."""
    organization = await session.get(Organization, body.organization_id)
    if organization is None:
        raise NotFoundError("No such organization.")
    issued = await create_client(
        session,
        organization=organization,
        name=body.name,
        scopes=[scope.value for scope in body.scopes],
        context=context,
    )
    read = ApiClientRead.of(issued.client, issued.organization)
    return ApiClientIssued(**read.model_dump(), client_secret=issued.secret)


def clients_with_organizations() -> Select[ApiClient, Organization]:
    """API clients, each with its organization (the administrators see every one)."""
    return select(ApiClient, Organization).join(
        Organization, col(Organization.id) == col(ApiClient.organization_id)
    )


@dataclass(frozen=True)
class ClientFilters:
    """The list's filters: the clients of one organization, active or disabled ones."""

    organization_id: uuid.UUID | None = None
    active: bool | None = None


async def list_clients(
    session: AsyncSession, access: "Access", filters: ClientFilters, page: PageRequest
) -> Page[ApiClientRead]:
    """Every organization's clients, by client id; audited as `api_client.list` with the ids."""
    statement = clients_with_organizations()
    if filters.organization_id is not None:
        statement = statement.where(col(ApiClient.organization_id) == filters.organization_id)
    if filters.active is not None:
        statement = statement.where(col(ApiClient.active) == filters.active)
    statement = keyset(
        statement, order=[col(ApiClient.client_id)], limit=page.limit, cursor=page.cursor
    )
    rows = (await session.exec(statement)).all()
    shown = page_of(
        rows,
        limit=page.limit,
        key=lambda row: [row[0].client_id],
        item=lambda row: ApiClientRead.of(row[0], row[1]),
    )
    audit.record(
        session,
        access.audit,
        "api_client.list",
        object_type="api_client",
        details={"ids": [str(item.id) for item in shown.items]},
        read=True,
    )
    return shown


async def _client_by_id(
    session: AsyncSession, api_client_id: uuid.UUID
) -> tuple[ApiClient, Organization]:
    statement = clients_with_organizations().where(col(ApiClient.id) == api_client_id)
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFoundError("No such API client.")
    return row[0], row[1]


async def read_client(
    session: AsyncSession, access: "Access", api_client_id: uuid.UUID
) -> ApiClientRead:
    """One client (404 when there is none); audited as `api_client.read`."""
    client, organization = await _client_by_id(session, api_client_id)
    audit.record(
        session,
        access.audit,
        "api_client.read",
        object_type="api_client",
        object_id=api_client_id,
        read=True,
    )
    return ApiClientRead.of(client, organization)


async def client_by_client_id(session: AsyncSession, client_id: str) -> ClientRecord | None:
    """The client a token request names (active or not: Authlib's check refuses inactive)."""
    statement = clients_with_organizations().where(col(ApiClient.client_id) == client_id[:64])
    row = (await session.exec(statement)).first()
    return None if row is None else ClientRecord(row[0], row[1])


async def revoke_client_tokens(session: AsyncSession, client: ApiClient) -> int:
    """Revoke every live token of the client, here and in every worker's token cache."""
    await bump_grants(session)
    result = await session.exec(
        update(AccessToken)
        .where(col(AccessToken.api_client_id) == client.id, col(AccessToken.revoked_at).is_(None))
        .values(revoked_at=clock.now())
    )
    return int(result.rowcount or 0)


async def disable_client(
    session: AsyncSession, *, api_client_id: uuid.UUID, context: AuditContext
) -> None:
    """Disable a client (404 when there is none): its secret stops working and every
    token of it dies at once."""
    client, _ = await _client_by_id(session, api_client_id)
    if not client.active:
        return
    client.active = False
    client.disabled_at = clock.now()
    client.disabled_by = context.user_id
    session.add(client)
    revoked = await revoke_client_tokens(session, client)
    await session.flush()
    audit.record(
        session,
        context,
        "api_client.disable",
        object_type="api_client",
        object_id=client.id,
        details={"client_id": client.client_id, "tokens_revoked": revoked},
    )


async def rotate_secret(
    session: AsyncSession, *, api_client_id: uuid.UUID, context: AuditContext
) -> ClientSecret:
    """A new secret (shown once) of a client (404 when there is none); the old one stops
    working and its tokens are revoked."""
    client, _ = await _client_by_id(session, api_client_id)
    if not client.active:
        raise ConflictError("The client is disabled.")
    secret = new_client_secret()
    client.secret_hash = token_hash(secret)
    client.secret_rotated_at = clock.now()
    session.add(client)
    revoked = await revoke_client_tokens(session, client)
    await session.flush()
    audit.record(
        session,
        context,
        "api_client.rotate_secret",
        object_type="api_client",
        object_id=client.id,
        details={"client_id": client.client_id, "tokens_revoked": revoked},
    )
    return ClientSecret(client_id=client.client_id, client_secret=secret)


async def save_token(
    session: AsyncSession,
    *,
    client: ClientRecord,
    token: dict[str, Any],
    context: AuditContext,
) -> AccessToken:
    """Keep the hash of a token Authlib issued, and audit the issuance."""
    now = clock.now()
    stored = AccessToken(
        token_hash=token_hash(token["access_token"]),
        api_client_id=client.client.id,
        scopes=token.get("scope", ""),
        issued_at=now,
        expires_at=now + timedelta(seconds=int(token["expires_in"])),
    )
    session.add(stored)
    await session.flush()
    audit.record(
        session,
        context,
        "oauth.token",
        object_type="access_token",
        object_id=stored.id,
        details={"scope": stored.scopes, "expires_at": stored.expires_at.isoformat()},
    )
    return stored


def _token_with_client(token: str) -> Select[AccessToken, ApiClient, Organization]:
    return (
        select(AccessToken, ApiClient, Organization)
        .join(ApiClient, col(ApiClient.id) == col(AccessToken.api_client_id))
        .join(Organization, col(Organization.id) == col(ApiClient.organization_id))
        .where(col(AccessToken.token_hash) == token_hash(token))
    )


async def token_record(session: AsyncSession, token: str) -> TokenRecord | None:
    """A stored token with its client and organization, whatever its state."""
    row = (await session.exec(_token_with_client(token))).first()
    return None if row is None else TokenRecord(row[0], row[1], row[2])


async def revoke_token(
    session: AsyncSession, *, record: TokenRecord, context: AuditContext
) -> None:
    if record.token.revoked_at is None:
        await bump_grants(session)  # every worker forgets the token it may have cached
        await session.exec(
            update(AccessToken)
            .where(col(AccessToken.id) == record.token.id)
            .values(revoked_at=clock.now())
        )
    audit.record(
        session,
        context,
        "oauth.revoke",
        object_type="access_token",
        object_id=record.token.id,
        details={"client_id": record.client.client_id},
    )


async def bearer_client(session: AsyncSession, token: str) -> BearerClient | None:
    """The client of a live token: not revoked, not expired, its client and org active."""
    statement = _token_with_client(token).where(
        col(AccessToken.revoked_at).is_(None),
        col(AccessToken.expires_at) > clock.now(),
        col(ApiClient.active),
        col(Organization.active),
    )
    row = (await session.exec(statement)).first()
    if row is None:
        return None
    stored, client, organization = row
    return BearerClient(
        client.client_id,
        client.name,
        organization,
        frozenset(stored.scopes.split()),
        stored.id,
        stored.expires_at,
    )
