from tests.changes.conftest import Assist, follow, head_cursor


async def test_shared_need_then_withdrawn(assist: Assist) -> None:
    cursor = await head_cursor(assist)
    need = await assist.need()
    items, cursor = await follow(assist["entity"], cursor)
    assert [i for i in items if i["id"] == need["id"]] == []
    await assist.share_needs()
    items, cursor = await follow(assist["entity"], cursor)
    mine = [i for i in items if i["id"] == need["id"]]
    assert [i["op"] for i in mine] == ["upsert"], items
    assert mine[0]["object"]["id"] == need["id"]
    withdrawn = await assist["officer"].post(
        f"/api/v1/states/{assist.state.code}/needs-consent/withdraw",
        json={"reason": "Consultations paused."},
    )
    assert withdrawn.status_code in (200, 201), withdrawn.text
    items, cursor = await follow(assist["entity"], cursor)
    mine = [i for i in items if i["id"] == need["id"]]
    assert [i["op"] for i in mine] == ["revoke"], items
    assert "object" not in mine[0]
    # A State's focal point has no feed.
    assert (await assist["state"].get("/api/v1/changes")).status_code == 403
