"""Contact points in and out of files: CSV (export and `ctcp contacts import`, one set of
columns, so an export imports back) and vCard 4.0 (RFC 6350, written by vobject).

A CSV cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
a tab or a carriage return) is written with a leading apostrophe, as OWASP advises
against formula injection; the import takes that apostrophe off again.

Each entry carries its marking (docs/markings.md): the CSV's `tlp` column next to
`audience` (the export's own: the import reads the audience and ignores it), and in a
vCard the TLP label among its CATEGORIES — vCard 4.0 has no property for it (vCard 3.0's
CLASS was dropped by RFC 6350).
"""

import csv
import io
import re
import uuid
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pydantic
import vobject

from ctcp.contacts.schemas import ContactPointCreate, ContactPointRead
from ctcp.core.clock import clock

# The columns of the CSV export, and of the import (which ignores `tlp`, `version` and
# `stale`).
CSV_COLUMNS = (
    "id",
    "state",
    "kind",
    "authority",
    "email",
    "phone",
    "fax",
    "website",
    "request_form_url",
    "languages",
    "working_hours",
    "time_zone",
    "notes",
    "audience",
    "tlp",
    "confirmed_at",
    "version",
    "stale",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LANGUAGE_SEPARATOR = " "


def _formula_like(value: str) -> bool:
    """Starts like a formula once any leading apostrophes are set aside: a value that
    itself starts with `'=` must get its own apostrophe too, or the import, taking one
    off, would change it."""
    return value.lstrip("'").startswith(FORMULA_STARTS)


def neutralised(value: str) -> str:
    """A cell no spreadsheet evaluates: a formula-like start gets an apostrophe first."""
    return "'" + value if _formula_like(value) else value


def restored(value: str) -> str:
    """The cell as written before `neutralised`."""
    if value.startswith("'") and _formula_like(value):
        return value[1:]
    return value


def csv_row(entry: ContactPointRead) -> dict[str, str]:
    values: dict[str, object] = {
        "id": entry.id,
        "state": entry.state.code,
        "kind": entry.kind.value,
        "authority": entry.authority,
        "email": entry.email,
        "phone": entry.phone,
        "fax": entry.fax,
        "website": entry.website,
        "request_form_url": entry.request_form_url,
        "languages": LANGUAGE_SEPARATOR.join(entry.languages),
        "working_hours": entry.working_hours,
        "time_zone": entry.time_zone,
        "notes": entry.notes,
        "audience": entry.audience.value,
        "tlp": entry.tlp.value,
        "confirmed_at": entry.confirmed_at.isoformat(),
        "version": entry.version,
        "stale": "true" if entry.stale else "false",
    }
    return {
        name: neutralised("" if value is None else str(value)) for name, value in values.items()
    }


def to_csv(entries: Sequence[ContactPointRead]) -> str:
    """The entries as CSV (RFC 4180, a header row, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(csv_row(entry))
    return out.getvalue()


# What an import may leave out: without `id` an entry gets a new one, without
# `confirmed_at` it is confirmed at import; `tlp`, `version` and `stale` are the export's
# own (the marking follows the `audience` column).
OPTIONAL_IMPORT_COLUMNS = ("id", "tlp", "confirmed_at", "version", "stale")
REQUIRED_IMPORT_COLUMNS = tuple(c for c in CSV_COLUMNS if c not in OPTIONAL_IMPORT_COLUMNS)
# Languages as the export writes them (spaces), or as people type them (commas).
LANGUAGE_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class ImportProblem:
    """Why a line of an import file cannot be loaded (`field` None: the whole line)."""

    line: int  # the file's line the row starts on; the header is line 1
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.field is None else f"line {self.line}, {self.field}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ImportRow:
    """A row that passed the API's checks; its State's code is checked against the database."""

    line: int
    body: ContactPointCreate
    contact_id: uuid.UUID | None
    confirmed_at: datetime | None


def read_csv(
    lines: Iterable[bytes], *, states: Container[str]
) -> Iterator[ImportRow | ImportProblem]:
    """The rows of a CSV file with the export's columns, one at a time (the file is never
    held whole), each checked by the API's schema and its State's code against `states`
    (upper case); every problem found is yielded, with the line its row starts on. A bad
    header is reported and ends the reading."""
    reader = csv.reader(_decoded(lines), strict=True)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as error:
        yield ImportProblem(1, None, f"not a CSV header: {error}")
        return
    if header is None:
        yield ImportProblem(1, None, "the file is empty: it needs a header row")
        return
    columns = [name.strip().lower() for name in header]
    problems = header_problems(columns)
    if problems:
        yield from (ImportProblem(1, None, problem) for problem in problems)
        return
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader, None)
        except UnicodeDecodeError:
            yield ImportProblem(reader.line_num + 1, None, "not UTF-8 text")
            return
        except csv.Error as error:
            yield ImportProblem(start, None, f"not a CSV row: {error}")
            start = reader.line_num + 1
            continue
        if cells is None:
            return
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(columns):
            yield ImportProblem(
                line, None, f"{len(cells)} cells, where the header names {len(columns)} columns"
            )
            continue
        cells_by_column = {name: restored(cell) for name, cell in zip(columns, cells, strict=True)}
        yield from _row(line, cells_by_column, states)


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 lines, without the byte-order mark a spreadsheet may put first."""
    for number, line in enumerate(lines):
        text = line.decode("utf-8")
        yield text.removeprefix("\ufeff") if number == 0 else text


def header_problems(columns: Sequence[str]) -> list[str]:
    """What is wrong with a header: a column twice, one the export does not have, one missing."""
    problems = []
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        problems.append(f"columns named twice: {', '.join(twice)}")
    unknown = [name for name in dict.fromkeys(columns) if name not in CSV_COLUMNS]
    if unknown:
        problems.append(
            f"unknown columns: {', '.join(repr(name) for name in unknown)} "
            f"(the export's columns are {', '.join(CSV_COLUMNS)})"
        )
    missing = [name for name in REQUIRED_IMPORT_COLUMNS if name not in columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    return problems


def _row(
    line: int, cells: dict[str, str], states: Container[str]
) -> Iterator[ImportRow | ImportProblem]:
    """The row, or each of its problems (every field is checked, not only the first)."""
    problems: list[ImportProblem] = []
    values: dict[str, object] = {}
    for name, field in ContactPointCreate.model_fields.items():
        cell = cells[name].strip()
        value: object = cell
        if name == "languages":
            value = [code for code in LANGUAGE_SPLIT.split(cell) if code]
        if value:
            values[name] = value
        elif field.is_required():
            problems.append(ImportProblem(line, name, "required"))
    body: ContactPointCreate | None = None
    try:
        body = ContactPointCreate.model_validate(values)
    except pydantic.ValidationError as error:
        required = {problem.field for problem in problems}
        for item in error.errors():
            where = str(item["loc"][0]) if item["loc"] else None
            if where not in required:
                message = str(item["msg"]).removeprefix("Value error, ")
                problems.append(ImportProblem(line, where, message))
    code = cells["state"].strip()
    named = {problem.field for problem in problems}
    if code and "state" not in named and code.upper() not in states:
        problems.append(
            ImportProblem(line, "state", f"{code!r} is not a Member State on the platform")
        )
    contact_id = _contact_id(line, cells.get("id", ""), problems)
    confirmed_at = _confirmed_at(line, cells.get("confirmed_at", ""), problems)
    if body is None or problems:
        yield from problems
        return
    yield ImportRow(line, body, contact_id, confirmed_at)


def _contact_id(line: int, cell: str, problems: list[ImportProblem]) -> uuid.UUID | None:
    if not cell.strip():
        return None
    try:
        return uuid.UUID(cell.strip())
    except ValueError:
        problems.append(ImportProblem(line, "id", "not a UUID (leave it empty for a new entry)"))
        return None


def _confirmed_at(line: int, cell: str, problems: list[ImportProblem]) -> datetime | None:
    """The time an entry was last confirmed, as the export writes it (ISO 8601; UTC when
    no offset is given); never in the future."""
    if not cell.strip():
        return None
    try:
        value = datetime.fromisoformat(cell.strip())
    except ValueError:
        problems.append(
            ImportProblem(
                line, "confirmed_at", "not an ISO 8601 date and time (2026-03-01T09:00:00+00:00)"
            )
        )
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if value > clock.now():
        problems.append(ImportProblem(line, "confirmed_at", "in the future"))
        return None
    return value


KIND_TITLES = {
    "asset_freeze": "Authority for third-party asset-freeze requests",
    "mla_central_authority": "Central authority for mutual legal assistance",
    "extradition_central_authority": "Central authority for extradition",
    "police_24_7": "24/7 police contact point",
    "financial_intelligence_unit": "Financial intelligence unit",
    "ct_coordinator": "Counter-terrorism coordinator",
}


def uri_for_vcard(link: str) -> str:
    """A link as a vCard URI value: vCard escapes `;` `,` and `\\` in text but not in a
    URI, and readers differ on it, so they are percent-encoded (the same resource)."""
    return link.replace("\\", "%5C").replace(";", "%3B").replace(",", "%2C")


def vcard(entry: ContactPointRead) -> str:
    """One vCard 4.0 of an organization (KIND:org), its text escaped by vobject."""
    card = vobject.vCard()
    card.add("version").value = "4.0"
    card.add("kind").value = "org"
    card.add("fn").value = entry.authority
    card.add("org").value = [entry.authority]
    card.add("title").value = KIND_TITLES[entry.kind.value]
    card.add("uid").value = f"urn:uuid:{entry.id}"
    card.add("email").value = entry.email
    for number, kind in ((entry.phone, "voice"), (entry.fax, "fax")):
        if number:
            tel = card.add("tel")
            tel.value = f"tel:{number}"
            tel.params["VALUE"] = ["uri"]
            tel.params["TYPE"] = [kind]
    for link in (entry.website, entry.request_form_url):
        if link:
            card.add("url").value = uri_for_vcard(link)
    for position, language in enumerate(entry.languages, start=1):
        lang = card.add("lang")
        lang.value = language
        lang.params["PREF"] = [str(position)]
    if entry.time_zone:
        card.add("tz").value = entry.time_zone
    card.add("categories").value = [entry.kind.value, entry.state.code, entry.tlp.value]
    note = " — ".join(part for part in (entry.working_hours, entry.notes) if part)
    if note:
        card.add("note").value = note
    card.add("rev").value = entry.updated_at.strftime("%Y%m%dT%H%M%SZ")
    serialized: str = card.serialize()
    return serialized


def to_vcards(entries: Sequence[ContactPointRead]) -> str:
    return "".join(vcard(entry) for entry in entries)
