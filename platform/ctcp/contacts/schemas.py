"""Contact-point payloads (docs/api.md, "Directory of national contact points").

Every field is checked here, for the API, the portal's forms and `ctcp contacts import`
alike: phone and fax numbers parse as international numbers and are kept in E.164,
languages are ISO 639-1 codes, links are https, the time zone is an IANA name.
"""

import re
import uuid
import zoneinfo
from datetime import datetime
from functools import cache, lru_cache
from typing import Annotated
from urllib.parse import urlsplit

import email_validator
import phonenumbers
import pycountry
from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from ctcp.consent.markings import TLP_DESCRIPTION, Tlp
from ctcp.contacts.models import ContactAudience, ContactChange, ContactKind
from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.reports.schemas import StateRef

MAX_NOTES = 4000
MAX_LANGUAGES = 12
# Entries older than this since their last confirmation are stale.
STALE_AFTER_DAYS = 365
# The State's focal points are reminded this many days before an entry turns stale.
REMIND_DAYS_BEFORE_STALE = 30


@cache
def iso_639_1_codes() -> frozenset[str]:
    """The two-letter language codes of ISO 639-1 (pycountry's copy of the standard)."""
    return frozenset(
        language.alpha_2 for language in pycountry.languages if hasattr(language, "alpha_2")
    )


@cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def e164(value: str | None) -> str | None:
    """An international number (`+33 1 40 00 00 00`) in E.164 (`+33140000000`)."""
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(
            "not an international phone number: start with + and the country code"
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country code")
    if number.extension:
        # E.164 has no extension: kept, it would be dropped without a word.
        raise ValueError("an extension is not part of the number: put it in the notes")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=16_384)
def international(value: str | None) -> str | None:
    """An E.164 number as people read it: `+33 1 40 00 00 00` (remembered: parsing is a
    fifth of a directory page's work, and a directory holds a few thousand numbers)."""
    if value is None:
        return None
    number = phonenumbers.parse(value, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def https_link(value: str | None) -> str | None:
    """An absolute https link to a named host; anything else (http:, javascript:) refused."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("must be an https:// link in plain ASCII (a host in its xn-- form)")
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("must be an https:// link")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password")
    return value


def email_address(value: str) -> str:
    try:
        checked = email_validator.validate_email(
            value, check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as error:
        raise ValueError(f"not a valid e-mail address: {error}") from error
    return checked.normalized


def language_codes(values: list[str]) -> list[str]:
    codes = sorted({value.strip().lower() for value in values})
    unknown = [code for code in codes if code not in iso_639_1_codes()]
    if unknown:
        raise ValueError(f"not ISO 639-1 language codes: {', '.join(unknown)}")
    if not codes:
        raise ValueError("name at least one language in which requests are accepted")
    return codes


def time_zone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if value.strip() not in time_zones():
        raise ValueError("not an IANA time zone (e.g. Africa/Nairobi, Europe/Paris)")
    return value.strip()


# C0 and C1 controls and the bidirectional overrides and isolates, which can make a text
# display as another; a line break is allowed only in the notes.
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NOTE_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def one_line(value: str | None) -> str | None:
    if value is not None and CONTROLS.search(value):
        raise ValueError("must be one line of text, without control characters")
    return value


def note_text(value: str | None) -> str | None:
    if value is not None and NOTE_CONTROLS.search(value):
        raise ValueError("must be text without control characters")
    return value


Authority = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=300),
    AfterValidator(one_line),
]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(email_address)]
Phone = Annotated[str | None, StringConstraints(max_length=40), AfterValidator(e164)]
Link = Annotated[str | None, StringConstraints(max_length=500), AfterValidator(https_link)]
Languages = Annotated[
    list[Annotated[str, StringConstraints(max_length=3)]],
    Field(min_length=1, max_length=MAX_LANGUAGES),
    AfterValidator(language_codes),
]
WorkingHours = Annotated[
    str | None, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(one_line)
]
TimeZone = Annotated[str | None, StringConstraints(max_length=64), AfterValidator(time_zone)]
Notes = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=MAX_NOTES),
    AfterValidator(note_text),
]
StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{1,31}$")]


class ContactPointContent(RequestModel):
    """What a writer says about an authority: the same on creation and on every edit."""

    kind: ContactKind
    authority: Authority
    email: Email
    phone: Phone = None
    fax: Phone = None
    website: Link = None
    request_form_url: Link = None
    languages: Languages
    working_hours: WorkingHours = None
    time_zone: TimeZone = None
    notes: Notes = None
    audience: ContactAudience

    @field_validator("working_hours", "notes", mode="after")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class ContactPointCreate(ContactPointContent):
    state: StateCode


class ContactPointUpdate(RequestModel):
    """A partial edit; `version` (or an `If-Match` header) is the version it was based on:
    when that is no longer current the edit is refused with 409, never applied."""

    version: int | None = Field(default=None, ge=1)
    kind: ContactKind | None = None
    authority: Authority | None = None
    email: Email | None = None
    phone: Phone = None
    fax: Phone = None
    website: Link = None
    request_form_url: Link = None
    languages: Languages | None = None
    working_hours: WorkingHours = None
    time_zone: TimeZone = None
    notes: Notes = None
    audience: ContactAudience | None = None

    @model_validator(mode="after")
    def _required_stay(self) -> "ContactPointUpdate":
        return refuse_cleared_required(self)


class ContactPointRead(ResponseModel):
    id: uuid.UUID
    state: StateRef
    kind: ContactKind
    authority: str
    email: str
    phone: str | None = Field(description="E.164, e.g. +33140000000")
    phone_display: str | None = Field(description="International format, e.g. +33 1 40 00 00 00")
    fax: str | None
    fax_display: str | None
    website: str | None
    request_form_url: str | None
    languages: list[str]
    working_hours: str | None
    time_zone: str | None
    notes: str | None
    audience: ContactAudience
    tlp: Tlp = Field(description=TLP_DESCRIPTION)
    version: int
    confirmed_at: datetime
    stale: bool
    created_at: datetime
    updated_at: datetime


class ContactActor(ResponseModel):
    """Who made a change: a person of an organization, or the command line."""

    user_id: uuid.UUID | None
    name: str | None
    organization: str | None


class ContactPointVersionRead(ResponseModel):
    version: int
    change: ContactChange
    at: datetime
    actor: ContactActor
    changes: dict[str, dict[str, object]]


class KindCoverage(ResponseModel):
    kind: ContactKind
    entries: int
    stale: int


class StateCoverage(ResponseModel):
    """A State's row of the completeness view: every kind, with what is missing."""

    state: StateRef
    kinds: list[KindCoverage]
    missing: list[ContactKind]
    stale: int


REQUIRED_ON_EDIT = ("kind", "authority", "email", "languages", "audience")


def refuse_cleared_required(update: ContactPointUpdate) -> ContactPointUpdate:
    """An edit may clear phone, fax, links, hours, zone or notes, never a required field."""
    cleared = [
        name
        for name in REQUIRED_ON_EDIT
        if name in update.model_fields_set and getattr(update, name) is None
    ]
    if cleared:
        raise ValueError(f"required, cannot be cleared: {', '.join(cleared)}")
    return update
