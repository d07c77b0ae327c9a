"""Portal pages of the directory of national contact points (HTML).

Every page calls the service function its API route calls, with the grant of the same
guard, so scoping (404 outside it), refusals and audit events are the API's: the
directory with its per-State cards, an entry with its history, the forms of the State's
focal points and CTED, "confirm, nothing changed", retiring, CTED's coverage table, and
the exports as downloads.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from babel import Locale
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from phonenumbers import NumberParseException

from ctcp.authz.scopes import DataScope
from ctcp.contacts import exchange, service
from ctcp.contacts.models import ContactAudience, ContactKind
from ctcp.contacts.schemas import (
    MAX_LANGUAGES,
    STALE_AFTER_DAYS,
    ContactPointContent,
    ContactPointCreate,
    ContactPointRead,
    ContactPointUpdate,
    ContactPointVersionRead,
    KindCoverage,
    international,
    iso_639_1_codes,
)
from ctcp.contacts.service import ContactFilters, ContactSort
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.core.pagination import DEFAULT_LIMIT, PageRequest
from ctcp.organizations.models import OrganizationKind
from ctcp.reports.schemas import StateRef
from ctcp.web.labels import N_
from ctcp.web.paths import PREFIX, local_path
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ReadContacts = Annotated[GuardedPortal, page_guard("contact", "read")]
WriteContacts = Annotated[GuardedPortal, page_guard("contact", "write")]
SurveyContacts = Annotated[GuardedPortal, page_guard("contact", "coverage")]

FilterQuery = Annotated[str | None, Query(max_length=64)]
SearchQuery = Annotated[str | None, Query(max_length=200)]
CursorParam = Annotated[str | None, Query(max_length=512)]
FormatQuery = Annotated[Literal["csv", "vcard"], Query()]

# The fields of the entry form, in the order the form shows them.
FORM_FIELDS = tuple(ContactPointContent.model_fields)
FIELD_LABELS = {
    "state": N_("State"),
    "kind": N_("Kind"),
    "authority": N_("Authority"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "fax": N_("Fax"),
    "website": N_("Website"),
    "request_form_url": N_("Request form"),
    "languages": N_("Accepted languages"),
    "working_hours": N_("Working hours"),
    "time_zone": N_("Time zone"),
    "notes": N_("Procedural notes"),
    "audience": N_("Who may read it"),
}
# What a malformed value of these fields should be (the schema says it in English).
FORMAT_MESSAGES = {
    "phone": N_("Enter an international number: + and the country code, e.g. +254 20 222 2222."),
    "fax": N_("Enter an international number: + and the country code, e.g. +254 20 222 2222."),
    "website": N_("Enter an https:// link."),
    "request_form_url": N_("Enter an https:// link."),
    "time_zone": N_("Enter a time zone such as Africa/Nairobi or Europe/Paris."),
}
# The audience select says who reads an entry besides its State and the Secretariat.
AUDIENCE_CHOICES = {
    ContactAudience.SECRETARIAT.value: N_("No one else: the Secretariat only"),
    ContactAudience.COMPACT.value: N_("Compact entities"),
    ContactAudience.MEMBER_STATES.value: N_("Compact entities and the other Member States"),
}
CODES = re.compile(r"[\s,;]+")
EXPORTS = {
    "csv": ("text/csv", "contact-points.csv"),
    "vcard": ("text/vcard", "contact-points.vcf"),
}


# --- small helpers ------------------------------------------------------------------


@cache
def language_names(locale: str) -> dict[str, str]:
    """The ISO 639-1 languages, named in the reader's language (Babel's CLDR names)."""
    names = Locale.parse(locale).languages
    return {code: names.get(code, code) for code in iso_639_1_codes()}


def _languages_of(portal: GuardedPortal) -> Any:
    """`language_list(codes)` for templates: "English, French"."""
    names = language_names(portal.locale)

    def language_list(codes: list[str]) -> str:
        return ", ".join(names.get(code, code) for code in codes)

    return language_list


def _language_options(portal: GuardedPortal) -> list[tuple[str, str]]:
    names = language_names(portal.locale)
    return sorted(
        ((code, f"{name} ({code})") for code, name in names.items()),
        key=lambda pair: pair[1].casefold(),
    )


def stale_on(entry: ContactPointRead) -> datetime:
    """When an entry turns (or turned) stale, unless confirmed before."""
    return entry.confirmed_at + timedelta(days=STALE_AFTER_DAYS)


async def _member_states(portal: GuardedPortal) -> list[tuple[str, str]]:
    """(code, name) of the active Member States, for the State selects."""
    names = await portal.organization_names()
    found = [
        (code, portal.org_name(code))
        for code, organization in names.items()
        if organization.kind == OrganizationKind.MEMBER_STATE.value and organization.active
    ]
    return sorted(found, key=lambda pair: pair[1].casefold())


def _choice(value: str | None, name: str) -> ContactKind | None:
    """A kind from the query string; blank means none, anything else unknown is 422."""
    if not value:
        return None
    try:
        return ContactKind(value)
    except ValueError:
        raise ValidationError(f"Unknown {name}: {value!r}.", loc=["query", name]) from None


def _language(value: str | None) -> str | None:
    code = (value or "").strip().lower()
    if not code:
        return None
    if code not in iso_639_1_codes():
        raise ValidationError(f"Unknown language: {value!r}.", loc=["query", "language"])
    return code


def _directory_filters(
    state: str | None,
    kind: str | None,
    language: str | None,
    q: str | None,
    stale: str | None,
) -> tuple[ContactFilters, dict[str, str]]:
    """The API's filters from the filter form, and the form's values to show again."""
    typed = {
        "state": (state or "").strip().upper(),
        "kind": kind or "",
        "language": (language or "").strip().lower(),
        "q": (q or "").strip(),
        "stale": "1" if stale else "",
    }
    filters = ContactFilters(
        state=typed["state"] or None,
        kind=_choice(kind, "kind"),
        language=_language(language),
        q=typed["q"] or None,
        stale=True if stale else None,
        sort=ContactSort.STATE,
    )
    return filters, typed


def _version(value: str) -> int | None:
    """The version a form was based on (its hidden field); blank: none named."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValidationError("The form's version is not a version.", loc=["body", "version"])
    return int(value)


# --- the directory ------------------------------------------------------------------


@dataclass
class KindRow:
    """A kind on a State's card: its status for the reader, and this page's entries."""

    kind: str
    status: str  # present | stale | missing
    entries: int
    stale: int
    items: list[ContactPointRead]


@dataclass
class StateCard:
    state: StateRef
    kinds: list[KindRow]


def _status(coverage: KindCoverage) -> str:
    if coverage.entries == 0:
        return "missing"
    return "stale" if coverage.stale else "present"


async def _cards(
    portal: GuardedPortal, items: list[ContactPointRead], state: str | None
) -> list[StateCard]:
    """The page's entries grouped by State, in the page's order, every kind on each card.

    A State named by the filter gets its card even when nothing matches, so a reader sees
    which kinds it lacks."""
    grouped: dict[uuid.UUID, list[ContactPointRead]] = {}
    refs: dict[uuid.UUID, StateRef] = {}
    for item in items:
        grouped.setdefault(item.state.id, []).append(item)
        refs[item.state.id] = item.state
    if state and not items:
        organization = (await portal.organization_names()).get(state)
        if organization is not None:
            grouped[organization.id] = []
            refs[organization.id] = StateRef.of(organization)
    counts = await service.kinds_by_state(portal.session, portal.access, set(grouped))
    return [
        StateCard(
            refs[state_id],
            [
                KindRow(
                    coverage.kind.value,
                    _status(coverage),
                    coverage.entries,
                    coverage.stale,
                    [entry for entry in entries if entry.kind == coverage.kind],
                )
                for coverage in counts[state_id]
            ],
        )
        for state_id, entries in grouped.items()
    ]


@router.get("/contacts", response_class=HTMLResponse)
async def directory_page(
    portal: ReadContacts,
    state: FilterQuery = None,
    kind: FilterQuery = None,
    language: FilterQuery = None,
    q: SearchQuery = None,
    stale: FilterQuery = None,
    cursor: CursorParam = None,
) -> Response:
    """The entries the reader may read, by State, with the API's filters."""
    filters, typed = _directory_filters(state, kind, language, q, stale)
    page = await service.list_contact_points(
        portal.session, portal.access, filters, PageRequest(DEFAULT_LIMIT, cursor or None)
    )
    used = {name: value for name, value in typed.items() if value}
    exports = {
        format: f"{PREFIX}/contacts/export?" + urlencode(used | {"format": format})
        for format in EXPORTS
    }
    return await portal.render(
        "contacts/directory.html",
        page=page,
        cards=await _cards(portal, page.items, typed["state"] or None),
        filters=typed,
        state_options=await _member_states(portal),
        kind_options=portal.options(ContactKind),
        language_options=_language_options(portal),
        language_list=_languages_of(portal),
        exports=exports,
        can_add=portal.granted("contact", "write"),
        can_survey=portal.granted("contact", "coverage"),
    )


@router.get("/contacts/export")
async def export_download(
    portal: ReadContacts,
    format: FormatQuery = "csv",
    state: FilterQuery = None,
    kind: FilterQuery = None,
    language: FilterQuery = None,
    q: SearchQuery = None,
    stale: FilterQuery = None,
) -> Response:
    """The API's export of what the reader may list under the filters, as a download
    (audited alike, as `contact.export`)."""
    filters, _ = _directory_filters(state, kind, language, q, stale)
    entries = await service.export_contact_points(
        portal.session, portal.access, filters, format=format
    )
    body = exchange.to_vcards(entries) if format == "vcard" else exchange.to_csv(entries)
    media_type, name = EXPORTS[format]
    return Response(
        content=body.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- coverage (CTED) ----------------------------------------------------------------


@router.get("/contacts/coverage", response_class=HTMLResponse)
async def coverage_page(portal: SurveyContacts, gaps: FilterQuery = None) -> Response:
    """Which States have which kinds, which are stale, which are missing."""
    rows = await service.read_coverage(portal.session, portal.access)
    await portal.organization_names()
    shown = [row for row in rows if row.missing or row.stale] if gaps else rows
    return await portal.render(
        "contacts/coverage.html",
        rows=sorted(shown, key=lambda row: portal.org_name(row.state.code).casefold()),
        kinds=[kind.value for kind in ContactKind],
        gaps=bool(gaps),
        states=len(rows),
        complete=sum(1 for row in rows if not row.missing),
        with_stale=sum(1 for row in rows if row.stale),
        status_of=_status,
    )


# --- the entry form -----------------------------------------------------------------


def _codes(text: str) -> list[str]:
    """Language codes as typed ("en, FR sw"): lower case, each once, in order."""
    found: list[str] = []
    for code in CODES.split(text.lower()):
        if code and code not in found:
            found.append(code)
    return found


def _language_error(portal: GuardedPortal, codes: list[str]) -> str:
    if not codes:
        return portal.gettext("Name at least one language in which the authority accepts requests.")
    unknown = [code for code in codes if code not in iso_639_1_codes()]
    if unknown:
        return portal.gettext(
            "Unknown language codes: %(codes)s. Use two-letter ISO 639-1 codes, such as en, "
            "fr or ar.",
            codes=", ".join(unknown),
        )
    if len(codes) > MAX_LANGUAGES:
        return portal.gettext("Name at most %(count)s languages.", count=MAX_LANGUAGES)
    return portal.gettext("Enter two-letter ISO 639-1 codes separated by commas, such as en, fr.")


def _checked(
    portal: GuardedPortal, values: dict[str, str]
) -> tuple[ContactPointContent | None, dict[str, str]]:
    """The entry's content checked by the API's schema, or the errors per form field in
    the reader's language."""
    codes = _codes(values["languages"])
    data: dict[str, Any] = {
        name: values[name] for name in FORM_FIELDS if name != "languages" and values[name]
    }
    if codes:
        data["languages"] = codes
    content, errors = portal.validate(ContactPointContent, data)
    too_long = portal.gettext("This is too long.")
    plain: dict[str, str] = {}
    for name, message in errors.items():
        field = name.split(".")[0]
        if field == "languages":
            message = _language_error(portal, codes)
        elif field in FORMAT_MESSAGES and message != too_long:
            message = portal.gettext(FORMAT_MESSAGES[field])
        plain.setdefault(field, message)
    return content, plain


def _submitted(portal: GuardedPortal) -> dict[str, str]:
    return {name: portal.field(name) for name in FORM_FIELDS}


def _values_of(entry: ContactPointRead) -> dict[str, str]:
    """The form's fields as an entry holds them (numbers in international format)."""
    values = {name: str(getattr(entry, name) or "") for name in FORM_FIELDS}
    values["kind"], values["audience"] = entry.kind.value, entry.audience.value
    values["phone"] = entry.phone_display or ""
    values["fax"] = entry.fax_display or ""
    values["languages"] = ", ".join(entry.languages)
    values["version"] = str(entry.version)
    return values


def _shown(portal: GuardedPortal, name: str, value: Any) -> str:
    """A field's value as a person reads it, for the history and a conflict's comparison."""
    if value is None or value == "" or value == []:
        return ""
    if name in ("phone", "fax"):
        try:
            return international(str(value)) or ""
        except NumberParseException:  # not a number phonenumbers reads: shown as kept
            return str(value)
    if name == "languages":
        codes = value if isinstance(value, list) else str(value).split(",")
        return str(_languages_of(portal)(codes))
    if name in ("kind", "audience"):
        return portal.label(str(value))
    return str(value)


@dataclass
class Difference:
    field: str
    theirs: str
    yours: str


def _differences(
    portal: GuardedPortal, current: ContactPointRead, mine: ContactPointContent
) -> list[Difference]:
    """The fields the entry now holds otherwise than the reader's form says."""
    now = current.model_dump(mode="json")
    wanted = mine.model_dump(mode="json")
    return [
        Difference(
            portal.gettext(FIELD_LABELS[name]),
            _shown(portal, name, now[name]),
            _shown(portal, name, wanted[name]),
        )
        for name in FORM_FIELDS
        if now[name] != wanted[name]
    ]


async def _entry_form(
    portal: GuardedPortal,
    entry: ContactPointRead | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
    conflict: list[Difference] | None = None,
) -> Response:
    """The form of a new entry (`entry` None) or of an edit."""
    on_behalf = entry is None and DataScope.ALL in portal.access.scopes
    return await portal.render(
        "contacts/form.html",
        status=status,
        entry=entry,
        values=values,
        errors=errors,
        conflict=conflict,
        on_behalf=on_behalf,
        own_state=portal.access.organization.code,
        state_options=await _member_states(portal) if on_behalf else [],
        kind_options=portal.options(ContactKind),
        audience_options=[
            (audience.value, portal.gettext(AUDIENCE_CHOICES[audience.value]))
            for audience in ContactAudience
        ],
    )


@router.get("/contacts/new", response_class=HTMLResponse)
async def new_entry_page(portal: WriteContacts, state: FilterQuery = None) -> Response:
    values = {name: "" for name in FORM_FIELDS}
    values["state"] = (state or "").strip().upper()
    values["audience"] = ContactAudience.MEMBER_STATES.value
    return await _entry_form(portal, None, values, {})


@router.post("/contacts/new", response_class=HTMLResponse)
async def create_entry(portal: WriteContacts) -> Response:
    """A State's focal point adds an entry of their State; CTED of the State chosen."""
    on_behalf = DataScope.ALL in portal.access.scopes
    values = _submitted(portal)
    values["state"] = (
        portal.field("state").upper() if on_behalf else portal.access.organization.code
    )
    content, errors = _checked(portal, values)
    if on_behalf and values["state"] not in {code for code, _ in await _member_states(portal)}:
        errors = {"state": portal.gettext("Choose a State from the list."), **errors}
    if content is None or errors:
        return await _entry_form(portal, None, values, errors, status=422)
    body = ContactPointCreate.model_validate(
        content.model_dump(mode="json") | {"state": values["state"]}
    )
    created = await service.create_contact_point(portal.session, portal.access, body)
    return portal.redirect(
        f"{PREFIX}/contacts/{created.id}", notice=portal.gettext("The entry was added.")
    )


@router.get("/contacts/{contact_id}/edit", response_class=HTMLResponse)
async def edit_entry_page(contact_id: uuid.UUID, portal: WriteContacts) -> Response:
    entry = await service.read_contact_point(portal.session, portal.access, contact_id)
    return await _entry_form(portal, entry, _values_of(entry), {})


@router.post("/contacts/{contact_id}/edit", response_class=HTMLResponse)
async def update_entry(contact_id: uuid.UUID, portal: WriteContacts) -> Response:
    """Save the form over the version it was based on; if someone changed the entry since,
    nothing is saved and the form comes back with what changed (409)."""
    values = _submitted(portal) | {"version": portal.field("version")}
    based_on = _version(values["version"])
    content, errors = _checked(portal, values)
    if content is None:
        entry = await service.read_contact_point(portal.session, portal.access, contact_id)
        return await _entry_form(portal, entry, values, errors, status=422)
    body = ContactPointUpdate.model_validate(
        content.model_dump(mode="json") | {"version": based_on}
    )
    try:
        updated = await service.update_contact_point(
            portal.session, portal.access, contact_id, body
        )
    except ConflictError:
        current = await service.read_contact_point(portal.session, portal.access, contact_id)
        message = portal.gettext(
            "Someone changed this entry after you opened it (it is now at version "
            "%(version)s). Nothing was saved. Compare below, correct the form if needed, "
            "and save again.",
            version=current.version,
        )
        return await _entry_form(
            portal,
            current,
            values | {"version": str(current.version)},
            {"_": message},
            status=409,
            conflict=_differences(portal, current, content),
        )
    notice = (
        portal.gettext("Saved.")
        if updated.version != based_on
        else portal.gettext("Nothing was changed.")
    )
    return portal.redirect(f"{PREFIX}/contacts/{contact_id}", notice=notice)


# --- an entry -----------------------------------------------------------------------


@dataclass
class Change:
    field: str
    before: str
    after: str


@dataclass
class HistoryRow:
    version: ContactPointVersionRead
    changes: list[Change]


async def _history(portal: GuardedPortal, contact_id: uuid.UUID) -> list[HistoryRow] | None:
    """The entry's versions, for those whose `history` grant reaches it; else None."""
    access = await portal.access_for("contact", "history")
    if access is None:
        return None
    try:
        versions = await service.read_history(portal.session, access, contact_id)
    except NotFoundError:  # another State's entry: readable, its history is not
        return None
    return [
        HistoryRow(
            version,
            [
                Change(
                    portal.gettext(FIELD_LABELS.get(name, name)),
                    _shown(portal, name, change.get("before")),
                    _shown(portal, name, change.get("after")),
                )
                for name, change in version.changes.items()
            ],
        )
        for version in versions
    ]


async def _keeps(portal: GuardedPortal, contact_id: uuid.UUID) -> bool:
    """Whether the reader may write this entry (the write grant's scope reaches it)."""
    access = await portal.access_for("contact", "write")
    if access is None:
        return False
    try:
        await service.get_contact_point(portal.session, access, contact_id)
    except NotFoundError:
        return False
    return True


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
async def entry_page(contact_id: uuid.UUID, portal: ReadContacts) -> Response:
    entry = await service.read_contact_point(portal.session, portal.access, contact_id)
    return await portal.render(
        "contacts/entry.html",
        entry=entry,
        stale_on=stale_on(entry),
        can_write=await _keeps(portal, contact_id),
        history=await _history(portal, contact_id),
        language_list=_languages_of(portal),
    )


def _changed_meanwhile(portal: GuardedPortal, contact_id: uuid.UUID) -> Response:
    return portal.redirect(
        f"{PREFIX}/contacts/{contact_id}",
        notice=portal.gettext(
            "Someone changed this entry after you opened it. Nothing was done: check it, "
            "then try again."
        ),
    )


@router.post("/contacts/{contact_id}/confirm", response_class=HTMLResponse)
async def confirm_entry(contact_id: uuid.UUID, portal: WriteContacts) -> Response:
    """Confirmed, nothing changed: from the entry page or the dashboard (`next`)."""
    based_on = _version(portal.field("version"))
    back = local_path(portal.field("next") or None, f"{PREFIX}/contacts/{contact_id}")
    try:
        await service.confirm_contact_point(
            portal.session, portal.access, contact_id, based_on=based_on
        )
    except ConflictError:
        return _changed_meanwhile(portal, contact_id)
    return portal.redirect(
        back, notice=portal.gettext("Confirmed: the entry is marked as current for a year.")
    )


@router.get("/contacts/{contact_id}/retire", response_class=HTMLResponse)
async def retire_entry_page(contact_id: uuid.UUID, portal: WriteContacts) -> Response:
    """The confirmation step before an entry is retired."""
    entry = await service.read_contact_point(portal.session, portal.access, contact_id)
    return await portal.render("contacts/retire.html", entry=entry)


@router.post("/contacts/{contact_id}/retire", response_class=HTMLResponse)
async def retire_entry(contact_id: uuid.UUID, portal: WriteContacts) -> Response:
    based_on = _version(portal.field("version"))
    try:
        code = await service.retire_contact_point(
            portal.session, portal.access, contact_id, based_on=based_on
        )
    except ConflictError:
        return _changed_meanwhile(portal, contact_id)
    return portal.redirect(
        f"{PREFIX}/contacts?{urlencode({'state': code})}",
        notice=portal.gettext("The entry was retired. Its history is kept."),
    )
