"""Small factories: organizations, users and signed-in clients with unique names."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.audit.models import AuditEvent
from ctcp.cli import app as cli
from ctcp.core.clock import clock
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp.identity.mfa import encrypt_secret
from ctcp.identity.models import User, UserRole
from ctcp.organizations.models import Organization

PASSWORD = "Quiet-river-at-dawn-42"
TEST_KEY = ("test-secret-key-" + "x" * 32).encode()  # conftest's settings.secret_key
MFA_ROLES = frozenset({"platform_admin", "consent_officer", "auditor"})
# TOTP secrets of factory users with MFA, and the last step each used (codes work once).
TOTP_SECRETS: dict[str, str] = {}
_LAST_STEP: dict[str, int] = {}
# The argon2 cost of the shared test settings: argon2's least, so a sign-in does not spend
# ~25 ms hashing. Settings refuses it; tests of hashing itself use PRODUCTION_ARGON2.
FAST_ARGON2 = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}
# What a deployment hashes with: Settings' defaults (OWASP's minimum).
PRODUCTION_ARGON2 = {name: Settings.model_fields[name].default for name in FAST_ARGON2}


@lru_cache(maxsize=1)
def _password_hash() -> str:
    # Hashed once per run at the test settings' cost, so sign-ins find nothing to upgrade.
    hasher = Argon2Hasher(
        memory_cost=FAST_ARGON2["argon2_memory_kib"],
        time_cost=FAST_ARGON2["argon2_time_cost"],
        parallelism=FAST_ARGON2["argon2_parallelism"],
    )
    return PasswordHash((hasher,)).hash(PASSWORD)


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
    mfa: bool | None = None,
) -> User:
    """A user; with MFA already enrolled when a role requires it (unless mfa=False)."""
    organization = org or await make_org(
        database, kind="secretariat" if _needs_secretariat(roles) else kind
    )
    enrolled = bool(MFA_ROLES & set(roles)) if mfa is None else mfa
    address = email or f"user-{secrets.token_hex(5)}@ctcp.example"
    secret = pyotp.random_base32() if enrolled else None
    async with database.transaction() as session:
        user = User(
            email=address,
            name="Test User",
            organization_id=organization.id,
            password_hash=_password_hash(),
            totp_secret_encrypted=encrypt_secret(secret, TEST_KEY) if secret else None,
            mfa_enabled_at=clock.now() if secret else None,
        )
        session.add(user)
        await session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role=role))
    if secret:
        TOTP_SECRETS[address] = secret
    return user


def next_otp(email: str) -> str:
    """A fresh TOTP code for a factory user, moving the clock on if this step was used."""
    secret = TOTP_SECRETS[email.lower()]
    step = int(clock.now().timestamp()) // 30
    if step <= _LAST_STEP.get(email.lower(), -1):
        clock.advance(timedelta(seconds=30 * (_LAST_STEP[email.lower()] - step + 1)))
        step = _LAST_STEP[email.lower()] + 1
    _LAST_STEP[email.lower()] = step
    return pyotp.TOTP(secret).at(clock.now())


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
    if otp is None and email.lower() in TOTP_SECRETS:
        otp = next_otp(email)
    if otp is not None:
        payload["otp"] = otp
    response = await client.post("/api/v1/session", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return SignedIn(client, body["csrf_token"], body)


def new_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ctcp.test")


@dataclass
class ApiClientCredentials:
    id: Any
    client_id: str
    secret: str
    organization: Organization


async def make_api_client(
    database: Database,
    *,
    org: Organization | None = None,
    scopes: tuple[str, ...] = ("publications:read", "needs:read", "requests:read", "offers:write"),
) -> ApiClientCredentials:
    """An API client of a Compact entity (a new one unless given), with its secret."""
    from ctcp.audit.service import AuditContext
    from ctcp.oauth import service as oauth_service

    organization = org or await make_org(database, kind="compact_entity")
    async with database.transaction() as session:
        issued = await oauth_service.create_client(
            session,
            organization=organization,
            name="Test system",
            scopes=scopes,
            context=AuditContext(),
        )
    return ApiClientCredentials(
        issued.client.id, issued.client.client_id, issued.secret, organization
    )


def oauth_http(app: FastAPI, *, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A machine's HTTP client: over https (Authlib refuses plain http off loopback), no cookies."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="https://ctcp.test",
    )


async def request_token(
    http: httpx.AsyncClient,
    credentials: ApiClientCredentials,
    *,
    scope: str | None = None,
    basic: bool = True,
) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if basic:
        return await http.post(
            "/oauth/token", data=form, auth=(credentials.client_id, credentials.secret)
        )
    form |= {"client_id": credentials.client_id, "client_secret": credentials.secret}
    return await http.post("/oauth/token", data=form)


async def bearer_http(
    app: FastAPI, credentials: ApiClientCredentials, *, scope: str | None = None
) -> httpx.AsyncClient:
    """A machine's client holding a fresh access token in its Authorization header."""
    async with oauth_http(app) as token_endpoint:
        response = await request_token(token_endpoint, credentials, scope=scope)
    assert response.status_code == 200, response.text
    http = oauth_http(app)
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


async def audit_events(database: Database, **filters: Any) -> list[AuditEvent]:
    async with database.sessionmaker() as session:
        statement = select(AuditEvent).order_by(AuditEvent.id)  # type: ignore[arg-type]
        for field, value in filters.items():
            statement = statement.where(getattr(AuditEvent, field) == value)
        return list((await session.exec(statement)).all())


async def attempt_sign_in(app: FastAPI, email: str, password: str) -> int:
    """One sign-in from a fresh browser; the status code."""
    async with new_client(app) as client:
        response = await client.post("/api/v1/session", json={"email": email, "password": password})
        return response.status_code


async def tamper_with_audit(database: Database, backend: str, statement: str) -> None:
    """What an attacker with table rights does: drop the append-only guard, then edit."""
    from sqlalchemy import text

    async with database.transaction() as session:
        if backend == "postgresql":
            await session.exec(  # type: ignore[call-overload]
                text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
            )
        else:
            await session.exec(text("DROP TRIGGER audit_events_no_update"))  # type: ignore[call-overload]
        await session.exec(text(statement))  # type: ignore[call-overload]


@dataclass
class Published:
    state: Organization
    report_id: str
    publication_id: str
    analyst: httpx.AsyncClient
    officer: httpx.AsyncClient


async def make_publication(
    app: FastAPI,
    database: Database,
    *,
    audience: str = "compact",
    body: str = "Findings.",
    title: str = "Assessment visit",
) -> Published:
    """An adopted report of a new State, fully consented to `audience`, and its publication."""
    state = await make_org(database)
    analyst, officer = new_client(app), new_client(app)
    await sign_in(analyst, (await make_user(database, roles=("cted_analyst",))).email)
    await sign_in(officer, (await make_user(database, roles=("consent_officer",))).email)
    created = await analyst.post(
        "/api/v1/reports",
        json={
            "state": state.code,
            "title": title,
            "kind": "comprehensive",
            "visit_start": "2026-03-02",
            "visit_end": "2026-03-06",
            "sections": [{"area": "legislation", "title": "Legislation", "body": body}],
        },
    )
    assert created.status_code == 201, created.text
    report_id = created.json()["id"]
    assert (await analyst.post(f"/api/v1/reports/{report_id}/adopt")).status_code == 200
    consent = await officer.post(
        f"/api/v1/reports/{report_id}/consent",
        json={
            "scope": "full",
            "audience": audience,
            "reference": "NV/2026/7",
            "after_sequence": 0,
        },
    )
    assert consent.status_code == 201, consent.text
    listed = await analyst.get("/api/v1/publications", params={"state": state.code})
    publication_id = listed.json()["items"][0]["id"]
    return Published(state, report_id, publication_id, analyst, officer)


async def seen_sequence(client: httpx.AsyncClient, path: str) -> int:
    """What a careful client does before a decision: read the consent (or needs-sharing)
    history at `path` and name its latest sequence (0: none, or not readable)."""
    response = await client.get(path)
    history = response.json()["history"] if response.status_code == 200 else []
    return int(history[-1]["sequence"]) if history else 0


async def decide(client: httpx.AsyncClient, path: str, decision: dict[str, Any]) -> httpx.Response:
    """POST a consent or needs-sharing decision at `path`, naming the latest one seen
    unless the decision names one itself."""
    if "after_sequence" not in decision:
        decision = decision | {"after_sequence": await seen_sequence(client, path)}
    return await client.post(path, json=decision)


def run_ctcp(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`ctcp ARGS` in this process with these settings: (exit code, output)."""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, list(args), env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


async def table_counts(url: str, tables: dict[str, Any]) -> dict[str, int]:
    """Rows per table of the database at `url`."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return {
                name: (await session.exec(select(func.count()).select_from(table))).one()
                for name, table in tables.items()
            }
    finally:
        await database.dispose()


@asynccontextmanager
async def another_instance(app: FastAPI, **changes: Any) -> AsyncIterator[FastAPI]:
    """Another app on the same database (its own engine and pool): a second instance,
    with these settings changed."""
    instance = create_app(app.state.settings.model_copy(update=changes))
    async with instance.router.lifespan_context(instance):
        yield instance


def random_address() -> str:
    """A client address of its own, so per-address counts start from nothing."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def one_section_report(state_code: str) -> dict[str, Any]:
    """The body of a small report draft for this State: one section, no recommendation."""
    return {
        "state": state_code,
        "title": "Visit",
        "kind": "focused",
        "visit_start": "2026-04-01",
        "visit_end": "2026-04-02",
        "sections": [{"area": "legislation", "title": "L", "body": "Law"}],
    }
