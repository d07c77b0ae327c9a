"""API clients and their access tokens: create, list, disable, rotate, issue, revoke, check."""

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.core.changes import bump_grants
from ctcp.core.clock import clock
from ctcp.core.errors import ConflictError, ValidationError
from ctcp.identity.roles import role_fits
from ctcp.identity.tokens import token_hash
from ctcp.oauth.models import AccessToken, ApiClient
from ctcp.oauth.scopes import CLIENT_ROLE, OAuthScope
from ctcp.oauth.server import (
    ClientRecord,
    TokenRecord,
    new_client_secret,
    normalized_scope,
)
from ctcp.organizations.models import Organization


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


def clients_with_organizations() -> Select[ApiClient, Organization]:
    """API clients, each with its organization (the administrators see every one)."""
    return select(ApiClient, Organization).join(
        Organization, col(Organization.id) == col(ApiClient.organization_id)
    )


async def load_client(
    session: AsyncSession, *, id: uuid.UUID
) -> tuple[ApiClient, Organization] | None:
    statement = clients_with_organizations().where(col(ApiClient.id) == id)
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


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
    session: AsyncSession, *, client: ApiClient, context: AuditContext
) -> None:
    """Disable a client: its secret stops working and every token of it dies at once."""
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


async def rotate_secret(session: AsyncSession, *, client: ApiClient, context: AuditContext) -> str:
    """A new secret (shown once); the old one stops working and its tokens are revoked."""
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
    return secret


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
