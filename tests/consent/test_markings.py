"""Markings: every publication, need, request, activity and contact point carries its
audience and the equivalent TLP 2.0 label, on lists and details alike, in the change
feed's objects and in the exports; the marking moves the moment sharing does."""

import csv
import io
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import hxl  # type: ignore[import-untyped]
import pytest
import vobject

from ctcp.consent import markings
from ctcp.consent.models import Audience
from ctcp.contacts.models import ContactAudience
from tests.assistance.conftest import Assist, assist
from tests.changes.conftest import follow, head_cursor
from tests.factories import decide
from tests.planning.conftest import create_activity, withdraw_needs

__all__ = ["assist"]  # the fixture

DOCS = Path(__file__).resolve().parents[2] / "docs" / "markings.md"
COMPACT = {"audience": "compact", "tlp": "TLP:AMBER"}
RESTRICTED = {"audience": "restricted", "tlp": "TLP:AMBER+STRICT"}


def marking(body: dict[str, Any]) -> dict[str, Any]:
    return {"audience": body["audience"], "tlp": body["tlp"]}


async def listed(client: httpx.AsyncClient, path: str, object_id: str, **params: Any) -> Any:
    """The object as a list shows it to `client` (None: not in the list)."""
    response = await client.get(path, params={"limit": 200} | params)
    assert response.status_code == 200, response.text
    found = [item for item in response.json()["items"] if item["id"] == object_id]
    return found[0] if found else None


async def detail(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def seen(
    assist: Assist, who: str, kind: str, object_id: str, **params: Any
) -> list[dict[str, Any]]:
    """The object's marking as `who` reads it on the list and on the detail page."""
    base = {
        "need": "/api/v1/needs",
        "request": "/api/v1/assistance-requests",
        "activity": "/api/v1/activities",
        "contact": "/api/v1/contact-points",
        "publication": "/api/v1/publications",
    }[kind]
    client = assist[who]
    in_list = await listed(client, base, object_id, state=assist.state.code, **params)
    assert in_list is not None, (who, kind, object_id)
    return [marking(in_list), marking(await detail(client, f"{base}/{object_id}"))]


# --- the table --------------------------------------------------------------------------


def test_every_audience_has_its_tlp_label() -> None:
    assert {audience.value: markings.tlp_of(audience) for audience in Audience} == {
        "compact": "TLP:AMBER",
        "member_states": "TLP:GREEN",
        "public": "TLP:CLEAR",
    }
    assert {audience.value: markings.tlp_of(audience) for audience in ContactAudience} == {
        "secretariat": "TLP:AMBER+STRICT",
        "compact": "TLP:AMBER",
        "member_states": "TLP:GREEN",
    }
    assert markings.tlp_of("restricted") == "TLP:AMBER+STRICT"
    # TLP 2.0 writes its labels in capitals without spaces.
    assert all(re.fullmatch(r"TLP:[A-Z]+(\+STRICT)?", label) for label in markings.Tlp)
    with pytest.raises(KeyError):
        markings.tlp_of("everyone")


def test_the_documented_table_is_the_code_s() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \|.*\| `(TLP:[A-Z+]+)` \|", DOCS.read_text(), re.M)
    assert dict(rows) == {audience: label.value for audience, label in markings.TLP_OF.items()}


# --- publications -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "label"),
    [("compact", "TLP:AMBER"), ("member_states", "TLP:GREEN"), ("public", "TLP:CLEAR")],
)
async def test_a_publication_carries_its_audience_and_label(
    assist: Assist, audience: str, label: str
) -> None:
    report = await assist.adopted_report()
    decided = await decide(
        assist["officer"],
        f"/api/v1/reports/{report['id']}/consent",
        {"scope": "full", "audience": audience, "reference": "NV/2026/21"},
    )
    assert decided.status_code == 201, decided.text
    response = await assist["entity"].get(
        "/api/v1/publications", params={"state": assist.state.code, "limit": 200}
    )
    [publication] = [p for p in response.json()["items"] if p["report_id"] == report["id"]]
    expected = {"audience": audience, "tlp": label}
    assert marking(publication) == expected
    path = f"/api/v1/publications/{publication['id']}"
    assert marking(await detail(assist["entity"], path)) == expected
    assert marking(await detail(assist["analyst"], path)) == expected
    if audience == "public":
        public = f"/api/v1/public/publications/{publication['id']}"
        assert marking(await detail(assist["anonymous"], public)) == expected
        shown = await listed(assist["anonymous"], "/api/v1/public/publications", publication["id"])
        assert marking(shown) == expected


# --- needs ------------------------------------------------------------------------------


async def test_a_need_is_restricted_until_shared_and_again_once_withdrawn(
    assist: Assist,
) -> None:
    need = await assist.need()
    # Unshared: the State and the Secretariat read it, marked for themselves only.
    for who in ("state", "analyst"):
        assert await seen(assist, who, "need", need["id"]) == [RESTRICTED, RESTRICTED]
    assert await listed(assist["entity"], "/api/v1/needs", need["id"]) is None

    await assist.share_needs()
    for who in ("state", "analyst", "entity"):
        assert await seen(assist, who, "need", need["id"]) == [COMPACT, COMPACT], who

    await withdraw_needs(assist)
    for who in ("state", "analyst"):
        assert await seen(assist, who, "need", need["id"]) == [RESTRICTED, RESTRICTED]


async def test_a_need_from_a_report_follows_its_section_s_consent(assist: Assist) -> None:
    report = await assist.adopted_report()
    sections = {s["area"]: s for s in report["sections"]}
    needs = {}
    for area, section in sections.items():
        created = await assist["analyst"].post(
            "/api/v1/needs",
            json={
                "state": assist.state.code,
                "description": f"Needs on {area}.",
                "priority": "high",
                "source": "recommendation",
                "recommendation_id": section["recommendations"][0]["id"],
            },
        )
        assert created.status_code == 201, created.text
        needs[area] = created.json()
    decided = await decide(
        assist["officer"],
        f"/api/v1/reports/{report['id']}/consent",
        {
            "scope": "partial",
            "sections": [sections["border_management"]["id"]],
            "share_needs": True,
            "reference": "NV/2026/22",
        },
    )
    assert decided.status_code == 201, decided.text
    border = needs["border_management"]["id"]
    financing = needs["counter_financing"]["id"]
    assert await seen(assist, "analyst", "need", border) == [COMPACT, COMPACT]
    assert await seen(assist, "analyst", "need", financing) == [RESTRICTED, RESTRICTED]


# --- requests ---------------------------------------------------------------------------


async def test_a_request_is_compact_only_while_circulated_with_every_need_shared(
    assist: Assist,
) -> None:
    await assist.share_needs()
    need = await assist.need()
    request = await assist.file(need)
    # Filed, not circulated: the State and the Secretariat only.
    assert marking(request) == RESTRICTED
    assert await seen(assist, "analyst", "request", request["id"]) == [RESTRICTED, RESTRICTED]

    await assist.move(request["id"], "under_review")
    await assist.move(request["id"], "circulated")
    for who in ("state", "analyst", "entity"):
        assert await seen(assist, who, "request", request["id"]) == [COMPACT, COMPACT], who
    body = await detail(assist["entity"], f"/api/v1/assistance-requests/{request['id']}")
    # Its needs carry their own marking.
    assert [marking(n) for n in body["needs"]] == [COMPACT]

    await withdraw_needs(assist)
    shown = await detail(assist["analyst"], f"/api/v1/assistance-requests/{request['id']}")
    assert marking(shown) == RESTRICTED
    assert [marking(n) for n in shown["needs"]] == [RESTRICTED]


async def test_a_matched_request_stays_with_the_state_and_its_offerer(assist: Assist) -> None:
    await assist.share_needs()
    request = await assist.circulated()
    offer = await assist.offer(request["id"])
    assert offer.status_code == 201, offer.text
    accepted = await assist["state"].post(f"/api/v1/offers/{offer.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    # Matched: the offerer still reads it, but it is no longer the Compact's at large.
    for who in ("entity", "state"):
        assert await seen(assist, who, "request", request["id"]) == [RESTRICTED, RESTRICTED]
    requests = "/api/v1/assistance-requests"
    assert await listed(assist["other_entity"], requests, request["id"]) is None


# --- activities -------------------------------------------------------------------------


async def test_an_activity_is_compact_while_its_state_shares_and_restricted_after(
    assist: Assist,
) -> None:
    activity = await create_activity(assist)
    assert marking(activity) == RESTRICTED
    for who in ("entity", "state", "analyst"):
        assert await seen(assist, who, "activity", activity["id"]) == [RESTRICTED, RESTRICTED]

    await assist.share_needs()
    for who in ("entity", "other_entity", "state", "analyst"):
        assert await seen(assist, who, "activity", activity["id"]) == [COMPACT, COMPACT], who

    await withdraw_needs(assist)
    # The lead still reads its own work, marked for those named on it only.
    assert await seen(assist, "entity", "activity", activity["id"]) == [RESTRICTED, RESTRICTED]


async def test_an_activity_tied_to_an_unshared_need_is_restricted(assist: Assist) -> None:
    report = await assist.adopted_report()
    section = report["sections"][0]
    created = await assist["analyst"].post(
        "/api/v1/needs",
        json={
            "state": assist.state.code,
            "description": "From the report.",
            "priority": "high",
            "source": "recommendation",
            "recommendation_id": section["recommendations"][0]["id"],
        },
    )
    assert created.status_code == 201, created.text
    await assist.share_needs()  # the State shares, but not this report's needs
    tied = await create_activity(
        assist, "analyst", lead=assist.entity.code, need_ids=[created.json()["id"]]
    )
    free = await create_activity(assist)
    assert await seen(assist, "analyst", "activity", tied["id"]) == [RESTRICTED, RESTRICTED]
    assert await seen(assist, "analyst", "activity", free["id"]) == [COMPACT, COMPACT]
    # The marking says what the scope does: an entity named on neither reads only the
    # compact one; the lead reads both, each marked as the Secretariat sees it.
    assert await listed(assist["other_entity"], "/api/v1/activities", tied["id"]) is None
    assert await seen(assist, "other_entity", "activity", free["id"]) == [COMPACT, COMPACT]
    assert await seen(assist, "entity", "activity", tied["id"]) == [RESTRICTED, RESTRICTED]


# --- contact points ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "label"),
    [
        ("secretariat", "TLP:AMBER+STRICT"),
        ("compact", "TLP:AMBER"),
        ("member_states", "TLP:GREEN"),
    ],
)
async def test_a_contact_point_carries_its_audience_and_label(
    assist: Assist, audience: str, label: str
) -> None:
    created = await assist["state"].post(
        "/api/v1/contact-points",
        json={
            "state": assist.state.code,
            "kind": "police_24_7",
            "authority": "National Police 24/7 desk",
            "email": "desk@police.example.org",
            "languages": ["en"],
            "audience": audience,
        },
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    expected = {"audience": audience, "tlp": label}
    assert marking(entry) == expected
    for who in ("state", "analyst"):
        assert await seen(assist, who, "contact", entry["id"]) == [expected, expected]
    # Narrowed, the label follows.
    narrowed = await assist["state"].patch(
        f"/api/v1/contact-points/{entry['id']}",
        json={"audience": "secretariat"},
        headers={"If-Match": f'"{entry["version"]}"'},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert marking(narrowed.json()) == {"audience": "secretariat", "tlp": "TLP:AMBER+STRICT"}


# --- the change feed --------------------------------------------------------------------


async def test_the_feed_serves_the_object_with_its_marking_as_the_detail_shows_it(
    assist: Assist,
) -> None:
    cursor = await head_cursor(assist)
    need = await assist.need()
    activity = await create_activity(assist)
    await assist.share_needs()
    items, _ = await follow(assist["entity"], cursor)
    objects = {i["id"]: i["object"] for i in items if i["op"] == "upsert"}
    assert objects[need["id"]] == await detail(assist["entity"], f"/api/v1/needs/{need['id']}")
    assert marking(objects[need["id"]]) == COMPACT
    assert marking(objects[activity["id"]]) == COMPACT

    # Withdrawn: the need is revoked; the lead still reads its activity, now restricted.
    cursor = await head_cursor(assist)
    await withdraw_needs(assist)
    items, _ = await follow(assist["entity"], cursor)
    assert [i["op"] for i in items if i["id"] == need["id"]] == ["revoke"]
    [upsert] = [i for i in items if i["id"] == activity["id"]]
    assert upsert["op"] == "upsert"
    assert marking(upsert["object"]) == RESTRICTED


# --- exports ----------------------------------------------------------------------------


async def _export(client: httpx.AsyncClient, path: str, format: str, **params: Any) -> Any:
    response = await client.get(path, params={"format": format} | params)
    assert response.status_code == 200, response.text
    return response


async def test_activity_exports_carry_the_marking(assist: Assist) -> None:
    activity = await create_activity(assist)
    path, state = "/api/v1/activities/export", assist.state.code

    def rows(response: httpx.Response) -> dict[str, dict[str, str]]:
        return {row["id"]: row for row in csv.DictReader(io.StringIO(response.text))}

    def tlp_tag(response: httpx.Response) -> ET.Element:
        root = ET.fromstring(response.content)  # noqa: S314 - the platform's own output
        [element] = [
            a
            for a in root.findall("iati-activity")
            if (a.findtext("iati-identifier") or "").endswith(activity["id"])
        ]
        children = [child.tag for child in element]
        # After the sector, before any budget: the schema's order.
        assert children.index("tag") == children.index("sector") + 1
        [tag] = element.findall("tag")
        return tag

    csv_rows = rows(await _export(assist["entity"], path, "csv", state=state))
    assert {k: csv_rows[activity["id"]][k] for k in ("audience", "tlp")} == RESTRICTED
    tag = tlp_tag(await _export(assist["entity"], path, "iati", state=state))
    assert tag.attrib == {
        "vocabulary": "99",
        "vocabulary-uri": "https://www.first.org/tlp/",
        "code": "TLP:AMBER+STRICT",
    }
    assert tag.findtext("narrative") == "TLP:AMBER+STRICT (audience: restricted)"

    await assist.share_needs()
    hxl_response = await _export(assist["entity"], path, "hxl", state=state)
    dataset = hxl.data(io.BytesIO(hxl_response.content), hxl.InputOptions(encoding="utf-8"))
    by_header = {column.header: column.display_tag for column in dataset.columns}
    assert (by_header["audience"], by_header["tlp"]) == ("#meta+audience", "#meta+tlp")
    [row] = [r for r in dataset if r.get("#activity+id") == activity["id"]]
    assert (row.get("#meta+audience"), row.get("#meta+tlp")) == ("compact", "TLP:AMBER")
    report = hxl.validate(
        hxl.data(io.BytesIO(hxl_response.content), hxl.InputOptions(encoding="utf-8"))
    )
    assert report["stats"]["error"] == 0, report
    tag = tlp_tag(await _export(assist["entity"], path, "iati", state=state))
    assert tag.get("code") == "TLP:AMBER"


async def test_contact_exports_carry_the_marking(assist: Assist) -> None:
    created = await assist["state"].post(
        "/api/v1/contact-points",
        json={
            "state": assist.state.code,
            "kind": "financial_intelligence_unit",
            "authority": "Financial Intelligence Unit",
            "email": "fiu@finance.example.org",
            "languages": ["en"],
            "audience": "compact",
        },
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    path, state = "/api/v1/contact-points/export", assist.state.code
    response = await _export(assist["state"], path, "csv", state=state)
    header = next(csv.reader(io.StringIO(response.text)))
    assert header[header.index("audience") + 1] == "tlp"
    [row] = [r for r in csv.DictReader(io.StringIO(response.text)) if r["id"] == entry["id"]]
    assert (row["audience"], row["tlp"]) == ("compact", "TLP:AMBER")
    cards = list(
        vobject.readComponents((await _export(assist["state"], path, "vcard", state=state)).text)
    )
    [card] = [c for c in cards if c.uid.value == f"urn:uuid:{entry['id']}"]
    assert "TLP:AMBER" in card.categories.value
