"""Identity rules: accounts, sign-in with throttling and TOTP, sessions, enrolment."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import email_validator
from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.core.changes import bump_grants
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database, on_after_rollback
from ctcp.core.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from ctcp.identity import mfa, throttle, tokens
from ctcp.identity.models import RecoveryCode, User, UserRole, UserSession
from ctcp.identity.passwords import PasswordHasher, password_problems
from ctcp.identity.roles import Role, role_fits, separation_of_duties
from ctcp.organizations.models import Organization

BAD_CREDENTIALS = "The e-mail address or the password is not correct."
OTP_REQUIRED = "A valid one-time code from your authenticator is required."
# pydantic's wording for an address it refuses: the API said this before one rule existed.
INVALID_EMAIL = "value is not a valid email address: {reason}"
# A session's last-seen time is written at most this often (one write per minute, not per request).
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class Account:
    user: User
    organization: Organization
    roles: frozenset[str]


@dataclass(frozen=True)
class Principal:
    """A signed-in person, resolved from their session cookie.

    `user` and `organization` are transient copies, shared by the requests the
    principal cache serves: read them, never add them to a session.
    """

    user: User
    organization: Organization
    roles: frozenset[str]
    session_id: int
    session_token: str
    mfa_verified: bool
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    account: Account
    token: str
    mfa_verified: bool
    device_cookie: str  # a new device cookie for this browser and account


def normalise_email(email: str) -> str:
    """An address as stored and as looked up: accounts are found whatever the case typed."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why `email` cannot be a new account's address, or None: email-validator's syntax
    rules, without a DNS lookup (the platform may run on a closed network). The reserved
    test and example domains (.test, .example) are accepted for trial installations;
    names that cannot be a mail domain (.localhost, .invalid, .local, a bare host) are
    refused. Every path that creates an account asks here; sign-in never does."""
    try:
        email_validator.validate_email(email, check_deliverability=False, test_environment=True)
    except email_validator.EmailNotValidError as error:
        return str(error)
    return None


def check_email(email: str) -> None:
    problem = email_problem(email)
    if problem is not None:
        raise ValidationError(INVALID_EMAIL.format(reason=problem), loc=["body", "email"])


def check_password(password: str, *, email: str) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise ValidationError("The password " + "; ".join(problems) + ".", loc=["body", "password"])


async def load_account(
    session: AsyncSession, *, email: str | None = None, user_id: uuid.UUID | None = None
) -> Account | None:
    """A user with their organization and roles, in one round trip."""
    statement = (
        select(User, Organization, UserRole.role)
        .join(Organization, col(Organization.id) == col(User.organization_id))
        .outerjoin(UserRole, col(UserRole.user_id) == col(User.id))
    )
    if email is not None:
        statement = statement.where(col(User.email) == normalise_email(email))
    else:
        statement = statement.where(col(User.id) == user_id)
    rows = (await session.exec(statement)).all()
    if not rows:
        return None
    user, organization, _ = rows[0]
    return Account(user, organization, frozenset(role for _, _, role in rows if role))


def _check_roles(
    session: AsyncSession,
    context: AuditContext,
    action: str,
    roles: Iterable[str],
    organization: Organization,
    *,
    admin_may_hold_content_roles: bool,
) -> frozenset[str]:
    """The roles, if each fits the organization and together they keep duties apart
    (422 otherwise; a forbidden combination is audited as a denial of `action`)."""
    chosen = frozenset(roles)
    for role in sorted(chosen):
        if role not in Role.__members__.values():
            raise ValidationError(f"Unknown role {role!r}.", loc=["body", "roles"])
        if not role_fits(role, organization.kind):
            raise ValidationError(
                f"The role {role!r} does not fit an organization of kind {organization.kind!r}.",
                loc=["body", "roles"],
            )
    conflict = separation_of_duties(
        chosen, admin_may_hold_content_roles=admin_may_hold_content_roles
    )
    if conflict is not None:
        audit.record(
            session,
            context,
            action,
            outcome=Outcome.DENIED,
            object_type="user",
            details={"roles": sorted(chosen), "reason": conflict},
        )
        raise ValidationError(conflict, loc=["body", "roles"])
    return chosen


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    organization: Organization,
    password: str,
    roles: Iterable[str] = (),
    hasher: PasswordHasher,
    context: AuditContext,
    admin_may_hold_content_roles: bool = False,
) -> Account:
    """Create an account with a valid address, a password that passes the rules and roles
    that fit."""
    email = normalise_email(email)
    check_email(email)
    check_password(password, email=email)
    chosen = _check_roles(
        session,
        context,
        "user.create",
        roles,
        organization,
        admin_may_hold_content_roles=admin_may_hold_content_roles,
    )
    existing = await session.exec(select(User.id).where(col(User.email) == email))
    if existing.first() is not None:
        raise ConflictError("A user with this e-mail address already exists.")
    user = User(
        email=email,
        name=name.strip(),
        organization_id=organization.id,
        password_hash=await hasher.hash(password),
    )
    session.add(user)
    await session.flush()
    for role in sorted(chosen):
        session.add(UserRole(user_id=user.id, role=role, granted_by=context.user_id))
    await session.flush()
    audit.record(
        session,
        context,
        "user.create",
        object_type="user",
        object_id=user.id,
        details={"email": email, "organization": organization.code, "roles": sorted(chosen)},
    )
    return Account(user, organization, chosen)


async def _ensure_another_admin(session: AsyncSession, user_id: uuid.UUID) -> None:
    """409 unless an active platform_admin other than `user_id` remains.

    The admins' rows are locked (PostgreSQL; SQLite's write lock is already held), so two
    admins removing each other at once cannot both succeed.
    """
    admins = (
        await session.exec(
            select(User.id)
            .join(UserRole, col(UserRole.user_id) == col(User.id))
            .where(col(UserRole.role) == Role.PLATFORM_ADMIN.value, col(User.active))
            .with_for_update()
        )
    ).all()
    if not [admin for admin in admins if admin != user_id]:
        raise ConflictError("This is the last active platform administrator.")


async def set_roles(
    session: AsyncSession,
    *,
    account: Account,
    roles: Iterable[str],
    context: AuditContext,
    admin_may_hold_content_roles: bool = False,
) -> Account:
    """Replace a user's roles; nobody may change their own; the last admin stays one."""
    if context.user_id == account.user.id:
        raise ForbiddenError("You cannot change your own roles.")
    chosen = _check_roles(
        session,
        context,
        "user.roles.set",
        roles,
        account.organization,
        admin_may_hold_content_roles=admin_may_hold_content_roles,
    )
    if (
        Role.PLATFORM_ADMIN.value in account.roles
        and Role.PLATFORM_ADMIN.value not in chosen
        and account.user.active
    ):
        await _ensure_another_admin(session, account.user.id)
    await session.exec(delete(UserRole).where(col(UserRole.user_id) == account.user.id))
    await bump_grants(session)
    for role in sorted(chosen):
        session.add(UserRole(user_id=account.user.id, role=role, granted_by=context.user_id))
    await session.flush()
    audit.record(
        session,
        context,
        "user.roles.set",
        object_type="user",
        object_id=account.user.id,
        details={"before": sorted(account.roles), "after": sorted(chosen)},
    )
    return Account(account.user, account.organization, chosen)


async def _is_admin(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.exec(
        select(UserRole.role).where(
            col(UserRole.user_id) == user_id, col(UserRole.role) == Role.PLATFORM_ADMIN.value
        )
    )
    return found.first() is not None


async def end_all_sessions(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))
    await bump_grants(session)


async def set_active(
    session: AsyncSession, *, user: User, active: bool, context: AuditContext
) -> None:
    """Deactivate (ending every session at once) or reactivate an account."""
    if user.active == active:
        return
    if not active:
        if context.user_id == user.id:
            raise ForbiddenError("You cannot deactivate your own account.")
        if await _is_admin(session, user.id):
            await _ensure_another_admin(session, user.id)
    user.active = active
    session.add(user)
    if not active:
        await end_all_sessions(session, user.id)
    await session.flush()
    audit.record(
        session,
        context,
        "user.activate" if active else "user.deactivate",
        object_type="user",
        object_id=user.id,
    )


# --- sign-in --------------------------------------------------------------------------------


async def _create_session(
    session: AsyncSession,
    *,
    user: User,
    mfa_verified: bool,
    settings: Settings,
    context: AuditContext,
) -> str:
    now = clock.now()
    token = tokens.new_session_token()
    session.add(
        UserSession(
            token_hash=tokens.token_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
            mfa_verified=mfa_verified,
            ip=(context.ip or "")[:64] or None,
            user_agent=(context.user_agent or "")[:400] or None,
        )
    )
    await session.flush()
    return token


async def _consume_second_factor(
    session: AsyncSession, *, user: User, otp: str, settings: Settings, now: datetime
) -> str | None:
    """Accept a TOTP code (each step once) or an unused recovery code; say which."""
    secret = mfa.decrypt_secret(user.totp_secret_encrypted or "", settings.secret())
    if secret is not None:
        step = mfa.matching_step(secret, otp, at=now, after_step=user.totp_last_step)
        if step is not None:
            # Conditional update: of two concurrent uses of one code, only one wins.
            result = await session.exec(
                update(User)
                .where(col(User.id) == user.id)
                .where((col(User.totp_last_step).is_(None)) | (col(User.totp_last_step) < step))
                .values(totp_last_step=step)
            )
            if result.rowcount == 1:
                return "totp"
            return None
    result = await session.exec(
        update(RecoveryCode)
        .where(col(RecoveryCode.user_id) == user.id)
        .where(col(RecoveryCode.code_hash) == mfa.recovery_code_hash(otp))
        .where(col(RecoveryCode.used_at).is_(None))
        .values(used_at=now)
    )
    return "recovery_code" if result.rowcount == 1 else None


@dataclass(frozen=True)
class _Admitted:
    """An attempt the throttles let through, counted before its check, and the account its
    address names (None: no such account)."""

    account: Account | None
    admission: throttle.Admission


@dataclass(frozen=True)
class _Credentials:
    """A password that matched an active account of an active organization."""

    account: Account
    new_hash: str | None  # the password hashed with today's parameters, to store


@dataclass(frozen=True)
class _SecondFactor:
    """The second-factor check: the factor a code proved ("totp" or "recovery_code"), and
    whether one was needed (enrolled, or under the account-wide delay)."""

    used: str | None
    required: bool

    @property
    def passed(self) -> bool:
        return self.used is not None or not self.required


async def _admit(
    database: Database,
    source: throttle.Source,
    *,
    otp: str | None,
    settings: Settings,
    context: AuditContext,
    now: datetime,
) -> _Admitted:
    """Count the attempt before any check; 429 while a lock (or, with no code, the delay) holds."""
    async with database.transaction() as session:
        admission = await throttle.admit(session, source, settings=settings, now=now)
        account = await load_account(session, email=source.email)
        user_id = account.user.id if account else None
        throttle.record_started(session, context, source, admission.started, user_id=user_id)
        # Under the account-wide delay only two factors pass: without a code, nothing to check.
        stop = admission.refusal or (admission.delay if not otp else None)
        if stop is not None:
            await throttle.give_back(session, source, admission.counted)
            _record_throttled(session, context, source, stop, user_id=user_id, now=now)
    if stop is not None:
        raise throttle.too_many(stop, now)
    return _Admitted(account, admission)


async def _check_credentials(
    database: Database,
    source: throttle.Source,
    admitted: _Admitted,
    *,
    password: str,
    hasher: PasswordHasher,
    settings: Settings,
    context: AuditContext,
    now: datetime,
) -> _Credentials:
    """Verify the password outside any transaction (an unknown address against a dummy hash,
    in the same time); a failure is counted and audited in a transaction of its own."""
    account, admission = admitted.account, admitted.admission
    valid, new_hash = await hasher.verify(password, account.user.password_hash if account else None)
    if valid and account is not None and account.user.active and account.organization.active:
        return _Credentials(account, new_hash)
    reason = "unknown_email" if account is None else "bad_password" if not valid else "inactive"
    async with database.transaction() as session:
        await _fail(
            session,
            source,
            admission,
            reason=reason,
            user_id=account.user.id if account else None,
            settings=settings,
            context=context,
            now=now,
        )
    raise _refusal(admission, now, UnauthorizedError(BAD_CREDENTIALS))


async def _end_previous_session(session: AsyncSession, token: str | None) -> None:
    """A new id at every sign-in: the session the browser had is ended."""
    if not token:
        return
    ended = await session.exec(
        delete(UserSession).where(col(UserSession.token_hash) == tokens.token_hash(token))
    )
    if ended.rowcount:
        await bump_grants(session)


async def _check_second_factor(
    session: AsyncSession,
    *,
    user: User,
    otp: str | None,
    admission: throttle.Admission,
    settings: Settings,
    now: datetime,
) -> _SecondFactor:
    """Consume the code given when the account has enrolled; under the account-wide delay
    a second factor is needed even without enrolment (and none can be proved)."""
    used: str | None = None
    if user.mfa_enabled_at is not None and otp:
        used = await _consume_second_factor(session, user=user, otp=otp, settings=settings, now=now)
    required = user.mfa_enabled_at is not None or admission.delay is not None
    return _SecondFactor(used, required)


async def _refuse_second_factor(
    session: AsyncSession,
    source: throttle.Source,
    admission: throttle.Admission,
    *,
    user_id: uuid.UUID,
    otp: str | None,
    settings: Settings,
    context: AuditContext,
    now: datetime,
) -> None:
    """A wrong code counts as a failed check; a missing one is only audited."""
    if otp:
        await _fail(
            session,
            source,
            admission,
            reason="otp_invalid",
            user_id=user_id,
            settings=settings,
            context=context,
            now=now,
        )
        return
    audit.record(
        session,
        context,
        "session.create",
        outcome=Outcome.DENIED,
        object_type="user",
        object_id=user_id,
        details={"reason": "otp_missing"},
    )


def _record_throttled(
    session: AsyncSession,
    context: AuditContext,
    source: throttle.Source,
    lock: throttle.Lock,
    *,
    user_id: uuid.UUID | None,
    now: datetime,
    failed: str | None = None,
) -> None:
    """Audit a sign-in refused by a throttle: which, for how long, what failed if checked."""
    details: dict[str, object] = {
        "email": source.email,
        "reason": "locked",
        "throttle": lock.throttle.value,
        "retry_after": lock.retry_after(now),
    }
    if failed is not None:
        details["failed"] = failed
    _record_refused_sign_in(session, context, source, user_id, details)


def _record_refused_sign_in(
    session: AsyncSession,
    context: AuditContext,
    source: throttle.Source,
    user_id: uuid.UUID | None,
    details: dict[str, object],
) -> None:
    """The denied `session.create` event of a sign-in, saying whether a device cookie came."""
    if source.device:
        details["device"] = True
    audit.record(
        session,
        context,
        "session.create",
        outcome=Outcome.DENIED,
        object_type="user",
        object_id=user_id,
        details=details,
    )


async def _fail(
    session: AsyncSession,
    source: throttle.Source,
    admission: throttle.Admission,
    *,
    reason: str,
    user_id: uuid.UUID | None,
    settings: Settings,
    context: AuditContext,
    now: datetime,
) -> None:
    """Count a failed check (locks it starts audited) and audit the refusal."""
    started = await throttle.record_failure(session, source, admission, settings=settings, now=now)
    throttle.record_started(session, context, source, started, user_id=user_id)
    if admission.delay is not None:
        _record_throttled(
            session, context, source, admission.delay, user_id=user_id, now=now, failed=reason
        )
        return
    _record_refused_sign_in(
        session, context, source, user_id, {"email": source.email, "reason": reason}
    )


def _refusal(admission: throttle.Admission, now: datetime, error: Exception) -> Exception:
    """The answer to a failed check: 429 under the account-wide delay, whatever failed."""
    return throttle.too_many(admission.delay, now) if admission.delay is not None else error


async def _open_session(
    session: AsyncSession,
    *,
    user: User,
    second_factor: str | None,
    new_hash: str | None,
    admission: throttle.Admission,
    device: bool,
    settings: Settings,
    context: AuditContext,
) -> str:
    """The checks passed: store an upgraded hash, open the session, audit the sign-in."""
    if new_hash is not None:
        user.password_hash = new_hash
        await session.exec(
            update(User).where(col(User.id) == user.id).values(password_hash=new_hash)
        )
    token = await _create_session(
        session,
        user=user,
        mfa_verified=second_factor is not None,
        settings=settings,
        context=context,
    )
    _record_signed_in(
        session,
        context,
        user_id=user.id,
        second_factor=second_factor,
        rehashed=bool(new_hash),
        device=device,
        bypassed=admission.bypassed,
    )
    return token


def _record_signed_in(
    session: AsyncSession,
    context: AuditContext,
    *,
    user_id: uuid.UUID,
    second_factor: str | None,
    rehashed: bool,
    device: bool,
    bypassed: tuple[throttle.Lock, ...],
) -> None:
    """The allowed `session.create` event; a sign-in through a device cookie says so, with
    the locks its cookie let it pass."""
    details: dict[str, object] = {"second_factor": second_factor, "rehashed": rehashed}
    if device:
        details |= {"device": True, "bypassed": sorted(lock.throttle.value for lock in bypassed)}
    audit.record(
        session, context, "session.create", object_type="user", object_id=user_id, details=details
    )


async def sign_in(
    database: Database,
    *,
    email: str,
    password: str,
    otp: str | None,
    previous_token: str | None,
    device_cookie: str | None = None,
    hasher: PasswordHasher,
    settings: Settings,
    context: AuditContext,
) -> SignedIn:
    """Check password (and TOTP when enrolled) under the sign-in throttles; open a session.

    Failures are committed in their own short transactions, so they count even though
    the request ends in an error; the password is verified outside any transaction.
    A device cookie signed for another account, with another key or too long ago, is
    ignored: the attempt is throttled as one from an unknown browser.
    """
    email = normalise_email(email)
    now = clock.now()
    key = settings.secret()
    max_age = timedelta(days=settings.device_cookie_days)
    device = tokens.device_nonce(device_cookie, email, key, now=now, max_age=max_age)
    source = throttle.Source.of(email, context, device)
    admitted = await _admit(database, source, otp=otp, settings=settings, context=context, now=now)
    admission = admitted.admission
    credentials = await _check_credentials(
        database,
        source,
        admitted,
        password=password,
        hasher=hasher,
        settings=settings,
        context=context,
        now=now,
    )
    user = credentials.account.user
    actor = context.as_user(user.id, credentials.account.organization.code)
    token: str | None = None
    async with database.transaction() as session:
        await _end_previous_session(session, previous_token)
        second_factor = await _check_second_factor(
            session, user=user, otp=otp, admission=admission, settings=settings, now=now
        )
        if second_factor.passed:
            # This attempt was counted before its check and passed it: never refused now,
            # so a refusal can never tell a guesser that the password was right.
            await throttle.record_success(session, source, admission)
            token = await _open_session(
                session,
                user=user,
                second_factor=second_factor.used,
                new_hash=credentials.new_hash,
                admission=admission,
                device=device is not None,
                settings=settings,
                context=actor,
            )
        else:
            await _refuse_second_factor(
                session,
                source,
                admission,
                user_id=user.id,
                otp=otp,
                settings=settings,
                context=actor,
                now=now,
            )
    if token is None:
        raise _refusal(
            admission, now, UnauthorizedError(OTP_REQUIRED, extra={"mfa_required": True})
        )
    return SignedIn(
        credentials.account,
        token,
        mfa_verified=second_factor.used is not None,
        device_cookie=tokens.device_cookie_for(email, key, now=now),
    )


async def resolve_session(
    session: AsyncSession, *, token: str, settings: Settings
) -> tuple[Principal | None, str]:
    """The principal behind a session cookie, or None and why ("invalid" or "expired")."""
    statement = (
        select(UserSession, User, Organization, UserRole.role)
        .join(User, col(User.id) == col(UserSession.user_id))
        .join(Organization, col(Organization.id) == col(User.organization_id))
        .outerjoin(UserRole, col(UserRole.user_id) == col(User.id))
        .where(col(UserSession.token_hash) == tokens.token_hash(token))
    )
    rows = (await session.exec(statement)).all()
    if not rows:
        return None, "invalid"
    user_session, user, organization, _ = rows[0]
    if not user.active or not organization.active:
        return None, "invalid"
    now = clock.now()
    idle_limit = user_session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if now >= user_session.expires_at or now >= idle_limit:
        return None, "expired"
    if now - user_session.last_seen_at >= TOUCH_INTERVAL:
        await session.exec(
            update(UserSession)
            .where(col(UserSession.id) == user_session.id)
            .values(last_seen_at=now)
        )
    assert user_session.id is not None
    return Principal(
        user=User(**user.model_dump()),
        organization=Organization(**organization.model_dump()),
        roles=frozenset(role for *_, role in rows if role),
        session_id=user_session.id,
        session_token=token,
        mfa_verified=user_session.mfa_verified,
        expires_at=user_session.expires_at,
    ), "ok"


async def sign_out(session: AsyncSession, *, principal: Principal, context: AuditContext) -> None:
    await session.exec(delete(UserSession).where(col(UserSession.id) == principal.session_id))
    await bump_grants(session)
    audit.record(
        session, context, "session.delete", object_type="user", object_id=principal.user.id
    )


async def change_password(
    session: AsyncSession,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
    hasher: PasswordHasher,
    settings: Settings,
    context: AuditContext,
) -> str:
    """Change one's own password: every session ends, and the caller gets a fresh one.

    Wrong current passwords count towards the sign-in throttle, so a stolen session
    cannot be used to guess the password.
    """
    source = throttle.Source.of(principal.user.email, context)
    now = clock.now()
    lock = await throttle.lock_in_force(
        session, source, now=now, second_factor=principal.mfa_verified
    )
    if lock is not None:
        _record_throttled(session, context, source, lock, user_id=principal.user.id, now=now)
        raise throttle.too_many(lock, now)
    valid, _ = await hasher.verify(current_password, principal.user.password_hash)
    if not valid:
        user_id = principal.user.id

        async def count_failure(own: AsyncSession) -> None:
            started = await throttle.count_failure(own, source, settings=settings, now=now)
            throttle.record_started(own, context, source, started, user_id=user_id)

        on_after_rollback(session, count_failure)
        audit.record(
            session,
            context,
            "user.password.change",
            outcome=Outcome.DENIED,
            object_type="user",
            object_id=principal.user.id,
            details={"reason": "bad_password"},
        )
        raise ForbiddenError("The current password is not correct.")
    check_password(new_password, email=principal.user.email)
    await session.exec(
        update(User)
        .where(col(User.id) == principal.user.id)
        .values(password_hash=await hasher.hash(new_password), password_changed_at=clock.now())
    )
    await end_all_sessions(session, principal.user.id)
    token = await _create_session(
        session,
        user=principal.user,
        mfa_verified=principal.mfa_verified,
        settings=settings,
        context=context,
    )
    audit.record(
        session, context, "user.password.change", object_type="user", object_id=principal.user.id
    )
    return token


# --- multi-factor enrolment -----------------------------------------------------------------


async def begin_mfa_enrolment(
    session: AsyncSession, *, principal: Principal, settings: Settings, context: AuditContext
) -> tuple[str, str]:
    """A new TOTP secret, pending until confirmed with a first code."""
    if principal.user.mfa_enabled_at is not None:
        raise ConflictError("Multi-factor authentication is already enabled.")
    secret = mfa.new_secret()
    await session.exec(
        update(User)
        .where(col(User.id) == principal.user.id)
        .values(
            totp_secret_encrypted=mfa.encrypt_secret(secret, settings.secret()), totp_last_step=None
        )
    )
    await bump_grants(session)  # cached copies of this user hold the old secret
    audit.record(
        session, context, "mfa.enrol.begin", object_type="user", object_id=principal.user.id
    )
    uri = mfa.provisioning_uri(secret, email=principal.user.email, issuer=settings.mfa_issuer)
    return secret, uri


async def confirm_mfa_enrolment(
    session: AsyncSession,
    *,
    principal: Principal,
    otp: str,
    settings: Settings,
    context: AuditContext,
) -> list[str]:
    """Enable TOTP with a first valid code; returns the one-time recovery codes."""
    user = principal.user
    if user.mfa_enabled_at is not None:
        raise ConflictError("Multi-factor authentication is already enabled.")
    secret = mfa.decrypt_secret(user.totp_secret_encrypted or "", settings.secret())
    if secret is None:
        raise NotFoundError("No enrolment is pending: start with POST /api/v1/me/mfa.")
    now = clock.now()
    step = mfa.matching_step(secret, otp, at=now, after_step=user.totp_last_step)
    if step is None:
        source = throttle.Source.of(user.email, context)  # now: the rollback expires ORM objects
        user_id = user.id

        async def count_failure(own: AsyncSession) -> None:
            started = await throttle.count_failure(own, source, settings=settings, now=now)
            throttle.record_started(own, context, source, started, user_id=user_id)

        # Failed codes count towards the sign-in throttle, even though this request fails.
        on_after_rollback(session, count_failure)
        audit.record(
            session,
            context,
            "mfa.enrol.confirm",
            outcome=Outcome.DENIED,
            object_type="user",
            object_id=user.id,
            details={"reason": "otp_invalid"},
        )
        raise ValidationError("The code is not valid.", loc=["body", "otp"])
    await session.exec(
        update(User).where(col(User.id) == user.id).values(mfa_enabled_at=now, totp_last_step=step)
    )
    await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = mfa.new_recovery_codes()
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=mfa.recovery_code_hash(code)))
    # Sessions opened before the second factor existed end; this one completes it.
    await session.exec(
        delete(UserSession)
        .where(col(UserSession.user_id) == user.id)
        .where(col(UserSession.id) != principal.session_id)
    )
    await session.exec(
        update(UserSession)
        .where(col(UserSession.id) == principal.session_id)
        .values(mfa_verified=True)
    )
    await session.flush()
    await bump_grants(session)
    audit.record(session, context, "mfa.enrol.confirm", object_type="user", object_id=user.id)
    return codes
