"""Mixed traffic at scale: guarded + audited endpoints next to their unguarded baselines.

Builds (or reuses) a populated database, starts the app under uvicorn (`bench_app:create`,
the shipped app plus baseline routes that exist only there) with 1 or 2 workers, and
drives it from a separate process (a raw asyncio HTTP/1.1 keep-alive client: cheaper per
request than httpx, so the generator takes less of the CPU the app is measured on):

- entity API clients (OAuth client credentials, bearer tokens) listing publications
  (`?limit=50`) and reading single publications;
- State focal points (session cookies) listing and reading their reports;
- analysts drafting reports (POST) and editing drafts (PUT): audited writes;
- consent changes: a consent officer records full consent, the State's focal point
  narrows it, then withdraws it (CSRF headers; each report owned by one client);
- in the same run, the baselines: the same queries without guard and audit.

Phases: `mixed` (all of the above at --clients), `writes` (audited writes only, then the
baseline write), `reads` (single-object read: guarded only vs baseline only, interleaved
rounds), `list` (a list page of 50 at --list-clients). For each endpoint class:
requests/s, p50, p99, errors; the ratios; RSS per worker at the end; and the audit chain
verified afterwards.

    PYTHONPATH=. .venv/bin/python benchmarks/load.py [--database postgresql|sqlite]
        [--workers 2] [--clients 32] [--duration 20] [--dataset small|medium|large]
        [--database-url URL]  # an already-populated database (actors are added to it)
        [--phases mixed,writes,reads,list] [--rounds 3] [--json FILE] [--keep]
        [--spy DIR]  # py-spy samples of every worker in every phase, and their top frames
"""

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

SCALES = {
    # users, reports (8 sections, 2 recommendations each)
    "small": (300, 150),
    "medium": (20_000, 3_000),
    "large": (20_000, 10_000),
}
AREAS = (
    "legislation",
    "counter_financing",
    "law_enforcement",
    "border_management",
    "international_cooperation",
    "countering_violent_extremism",
    "human_rights",
    "critical_infrastructure",
)
TARGETS = {
    "read_ratio": 0.70,
    "read_rps": 1000.0,
    "read_p99_ms": 100.0,
    "list_p50_ms": 15.0,
    "list_p99_ms": 60.0,
    "writes_rps": 500.0,
    "rss_mb": 200.0,
}

# ---------------------------------------------------------------------------------------
# The generator: stdlib only, run in its own process (`load.py --drive SPEC`).
# ---------------------------------------------------------------------------------------


class Http:
    """One HTTP/1.1 keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(
        self, method: str, path: str, headers: str = "", body: bytes = b""
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            self.writer.write(head.encode() + body)
            status_line = await self.reader.readline()
            if not status_line:  # a kept-alive connection the server had closed
                await self.close()
                if attempt == 1:
                    continue
                raise ConnectionError("the server closed the connection")
            length, chunked, close = 0, False, False
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "connection" and "close" in value.lower():
                    close = True
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readline()
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readline()
                payload = b"".join(parts)
            else:
                payload = await self.reader.readexactly(length)
            if close:
                await self.close()
            return int(status_line.split()[1]), payload
        raise AssertionError("unreachable")


class Tally:
    """Latencies, statuses and unexpected answers per endpoint class."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.statuses: dict[str, Counter[int]] = {}
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}

    def add(self, name: str, status: int, expected: int, seconds: float, body: bytes) -> None:
        self.latencies.setdefault(name, []).append(seconds)
        self.statuses.setdefault(name, Counter())[status] += 1
        if status != expected:
            self.errors[name] += 1
            samples = self.samples.setdefault(name, [])
            if len(samples) < 3:
                samples.append(f"{status}: {body[:300].decode(errors='replace')}")

    def fail(self, name: str, error: BaseException) -> None:
        self.errors[name] += 1
        self.statuses.setdefault(name, Counter())[0] += 1
        samples = self.samples.setdefault(name, [])
        if len(samples) < 3:
            samples.append(f"{type(error).__name__}: {error}")

    def summary(self, seconds: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(set(self.latencies) | set(self.errors)):
            values = sorted(self.latencies.get(name, []))
            n = len(values)
            out[name] = {
                "requests": n,
                "errors": self.errors[name],
                "rps": n / seconds if seconds else 0.0,
                "p50_ms": values[n // 2] * 1000 if n else None,
                "p99_ms": values[min(n - 1, int(n * 0.99))] * 1000 if n else None,
                "mean_ms": statistics.fmean(values) * 1000 if n else None,
                "statuses": {str(k): v for k, v in sorted(self.statuses.get(name, {}).items())},
                "samples": self.samples.get(name, []),
            }
        return out


class Driver:
    """Runs one phase's clients until the deadline; requests in flight at it still count."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.tally = Tally()
        self.stop = 0.0

    async def call(
        self,
        http: Http,
        name: str,
        method: str,
        path: str,
        expected: int,
        headers: str = "",
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(
                http.request(method, path, headers, body), timeout=30
            )
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
            self.tally.fail(name, error)
            await http.close()
            return 0, b""
        self.tally.add(name, status, expected, time.perf_counter() - started, payload)
        return status, payload

    def running(self) -> bool:
        return time.monotonic() < self.stop

    def http(self) -> Http:
        return Http("127.0.0.1", self.spec["port"])

    # --- personas --------------------------------------------------------------------

    async def entity(self, number: int, mix: dict[str, float]) -> None:
        """An entity's system: a bearer token, then publications (guarded and baseline)."""
        rng = random.Random(number)
        entity = self.spec["entities"][number % len(self.spec["entities"])]
        ids = self.spec["publication_ids"]
        http = self.http()
        token = entity.get("token", "")
        if self.spec["phase"].get("fresh_tokens") or not token:
            basic = base64.b64encode(f"{entity['client_id']}:{entity['secret']}".encode())
            status, payload = await self.call(
                http,
                "oauth.token",
                "POST",
                "/oauth/token",
                200,
                f"Authorization: Basic {basic.decode()}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n",
                b"grant_type=client_credentials&scope=publications%3Aread",
            )
            if status != 200:
                return
            token = json.loads(payload)["access_token"]
        bearer = f"Authorization: Bearer {token}\r\n"
        as_code = entity["code"]
        names, weights = list(mix), list(mix.values())
        while self.running():
            kind = rng.choices(names, weights)[0]
            if kind == "pub.read":
                path = f"/api/v1/publications/{rng.choice(ids)}"
                await self.call(http, kind, "GET", path, 200, bearer)
            elif kind == "pub.read.baseline":
                path = f"/bench/publications/{rng.choice(ids)}?as={as_code}"
                await self.call(http, kind, "GET", path, 200, bearer)
            elif kind == "pub.list":
                await self.call(http, kind, "GET", "/api/v1/publications?limit=50", 200, bearer)
            elif kind == "pub.list.baseline":
                path = f"/bench/publications?limit=50&as={as_code}"
                await self.call(http, kind, "GET", path, 200, bearer)
        await http.close()

    async def focal(self, number: int, mix: dict[str, float]) -> None:
        """A State's focal point reading the State's reports (guarded and baseline)."""
        rng = random.Random(1000 + number)
        person = self.spec["focal"][number % len(self.spec["focal"])]
        ids, code = person["report_ids"], person["code"]
        cookie = f"Cookie: ctcp_session={person['token']}\r\n"
        http = self.http()
        names, weights = list(mix), list(mix.values())
        while self.running():
            kind = rng.choices(names, weights)[0]
            if kind == "report.read":
                path = f"/api/v1/reports/{rng.choice(ids)}"
            elif kind == "report.read.baseline":
                path = f"/bench/reports/{rng.choice(ids)}?as={code}"
            elif kind == "report.list":
                path = "/api/v1/reports?limit=50"
            else:
                path = f"/bench/reports?limit=50&as={code}"
            await self.call(http, kind, "GET", path, 200, cookie)
        await http.close()

    def _draft(self, rng: random.Random, state: str, edit: int) -> bytes:
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
        sections = [
            {
                "area": area,
                "title": area.replace("_", " ").capitalize(),
                "body": f"Draft {edit}: " + " ".join(rng.choices(WORDS, k=90)),
                "recommendations": [
                    {"text": " ".join(rng.choices(WORDS, k=20)), "priority": "medium"}
                ],
            }
            for area in AREAS
        ]
        body = {
            "title": f"Assessment visit {start.year} ({edit})",
            "kind": "comprehensive",
            "visit_start": start.isoformat(),
            "visit_end": (start + timedelta(days=4)).isoformat(),
            "sections": sections,
        }
        if edit == 0:
            body["state"] = state
        return json.dumps(body).encode()

    async def analyst(self, number: int, baseline: bool = False) -> None:
        """Drafts a report, then edits it twice (all audited); baseline: unaudited drafts."""
        rng = random.Random(2000 + number)
        person = self.spec["analysts"][number % len(self.spec["analysts"])]
        states = self.spec["analyst_states"]
        headers = (
            f"Cookie: ctcp_session={person['token']}\r\nX-CSRF-Token: {person['csrf']}\r\n"
            "Content-Type: application/json\r\n"
        )
        http = self.http()
        while self.running():
            state = rng.choice(states)
            if baseline:
                path = f"/bench/reports?as={self.spec['secretariat']}"
                await self.call(
                    http, "report.create.baseline", "POST", path, 201, headers,
                    self._draft(rng, state, 0),
                )  # fmt: skip
                continue
            status, payload = await self.call(
                http, "report.create", "POST", "/api/v1/reports", 201, headers,
                self._draft(rng, state, 0),
            )  # fmt: skip
            if status != 201:
                continue
            report_id = json.loads(payload)["id"]
            for edit in (1, 2):
                if not self.running():
                    break
                await self.call(
                    http, "report.update", "PUT", f"/api/v1/reports/{report_id}", 200, headers,
                    self._draft(rng, state, edit),
                )  # fmt: skip
        await http.close()

    async def consent(self, number: int) -> None:
        """On each report this client alone owns, in turn: an officer records full consent,
        the State's focal point narrows it, then withdraws it (so every step is allowed)."""
        if number >= len(self.spec["consent"]):
            return  # fewer States with adopted reports than consent clients
        group = self.spec["consent"][number]
        officer, state = group["officer"], group["state"]

        def headers(person: dict[str, str]) -> str:
            return (
                f"Cookie: ctcp_session={person['token']}\r\nX-CSRF-Token: {person['csrf']}\r\n"
                "Content-Type: application/json\r\n"
            )

        http = self.http()
        for report in group["reports"]:
            # Set-up, not measured: the latest decision, which broadening must name.
            _, payload = await http.request(
                "GET", f"/api/v1/reports/{report['id']}/consent", headers(officer), b""
            )
            history = json.loads(payload)["history"]
            report["sequence"] = history[-1]["sequence"] if history else 0
        while self.running():
            for report in group["reports"]:
                base = f"/api/v1/reports/{report['id']}/consent"
                if not self.running():
                    break
                # Broadening names the latest decision seen: the one this client made last.
                full = {
                    "scope": "full",
                    "audience": "compact",
                    "reference": "NV/2026/1",
                    "after_sequence": report["sequence"],
                }
                status, payload = await self.call(
                    http, "consent.record", "POST", base, 201, headers(officer),
                    json.dumps(full).encode(),
                )  # fmt: skip
                if status == 201:
                    report["sequence"] = json.loads(payload)["sequence"]
                if not self.running():
                    break
                narrower = {"scope": "partial", "sections": [report["section"]]}
                status, payload = await self.call(
                    http, "consent.narrow", "POST", base, 201, headers(state),
                    json.dumps(narrower).encode(),
                )  # fmt: skip
                if status == 201:
                    report["sequence"] = json.loads(payload)["sequence"]
                if not self.running():
                    break
                status, payload = await self.call(
                    http, "consent.withdraw", "POST", f"{base}/withdraw", 201, headers(state),
                    b'{"reason": "Benchmark withdrawal"}',
                )  # fmt: skip
                if status == 201:
                    report["sequence"] = json.loads(payload)["sequence"]
        await http.close()

    async def run(self, phase: dict[str, Any]) -> dict[str, Any]:
        self.stop = time.monotonic() + phase["duration"]
        cpu = time.process_time()
        started = time.monotonic()
        tasks: list[Awaitable[None]] = []
        for persona, count in phase["personas"].items():
            for number in range(count):
                if persona == "entity":
                    tasks.append(self.entity(number, phase["entity_mix"]))
                elif persona == "focal":
                    tasks.append(self.focal(number, phase["focal_mix"]))
                elif persona == "analyst":
                    tasks.append(self.analyst(number))
                elif persona == "analyst.baseline":
                    tasks.append(self.analyst(number, baseline=True))
                elif persona == "consent":
                    tasks.append(self.consent(number))
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
        return {
            "seconds": seconds,
            "generator_cpu_s": time.process_time() - cpu,
            "classes": self.tally.summary(seconds),
        }


_TEXT = (
    "the national authorities reported progress on legislation criminalizing terrorist "
    "financing border controls information sharing prosecution judicial cooperation "
    "capacity training database screening passenger data risk assessment strategy "
    "community engagement prevention rehabilitation reintegration oversight human rights "
    "safeguards inter-agency coordination mutual legal assistance extradition critical "
    "infrastructure protection cyber incident response exercise recommended priority "
    "further steps implementation review mechanism resources specialized unit"
)
WORDS = tuple(_TEXT.split())


def drive_main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    print(json.dumps(asyncio.run(Driver(spec).run(spec["phase"]))))


# ---------------------------------------------------------------------------------------
# The data set and the actors (parent process).
# ---------------------------------------------------------------------------------------


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randrange(90, 160))) + "." for _ in range(count)]


async def build_reports(url: str, reports: int, *, seed: int = 2026) -> dict[str, int]:
    """Adopted reports of 8 sections (2 recommendations each) with consent histories: a
    third full (most to the Compact), a third partial, a third none or withdrawn; written
    with Core inserts (the platform's services are what the load exercises, not this)."""
    from sqlalchemy import insert, text
    from sqlmodel import col, select

    from ctcp.consent.models import ConsentEvent, Publication, PublicationSection
    from ctcp.core.db import Database
    from ctcp.organizations.models import Organization
    from ctcp.reports.models import Recommendation, ReportSection, VisitReport

    rng = random.Random(seed)
    paragraphs = _paragraphs(rng, 400)
    database = Database(url)
    async with database.read_sessionmaker() as session:
        states = list(
            (
                await session.exec(
                    select(Organization).where(col(Organization.kind) == "member_state")
                )
            ).all()
        )
    counts: Counter[str] = Counter()
    batch = 500
    for first in range(0, reports, batch):
        rows: dict[str, list[dict[str, Any]]] = {
            "reports": [],
            "sections": [],
            "recommendations": [],
            "events": [],
            "publications": [],
            "publication_sections": [],
        }
        for n in range(first, min(reports, first + batch)):
            state = states[n % len(states)] if n < len(states) * 4 else rng.choice(states)
            start = date(2012, 1, 1) + timedelta(days=rng.randrange(14 * 365))
            created = datetime(start.year, start.month, start.day, tzinfo=UTC)
            adopted = n % 10 != 9
            report_id = uuid.uuid4()
            rows["reports"].append(
                {
                    "id": report_id,
                    "lineage_id": uuid.uuid4(),
                    "version": 1,
                    "state_id": state.id,
                    "kind": rng.choice(("comprehensive", "focused", "follow_up")),
                    "title": f"{state.name_en}: assessment visit {start.year}",
                    "language": "en",
                    "visit_start_date": start,
                    "visit_end_date": start + timedelta(days=4),
                    "status": "adopted" if adopted else "draft",
                    "created_at": created,
                    "adopted_at": created + timedelta(days=60) if adopted else None,
                }
            )
            sections = []
            for position, area in enumerate(AREAS):
                section = {
                    "id": uuid.uuid4(),
                    "report_id": report_id,
                    "area": area,
                    "title": area.replace("_", " ").capitalize(),
                    "body": rng.choice(paragraphs),
                    "position": position,
                }
                sections.append(section)
                for index in range(2):
                    rows["recommendations"].append(
                        {
                            "id": uuid.uuid4(),
                            "section_id": section["id"],
                            "text": rng.choice(paragraphs)[:300],
                            "priority": rng.choice(("high", "medium", "low")),
                            "position": index,
                        }
                    )
            rows["sections"] += sections
            counts["reports"] += 1
            if not adopted or (n % 3 == 2 and n % 2 == 0):
                continue  # drafts, and a sixth with no consent at all
            decided = created + timedelta(days=90)
            if n % 3 == 0:
                scope, chosen = "full", sections
            elif n % 3 == 1:
                scope, chosen = "partial", rng.sample(sections, rng.randrange(2, 6))
            else:
                scope, chosen = "full", sections  # withdrawn below
            audience = rng.choices(("compact", "member_states", "public"), (7, 2, 1))[0]
            event_id = uuid.uuid4()
            rows["events"].append(
                {
                    "id": event_id,
                    "report_id": report_id,
                    "sequence": 1,
                    "scope": scope,
                    "section_ids": sorted(str(s["id"]) for s in chosen)
                    if scope == "partial"
                    else [],
                    "audience": audience,
                    "share_needs": False,
                    "reference": f"NV/{start.year}/{n}",
                    "reason": None,
                    "withdrawal": False,
                    "effective_at": decided,
                    "recorded_at": decided,
                    "on_behalf_of": state.id,
                }
            )
            withdrawn = n % 3 == 2
            publication_id = uuid.uuid4()
            rows["publications"].append(
                {
                    "id": publication_id,
                    "report_id": report_id,
                    "consent_event_id": event_id,
                    "state_id": state.id,
                    "audience": audience,
                    "title": f"{state.name_en}: assessment visit {start.year}",
                    "published_at": decided,
                    "revoked_at": decided + timedelta(days=200) if withdrawn else None,
                }
            )
            for section in sorted(chosen, key=lambda s: s["position"]):
                rows["publication_sections"].append(
                    {
                        "id": uuid.uuid4(),
                        "publication_id": publication_id,
                        "section_id": section["id"],
                        "area": section["area"],
                        "title": section["title"],
                        "body": section["body"],
                        "position": section["position"],
                    }
                )
            counts["consent_events"] += 1
            counts["publications"] += 0 if withdrawn else 1
            if withdrawn:
                rows["events"].append(
                    {
                        "id": uuid.uuid4(),
                        "report_id": report_id,
                        "sequence": 2,
                        "scope": "none",
                        "section_ids": [],
                        "audience": None,
                        "share_needs": False,
                        "reference": None,
                        "reason": "Withdrawn by the State",
                        "withdrawal": True,
                        "effective_at": decided + timedelta(days=200),
                        "recorded_at": decided + timedelta(days=200),
                        "on_behalf_of": state.id,
                    }
                )
                counts["consent_events"] += 1
        async with database.transaction() as session:
            for model, key in (
                (VisitReport, "reports"),
                (ReportSection, "sections"),
                (Recommendation, "recommendations"),
                (ConsentEvent, "events"),
                (Publication, "publications"),
                (PublicationSection, "publication_sections"),
            ):
                for start_row in range(0, len(rows[key]), 2000):
                    chunk = rows[key][start_row : start_row + 2000]
                    if chunk:
                        await (await session.connection()).execute(insert(model), chunk)
    if database.backend == "postgresql":
        async with database.transaction() as session:
            await (await session.connection()).execute(text("ANALYZE"))
    await database.dispose()
    return dict(counts)


async def make_actors(
    url: str, secret: bytes, *, entities: int, focal: int, analysts: int, consent: int
) -> dict[str, Any]:
    """Signed-in people, API clients and the ids they work on, added to any populated
    database: nothing here depends on how the data set was built."""
    import pyotp
    from population import session_for
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
    from sqlalchemy import func
    from sqlmodel import col, select

    from ctcp.audit.service import AuditContext
    from ctcp.consent.models import Publication
    from ctcp.consent.service import live
    from ctcp.core.clock import clock
    from ctcp.core.db import Database
    from ctcp.identity import mfa, tokens
    from ctcp.identity.models import User, UserRole
    from ctcp.oauth import service as oauth_service
    from ctcp.organizations.models import Organization
    from ctcp.reports.models import ReportSection, VisitReport

    database = Database(url)
    password_hash = PasswordHash(
        (Argon2Hasher(memory_cost=19456, time_cost=2, parallelism=1),)
    ).hash(secrets.token_urlsafe(16))
    tag = secrets.token_hex(3)

    async def person(organization: Organization, role: str, n: int) -> dict[str, str]:
        async with database.transaction() as session:
            user = User(
                email=f"load-{tag}-{role}-{n}@{organization.code.lower()}.example",
                name=f"Load {role} {n}",
                organization_id=organization.id,
                password_hash=password_hash,
                totp_secret_encrypted=mfa.encrypt_secret(pyotp.random_base32(), secret),
                mfa_enabled_at=clock.now(),
            )
            session.add(user)
            await session.flush()
            session.add(UserRole(user_id=user.id, role=role))
        token = await session_for(database, user.id)
        return {"token": token, "csrf": tokens.csrf_token_for(token, secret)}

    async with database.read_sessionmaker() as session:
        organizations = list((await session.exec(select(Organization))).all())
        by_id = {o.id: o for o in organizations}
        adopted = (
            await session.exec(
                select(VisitReport.state_id, func.count())
                .where(col(VisitReport.status) == "adopted")
                .group_by(col(VisitReport.state_id))
                .order_by(func.count().desc())
            )
        ).all()
    if not organizations or not adopted:
        raise SystemExit("the database holds no organizations or no adopted reports")
    consent_states = [by_id[state_id] for state_id, _ in adopted[:consent]]
    focal_states = [by_id[state_id] for state_id, _ in adopted[consent : consent + focal]]
    if len(focal_states) < focal:
        focal_states += consent_states[: focal - len(focal_states)]
    secretariat = next(o for o in organizations if o.code == "CTED")
    entity_orgs = sorted(
        (o for o in organizations if o.kind == "compact_entity"), key=lambda o: o.code
    )[:entities]
    spec: dict[str, Any] = {"secretariat": secretariat.code, "entities": []}
    for organization in entity_orgs:
        async with database.transaction() as session:
            issued = await oauth_service.create_client(
                session,
                organization=organization,
                name=f"Load {tag}",
                scopes=("publications:read",),
                context=AuditContext(),
            )
        spec["entities"].append(
            {
                "code": organization.code,
                "client_id": issued.client.client_id,
                "secret": issued.secret,
            }
        )
    excluded = [s.id for s in consent_states]
    async with database.read_sessionmaker() as session:
        readable = (
            select(Publication.id)
            .where(live(clock.now()))
            .where(col(Publication.audience).in_(("compact", "member_states", "public")))
            .where(col(Publication.state_id).not_in(excluded))
            .order_by(func.random())
            .limit(5000)
        )
        spec["publication_ids"] = [str(i) for i in (await session.exec(readable)).all()]
        spec["focal"] = []
        for n, state in enumerate(focal_states):
            ids = (
                await session.exec(
                    select(VisitReport.id)
                    .where(col(VisitReport.state_id) == state.id)
                    .order_by(func.random())
                    .limit(500)
                )
            ).all()
            spec["focal"].append(
                {"code": state.code, "report_ids": [str(i) for i in ids]}
                | await person(state, "state_focal_point", n)
            )
        officer = await person(secretariat, "consent_officer", 0)
        spec["consent"] = []
        for n, state in enumerate(consent_states):
            first_sections: dict[uuid.UUID, uuid.UUID] = {}
            for report_id, section_id in (
                await session.exec(
                    select(VisitReport.id, ReportSection.id)
                    .join(ReportSection, col(ReportSection.report_id) == col(VisitReport.id))
                    .where(col(VisitReport.state_id) == state.id)
                    .where(col(VisitReport.status) == "adopted")
                    .where(col(ReportSection.position) == 0)
                    .limit(40)
                )
            ).all():
                first_sections.setdefault(report_id, section_id)
            reports = list(first_sections.items())
            spec["consent"].append(
                {
                    "code": state.code,
                    "officer": officer,
                    "state": await person(state, "state_focal_point", 100 + n),
                    "reports": [{"id": str(r), "section": str(s)} for r, s in reports],
                }
            )
    spec["analysts"] = [await person(secretariat, "cted_analyst", n) for n in range(analysts)]
    spec["analyst_states"] = [s.code for s in focal_states] or [consent_states[0].code]
    if not spec["publication_ids"]:
        raise SystemExit("no live publication an entity may read outside the consent States")
    await database.dispose()
    return spec


async def dataset_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from ctcp.audit.models import AuditEvent
    from ctcp.consent.models import Publication
    from ctcp.core.db import Database
    from ctcp.identity.models import User
    from ctcp.organizations.models import Organization
    from ctcp.reports.models import ReportSection, VisitReport

    database = Database(url)
    counts = {}
    async with database.read_sessionmaker() as session:
        for name, model in (
            ("organizations", Organization),
            ("users", User),
            ("reports", VisitReport),
            ("report_sections", ReportSection),
            ("publications", Publication),
            ("audit_events", AuditEvent),
        ):
            statement = select(func.count()).select_from(model)
            counts[name] = (await (await session.connection()).execute(statement)).scalar_one()
    await database.dispose()
    return counts


async def verify_audit(url: str) -> dict[str, Any]:
    from ctcp.audit import service as audit
    from ctcp.core.db import Database

    database = Database(url)
    started = time.monotonic()
    async with database.read_sessionmaker() as session:
        result = await audit.verify_chain(session)
    await database.dispose()
    return {
        "valid": result.valid,
        "checked": result.checked,
        "first_invalid_id": result.first_invalid_id,
        "seconds": time.monotonic() - started,
    }


# ---------------------------------------------------------------------------------------
# The server, processes, phases.
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            children.append(int(proc.name))
            children += _descendants(int(proc.name))
    return children


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes (spawned children), or the server itself with 1 worker."""
    workers = []
    for pid in _descendants(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(pid)
    return workers or [server_pid]


def memory_of(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return {"rss_mb": fields.get("VmRSS", 0.0), "peak_rss_mb": fields.get("VmHWM", 0.0)}


def cpu_seconds(pids: list[int], pattern: bytes | None = None) -> float:
    """User + system CPU of `pids`, or of the PostgreSQL backends whose title has `pattern`."""
    if pattern is not None:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    if cmdline.startswith(b"postgres:") and pattern in cmdline:
                        pids.append(int(proc.name))
                except OSError:
                    continue
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(
        self, url: str, secret_key: str, var_dir: Path, workers: int, profile: str | None
    ) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "CTCP_DATABASE_URL": url,
            "CTCP_SECRET_KEY": secret_key,
            "CTCP_VAR_DIR": str(var_dir),
            "CTCP_RATE_LIMIT_PER_CLIENT": "1000000000",
            "CTCP_RATE_LIMIT_PER_ADDRESS": "1000000000",
            "PYTHONPATH": str(BENCHMARKS),
        }
        env.pop("CTCP_SMTP_HOST", None)
        if profile:
            env["CTCP_BENCH_PROFILE"] = profile
        self.log = (var_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_app:create",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: see {var_dir / 'server.log'}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
            except OSError:
                time.sleep(0.2)
                continue
            self.workers = worker_pids(self.process.pid)
            if workers == 1 or len(self.workers) >= workers:
                break
        time.sleep(1.0 if workers > 1 else 0.0)  # the other workers finish their startup

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def fetch_token(port: int, entity: dict[str, str]) -> str:
    """An access token for an entity's client (client credentials, HTTP Basic)."""
    basic = base64.b64encode(f"{entity['client_id']}:{entity['secret']}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/oauth/token",
        data=b"grant_type=client_credentials&scope=publications%3Aread",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        token: str = json.loads(response.read())["access_token"]
    return token


def start_spies(workers: list[int], phase: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each worker for the phase's duration (collapsed stacks, one file each)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder = Path(phase["spy"])
    folder.mkdir(parents=True, exist_ok=True)
    label = phase["label"].replace(" ", "-")
    seconds = str(max(1, int(phase["duration"])))
    return [
        subprocess.Popen(
            [
                *(spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking"),
                *("--format", "raw", "--duration", seconds),
                *("--output", str(folder / f"{label}-worker-{pid}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]


def top_frames(files: list[Path], count: int = 12) -> list[tuple[str, float]]:
    """The functions of the app and its libraries holding the most samples (inclusive)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            total += int(samples)
            # "function (path:line)" -> "function (path)": one entry per function.
            frames = {frame.rpartition(":")[0] + ")" for frame in stack.split(";")}
            for frame in frames:
                if "ctcp/core/http.py" in frame:  # middleware: around every request
                    continue
                if any(part in frame for part in ("ctcp/", "sqlalchemy/", "asyncpg/")):
                    inclusive[frame] += int(samples)
    return [(frame, 100 * n / total) for frame, n in inclusive.most_common(count)] if total else []


def run_phase(
    server: Server,
    actors: dict[str, Any],
    phase: dict[str, Any],
    var_dir: Path,
    database_name: str | None,
) -> dict[str, Any]:
    """One phase, driven from a new generator process; CPU per request of app and DB."""
    spec_file = var_dir / "spec.json"
    spec_file.write_text(json.dumps({**actors, "port": server.port, "phase": phase}))
    app_before = cpu_seconds(server.workers)
    pattern = f" {database_name} ".encode() if database_name else None
    db_before = cpu_seconds([], pattern) if pattern else 0.0
    spies = start_spies(server.workers, phase) if phase.get("spy") else []
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--drive", str(spec_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        # Phases last seconds to a minute: a generator still running after ten has hung,
        # and the benchmark (or the smoke test in CI) fails instead of waiting forever.
        timeout=600,
    )
    for spy in spies:
        spy.wait(timeout=60)
    if output.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{output.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(output.stdout)
    if spies:
        result["profile"] = top_frames([Path(spy.args[-1]) for spy in spies])
    requests = sum(c["requests"] for c in result["classes"].values()) or 1
    result["app_cpu_us"] = (cpu_seconds(server.workers) - app_before) / requests * 1e6
    if pattern:
        result["db_cpu_us"] = (cpu_seconds([], pattern) - db_before) / requests * 1e6
    result["generator_cpu_us"] = result["generator_cpu_s"] / requests * 1e6
    return result


def split(clients: int) -> dict[str, int]:
    """The mixed traffic's clients: entity systems, focal points, analysts, consent."""
    entity = max(1, round(clients * 0.45))
    focal = max(1, round(clients * 0.25))
    analyst = max(1, round(clients * 0.15))
    consent = max(1, clients - entity - focal - analyst)
    return {"entity": entity, "focal": focal, "analyst": analyst, "consent": consent}


MIXED_ENTITY = {"pub.read": 4, "pub.list": 1, "pub.read.baseline": 4, "pub.list.baseline": 1}
MIXED_FOCAL = {"report.read": 3, "report.list": 1, "report.read.baseline": 3,
               "report.list.baseline": 1}  # fmt: skip


def phases(options: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    wanted = options.phases.split(",")
    duration, clients = options.duration, options.clients
    plan: list[tuple[str, dict[str, Any]]] = []
    common = {"entity_mix": MIXED_ENTITY, "focal_mix": MIXED_FOCAL}
    if options.warmup > 0:
        plan.append(
            (
                "warm-up",
                {
                    **common,
                    "duration": options.warmup,
                    "personas": split(clients),
                    "fresh_tokens": True,
                },
            )
        )
    if "mixed" in wanted:
        plan.append(
            (
                "mixed",
                {**common, "duration": duration, "personas": split(clients), "fresh_tokens": True},
            )
        )
    if "writes" in wanted:
        plan.append(("writes", {**common, "duration": duration, "personas": {"analyst": clients}}))
        plan.append(
            (
                "writes baseline",
                {**common, "duration": duration, "personas": {"analyst.baseline": clients}},
            )
        )
    if "reads" in wanted:
        for n in range(1, options.rounds + 1):
            for label, kind in (("guarded", "pub.read"), ("baseline", "pub.read.baseline")):
                plan.append(
                    (
                        f"reads {label} {n}",
                        {
                            **common,
                            "entity_mix": {kind: 1},
                            "duration": options.read_duration,
                            "personas": {"entity": clients},
                        },
                    )
                )
    if "list" in wanted:
        for label, kind in (("guarded", "pub.list"), ("baseline", "pub.list.baseline")):
            plan.append(
                (
                    f"list {label}",
                    {
                        **common,
                        "entity_mix": {kind: 1},
                        "duration": max(2.0, duration / 2),
                        "personas": {"entity": options.list_clients},
                    },
                )
            )
    return plan


def summarize(results: dict[str, dict[str, Any]], options: argparse.Namespace) -> dict[str, Any]:
    """The figures the targets are checked against."""
    summary: dict[str, Any] = {}
    mixed = results.get("mixed", {}).get("classes", {})
    for guarded, baseline in (
        ("pub.read", "pub.read.baseline"),
        ("pub.list", "pub.list.baseline"),
        ("report.read", "report.read.baseline"),
        ("report.list", "report.list.baseline"),
    ):
        if mixed.get(guarded, {}).get("mean_ms") and mixed.get(baseline, {}).get("mean_ms"):
            # Closed-loop clients: requests/s per client is 1 / mean latency.
            summary[f"mixed_ratio_{guarded}"] = (
                mixed[baseline]["mean_ms"] / mixed[guarded]["mean_ms"]
            )
    rounds = [
        (results[f"reads guarded {n}"], results[f"reads baseline {n}"])
        for n in range(1, options.rounds + 1)
        if f"reads guarded {n}" in results
    ]
    if rounds:
        pairs = [(g["classes"]["pub.read"], b["classes"]["pub.read.baseline"]) for g, b in rounds]
        ratios = [g["rps"] / b["rps"] for g, b in pairs]
        median_guarded = sorted((g for g, _ in pairs), key=lambda r: r["rps"])[len(pairs) // 2]
        median_baseline = sorted((b for _, b in pairs), key=lambda r: r["rps"])[len(pairs) // 2]
        summary["read_round_ratios"] = ratios
        summary["read_ratio"] = median_guarded["rps"] / median_baseline["rps"]
        summary["read_rps"] = median_guarded["rps"]
        summary["read_p50_ms"] = median_guarded["p50_ms"]
        summary["read_p99_ms"] = median_guarded["p99_ms"]
        summary["read_baseline_rps"] = median_baseline["rps"]
        summary["read_baseline_p99_ms"] = median_baseline["p99_ms"]
    if "list guarded" in results:
        listed = results["list guarded"]["classes"]["pub.list"]
        summary["list_p50_ms"], summary["list_p99_ms"] = listed["p50_ms"], listed["p99_ms"]
        base = results["list baseline"]["classes"]["pub.list.baseline"]
        summary["list_baseline_p50_ms"] = base["p50_ms"]
    if "writes" in results:
        classes = results["writes"]["classes"]
        summary["writes_rps"] = sum(
            classes[c]["rps"] for c in ("report.create", "report.update") if c in classes
        )
        base = results["writes baseline"]["classes"].get("report.create.baseline")
        create = classes.get("report.create")
        if base and create and base["mean_ms"] and create["mean_ms"]:
            summary["write_ratio"] = base["mean_ms"] / create["mean_ms"]
    return summary


def print_report(report: dict[str, Any]) -> None:
    config = report["config"]
    print(
        f"\n== {config['database']} · {config['workers']} worker(s) · {config['clients']} "
        f"clients · dataset {config['dataset']} =="
    )
    print("data: " + ", ".join(f"{k} {v:,}" for k, v in report["dataset"].items()))
    header = (
        f"{'phase':<20} {'endpoint class':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}"
    )
    for name, result in report["phases"].items():
        print(
            f"\n{name}: {result['seconds']:.1f} s; CPU per request: app "
            f"{result['app_cpu_us']:.0f} µs"
            + (f", PostgreSQL {result['db_cpu_us']:.0f} µs" if "db_cpu_us" in result else "")
            + f", generator {result['generator_cpu_us']:.0f} µs"
        )
        print(header)
        for cls, figures in result["classes"].items():
            p50 = f"{figures['p50_ms']:.1f}" if figures["p50_ms"] is not None else "-"
            p99 = f"{figures['p99_ms']:.1f}" if figures["p99_ms"] is not None else "-"
            print(
                f"{name:<20} {cls:<24} {figures['rps']:>8.1f} {p50:>8} {p99:>8} "
                f"{figures['errors']:>7}"
            )
            for sample in figures["samples"]:
                print(f"{'':<20}   unexpected: {sample}")
        if result.get("profile"):
            print("py-spy, share of the workers' samples (inclusive):")
            for frame, share in result["profile"]:
                print(f"  {share:5.1f} %  {frame}")
    summary = report["summary"]
    print("\nsummary:")
    for key, value in summary.items():
        shown = ", ".join(f"{v:.2f}" for v in value) if isinstance(value, list) else f"{value:.2f}"
        print(f"  {key}: {shown}")
    for pid, memory in report["memory"].items():
        print(
            f"  worker {pid}: RSS {memory['rss_mb']:.0f} MB (peak {memory['peak_rss_mb']:.0f} MB)"
        )
    chain = report["audit"]
    print(
        f"  audit chain: {'intact' if chain['valid'] else 'BROKEN'}, {chain['checked']:,} "
        f"events verified in {chain['seconds']:.1f} s"
    )
    checks = [
        ("guarded read / baseline ≥ 0.70", summary.get("read_ratio"), TARGETS["read_ratio"], ">="),
        ("guarded read req/s ≥ 1,000", summary.get("read_rps"), TARGETS["read_rps"], ">="),
        ("guarded read p99 < 100 ms", summary.get("read_p99_ms"), TARGETS["read_p99_ms"], "<"),
        ("list page p50 < 15 ms", summary.get("list_p50_ms"), TARGETS["list_p50_ms"], "<"),
        ("list page p99 < 60 ms", summary.get("list_p99_ms"), TARGETS["list_p99_ms"], "<"),
        ("audited writes/s ≥ 500", summary.get("writes_rps"), TARGETS["writes_rps"], ">="),
        (
            "RSS per worker < 200 MB",
            max((m["rss_mb"] for m in report["memory"].values()), default=None),
            TARGETS["rss_mb"],
            "<",
        ),
    ]
    print("targets:")
    for label, value, target, op in checks:
        if value is None:
            continue
        met = value >= target if op == ">=" else value < target
        print(f"  {'met ' if met else 'MISS'} {label}: {value:,.2f}")


# ---------------------------------------------------------------------------------------
# Entry points.
# ---------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument(
        "--database-url",
        default="",
        help="an already-populated database (e.g. from `ctcp demo --scale large`); "
        "default: build --dataset in a new database",
    )
    p.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CTCP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="where to create the PostgreSQL benchmark database",
    )
    p.add_argument("--dataset", choices=tuple(SCALES), default="medium")
    p.add_argument("--secret-key", default="", help="the app's key (default: a new one)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=20, help="seconds per phase")
    p.add_argument("--read-duration", type=float, default=10, help="seconds per read round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved read rounds")
    p.add_argument("--list-clients", type=int, default=1)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--phases", default="mixed,writes,reads,list")
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--profile", default="", help="a folder for the workers' cProfile stats")
    p.add_argument(
        "--spy", default="", help="a folder for py-spy samples of each worker in each phase"
    )
    p.add_argument("--keep", action="store_true", help="keep the database built")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--build",
        action="store_true",
        help="with --database-url: build --dataset into that (empty, migrated) database",
    )
    p.add_argument("--drive", default="", help=argparse.SUPPRESS)
    return p


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Build or reuse the data, start the server, drive every phase; the figures."""
    from population import pg_admin
    from sqlalchemy.engine import make_url

    from ctcp.core.config import Settings

    say: Callable[[str], None] = (lambda _m: None) if options.quiet else print
    var_dir = Path(tempfile.mkdtemp(prefix="ctcp-load-"))
    secret_key = options.secret_key or secrets.token_urlsafe(48)
    created_pg = ""
    url = options.database_url
    server: Server | None = None
    try:
        if not url:
            if options.database == "postgresql":
                created_pg = f"ctcp_load_{secrets.token_hex(3)}"
                asyncio.run(pg_admin(options.admin_url, f'CREATE DATABASE "{created_pg}"'))
                url = (
                    make_url(options.admin_url)
                    .set(database=created_pg)
                    .render_as_string(hide_password=False)
                )
            else:
                url = f"sqlite:///{var_dir / 'load.db'}"
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        settings = Settings(database_url=url, var_dir=var_dir, secret_key=secret_key)
        if not options.database_url or options.build:
            from population import populate

            users, reports = SCALES[options.dataset]
            started = time.monotonic()
            asyncio.run(populate(url, users=users, settings=settings))
            built = asyncio.run(build_reports(url, reports))
            say(
                f"data set {options.dataset}: {users:,} users, {built} in "
                f"{time.monotonic() - started:.1f} s"
            )
        personas = split(options.clients)
        actors = asyncio.run(
            make_actors(
                url,
                settings.secret(),
                entities=min(8, max(personas["entity"], 1)),
                focal=personas["focal"],
                analysts=max(options.clients, personas["analyst"]),
                consent=personas["consent"],
            )
        )
        dataset = asyncio.run(dataset_counts(url))
        server = Server(url, secret_key, var_dir, options.workers, options.profile or None)
        say(
            f"server: {options.workers} worker(s) {server.workers} on port {server.port}; {backend}"
        )
        for entity in actors["entities"]:
            entity["token"] = fetch_token(server.port, entity)
        results: dict[str, dict[str, Any]] = {}
        database_name = parsed.database if backend == "postgresql" else None
        for name, phase in phases(options):
            say(f"phase {name}: {phase['duration']:.0f} s, clients {phase['personas']}")
            if options.spy and name != "warm-up":
                phase = {**phase, "spy": options.spy, "label": name}
            results[name] = run_phase(server, actors, phase, var_dir, database_name)
        memory = {str(pid): memory_of(pid) for pid in server.workers}
        if options.profile:
            for pid in server.workers:
                os.kill(pid, signal.SIGUSR1)
            time.sleep(2)
            say(f"profiles: {options.profile}/worker-<pid>.prof")
        server.stop()
        server = None
        results.pop("warm-up", None)
        report = {
            "config": {
                "database": backend,
                "workers": options.workers,
                "clients": options.clients,
                "duration": options.duration,
                "dataset": "existing" if options.database_url else options.dataset,
                "cpus": os.cpu_count(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            "dataset": dataset,
            "phases": results,
            "summary": summarize(results, options),
            "memory": memory,
            "audit": asyncio.run(verify_audit(url)),
        }
        if not options.quiet:
            print_report(report)
        if options.json:
            Path(options.json).write_text(json.dumps(report, indent=2))
        return report
    finally:
        if server is not None:
            server.stop()
        if created_pg and not options.keep:
            asyncio.run(
                pg_admin(options.admin_url, f'DROP DATABASE IF EXISTS "{created_pg}" WITH (FORCE)')
            )
        elif created_pg:
            print(f"kept database {url}")
        if not options.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


def main() -> None:
    options = parser().parse_args()
    if options.drive:
        drive_main(options.drive)
        return
    run(options)


if __name__ == "__main__":
    main()
