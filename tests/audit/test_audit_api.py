"""The audit trail: written with each act, refusals kept, one chain under concurrency."""

import asyncio
import json
import threading
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from ctcp.audit import service as audit
from ctcp.audit.models import AuditEvent
from ctcp.audit.service import AuditContext, Outcome
from ctcp.core.clock import clock
from ctcp.core.db import Database, rollback
from ctcp.organizations.models import Organization
from tests.factories import audit_events, make_user, new_client, sign_in, tamper_with_audit


@pytest.fixture
async def auditor(app: FastAPI, database: Database) -> httpx.AsyncClient:
    user = await make_user(database, roles=("auditor",))
    client = new_client(app)
    await sign_in(client, user.email)
    return client


async def test_list_filters_by_actor_action_outcome_object_and_time(
    auditor: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    someone = await make_user(database)
    async with new_client(app) as client:
        await client.post(
            "/api/v1/session", json={"email": someone.email, "password": "wrong-password-1"}
        )
        await sign_in(client, someone.email)
    params = {"object_id": str(someone.id), "action": "session.create"}
    both = (await auditor.get("/api/v1/audit-events", params=params)).json()["items"]
    assert [e["outcome"] for e in both] == ["allowed", "denied"]  # newest first
    denied = await auditor.get("/api/v1/audit-events", params=params | {"outcome": "denied"})
    assert [e["outcome"] for e in denied.json()["items"]] == ["denied"]
    by_actor = await auditor.get("/api/v1/audit-events", params={"actor": str(someone.id)})
    assert {e["action"] for e in by_actor.json()["items"]} == {"session.create"}
    event = both[0]
    assert set(event) >= {
        "id",
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "outcome",
        "ip",
        "details",
        "hash",
        "prev_hash",
    }
    assert event["actor"]["user_id"] == str(someone.id)
    future = (clock.now() + timedelta(hours=1)).isoformat()
    later = await auditor.get("/api/v1/audit-events", params=params | {"since": future})
    assert later.json()["items"] == []
    earlier = await auditor.get("/api/v1/audit-events", params=params | {"until": future})
    assert len(earlier.json()["items"]) == 2


async def test_list_paginates_newest_first(auditor: httpx.AsyncClient) -> None:
    first = (await auditor.get("/api/v1/audit-events", params={"limit": 3})).json()
    second = (
        await auditor.get(
            "/api/v1/audit-events", params={"limit": 3, "cursor": first["next_cursor"]}
        )
    ).json()
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6


async def test_reading_the_audit_log_is_itself_audited(
    auditor: httpx.AsyncClient, database: Database
) -> None:
    me = (await auditor.get("/api/v1/me")).json()
    await auditor.get("/api/v1/audit-events", params={"action": "user.create"})
    reads = await audit_events(database, action="audit.read")
    assert reads[-1].actor_user_id is not None and str(reads[-1].actor_user_id) == me["id"]
    assert '"action": "user.create"' in reads[-1].details


async def test_export_streams_json_lines(auditor: httpx.AsyncClient, database: Database) -> None:
    response = await auditor.get(
        "/api/v1/audit-events/export", params={"action": "reference_data.load"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert all(line["action"] == "reference_data.load" for line in lines)
    # Whatever ran before on this database, the log holds more than ten events: each
    # read of the log is one (the check below must not hang on the tests' order).
    for _ in range(11):
        assert (await auditor.get("/api/v1/audit-events", params={"limit": 1})).status_code == 200
    everything = await auditor.get("/api/v1/audit-events/export")
    ids = [json.loads(line)["id"] for line in everything.text.splitlines()]
    assert ids == sorted(ids) and len(ids) > 10


async def test_verify_reports_an_intact_chain(auditor: httpx.AsyncClient) -> None:
    result = (await auditor.get("/api/v1/audit-events/verify")).json()
    assert result["valid"] is True and result["first_invalid_id"] is None
    assert result["checked"] > 0


async def test_verify_finds_a_row_altered_with_triggers_dropped(
    fresh_database_url: str, settings: object, backend: str
) -> None:
    from ctcp.app import create_app

    database = Database(fresh_database_url)
    async with database.transaction() as session:
        for n in range(5):
            audit.record(session, AuditContext(), f"test.event.{n}")
    async with database.sessionmaker() as session:
        victim = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "test.event.2"))
        ).one()
    await tamper_with_audit(
        database, backend, f"UPDATE audit_events SET outcome = 'denied' WHERE id = {victim.id}"
    )
    isolated = create_app(settings.model_copy(update={"database_url": fresh_database_url}))  # type: ignore[attr-defined]
    auditor = await make_user(database, roles=("auditor",))
    async with isolated.router.lifespan_context(isolated), new_client(isolated) as client:
        await sign_in(client, auditor.email)
        result = (await client.get("/api/v1/audit-events/verify")).json()
    kept = {name: result[name] for name in ("valid", "checked", "first_invalid_id")}
    assert kept == {"valid": False, "checked": victim.id - 1, "first_invalid_id": victim.id}
    assert result["checkpoint_status"] == "unprotected"  # no signing key in the test settings
    await database.dispose()


async def test_rollback_drops_the_change_and_its_event_but_keeps_the_denial(
    database: Database,
) -> None:
    async with database.sessionmaker() as session:
        session.add(Organization(code="ROLLEDBACK", kind="compact_entity", name_en="Gone"))
        await session.flush()
        audit.record(session, AuditContext(), "organization.create", object_id="ROLLEDBACK")
        audit.record(
            session,
            AuditContext(),
            "organization.create",
            outcome=Outcome.DENIED,
            object_id="ROLLEDBACK",
        )
        await rollback(session)
    events = await audit_events(database, object_id="ROLLEDBACK")
    assert [e.outcome for e in events] == ["denied"]
    async with database.sessionmaker() as session:
        gone = await session.exec(select(Organization).where(Organization.code == "ROLLEDBACK"))
        assert gone.first() is None


def test_concurrent_writers_keep_one_chain(fresh_database_url: str) -> None:
    threads, per_thread = 8, 25
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        async def run() -> None:
            database = Database(fresh_database_url)
            for i in range(per_thread):
                async with database.transaction() as session:
                    audit.record(session, AuditContext(), f"test.thread.{n}.{i}")
            await database.dispose()

        try:
            asyncio.run(run())
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []

    async def check() -> audit.VerifyResult:
        database = Database(fresh_database_url)
        async with database.sessionmaker() as session:
            result = await audit.verify_chain(session)
            count = len(
                (
                    await session.exec(
                        select(AuditEvent.id).where(AuditEvent.action.startswith("test.thread."))
                    )
                ).all()
            )  # type: ignore[attr-defined]
        await database.dispose()
        assert count == threads * per_thread
        return result

    result = asyncio.run(check())
    assert result.valid, result


async def test_group_writer_commits_many_concurrent_reads_in_one_chain(
    app: FastAPI, database: Database
) -> None:
    admin = await make_user(database, roles=("platform_admin",))
    target = await make_user(database)
    async with new_client(app) as client:
        await sign_in(client, admin.email)
        responses = await asyncio.gather(
            *[client.get(f"/api/v1/users/{target.id}") for _ in range(40)]
        )
    assert {r.status_code for r in responses} == {200}
    reads = await audit_events(database, object_id=str(target.id), action="user.read")
    assert len(reads) == 40
    async with database.sessionmaker() as session:
        assert (await audit.verify_chain(session)).valid
