"""A realistic population for benchmarks: reference data, policy, many users, a session."""

import asyncio
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import insert
from sqlmodel import select

from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.core import migrations
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity import mfa, tokens
from ctcp.identity.models import User, UserRole, UserSession
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization

PASSWORD = "Benchmark-passphrase-2026"


@dataclass
class Population:
    user_ids: list[uuid.UUID]
    cookies: dict[str, str]  # role -> session cookie value


async def session_for(database: Database, user_id: uuid.UUID) -> str:
    """A signed-in session (MFA passed) for the user, without the password round: its token."""
    token = tokens.new_session_token()
    now = clock.now()
    async with database.transaction() as session:
        session.add(
            UserSession(
                token_hash=tokens.token_hash(token),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=12),
                mfa_verified=True,
            )
        )
    return token


async def populate(database_url: str, *, users: int, settings: Settings) -> Population:
    """Migrate, load reference data and policy, add `users` users and signed-in sessions."""
    await asyncio.to_thread(migrations.upgrade, database_url)
    database = Database(database_url)
    async with database.transaction() as session:
        await organizations.load_reference_data(session, context=AuditContext())
        await policy.sync_policy(session, policy.read_policy_file(), context=AuditContext())
    async with database.sessionmaker() as session:
        orgs = list((await session.exec(select(Organization))).all())
    password_hash = PasswordHash(
        (Argon2Hasher(memory_cost=19456, time_cost=2, parallelism=1),)
    ).hash(PASSWORD)
    rng = random.Random(2026)
    role_of = {
        "member_state": "state_focal_point",
        "compact_entity": "entity_focal_point",
        "secretariat": "cted_analyst",
    }
    user_rows, role_rows = [], []
    for n in range(users):
        org = orgs[n % len(orgs)] if n < len(orgs) else rng.choice(orgs)
        user_id = uuid.uuid4()
        user_rows.append(
            {
                "id": user_id,
                "email": f"user{n:06d}@{org.code.lower()}.example",
                "name": f"User {n}",
                "organization_id": org.id,
                "password_hash": password_hash,
                "active": True,
                "created_at": clock.now(),
                "password_changed_at": clock.now(),
            }
        )
        role_rows.append({"user_id": user_id, "role": role_of[org.kind], "granted_at": clock.now()})
    async with database.transaction() as session:
        for start in range(0, len(user_rows), 2000):
            await session.exec(insert(User).values(user_rows[start : start + 2000]))  # type: ignore[call-overload]
            await session.exec(insert(UserRole).values(role_rows[start : start + 2000]))  # type: ignore[call-overload]
    secretariat = next(org for org in orgs if org.code == "CTED")
    cookies = {}
    for role in ("platform_admin", "auditor"):
        secret = pyotp.random_base32()
        user_id = uuid.uuid4()
        async with database.transaction() as session:
            session.add(
                User(
                    id=user_id,
                    email=f"{role}-{secrets.token_hex(3)}@cted.example",
                    name=role,
                    organization_id=secretariat.id,
                    password_hash=password_hash,
                    totp_secret_encrypted=mfa.encrypt_secret(secret, settings.secret()),
                    mfa_enabled_at=clock.now(),
                )
            )
            await session.flush()
            session.add(UserRole(user_id=user_id, role=role))
        cookies[role] = await session_for(database, user_id)
    await database.dispose()
    return Population([row["id"] for row in user_rows], cookies)


async def pg_admin(url: str, statement: str) -> None:
    """Run one statement (CREATE / DROP DATABASE) on PostgreSQL outside any transaction."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
