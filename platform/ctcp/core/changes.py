"""Versions of the access state that every worker and instance watches.

`version` moves when policy lines change; `grants_version` when sessions, roles or
accounts change (sign-out, role assignment, deactivation, password or MFA change).
Each is bumped inside the changing transaction; on PostgreSQL a NOTIFY sent in that
transaction reaches every listening worker at commit, and a poll backs it up.
"""

from collections.abc import Callable

from sqlalchemy import text, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.db import on_after_commit

NOTIFY_CHANNEL = "ctcp_access"
LOCAL_LISTENERS_KEY = "ctcp.grants_listeners"


class AccessState(SQLModel, table=True):
    __tablename__ = "policy_state"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0)
    grants_version: int = Field(default=0)


async def read_versions(session: AsyncSession) -> tuple[int, int]:
    row = (
        await session.exec(
            select(AccessState.version, AccessState.grants_version).where(AccessState.id == 1)
        )
    ).one()
    return row[0], row[1]


async def _notify(session: AsyncSession) -> None:
    if (await session.connection()).dialect.name == "postgresql":
        await session.exec(text(f"NOTIFY {NOTIFY_CHANNEL}"))  # type: ignore[call-overload]


async def bump_policy(session: AsyncSession) -> None:
    """Policy lines changed: every worker reloads its enforcer."""
    await session.exec(
        update(AccessState).where(col(AccessState.id) == 1).values(version=AccessState.version + 1)
    )
    await _notify(session)


async def bump_grants(session: AsyncSession) -> None:
    """Sessions, roles or accounts changed: every worker forgets what it cached of them.

    This process forgets at commit; the others on NOTIFY or at their next poll.
    """
    await session.exec(
        update(AccessState)
        .where(col(AccessState.id) == 1)
        .values(grants_version=AccessState.grants_version + 1)
    )
    await _notify(session)
    # First among the after-commit work: nothing may delay or skip forgetting stale grants.
    on_after_commit(session, _tell_local_listeners, first=True)


async def _tell_local_listeners(session: AsyncSession) -> None:
    listeners: list[Callable[[], None]] = session.info.get(LOCAL_LISTENERS_KEY, [])
    for listener in listeners:
        listener()
