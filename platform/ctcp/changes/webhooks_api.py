"""Webhook administration (platform_admin): register under an API client, list, read with
the outbox, rotate the secret, remove. A thin caller of `ctcp.changes.webhooks`."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from ctcp.authz.guard import Access, guard
from ctcp.changes import webhooks
from ctcp.changes.webhooks import (
    WebhookCreate,
    WebhookDetail,
    WebhookIssued,
    WebhookRead,
    WebhookSecret,
)
from ctcp.core.config import SettingsDep
from ctcp.core.db import SessionDep
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, PageRequest
from ctcp.core.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["administration"])
CanManage = Annotated[Access, guard("webhook", "manage")]


@router.post(
    "/api-clients/{api_client_id}/webhooks",
    response_model=WebhookIssued,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook for an API client",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_webhook(
    api_client_id: uuid.UUID,
    body: WebhookCreate,
    session: SessionDep,
    settings: SettingsDep,
    access: CanManage,
) -> WebhookIssued:
    """An https endpoint told of the client's changes of these types; the answer holds the
    signing secret, shown this once only. 422 for a URL that may not receive webhooks or
    a type the client may not read; 409 for a disabled client or an inactive organization."""
    return await webhooks.create_webhook(
        session, api_client_id, body, settings=settings, context=access.audit
    )


@router.get(
    "/webhooks",
    response_model=Page[WebhookRead],
    summary="List webhooks",
    responses=problem_responses(401, 403, 422),
)
async def list_webhooks(
    session: SessionDep,
    access: CanManage,
    api_client_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[WebhookRead]:
    return await webhooks.list_webhooks(
        session, access.audit, PageRequest(limit, cursor), api_client_id
    )


@router.get(
    "/webhooks/{webhook_id}",
    response_model=WebhookDetail,
    summary="One webhook, with its latest deliveries and failures",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_webhook(
    webhook_id: uuid.UUID, session: SessionDep, access: CanManage
) -> WebhookDetail:
    return await webhooks.read_webhook(session, access.audit, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookSecret,
    summary="Rotate a webhook's signing secret",
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, session: SessionDep, settings: SettingsDep, access: CanManage
) -> WebhookSecret:
    """A new secret, shown this once; every attempt from now on is signed with it only."""
    return await webhooks.rotate_secret(
        session, webhook_id, settings=settings, context=access.audit
    )


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a webhook",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, access: CanManage) -> Response:
    """Nothing more is sent to it; its outbox goes with it (the feed still holds it all)."""
    await webhooks.delete_webhook(session, webhook_id, context=access.audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
