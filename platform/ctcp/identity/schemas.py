"""Identity payloads: sign-in, the current user, MFA."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.identity import service
from ctcp.identity.service import Account


def _new_account_email(email: str) -> str:
    """The service's rule for a new account's address, as a schema error (fields marked)."""
    problem = service.email_problem(email)
    if problem is not None:
        raise PydanticCustomError("value_error", service.INVALID_EMAIL, {"reason": problem})
    return email


# A new account's address: checked like every other way of creating one.
NewAccountEmail = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"format": "email"}),
    AfterValidator(_new_account_email),
]


class SignInRequest(RequestModel):
    # Only looked up: an address no account has, however malformed, is a wrong password.
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=64)


class OrganizationSummary(ResponseModel):
    id: uuid.UUID
    code: str
    kind: str
    name: str


class MeRead(ResponseModel):
    id: uuid.UUID
    email: str
    name: str
    organization: OrganizationSummary
    roles: list[str]
    mfa_enabled: bool

    @classmethod
    def of(cls, account: Account) -> "MeRead":
        organization = account.organization
        return cls(
            id=account.user.id,
            email=account.user.email,
            name=account.user.name,
            organization=OrganizationSummary(
                id=organization.id,
                code=organization.code,
                kind=organization.kind,
                name=organization.name_en,
            ),
            roles=sorted(account.roles),
            mfa_enabled=account.user.mfa_enabled_at is not None,
        )


class SignInResponse(ResponseModel):
    user: MeRead
    csrf_token: str


class MfaEnrolment(ResponseModel):
    secret: str
    otpauth_uri: str


class MfaConfirmRequest(RequestModel):
    otp: str = Field(min_length=6, max_length=10)


class RecoveryCodes(ResponseModel):
    recovery_codes: list[str]


class PasswordChangeRequest(RequestModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class CsrfToken(ResponseModel):
    csrf_token: str


class UserCreate(RequestModel):
    email: NewAccountEmail
    name: str = Field(min_length=1, max_length=200)
    organization_id: uuid.UUID
    password: str = Field(min_length=1, max_length=1024)
    roles: list[str] = Field(default_factory=list, max_length=6)


class UserUpdate(RequestModel):
    active: bool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)


class RolesUpdate(RequestModel):
    roles: list[str] = Field(max_length=6)


class UserRead(MeRead):
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> "UserRead":
        base = MeRead.of(account)
        return cls(
            **base.model_dump(), active=account.user.active, created_at=account.user.created_at
        )
