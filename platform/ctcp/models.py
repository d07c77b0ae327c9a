"""Every table, imported in one place so Alembic and the tests see all metadata."""

from sqlmodel import SQLModel

from ctcp.assistance.models import (
    AssistanceRequest,
    AssistanceRequestNeed,
    CapacityConsultation,
    IndicatorUpdate,
    Need,
    Offer,
    PlanIndicator,
    PlanMeasure,
    RequestTransition,
)
from ctcp.audit.models import AuditChainHead, AuditEvent
from ctcp.authz.models import CasbinRule
from ctcp.changes import recorder as _recorder  # noqa: F401  (installs the feed's recorder)
from ctcp.changes import webhooks as _webhooks  # noqa: F401  (queues webhook deliveries)
from ctcp.changes.models import ChangeEntry, FeedHead, FeedObject
from ctcp.consent.models import (
    ConsentEvent,
    NeedsSharingEvent,
    Publication,
    PublicationAttachment,
    PublicationSection,
)
from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.core.changes import AccessState
from ctcp.core.rate_limits import RateLimitCounter
from ctcp.identity.models import LoginThrottle, RecoveryCode, User, UserRole, UserSession
from ctcp.notifications.models import Notification
from ctcp.oauth.models import AccessToken, ApiClient
from ctcp.organizations.models import Organization
from ctcp.planning.models import Activity, ActivityMeasure, ActivityNeed, ActivityPartner
from ctcp.reports.models import (
    Attachment,
    AttachmentBlob,
    AttachmentChunk,
    Recommendation,
    ReportSection,
    VisitReport,
)

metadata = SQLModel.metadata

__all__ = [
    "AccessState",
    "AccessToken",
    "Activity",
    "ActivityMeasure",
    "ActivityNeed",
    "ActivityPartner",
    "ApiClient",
    "AssistanceRequest",
    "AssistanceRequestNeed",
    "Attachment",
    "AttachmentBlob",
    "AttachmentChunk",
    "AuditChainHead",
    "AuditEvent",
    "CapacityConsultation",
    "CasbinRule",
    "ChangeEntry",
    "ConsentEvent",
    "ContactPoint",
    "ContactPointVersion",
    "FeedHead",
    "FeedObject",
    "IndicatorUpdate",
    "LoginThrottle",
    "Need",
    "NeedsSharingEvent",
    "Notification",
    "Offer",
    "Organization",
    "PlanIndicator",
    "PlanMeasure",
    "Publication",
    "PublicationAttachment",
    "PublicationSection",
    "RateLimitCounter",
    "Recommendation",
    "RecoveryCode",
    "ReportSection",
    "RequestTransition",
    "User",
    "UserRole",
    "UserSession",
    "VisitReport",
    "metadata",
]
