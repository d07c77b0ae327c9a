"""The OpenAPI document: every operation described, secured and answering as documented."""

from typing import Any

import httpx
import pytest

SUCCESS = {"200", "201", "204", "307"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_security_schemes_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == schemes["sessionCookie"] | {"type": "apiKey", "in": "cookie"}
    flow = schemes["clientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {
        "publications:read",
        "needs:read",
        "requests:read",
        "offers:write",
    }


async def test_every_operation_has_summary_tags_success_and_errors(
    document: dict[str, Any],
) -> None:
    operations = _operations(document)
    assert len(operations) >= 40
    for method, path, operation in operations:
        name = f"{method} {path}"
        assert operation.get("summary"), name
        assert operation.get("tags"), name
        responses = operation["responses"]
        assert SUCCESS & set(responses), name
        if operation.get("security"):
            assert "401" in responses, name
            assert "403" in responses or path.startswith("/oauth"), name
        if operation.get("parameters") or "requestBody" in operation:
            assert {"400", "404", "422"} & set(responses), name


async def test_client_reachable_operations_name_their_scope_and_rate_limit(
    document: dict[str, Any],
) -> None:
    reachable = {
        f"{method} {path}": operation
        for method, path, operation in _operations(document)
        if any("clientCredentials" in option for option in operation.get("security", []))
    }
    assert "GET /api/v1/publications" in reachable
    assert "GET /api/v1/users" not in reachable and "GET /api/v1/audit-events" not in reachable
    for name, operation in reachable.items():
        assert "429" in operation["responses"], name


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
