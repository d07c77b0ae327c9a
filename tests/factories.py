"""Small factories: organizations, users and signed-in clients with unique names."""

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlmodel import select

from ctcp.audit.models import AuditEvent
from ctcp.core.db import Database
from ctcp.identity.models import User, UserRole
from ctcp.organizations.models import Organization

PASSWORD = "Quiet-river-at-dawn-42"


@lru_cache(maxsize=1)
def _password_hash() -> str:
    # Hashed once per run at the production cost, so factories stay fast.
    return PasswordHash((Argon2Hasher(memory_cost=19456, time_cost=2, parallelism=1),)).hash(
        PASSWORD
    )


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}".upper()


async def make_org(
    database: Database,
    *,
    kind: str = "member_state",
    code: str | None = None,
    name: str | None = None,
) -> Organization:
    async with database.transaction() as session:
        organization = Organization(
            code=code or unique("T"), kind=kind, name_en=name or "Test organization", name_fr=None
        )
        session.add(organization)
    return organization


async def make_user(
    database: Database,
    *,
    org: Organization | None = None,
    roles: tuple[str, ...] = (),
    email: str | None = None,
    kind: str = "member_state",
) -> User:
    organization = org or await make_org(
        database, kind="secretariat" if _needs_secretariat(roles) else kind
    )
    async with database.transaction() as session:
        user = User(
            email=email or f"user-{secrets.token_hex(5)}@ctcp.example",
            name="Test User",
            organization_id=organization.id,
            password_hash=_password_hash(),
        )
        session.add(user)
        await session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role=role))
    return user


def _needs_secretariat(roles: tuple[str, ...]) -> bool:
    return any(role not in ("state_focal_point", "entity_focal_point") for role in roles)


@dataclass
class SignedIn:
    client: httpx.AsyncClient
    csrf: str
    body: dict[str, Any]


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, otp: str | None = None
) -> SignedIn:
    payload = {"email": email, "password": password}
    if otp is not None:
        payload["otp"] = otp
    response = await client.post("/api/v1/session", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return SignedIn(client, body["csrf_token"], body)


def new_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ctcp.test")


async def audit_events(database: Database, **filters: Any) -> list[AuditEvent]:
    async with database.sessionmaker() as session:
        statement = select(AuditEvent).order_by(AuditEvent.id)  # type: ignore[arg-type]
        for field, value in filters.items():
            statement = statement.where(getattr(AuditEvent, field) == value)
        return list((await session.exec(statement)).all())
