"""The policy: files in policies/, rows in the database, one enforcer per process."""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import casbin
from casbin import persist
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz.models import CasbinRule
from ctcp.authz.scopes import ALL_SCOPES, DataScope
from ctcp.core.changes import NOTIFY_CHANNEL, bump_policy, read_versions
from ctcp.core.config import PROJECT_ROOT
from ctcp.core.db import Database

logger = logging.getLogger("ctcp.authz")

POLICY_DIR = PROJECT_ROOT / "policies"
MODEL_PATH = POLICY_DIR / "model.conf"
POLICY_PATH = POLICY_DIR / "policy.csv"
# Workers re-read the policy version at least this often (PostgreSQL also notifies at once).
POLL_SECONDS = 0.5
# A lost LISTEN connection is opened again at most this often (the poll covers the gap).
RELISTEN_SECONDS = 5.0

PolicyLine = tuple[str, ...]


def read_policy_file(path: Path = POLICY_PATH) -> list[PolicyLine]:
    """The policy lines of a CSV file: `p, role, domain, resource, action, scope`."""
    lines: list[PolicyLine] = []
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = tuple(part.strip() for part in stripped.split(","))
        if parts[0] != "p" or len(parts) != 6 or not all(parts):
            raise ValueError(
                f"{path}:{number}: expected 'p, role, domain, resource, action, "
                f"scope', got {stripped!r}"
            )
        if parts[5] not in DataScope.__members__.values():
            raise ValueError(f"{path}:{number}: unknown scope {parts[5]!r}")
        lines.append(parts)
    return lines


async def stored_policy(session: AsyncSession) -> list[PolicyLine]:
    rows = (await session.exec(select(CasbinRule).order_by(col(CasbinRule.id)))).all()
    return [(row.ptype, row.v0, row.v1, row.v2, row.v3, row.v4) for row in rows]


async def policy_version(session: AsyncSession) -> int:
    return (await read_versions(session))[0]


@dataclass(frozen=True)
class SyncResult:
    added: int
    removed: int


async def sync_policy(
    session: AsyncSession, lines: Sequence[PolicyLine], *, context: AuditContext
) -> SyncResult:
    """Bring the stored policy in line with `lines` (idempotent), audited and versioned."""
    wanted = set(lines)
    current = set(await stored_policy(session))
    removed = current - wanted
    added = [line for line in lines if line not in current]
    for line in removed:
        await session.exec(
            delete(CasbinRule).where(
                col(CasbinRule.ptype) == line[0],
                col(CasbinRule.v0) == line[1],
                col(CasbinRule.v1) == line[2],
                col(CasbinRule.v2) == line[3],
                col(CasbinRule.v3) == line[4],
                col(CasbinRule.v4) == line[5],
            )
        )
    for line in dict.fromkeys(added):
        session.add(
            CasbinRule(ptype=line[0], v0=line[1], v1=line[2], v2=line[3], v3=line[4], v4=line[5])
        )
    await session.flush()
    if added or removed:
        await bump_policy(session)
        audit.record(
            session,
            context,
            "policy.sync",
            object_type="policy",
            details={"added": sorted(map(list, set(added))), "removed": sorted(map(list, removed))},
        )
    return SyncResult(len(set(added)), len(removed))


class _RowsAdapter(persist.Adapter):  # type: ignore[misc]
    """Hands Casbin the rows already read from the database (Casbin never touches tables)."""

    def __init__(self, lines: Iterable[PolicyLine]) -> None:
        self.lines = list(lines)

    def load_policy(self, model: object) -> None:
        for line in self.lines:
            persist.load_policy_line(", ".join(line), model)


def build_enforcer(lines: Iterable[PolicyLine]) -> casbin.FastEnforcer:
    """A Casbin enforcer indexed on (role, resource), so a check scans only its own lines."""
    return casbin.FastEnforcer(str(MODEL_PATH), _RowsAdapter(lines), cache_key_order=[0, 2])


@dataclass
class PolicyEngine:
    """The process's one enforcer, its policy version, and decisions memoised per version."""

    enforcer: casbin.FastEnforcer
    version: int
    _memo: dict[tuple[frozenset[str], str, str, str], frozenset[DataScope]] = field(
        default_factory=dict
    )

    def scopes(
        self, roles: Iterable[str], organization: str, resource: str, action: str
    ) -> frozenset[DataScope]:
        """Every data scope any of these roles is granted for the action (empty: 403)."""
        key = (frozenset(roles), organization, resource, action)
        granted = self._memo.get(key)
        if granted is None:
            granted = frozenset(
                scope
                for role in key[0]
                for scope in ALL_SCOPES
                if self.enforcer.enforce(role, organization, resource, action, scope.value)
            )
            self._memo[key] = granted
        return granted

    def matrix(self) -> list[PolicyLine]:
        return [tuple(line) for line in self.enforcer.get_policy()]


async def load_engine(session: AsyncSession) -> PolicyEngine:
    version = await policy_version(session)
    lines = await stored_policy(session)
    return PolicyEngine(build_enforcer(lines), version)


class PolicyWatcher:
    """Keeps one process current: reloads the enforcer when policy lines change and drops
    cached sessions when grants change (a version poll, plus LISTEN on PostgreSQL).

    The LISTEN connection is named `ctcp-listen-<pid>` in `pg_stat_activity`. When it is
    lost (database restarted, connection killed), the poll carries on alone and the
    watcher listens again once the database answers, at most every `RELISTEN_SECONDS`.
    """

    def __init__(
        self,
        database: Database,
        engine: PolicyEngine,
        *,
        grants_version: int,
        on_grants_changed: Callable[[], None],
    ) -> None:
        self.database = database
        self.engine = engine
        self.grants_version = grants_version
        self.on_grants_changed = on_grants_changed
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_again_at = 0.0
        self._stopping = False

    async def start(self) -> None:
        if self.database.backend == "postgresql":
            await self._listen()
        self._task = asyncio.create_task(self._run(), name="ctcp-policy-watcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _wake(self, *_: object) -> None:
        self._changed.set()

    async def _listen(self) -> None:
        connection = None
        try:
            import asyncpg

            url = self.database.engine.url
            connection = await asyncpg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                database=url.database,
                timeout=5,
                server_settings={"application_name": f"ctcp-listen-{os.getpid()}"},
            )
            await connection.add_listener(NOTIFY_CHANNEL, self._wake)
            # Lost: look at once (a notification may have been missed), then listen again.
            connection.add_termination_listener(self._wake)
            self._listener = connection
        except BaseException as error:
            # A connection opened but not listening (a standby refuses LISTEN, or we were
            # cancelled) is closed here, or each retry would leak one.
            if connection is not None and self._listener is not connection:
                connection.terminate()
            if not isinstance(error, Exception):
                raise
            # The poll still keeps this process current meanwhile.
            self._listen_again_at = time.monotonic() + RELISTEN_SECONDS
            logger.warning("LISTEN unavailable; relying on the version poll")

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancellation
            # that arrives as the wait completes, and the watcher would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._changed.wait()
            self._changed.clear()
            try:
                await self.refresh()
            except Exception:  # a database blip must not kill the watcher
                logger.warning("access state refresh failed; retrying", exc_info=True)
                continue
            if (
                self.database.backend == "postgresql"
                and not self.listening
                and time.monotonic() >= self._listen_again_at
            ):
                await self._listen()
                if self.listening:
                    logger.info("listening for access changes again")
                    self._changed.set()  # what changed before LISTEN began: look once more

    async def refresh(self) -> None:
        """Apply whatever moved since the last look (a read: on SQLite it takes no write lock)."""
        async with self.database.read_sessionmaker() as session:
            version, grants_version = await read_versions(session)
            if grants_version != self.grants_version:
                self.grants_version = grants_version
                self.on_grants_changed()
            if version != self.engine.version:
                self.engine = await load_engine(session)
                logger.info("policy reloaded at version %s", version)
