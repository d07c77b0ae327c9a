"""Audit event payloads (docs/api.md, "Audit")."""

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from ctcp.audit.models import AuditEvent


class AuditActor(BaseModel):
    user_id: uuid.UUID | None = None
    client_id: str | None = None
    organization: str | None = None


class AuditEventRead(BaseModel):
    id: int
    at: datetime
    actor: AuditActor
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, event: AuditEvent) -> "AuditEventRead":
        return cls(
            id=event.id,
            at=event.at,
            actor=AuditActor(
                user_id=event.actor_user_id,
                client_id=event.actor_client_id,
                organization=event.actor_organization,
            ),
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            outcome=event.outcome,
            ip=event.ip,
            user_agent=event.user_agent,
            request_id=event.request_id,
            details=json.loads(event.details),
            hash=event.hash,
            prev_hash=event.prev_hash,
        )


class VerifyRead(BaseModel):
    valid: bool
    checked: int
    first_invalid_id: int | None
    # What the signed checkpoints (kept outside the database) add to the chain's own check.
    checkpoint_status: Literal["protected", "unprotected", "failed"]
    checkpoints: int
    last_checkpoint_id: int | None
    last_checkpoint_at: datetime | None
    unprotected_events: int
    reason: str | None


class CheckpointRead(BaseModel):
    """A signed statement that event `position` had `hash`: the signature covers
    "ctcp-audit-checkpoint/v2\nsequence=S\nposition=P\nhash=H\nprevious=D\nat=T\nkey_id=K\n"
    (UTF-8), D being the SHA-256 (hex) of checkpoint S-1's statement, 64 zeros for S=1."""

    version: int
    sequence: int
    position: int
    hash: str
    previous: str
    at: str
    key_id: str
    signature: str


class PublicKeyRead(BaseModel):
    key_id: str
    public_key_pem: str


class CheckpointExport(BaseModel):
    public_keys: list[PublicKeyRead]
    items: list[CheckpointRead]
