"""Contact points: who reads and writes which entry, the versions of each, their currency.

Every read is audited (these are people's work contacts), every write is audited with
what it changed and kept as a version, and an edit based on a version that is no longer
current is refused (409), never applied over someone else's change.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, false, func, literal, or_, text, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.guard import Access, decide_stored
from ctcp.authz.listing import audited_page
from ctcp.authz.scopes import DataScope
from ctcp.consent import markings
from ctcp.contacts.exchange import ImportProblem, ImportRow, read_csv
from ctcp.contacts.models import (
    AUDIENCES_FOR_READER,
    ContactAudience,
    ContactChange,
    ContactKind,
    ContactPoint,
    ContactPointVersion,
)
from ctcp.contacts.schemas import (
    REMIND_DAYS_BEFORE_STALE,
    STALE_AFTER_DAYS,
    ContactActor,
    ContactPointContent,
    ContactPointCreate,
    ContactPointRead,
    ContactPointUpdate,
    ContactPointVersionRead,
    KindCoverage,
    StateCoverage,
    international,
)
from ctcp.core import feed
from ctcp.core.clock import clock
from ctcp.core.db import Database
from ctcp.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest
from ctcp.identity import service as identity
from ctcp.identity.models import User
from ctcp.notifications import service as notifications
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.reports import service as reports
from ctcp.reports.schemas import StateRef

RESOURCE = "contact"
WORD = re.compile(r"\w+", re.UNICODE)
MAX_SEARCH_WORDS = 8
# The most entries one export carries: twice the whole directory if every Member State
# kept two entries of every kind, a bound on what one request makes the server build and
# on the ids its audit event names. Beyond it the export is refused, never cut short.
MAX_EXPORT = 5_000
# The fields of an entry's content, in the order the CSV export and import use.
CONTENT_FIELDS = tuple(ContactPointContent.model_fields)


class ContactSort(StrEnum):
    UPDATED = "updated"  # most recently changed first (the default)
    STATE = "state"  # by State code, then kind and authority


@dataclass(frozen=True)
class ContactFilters:
    """What a reader narrows the directory to; None filters nothing."""

    state: str | None = None  # a State's code, in any case
    kind: ContactKind | None = None
    language: str | None = None  # an ISO 639-1 code
    q: str | None = None  # words searched in authority names and notes
    stale: bool | None = None
    audience: ContactAudience | None = None
    sort: ContactSort = ContactSort.UPDATED


@dataclass(frozen=True)
class Editor:
    """Who writes: the audit context, and the person and organization a version names
    (None for `ctcp contacts import`)."""

    audit: AuditContext
    user_id: uuid.UUID | None
    organization_id: uuid.UUID | None

    @classmethod
    def of(cls, access: Access) -> "Editor":
        return cls(access.audit, access.subject.user_id, access.organization.id)


def stale_before(now: datetime) -> datetime:
    """Entries confirmed before this are stale."""
    return now - timedelta(days=STALE_AFTER_DAYS)


def is_stale(entry: ContactPoint, now: datetime) -> bool:
    return entry.confirmed_at < stale_before(now)


def audiences_read_by(organization: Organization) -> tuple[str, ...]:
    """The audiences whose entries an organization reads through the `consented` scope."""
    return AUDIENCES_FOR_READER.get(organization.kind, ())


def contact_points_in_scope(access: Access) -> SelectOfScalar[ContactPoint]:
    """The one place a contact-point scope becomes SQL, for every action on entries: the
    caller's own State's (`own_state`), those whose audience includes the caller's kind
    of organization (`consented`), or all; retired entries never."""
    statement = select(ContactPoint).where(col(ContactPoint.retired_at).is_(None))
    if DataScope.ALL in access.scopes:
        return statement
    allowed = []
    if DataScope.OWN_STATE in access.scopes:
        allowed.append(col(ContactPoint.state_id) == access.organization.id)
    audiences = audiences_read_by(access.organization)
    if DataScope.CONSENTED in access.scopes and audiences:
        allowed.append(col(ContactPoint.audience).in_(audiences))
    return statement.where(or_(*allowed)) if allowed else statement.where(false())


async def get_contact_point(
    session: AsyncSession, access: Access, contact_id: uuid.UUID, *, for_update: bool = False
) -> ContactPoint:
    """An entry inside the caller's scope; outside it, 404 as if it did not exist."""
    statement = contact_points_in_scope(access).where(col(ContactPoint.id) == contact_id)
    if for_update:
        statement = statement.with_for_update()
    entry = (await session.exec(statement)).first()
    if entry is None:
        raise NotFoundError("No such contact point.")
    return entry


def search_condition(dialect: str, q: str) -> Any:
    """Authority names and notes holding every word of `q` (each as a word's start).

    PostgreSQL's full-text search (the GIN index of the migration) or SQLite's FTS5
    index: words only reach either, never the query syntax of the engine.
    """
    words = [word.lower() for word in WORD.findall(q)][:MAX_SEARCH_WORDS]
    if not words:
        return false()
    if dialect == "postgresql":
        query = " & ".join(f"{word}:*" for word in words)
        # The very expression of the GIN index (the migration), constants inline, so the
        # planner can use the index.
        return text(
            "to_tsvector('simple', contact_points.authority || ' ' || "
            "coalesce(contact_points.notes, '')) @@ to_tsquery('simple', :query)"
        ).bindparams(query=query)
    match = " ".join(f'"{word}"*' for word in words)
    return text(
        "contact_points.id IN "
        "(SELECT id FROM contact_points_fts WHERE contact_points_fts MATCH :match)"
    ).bindparams(match=match)


async def _filtered(
    session: AsyncSession, access: Access, filters: ContactFilters
) -> SelectOfScalar[ContactPoint]:
    """The scoped statement with the reader's filters; 403 (audited) for an audience filter
    beyond what the caller may ever read, 422 for a State that is not one."""
    statement = contact_points_in_scope(access)
    if filters.state is not None:
        state = await organizations.organization_by_code(session, filters.state.upper())
        if state is None or state.kind != OrganizationKind.MEMBER_STATE.value:
            raise ValidationError(
                f"{filters.state!r} is not a Member State on the platform.",
                loc=["query", "state"],
            )
        statement = statement.where(col(ContactPoint.state_id) == state.id)
    if filters.audience is not None:
        reachable = (
            DataScope.ALL in access.scopes
            or DataScope.OWN_STATE in access.scopes
            or filters.audience.value in audiences_read_by(access.organization)
        )
        if not reachable:
            raise ForbiddenError(
                f"Entries of audience {filters.audience.value!r} are not yours to list."
            )
        statement = statement.where(col(ContactPoint.audience) == filters.audience.value)
    if filters.kind is not None:
        statement = statement.where(col(ContactPoint.kind) == filters.kind.value)
    if filters.language is not None:
        code = filters.language.strip().lower()
        statement = statement.where(
            (literal(",") + col(ContactPoint.languages) + literal(",")).like(f"%,{code},%")
        )
    if filters.stale is not None:
        cutoff = stale_before(clock.now())
        statement = statement.where(
            col(ContactPoint.confirmed_at) < cutoff
            if filters.stale
            else col(ContactPoint.confirmed_at) >= cutoff
        )
    if filters.q is not None and filters.q.strip():
        dialect = (await session.connection()).dialect.name
        statement = statement.where(search_condition(dialect, filters.q))
    return statement


async def list_contact_points(
    session: AsyncSession, access: Access, filters: ContactFilters, page: PageRequest
) -> Page[ContactPointRead]:
    """One page of the entries the caller may read, audited as `contact.list` with the ids."""
    statement = await _filtered(session, access, filters)
    if filters.sort is ContactSort.STATE:
        codes = await _state_codes(session)
        statement = statement.join(Organization, col(Organization.id) == col(ContactPoint.state_id))
        return await audited_page(
            session,
            access,
            statement,
            order=[Organization.code, ContactPoint.kind, ContactPoint.id],
            key=lambda entry: [codes[entry.state_id], entry.kind, entry.id],
            ascending=True,
            page=page,
            read_models=read_models,
        )
    return await audited_page(
        session,
        access,
        statement,
        order=[ContactPoint.updated_at, ContactPoint.id],
        page=page,
        read_models=read_models,
    )


async def export_contact_points(
    session: AsyncSession, access: Access, filters: ContactFilters, *, format: str
) -> list[ContactPointRead]:
    """Every entry the caller may list under `filters`, by State, kind and authority,
    audited as `contact.export` with the format and the ids."""
    statement = (await _filtered(session, access, filters)).join(
        Organization, col(Organization.id) == col(ContactPoint.state_id)
    )
    entries = (
        await session.exec(
            statement.order_by(
                col(Organization.code),
                col(ContactPoint.kind),
                col(ContactPoint.authority),
                col(ContactPoint.id),
            ).limit(MAX_EXPORT + 1)
        )
    ).all()
    if len(entries) > MAX_EXPORT:
        raise ValidationError(
            f"More than {MAX_EXPORT} entries match: narrow the export by State, kind or language.",
            loc=["query"],
        )
    audit.record(
        session,
        access.audit,
        "contact.export",
        object_type=RESOURCE,
        details={"format": format, "count": len(entries), "ids": [str(e.id) for e in entries]},
        read=True,
    )
    return await read_models(session, entries)


async def read_contact_point(
    session: AsyncSession, access: Access, contact_id: uuid.UUID
) -> ContactPointRead:
    """An entry inside the caller's scope (404 outside), audited as `contact.read`."""
    entry = await get_contact_point(session, access, contact_id)
    audit.record(
        session, access.audit, "contact.read", object_type=RESOURCE, object_id=entry.id, read=True
    )
    return await _read_model(session, entry)


async def _state_for(session: AsyncSession, access: Access, code: str) -> Organization:
    """The State an entry is written for: any, for the Secretariat; one's own otherwise."""
    state = await reports.member_state(session, code.upper())
    if DataScope.ALL not in access.scopes and state.id != access.organization.id:
        raise ForbiddenError("A State's focal points keep their own State's entries only.")
    return state


def _content(entry: ContactPoint) -> dict[str, Any]:
    """The entry's content as its fields hold it (languages as a list)."""
    values = {name: getattr(entry, name) for name in CONTENT_FIELDS}
    values["languages"] = entry.languages.split(",") if entry.languages else []
    return values


def _snapshot(entry: ContactPoint, state: Organization) -> dict[str, Any]:
    return {"state": state.code, **_content(entry)}


def _add_version(
    session: AsyncSession,
    entry: ContactPoint,
    state: Organization,
    editor: Editor,
    change: ContactChange,
    changes: dict[str, Any],
) -> None:
    feed.touch(session, "contact_point", [entry.id])
    session.add(
        ContactPointVersion(
            contact_point_id=entry.id,
            version=entry.version,
            change=change.value,
            snapshot=_snapshot(entry, state),
            changes=changes,
            actor_user_id=editor.user_id,
            actor_organization_id=editor.organization_id,
            at=clock.now(),
        )
    )


async def _keep_change(
    session: AsyncSession,
    entry: ContactPoint,
    editor: Editor,
    change: ContactChange,
    changes: dict[str, Any],
) -> Organization:
    """Write a changed entry and the version that records the change; its State."""
    session.add(entry)
    await session.flush()
    state = await session.get(Organization, entry.state_id)
    assert state is not None
    _add_version(session, entry, state, editor, change, changes)
    return state


def _audit_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Before and after of each changed field; notes are long free text: named only."""
    return {name: ("changed" if name == "notes" else change) for name, change in changes.items()}


async def insert_contact_point(
    session: AsyncSession,
    editor: Editor,
    state: Organization,
    body: ContactPointContent,
    *,
    contact_id: uuid.UUID | None = None,
    confirmed_at: datetime | None = None,
) -> ContactPoint:
    """Write a new entry and its first version, audited as `contact.create`."""
    now = clock.now()
    values = body.model_dump(mode="json")
    values["languages"] = ",".join(body.languages)
    entry = ContactPoint(
        id=contact_id or uuid.uuid4(),
        state_id=state.id,
        **values,
        version=1,
        confirmed_at=confirmed_at or now,
        created_at=now,
        updated_at=now,
    )
    session.add(entry)
    await session.flush()
    _add_version(session, entry, state, editor, ContactChange.CREATED, {})
    audit.record(
        session,
        editor.audit,
        "contact.create",
        object_type=RESOURCE,
        object_id=entry.id,
        details={"state": state.code, "kind": entry.kind, "audience": entry.audience},
    )
    return entry


async def create_contact_point(
    session: AsyncSession, access: Access, body: ContactPointCreate
) -> ContactPointRead:
    """A new entry for the caller's own State (a State's focal point) or any State (CTED)."""
    state = await _state_for(session, access, body.state)
    content = ContactPointContent.model_validate(body.model_dump(exclude={"state"}))
    entry = await insert_contact_point(session, Editor.of(access), state, content)
    return await _read_model(session, entry)


def _check_version(entry: ContactPoint, based_on: int | None) -> None:
    if based_on is not None and based_on != entry.version:
        raise ConflictError(
            f"This entry has changed since version {based_on} (it is now at version "
            f"{entry.version}): reload it and apply your edit again."
        )


async def apply_update(
    session: AsyncSession,
    editor: Editor,
    entry: ContactPoint,
    wanted: dict[str, Any],
    *,
    based_on: int | None,
) -> dict[str, Any]:
    """Change an entry's content (a new version, audited with before and after, and
    current again); the changes made. `based_on` not current: 409, nothing written."""
    _check_version(entry, based_on)
    if "languages" in wanted:
        wanted["languages"] = ",".join(wanted["languages"])
    changes = {
        name: {"before": getattr(entry, name), "after": value}
        for name, value in wanted.items()
        if getattr(entry, name) != value
    }
    if changes:
        for name, change in changes.items():
            setattr(entry, name, change["after"])
        entry.version += 1
        # A writer who corrects an entry has checked it: it is current again, as after a
        # confirmation, and its reminders start over.
        entry.updated_at = entry.confirmed_at = clock.now()
        entry.soon_stale_reminded_at = entry.stale_reminded_at = None
        await _keep_change(session, entry, editor, ContactChange.UPDATED, changes)
    audit.record(
        session,
        editor.audit,
        "contact.update",
        object_type=RESOURCE,
        object_id=entry.id,
        details={"version": entry.version, "changes": _audit_changes(changes)},
    )
    return changes


async def update_contact_point(
    session: AsyncSession,
    access: Access,
    contact_id: uuid.UUID,
    body: ContactPointUpdate,
    *,
    if_match: int | None = None,
) -> ContactPointRead:
    """Edit an entry the caller keeps (404 otherwise). The version it was based on comes in
    the body or an `If-Match` header; if both, they must agree."""
    if if_match is not None and body.version is not None and if_match != body.version:
        raise ValidationError(
            "If-Match and version name different versions.", loc=["body", "version"]
        )
    based_on = body.version if body.version is not None else if_match
    entry = await get_contact_point(session, access, contact_id, for_update=True)
    wanted = body.model_dump(mode="json", exclude_unset=True, exclude={"version"})
    await apply_update(session, Editor.of(access), entry, wanted, based_on=based_on)
    return await _read_model(session, entry)


async def confirm_contact_point(
    session: AsyncSession, access: Access, contact_id: uuid.UUID, *, based_on: int | None = None
) -> ContactPointRead:
    """ "Confirmed, nothing changed": `confirmed_at` is now; audited, kept in the history."""
    entry = await get_contact_point(session, access, contact_id, for_update=True)
    _check_version(entry, based_on)
    now = clock.now()
    before = entry.confirmed_at
    entry.confirmed_at = now
    entry.soon_stale_reminded_at = None
    entry.stale_reminded_at = None
    await _keep_change(session, entry, Editor.of(access), ContactChange.CONFIRMED, {})
    audit.record(
        session,
        access.audit,
        "contact.confirm",
        object_type=RESOURCE,
        object_id=entry.id,
        details={"version": entry.version, "previously_confirmed_at": before.isoformat()},
    )
    return await _read_model(session, entry)


async def retire_contact_point(
    session: AsyncSession, access: Access, contact_id: uuid.UUID, *, based_on: int | None = None
) -> str:
    """Retire an entry: 404 to everyone from then on, its versions kept. Its State's code."""
    entry = await get_contact_point(session, access, contact_id, for_update=True)
    _check_version(entry, based_on)
    entry.retired_at = clock.now()
    state = await _keep_change(session, entry, Editor.of(access), ContactChange.RETIRED, {})
    audit.record(
        session,
        access.audit,
        "contact.retire",
        object_type=RESOURCE,
        object_id=entry.id,
        details={"state": state.code, "kind": entry.kind, "version": entry.version},
    )
    return state.code


def history_in_scope(access: Access) -> SelectOfScalar[ContactPoint]:
    """Entries whose history the caller may read: the State's own (retired ones too) or
    all; the `history` grant never reaches further."""
    statement = select(ContactPoint)
    if DataScope.ALL in access.scopes:
        return statement
    if DataScope.OWN_STATE in access.scopes:
        return statement.where(col(ContactPoint.state_id) == access.organization.id)
    return statement.where(false())


async def read_history(
    session: AsyncSession, access: Access, contact_id: uuid.UUID
) -> list[ContactPointVersionRead]:
    """Every version of an entry, newest first: who changed what, when. Audited as
    `contact.history`; 404 outside the caller's scope."""
    entry = (
        await session.exec(history_in_scope(access).where(col(ContactPoint.id) == contact_id))
    ).first()
    if entry is None:
        raise NotFoundError("No such contact point.")
    versions = (
        await session.exec(
            select(ContactPointVersion)
            .where(col(ContactPointVersion.contact_point_id) == entry.id)
            .order_by(col(ContactPointVersion.at).desc(), col(ContactPointVersion.version).desc())
        )
    ).all()
    users = {
        user.id: user
        for user in (
            await session.exec(
                select(User).where(
                    col(User.id).in_({v.actor_user_id for v in versions if v.actor_user_id})
                )
            )
        ).all()
    }
    orgs = await organizations.organizations_by_id(
        session, {v.actor_organization_id for v in versions if v.actor_organization_id}
    )
    audit.record(
        session,
        access.audit,
        "contact.history",
        object_type=RESOURCE,
        object_id=entry.id,
        read=True,
    )
    result = []
    for version in versions:
        user = users.get(version.actor_user_id) if version.actor_user_id else None
        org = orgs.get(version.actor_organization_id) if version.actor_organization_id else None
        result.append(
            ContactPointVersionRead(
                version=version.version,
                change=ContactChange(version.change),
                at=version.at,
                actor=ContactActor(
                    user_id=version.actor_user_id,
                    name=user.name if user else None,
                    organization=org.code if org else None,
                ),
                changes=version.changes,
            )
        )
    return result


async def read_coverage(session: AsyncSession, access: Access) -> list[StateCoverage]:
    """The completeness view: for each Member State in the caller's scope, its live
    entries and stale entries per kind and the kinds it has none of. Counted in SQL;
    audited as `contact.coverage`."""
    cutoff = stale_before(clock.now())
    stale = func.sum(case((col(ContactPoint.confirmed_at) < cutoff, 1), else_=0))
    counts = (
        core_select(col(ContactPoint.state_id), col(ContactPoint.kind), func.count(), stale)
        .where(col(ContactPoint.retired_at).is_(None))
        .group_by(col(ContactPoint.state_id), col(ContactPoint.kind))
    )
    states = select(Organization).where(
        col(Organization.kind) == OrganizationKind.MEMBER_STATE.value,
        col(Organization.active),
    )
    if DataScope.ALL not in access.scopes:
        mine = col(Organization.id) == access.organization.id
        states = states.where(mine if DataScope.OWN_STATE in access.scopes else false())
        counts = counts.where(
            col(ContactPoint.state_id) == access.organization.id
            if DataScope.OWN_STATE in access.scopes
            else false()
        )
    tallies: dict[uuid.UUID, dict[str, tuple[int, int]]] = {}
    for state_id, kind, entries, stale_entries in (await session.exec(counts)).all():  # type: ignore[call-overload]
        tallies.setdefault(state_id, {})[kind] = (int(entries), int(stale_entries or 0))
    result = []
    for state in (await session.exec(states.order_by(col(Organization.name_en)))).all():
        found = tallies.get(state.id, {})
        kinds = [
            KindCoverage(
                kind=kind,
                entries=found.get(kind.value, (0, 0))[0],
                stale=found.get(kind.value, (0, 0))[1],
            )
            for kind in ContactKind
        ]
        result.append(
            StateCoverage(
                state=StateRef.of(state),
                kinds=kinds,
                missing=[k.kind for k in kinds if k.entries == 0],
                stale=sum(k.stale for k in kinds),
            )
        )
    audit.record(
        session,
        access.audit,
        "contact.coverage",
        object_type=RESOURCE,
        details={"states": len(result)},
        read=True,
    )
    return result


async def _state_codes(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = (
        await session.exec(
            select(Organization.id, Organization.code).where(
                col(Organization.kind) == OrganizationKind.MEMBER_STATE.value
            )
        )
    ).all()
    return dict(rows)


async def read_models(
    session: AsyncSession, entries: Sequence[ContactPoint]
) -> list[ContactPointRead]:
    states = await organizations.organizations_by_id(session, {e.state_id for e in entries})
    now = clock.now()
    return [
        ContactPointRead(
            id=entry.id,
            state=StateRef.of(states[entry.state_id]),
            **_content(entry),
            phone_display=international(entry.phone),
            fax_display=international(entry.fax),
            tlp=markings.tlp_of(entry.audience),
            version=entry.version,
            confirmed_at=entry.confirmed_at,
            stale=is_stale(entry, now),
            created_at=entry.created_at,
            updated_at=entry.updated_at,
        )
        for entry in entries
    ]


async def _read_model(session: AsyncSession, entry: ContactPoint) -> ContactPointRead:
    return (await read_models(session, [entry]))[0]


@dataclass
class ReminderReport:
    soon: int = 0  # entries whose focal points were told they turn stale in 30 days
    stale: int = 0  # entries whose focal points were told they turned stale


async def _claim_reminder(
    session: AsyncSession, entry_id: uuid.UUID, column: Any, *due: Any
) -> bool:
    """Mark one reminder sent, exactly once across workers and instances, if it is still
    due (an entry confirmed or retired since it was selected is not)."""
    claimed = await session.exec(
        update(ContactPoint)
        .where(col(ContactPoint.id) == entry_id, column.is_(None), *due)
        .values({column.key: clock.now()})
    )
    return bool(claimed.rowcount)


async def send_reminders(session: AsyncSession) -> ReminderReport:
    """Tell a State's focal points, through the outbox, of each entry that turns stale in
    30 days, and again of each that has turned stale; once per confirmation each."""
    now = clock.now()
    stale_cutoff = stale_before(now)
    soon_cutoff = stale_cutoff + timedelta(days=REMIND_DAYS_BEFORE_STALE)
    report = ReminderReport()
    live = col(ContactPoint.retired_at).is_(None)
    due = [
        (
            "soon",
            col(ContactPoint.soon_stale_reminded_at),
            (col(ContactPoint.confirmed_at) < soon_cutoff)
            & (col(ContactPoint.confirmed_at) >= stale_cutoff),
        ),
        (
            "stale",
            col(ContactPoint.stale_reminded_at),
            col(ContactPoint.confirmed_at) < stale_cutoff,
        ),
    ]
    for stage, column, condition in due:
        entries = (
            await session.exec(
                # One order for every instance: two passes never wait on each other's claims.
                select(ContactPoint)
                .where(live, condition, column.is_(None))
                .order_by(col(ContactPoint.id))
            )
        ).all()
        for entry in entries:
            if not await _claim_reminder(session, entry.id, column, live, condition):
                continue
            if stage == "stale":
                report.stale += 1
                subject = "CTCP: a contact-point entry of your State is out of date"
                opening = "has not been confirmed for a year and is now marked out of date"
            else:
                report.soon += 1
                subject = "CTCP: a contact-point entry of your State needs confirming"
                opening = f"will be marked out of date in {REMIND_DAYS_BEFORE_STALE} days"
            await notifications.notify(
                session,
                event=f"contact.{stage}",
                object_type=RESOURCE,
                object_id=entry.id,
                role="state_focal_point",
                organization_ids=[entry.state_id],
                subject=subject,
                body=(
                    f"An entry of your State in the CTCP directory of contact points {opening}.\n"
                    "Sign in to CTCP, check it, and confirm it or correct it "
                    f"(contact point {entry.id})."
                ),
            )
    return report


logger = logging.getLogger("ctcp.contacts")


async def remind_forever(database: Database, every_seconds: float) -> None:
    """Send the due reminders every `every_seconds` (the first pass that long after start)
    until cancelled. Every instance may run this: the claims make each reminder go once.
    A failed pass is logged and the loop goes on."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            async with database.transaction() as session:
                report = await send_reminders(session)
        except Exception:
            logger.exception("contact-point reminder pass failed")
            continue
        if report.soon or report.stale:
            logger.info(
                "contact-point reminders: %d entries soon stale, %d stale",
                report.soon,
                report.stale,
            )


class ImportRefusedError(ValidationError):
    """A file with bad rows: nothing of it is written; every problem is named."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        super().__init__(f"{len(problems)} problems: nothing of the file was imported.")
        self.problems = problems


@dataclass
class ImportReport:
    created: int = 0
    problems: list[ImportProblem] = field(default_factory=list)


# Rows checked against the database (ids already taken) and written together.
IMPORT_BATCH = 500


async def import_editor(session: AsyncSession, context: AuditContext, email: str | None) -> Editor:
    """Who `ctcp contacts import` writes as: the command line (no person), or an active
    user whose roles write every State's entries under the stored policy (a CTED analyst);
    anyone else is refused."""
    if email is None:
        return Editor(context, None, None)
    account = await identity.load_account(session, email=email)
    if account is None or not account.user.active:
        raise ValidationError(f"No active user with the e-mail address {email!r}.")
    granted = await decide_stored(
        session, frozenset(account.roles), account.organization.code, RESOURCE, "write"
    )
    if DataScope.ALL not in granted:
        raise ForbiddenError(
            f"{email} may not write every State's contact points: import as a CTED analyst."
        )
    return Editor(
        context.as_user(account.user.id, account.organization.code),
        account.user.id,
        account.organization.id,
    )


async def import_contact_points(
    session: AsyncSession,
    editor: Editor,
    lines: Iterable[bytes],
    *,
    source: str,
) -> ImportReport:
    """Create an entry for each row of a CSV file with the export's columns (exchange.py),
    as the API creates one (a first version and a `contact.create` event each), in the
    caller's one transaction.

    Rows are read as they come and written in batches, so a large file is never held
    whole. Every problem is collected; if there is any, the refusal is audited and
    `ImportRefusedError` rolls the whole file back.
    """
    states = await _member_states(session)
    report = ImportReport()
    seen: set[uuid.UUID] = set()
    batch: list[tuple[ImportRow, Organization]] = []
    for row in read_csv(lines, states=states):
        if isinstance(row, ImportProblem):
            report.problems.append(row)
            continue
        state = states[row.body.state.upper()]
        if row.contact_id is not None:
            if row.contact_id in seen:
                report.problems.append(ImportProblem(row.line, "id", "named twice in the file"))
                continue
            seen.add(row.contact_id)
        batch.append((row, state))
        if len(batch) >= IMPORT_BATCH:
            await _import_batch(session, editor, batch, report)
            batch = []
    await _import_batch(session, editor, batch, report)
    refused = bool(report.problems)
    audit.record(
        session,
        editor.audit,
        "contact.import",
        outcome=Outcome.DENIED if refused else Outcome.ALLOWED,
        object_type=RESOURCE,
        details={
            "source": source[:200],
            "created": 0 if refused else report.created,
            "problems": len(report.problems),
        },
    )
    if refused:
        raise ImportRefusedError(report.problems)
    return report


async def _member_states(session: AsyncSession) -> dict[str, Organization]:
    states = await session.exec(
        select(Organization).where(col(Organization.kind) == OrganizationKind.MEMBER_STATE.value)
    )
    return {state.code.upper(): state for state in states.all()}


async def _import_batch(
    session: AsyncSession,
    editor: Editor,
    batch: list[tuple[ImportRow, Organization]],
    report: ImportReport,
) -> None:
    """Refuse rows whose id is taken; write the rest unless the file is refused already
    (then the rows are only checked: the transaction will be rolled back anyway)."""
    ids = [row.contact_id for row, _ in batch if row.contact_id is not None]
    taken: set[uuid.UUID] = set()
    if ids:
        statement = select(ContactPoint.id).where(col(ContactPoint.id).in_(ids))
        taken = set((await session.exec(statement)).all())
    for row, state in batch:
        if row.contact_id in taken:
            report.problems.append(
                ImportProblem(
                    row.line, "id", "an entry with this id exists already (empty it for a new one)"
                )
            )
        elif not report.problems:
            content = ContactPointContent.model_validate(row.body.model_dump(exclude={"state"}))
            await insert_contact_point(
                session,
                editor,
                state,
                content,
                contact_id=row.contact_id,
                confirmed_at=row.confirmed_at,
            )
            report.created += 1
    # What was written is in the database now: the session need not keep it in memory.
    await session.flush()
    session.expunge_all()


# --- Reads for the portal ---------------------------------------------------------------


async def kinds_by_state(
    session: AsyncSession, access: Access, state_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[KindCoverage]]:
    """For the States of a directory page: how many entries of each kind the caller may
    read, and how many of those are stale. Counted in SQL over the caller's own scope, so
    a kind the caller may not read counts as none; counts only, no content, so the read
    is not audited apart from the page's list."""
    if not state_ids:
        return {}
    scope = contact_points_in_scope(access).where(col(ContactPoint.state_id).in_(state_ids))
    cutoff = stale_before(clock.now())
    stale = func.sum(case((col(ContactPoint.confirmed_at) < cutoff, 1), else_=0))
    counts = core_select(
        col(ContactPoint.state_id), col(ContactPoint.kind), func.count(), stale
    ).group_by(col(ContactPoint.state_id), col(ContactPoint.kind))
    if scope.whereclause is not None:
        counts = counts.where(scope.whereclause)
    tallies: dict[uuid.UUID, dict[str, tuple[int, int]]] = {}
    for state_id, kind, entries, stale_entries in (await session.exec(counts)).all():  # type: ignore[call-overload]
        tallies.setdefault(state_id, {})[kind] = (int(entries), int(stale_entries or 0))
    return {
        state_id: [
            KindCoverage(
                kind=kind,
                entries=tallies.get(state_id, {}).get(kind.value, (0, 0))[0],
                stale=tallies.get(state_id, {}).get(kind.value, (0, 0))[1],
            )
            for kind in ContactKind
        ]
        for state_id in state_ids
    }


async def entries_to_confirm(
    session: AsyncSession, access: Access, *, limit: int = 50
) -> Page[ContactPointRead]:
    """The caller's own State's entries that are stale or turn stale within the reminder
    window, longest unconfirmed first: what its focal points should confirm or correct.
    Audited as `contact.list` with the ids shown."""
    due = stale_before(clock.now()) + timedelta(days=REMIND_DAYS_BEFORE_STALE)
    statement = contact_points_in_scope(access).where(
        col(ContactPoint.state_id) == access.organization.id,
        col(ContactPoint.confirmed_at) < due,
    )
    return await audited_page(
        session,
        access,
        statement,
        order=[ContactPoint.confirmed_at, ContactPoint.id],
        ascending=True,
        page=PageRequest(limit),
        read_models=read_models,
    )
