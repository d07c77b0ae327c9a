"""The shipped reference data loads completely and idempotently."""

from sqlmodel import select

from ctcp.audit.service import AuditContext
from ctcp.core.db import Database
from ctcp.organizations import service
from ctcp.organizations.models import Organization


def test_shipped_data_has_193_states_and_the_compact() -> None:
    items = list(service.reference_organizations())
    states = [i for i in items if i.kind == "member_state"]
    entities = [i for i in items if i.kind == "compact_entity"]
    secretariat = {i.code for i in items if i.kind == "secretariat"}
    assert len(states) == 193
    assert all(len(s.code) == 3 and s.name_fr for s in states)
    assert len(entities) + len(secretariat) >= 40
    assert secretariat == {"CTED", "UNOCT"}
    codes = {i.code for i in items}
    assert len(codes) == len(items)
    assert {"UNODC", "INTERPOL", "ICAO", "IOM", "UNHCR", "OHCHR", "UNICRI", "FATF"} <= codes


async def test_loading_twice_changes_nothing_the_second_time(database: Database) -> None:
    async with database.transaction() as session:
        await service.load_reference_data(session, context=AuditContext())
    async with database.transaction() as session:
        again = await service.load_reference_data(session, context=AuditContext())
    assert (again.created, again.updated) == (0, 0)
    assert again.unchanged == len(list(service.reference_organizations()))
    async with database.sessionmaker() as session:
        france = (await session.exec(select(Organization).where(Organization.code == "FRA"))).one()
    assert (france.kind, france.name_en, france.name_fr) == ("member_state", "France", "France")


async def test_a_changed_name_is_restored_by_reloading(database: Database) -> None:
    async with database.transaction() as session:
        await service.load_reference_data(session, context=AuditContext())
        nga = (await session.exec(select(Organization).where(Organization.code == "NGA"))).one()
        nga.name_en = "Wrong name"
        session.add(nga)
    async with database.transaction() as session:
        result = await service.load_reference_data(session, context=AuditContext())
    assert result.updated == 1
