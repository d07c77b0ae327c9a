"""Sign-in throttling after OWASP's Authentication and Credential Stuffing cheat sheets.

Failed sign-ins are counted under three keys, in the database (shared by every worker
and instance):

- the source address, across every account it tries: password spraying from one
  address is refused for a while (429), e-mails known or not;
- the account at that address: a few failures lock the account for that address only,
  so an attacker's failures never lock the owner out from anywhere else;
- the account across all addresses: more failures are allowed, then a delay during which
  only a correct password with a valid second factor (TOTP or recovery code) passes.

An attempt that carries a valid device cookie for the account it names (OWASP's "Slow
Down Online Guessing Attacks with Device Cookies") is counted under a fourth key instead,
the device, with the account-at-address limits: it is neither refused nor counted by the
three keys above, which only attempts from unknown browsers can fill. So nobody without
the owner's cookie can lock the owner out of the browsers they use, and a stolen cookie
still gets no more guesses than one address would. The address key still counts every
attempt without a valid cookie, whatever account it names; an attempt with one names
the only account its cookie was signed for, so it cannot spray.

Every attempt is counted before its password is checked, so a burst of parallel guesses
gets no more checks than the limits allow. An attempt refused without a check is taken
back off the counts; one that passes is too, and ends its account-at-address count.
Each new lock of a key lasts twice the last, from the base up to the maximum lockout.
"""

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.core.config import Settings
from ctcp.core.errors import TooManyRequestsError
from ctcp.identity.models import LoginThrottle

LOCKED = "Too many failed sign-ins. Try again later."


class Throttle(StrEnum):
    ADDRESS = "address"
    ACCOUNT_ADDRESS = "account_address"
    ACCOUNT = "account"
    DEVICE = "device"


# Every transaction counts its keys in this order, so two of them never wait on each other.
ORDER = (Throttle.DEVICE, Throttle.ADDRESS, Throttle.ACCOUNT_ADDRESS, Throttle.ACCOUNT)
# The keys an attempt from an unknown browser is counted under.
WITHOUT_DEVICE = (Throttle.ADDRESS, Throttle.ACCOUNT_ADDRESS, Throttle.ACCOUNT)


def counted_address(address: str) -> str:
    """The address as counted: an IPv6 client holds a whole /64, so it counts as one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Source:
    """Who tries to sign in, from where, and from which known device (its cookie's nonce)."""

    email: str
    address: str
    device: str | None = None

    @classmethod
    def of(cls, email: str, context: AuditContext, device: str | None = None) -> "Source":
        return cls(email, counted_address(context.ip or "unknown"), device)

    def key(self, throttle: Throttle) -> str:
        if throttle is Throttle.DEVICE:
            return f"device:{self.device}"
        if throttle is Throttle.ADDRESS:
            return f"address:{self.address}"
        if throttle is Throttle.ACCOUNT_ADDRESS:
            return f"account_address:{self.email} {self.address}"
        return f"account:{self.email}"


@dataclass(frozen=True)
class Lock:
    throttle: Throttle
    until: datetime
    lockouts: int = 0
    started: bool = False  # this attempt started it

    def retry_after(self, now: datetime) -> int:
        return max(1, math.ceil((self.until - now).total_seconds()))


@dataclass(frozen=True)
class Admission:
    """How an attempt was counted before its check, and what stops it."""

    counted: tuple[Throttle, ...] = ()
    refusal: Lock | None = None  # the address or the account at it: refused unchecked
    delay: Lock | None = None  # the account-wide delay: password and second factor only
    started: tuple[Lock, ...] = ()
    bypassed: tuple[Lock, ...] = ()  # locks a device cookie's attempt is not subject to


def _limit(throttle: Throttle, settings: Settings) -> int:
    if throttle is Throttle.ADDRESS:
        return settings.login_address_max_failures
    if throttle is Throttle.ACCOUNT:
        return settings.login_account_max_failures
    return settings.login_max_failures


def _lockout_seconds(lockouts: int, settings: Settings) -> int:
    """Growing back-off: base, 2 x base, 4 x base ... up to the maximum."""
    seconds = settings.login_lockout_base_seconds * 2 ** max(0, lockouts - 1)
    return int(min(seconds, settings.login_lockout_max_seconds))


def _upsert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _count(
    session: AsyncSession, key: str, settings: Settings, now: datetime
) -> tuple[int, int, datetime | None]:
    """One more failure under `key` (none while it is locked): failures, lockouts, lock end."""
    window_start = now - timedelta(minutes=settings.login_failure_window_minutes)
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    insert = _upsert((await session.connection()).dialect.name)
    locked = table.c.locked_until.is_not(None) & (table.c.locked_until > now)
    stale = table.c.window_started_at < window_start
    statement = (
        insert(table)
        .values(key=key, failures=1, window_started_at=now, lockouts=0)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case(
                    (locked, table.c.failures), (stale, 1), else_=table.c.failures + 1
                ),
                "window_started_at": case(
                    (locked, table.c.window_started_at),
                    (stale, now),
                    else_=table.c.window_started_at,
                ),
            },
        )
        .returning(table.c.failures, table.c.lockouts, table.c.locked_until)
    )
    failures, lockouts, locked_until = (await session.exec(statement)).one()
    return failures, lockouts, locked_until


async def _start_lock(
    session: AsyncSession,
    source: Source,
    throttle: Throttle,
    lockouts: int,
    settings: Settings,
    now: datetime,
) -> Lock:
    until = now + timedelta(seconds=_lockout_seconds(lockouts + 1, settings))
    await session.exec(
        update(LoginThrottle)
        .where(col(LoginThrottle.key) == source.key(throttle))
        .values(failures=0, window_started_at=now, lockouts=lockouts + 1, locked_until=until)
    )
    return Lock(throttle, until, lockouts + 1, started=True)


async def _admit_one(
    session: AsyncSession, source: Source, throttle: Throttle, settings: Settings, now: datetime
) -> Lock | None:
    """Count the attempt under one key; the lock that stops it there, if any."""
    failures, lockouts, locked_until = await _count(session, source.key(throttle), settings, now)
    if locked_until is not None and locked_until > now:
        return Lock(throttle, locked_until, lockouts)
    if failures > _limit(throttle, settings):  # parallel attempts beyond the limit
        return await _start_lock(session, source, throttle, lockouts, settings, now)
    return None


async def admit(
    session: AsyncSession, source: Source, *, settings: Settings, now: datetime
) -> Admission:
    """Count an attempt before its check; say what refuses it, or delays it to two factors."""
    counted: list[Throttle] = []
    locks: list[Lock] = []
    first = (Throttle.DEVICE,) if source.device else (Throttle.ADDRESS, Throttle.ACCOUNT_ADDRESS)
    for throttle in first:
        lock = await _admit_one(session, source, throttle, settings, now)
        if lock is None:
            counted.append(throttle)
        else:
            locks.append(lock)
    started = tuple(lock for lock in locks if lock.started)
    if locks:
        # Refused unchecked: counted nowhere else, not even towards the account-wide delay.
        await give_back(session, source, counted)
        return Admission(refusal=max(locks, key=lambda lock: lock.until), started=started)
    if source.device:
        bypassed = await _locks_in_force(session, source, WITHOUT_DEVICE, now)
        return Admission(counted=tuple(counted), started=started, bypassed=tuple(bypassed))
    delay = await _admit_one(session, source, Throttle.ACCOUNT, settings, now)
    if delay is None:
        counted.append(Throttle.ACCOUNT)
    elif delay.started:
        started += (delay,)
    return Admission(counted=tuple(counted), delay=delay, started=started)


async def give_back(session: AsyncSession, source: Source, throttles: Iterable[Throttle]) -> None:
    """Take an attempt that was never checked, or that passed, off these counts."""
    chosen = frozenset(throttles)  # `in` on a generator would use it up at the first miss
    for throttle in ORDER:
        if throttle in chosen:
            await session.exec(
                update(LoginThrottle)
                .where(col(LoginThrottle.key) == source.key(throttle))
                .where(col(LoginThrottle.failures) > 0)
                .values(failures=col(LoginThrottle.failures) - 1)
            )


async def record_failure(
    session: AsyncSession,
    source: Source,
    admission: Admission,
    *,
    settings: Settings,
    now: datetime,
) -> tuple[Lock, ...]:
    """A counted attempt failed its check: start the locks whose limits it reached."""
    started: list[Lock] = []
    for throttle in ORDER:
        if throttle not in admission.counted:
            continue
        row = (
            await session.exec(
                select(LoginThrottle)
                .where(col(LoginThrottle.key) == source.key(throttle))
                .with_for_update()
            )
        ).first()
        if row is None or (row.locked_until is not None and row.locked_until > now):
            continue
        if row.failures >= _limit(throttle, settings):
            started.append(
                await _start_lock(session, source, throttle, row.lockouts, settings, now)
            )
    return tuple(started)


async def record_success(session: AsyncSession, source: Source, admission: Admission) -> None:
    """A checked attempt passed: its count at this address (or device) ends, the rest give back.

    The account-wide count is not cleared: an owner signing in with two factors, or from a
    known device, does not reopen password guessing from everywhere else.
    """
    await give_back(session, source, (t for t in admission.counted if t is Throttle.ADDRESS))
    place = Throttle.DEVICE if source.device else Throttle.ACCOUNT_ADDRESS
    await session.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == source.key(place)))
    await give_back(session, source, (t for t in admission.counted if t is Throttle.ACCOUNT))


async def count_failure(
    session: AsyncSession, source: Source, *, settings: Settings, now: datetime
) -> tuple[Lock, ...]:
    """Count a failed check made outside sign-in (MFA confirmation, password change)."""
    admission = await admit(session, source, settings=settings, now=now)
    started = await record_failure(session, source, admission, settings=settings, now=now)
    return admission.started + started


async def _locks_in_force(
    session: AsyncSession, source: Source, throttles: Iterable[Throttle], now: datetime
) -> list[Lock]:
    """The locks that hold now under these keys, read without counting anything."""
    keys = {source.key(throttle): throttle for throttle in throttles}
    rows = (
        await session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(list(keys))))
    ).all()
    return [
        Lock(keys[row.key], row.locked_until, row.lockouts)
        for row in rows
        if row.locked_until is not None and row.locked_until > now
    ]


async def lock_in_force(
    session: AsyncSession, source: Source, *, now: datetime, second_factor: bool
) -> Lock | None:
    """The lock that stops a password check now; the account-wide delay spares two factors."""
    locks = await _locks_in_force(session, source, WITHOUT_DEVICE, now)
    stopping = [lock for lock in locks if not (second_factor and lock.throttle is Throttle.ACCOUNT)]
    return max(stopping, key=lambda lock: lock.until) if stopping else None


def too_many(lock: Lock, now: datetime) -> TooManyRequestsError:
    """The same answer whichever lock it is, so it tells nothing about the account."""
    return TooManyRequestsError(LOCKED, retry_after=lock.retry_after(now))


def record_started(
    session: AsyncSession,
    context: AuditContext,
    source: Source,
    locks: Iterable[Lock],
    *,
    user_id: object | None,
) -> None:
    """Audit each lock this attempt started, with what it locks and until when."""
    for lock in locks:
        details: dict[str, object] = {
            "throttle": lock.throttle.value,
            "until": lock.until.isoformat(),
            "lockouts": lock.lockouts,
        }
        if lock.throttle is not Throttle.ACCOUNT:
            details["address"] = source.address
        if lock.throttle is not Throttle.ADDRESS:
            details["email"] = source.email
        audit.record(
            session,
            context,
            "session.lock",
            outcome=Outcome.DENIED,
            object_type="user" if user_id is not None else None,
            object_id=user_id,
            details=details,
        )
