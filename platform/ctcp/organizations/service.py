"""Organizations and the reference data they start from."""

import csv
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz.guard import Access
from ctcp.core.errors import ConflictError, NotFoundError, ValidationError
from ctcp.core.pagination import Page, PageRequest, keyset, page_of
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.organizations.schemas import OrganizationCreate, OrganizationRead


@dataclass(frozen=True)
class ReferenceOrganization:
    code: str
    kind: OrganizationKind
    name_en: str
    name_fr: str


def reference_organizations() -> Iterator[ReferenceOrganization]:
    """The 193 Member States, then the Compact entities and the Secretariat, as shipped."""
    data = resources.files("ctcp.data")
    with data.joinpath("member_states.csv").open(encoding="utf-8") as states:
        for row in csv.DictReader(states):
            yield ReferenceOrganization(
                row["code"], OrganizationKind.MEMBER_STATE, row["name_en"], row["name_fr"]
            )
    with data.joinpath("compact_entities.csv").open(encoding="utf-8") as entities:
        for row in csv.DictReader(entities):
            yield ReferenceOrganization(
                row["code"], OrganizationKind(row["kind"]), row["name_en"], row["name_fr"]
            )


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int


async def load_reference_data(
    session: AsyncSession,
    *,
    context: AuditContext,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Insert or update every shipped organization by code; running it again changes nothing."""
    existing = {org.code: org for org in (await session.exec(select(Organization))).all()}
    created = updated = unchanged = 0
    for item in reference_organizations():
        organization = existing.get(item.code)
        if organization is None:
            session.add(
                Organization(
                    code=item.code, kind=item.kind.value, name_en=item.name_en, name_fr=item.name_fr
                )
            )
            created += 1
        elif (organization.kind, organization.name_en, organization.name_fr) != (
            item.kind.value,
            item.name_en,
            item.name_fr,
        ):
            organization.kind = item.kind.value
            organization.name_en = item.name_en
            organization.name_fr = item.name_fr
            session.add(organization)
            updated += 1
        else:
            unchanged += 1
        if progress:
            progress(1)
    await session.flush()
    if created or updated:
        audit.record(
            session,
            context,
            "reference_data.load",
            object_type="organization",
            details={"created": created, "updated": updated},
        )
    return LoadResult(created, updated, unchanged)


async def create_organization(
    session: AsyncSession, body: OrganizationCreate, *, context: AuditContext
) -> OrganizationRead:
    """Add an organization (the Compact's membership changes over the years)."""
    code, kind = body.code, body.kind
    if kind is OrganizationKind.MEMBER_STATE and not (len(code) == 3 and code.isalpha()):
        raise ValidationError(
            "A Member State's code is its ISO 3166-1 alpha-3 code.", loc=["body", "code"]
        )
    if await organization_by_code(session, code) is not None:
        raise ConflictError(f"An organization with code {code!r} already exists.")
    organization = Organization(code=code, kind=kind.value, name_en=body.name, name_fr=body.name_fr)
    session.add(organization)
    await session.flush()
    audit.record(
        session,
        context,
        "organization.create",
        object_type="organization",
        object_id=organization.id,
        details={"code": code, "kind": kind.value},
    )
    return OrganizationRead.model_validate(organization)


def readable_organizations() -> SelectOfScalar[Organization]:
    """Organizations are reference data: every signed-in role reads all of them."""
    return select(Organization)


@dataclass(frozen=True)
class OrganizationFilters:
    """The list's filters: a kind, and text found in the code or a name."""

    kind: OrganizationKind | None = None
    q: str | None = None


async def list_organizations(
    session: AsyncSession, access: Access, filters: OrganizationFilters, page: PageRequest
) -> Page[OrganizationRead]:
    """Member States, Compact entities and the Secretariat, by code (reference data: not
    audited)."""
    statement = readable_organizations()
    if filters.kind is not None:
        statement = statement.where(col(Organization.kind) == filters.kind.value)
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        statement = statement.where(
            or_(
                col(Organization.code).ilike(pattern),
                col(Organization.name_en).ilike(pattern),
                col(Organization.name_fr).ilike(pattern),
            )
        )
    statement = keyset(
        statement, order=[col(Organization.code)], limit=page.limit, cursor=page.cursor
    )
    rows = (await session.exec(statement)).all()
    return page_of(
        rows, limit=page.limit, key=lambda org: [org.code], item=OrganizationRead.model_validate
    )


async def read_organization(
    session: AsyncSession, access: Access, organization_id: uuid.UUID
) -> OrganizationRead:
    """One organization (404 when there is none; reference data: not audited)."""
    statement = readable_organizations().where(col(Organization.id) == organization_id)
    organization = (await session.exec(statement)).first()
    if organization is None:
        raise NotFoundError("No such organization.")
    return OrganizationRead.model_validate(organization)


async def organization_by_code(session: AsyncSession, code: str) -> Organization | None:
    result = await session.exec(select(Organization).where(col(Organization.code) == code.upper()))
    return result.first()


async def organizations_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    """The organizations with these ids, in one query (for read models that name them)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.exec(select(Organization).where(col(Organization.id).in_(wanted)))
    return {organization.id: organization for organization in rows.all()}


async def organization_codes(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The codes of these organizations, in one query of two columns (for read models)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    column = col(Organization.id)
    where = column == wanted[0] if len(wanted) == 1 else column.in_(wanted)
    rows = await session.exec(select(Organization.id, Organization.code).where(where))
    return dict(rows.all())


async def compact_entities(
    session: AsyncSession, codes: Iterable[str], *, loc: list[str | int]
) -> dict[str, Organization]:
    """The Compact entities with these codes, by code; 422 at `loc` naming any that is none."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = await session.exec(
        select(Organization).where(
            col(Organization.code).in_(wanted),
            col(Organization.kind) == OrganizationKind.COMPACT_ENTITY.value,
        )
    )
    found = {organization.code: organization for organization in rows.all()}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValidationError(
            f"Not Compact entities on the platform: {', '.join(missing)}.", loc=loc
        )
    return found
