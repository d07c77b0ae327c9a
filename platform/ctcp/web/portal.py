"""The portal's request context: who is signed in, in which language, and rendering.

Portal routes accept sessions only. Every page declares a guard: `page_guard(resource,
action)` runs the same Casbin decision as the API (`authorize`), so a page and the
endpoint it mirrors refuse, scope and audit alike; `signed_in` is for pages every
signed-in person has (the dashboard, MFA enrolment); `anonymous_form` for sign-in.
Forms carry their CSRF token in a `csrf_token` field: the session's token, or before
sign-in a token bound to a random pre-session cookie.
"""

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from babel.support import NullTranslations
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from ctcp.authz.guard import Access, authorize, granted, policy_of
from ctcp.core.config import Settings
from ctcp.core.db import SessionDep
from ctcp.core.errors import ForbiddenError
from ctcp.core.http import UNSAFE_METHODS
from ctcp.core.routes import mark_guard
from ctcp.identity import tokens
from ctcp.identity.dependencies import authenticate
from ctcp.identity.service import Principal
from ctcp.organizations.models import Organization
from ctcp.web import i18n
from ctcp.web.labels import LABELS

PREFIX = "/portal"
TEMPLATES_DIR = Path(__file__).parent / "templates"
FORM_COOKIE = "ctcp_form"
ModelT = TypeVar("ModelT", bound=BaseModel)
NOTICE_COOKIE = "ctcp_notice"


@cache
def environment_for(locale: str) -> jinja2.Environment:
    """The templates in one language (gettext in templates: `{{ _("Reports") }}`)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = i18n.translations(locale)
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        translations, newstyle=True
    )

    def label_of(code: object) -> str:
        """`{{ roles | map("label_of") }}`: coded values as words, for lists."""
        text = LABELS.get(str(code))
        return str(translations.gettext(text)) if text else str(code).replace("_", " ")

    environment.filters["label_of"] = label_of
    return environment


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _mac(request: Request, purpose: bytes, value: bytes) -> str:
    digest = hmac.new(_settings(request).secret(), purpose + b":" + value, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def local_path(candidate: str | None, default: str = PREFIX) -> str:
    """A redirect target only if it is a path of the portal (never another site)."""
    if (
        candidate
        and candidate.startswith(PREFIX)
        and not candidate.startswith("//")
        and "\\" not in candidate
        and all(32 < ord(character) < 127 for character in candidate)
    ):
        return candidate
    return default


@dataclass
class Portal:
    """One portal request: the reader, their language, their form, and how to answer."""

    request: Request
    session: AsyncSession
    locale: str
    principal: Principal | None = None
    access: Access | None = None
    form: FormData | None = None
    csrf_token: str = ""
    _names: dict[str, Organization] | None = field(default=None, repr=False)

    @property
    def translations(self) -> NullTranslations:
        return i18n.translations(self.locale)

    def gettext(self, message: str, **values: Any) -> str:
        text: str = self.translations.gettext(message)
        return text % values if values else text

    def label(self, code: str | None) -> str:
        """A coded value (status, area, role...) in the reader's language."""
        if code is None:
            return ""
        text = LABELS.get(str(code))
        return self.gettext(text) if text is not None else str(code).replace("_", " ")

    def options(self, codes: Iterable[str]) -> list[tuple[str, str]]:
        """(code, label) pairs for a select."""
        return [(str(code), self.label(code)) for code in codes]

    def field(self, name: str) -> str:
        """A text field of the submitted form ('' when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [value.strip() for value in self.form.getlist(name) if isinstance(value, str)]

    def validate(
        self, schema: type[ModelT], data: dict[str, Any]
    ) -> tuple[ModelT | None, dict[str, str]]:
        """The API's request schema built from a form, or the errors per form field.

        Nothing is written before this passes, so a form with errors is shown again,
        filled in, with status 422. Field names are the schema's (nested: `a.0.b`).
        """
        try:
            return schema.model_validate(data), {}
        except PydanticValidationError as error:
            errors: dict[str, str] = {}
            for item in error.errors():
                name = ".".join(str(part) for part in item.get("loc", ())) or "_"
                errors.setdefault(name, self._message_for(item))
            return None, errors

    def _message_for(self, item: Any) -> str:
        """A schema error in the reader's language (pydantic's own messages are English)."""
        kind = item.get("type", "")
        if kind == "missing" or (kind == "string_too_short" and not item.get("input")):
            return self.gettext("Fill in this field.")
        if kind in ("string_too_short", "too_short"):
            return self.gettext("This is too short.")
        if kind in ("string_too_long", "too_long"):
            return self.gettext("This is too long.")
        if kind.startswith(("date", "datetime")):
            return self.gettext("Enter a valid date.")
        if kind.startswith(("int", "float", "decimal", "greater", "less")):
            return self.gettext("Enter a valid number.")
        if kind in ("enum", "literal_error", "uuid_parsing", "uuid_type"):
            return self.gettext("Choose a value from the list.")
        if kind == "string_pattern_mismatch":
            return self.gettext("This is not in the expected format.")
        if "email" in str(item.get("msg", "")).lower():
            return self.gettext("Enter a valid e-mail address.")
        if kind == "value_error":
            return str(item.get("msg", "")).removeprefix("Value error, ")
        return str(item.get("msg", ""))

    def granted(self, resource: str, action: str) -> bool:
        """Whether the reader's roles allow (resource, action): for links and buttons only."""
        if self.principal is None:
            return False
        engine = policy_of(self.request).engine
        return bool(
            engine.scopes(self.principal.roles, self.principal.organization.code, resource, action)
        )

    async def access_for(self, resource: str, action: str) -> Access | None:
        """The reader's grant for (resource, action), or None, without auditing a refusal.

        Built from the page's own grant when it has one, so a refusal later in the page
        is audited once (by the page's guard), as the API does.
        """
        if not self.granted(resource, action):
            return None
        if self.access is not None:
            return granted(self.request, self.access, resource, action)
        self.access = await authorize(
            self.request,
            self.session,
            resource,
            action,
            sessions_only=True,
            form_csrf_token=_token_in(self.form),
        )
        return self.access

    async def organization_names(self) -> dict[str, Organization]:
        if self._names is None:
            rows = (await self.session.exec(select(Organization))).all()
            self._names = {row.code: row for row in rows}
        return self._names

    def org_name(self, code: str | None) -> str:
        """An organization's name in the reader's language, where the reference data has it."""
        if not code:
            return ""
        organization = (self._names or {}).get(code)
        if organization is None:
            return code
        if self.locale == "fr" and organization.name_fr:
            return organization.name_fr
        return organization.name_en

    async def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        await self.organization_names()
        formatter = i18n.Formatter(self.locale)
        notice = self._notice()
        html = self._render(template, formatter, notice, context)
        response = HTMLResponse(html, status_code=status)
        if notice is not None:
            response.delete_cookie(NOTICE_COOKIE, path=PREFIX)
        if not self.request.cookies.get(FORM_COOKIE) and self.principal is None:
            response.set_cookie(
                FORM_COOKIE,
                self._form_cookie,
                httponly=True,
                samesite="lax",
                secure=self.request.url.scheme == "https",
                path=PREFIX,
            )
        return response

    def _render(
        self, template: str, formatter: i18n.Formatter, notice: str | None, context: dict[str, Any]
    ) -> str:
        compiled = environment_for(self.locale).get_template(template)
        values = {
            "portal": self,
            "request": self.request,
            "locale": self.locale,
            "direction": i18n.direction(self.locale),
            "languages": i18n.LANGUAGES,
            "fmt": formatter,
            "org_name": self.org_name,
            "notice": notice,
            "url_with": self.url_with,
            "label": self.label,
            **context,
        }
        return compiled.render(values)

    @property
    def here(self) -> str:
        """Where the language switch returns to: this page with its query, if a GET page.

        A page shown in answer to a form (a preview, a secret shown once) cannot be
        fetched again: the switch returns to the dashboard from there.
        """
        if self.request.method != "GET":
            return PREFIX
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def url_with(self, **changes: Any) -> str:
        """This page's address with some query parameters changed (None removes one)."""
        query = dict(self.request.query_params)
        for key, value in changes.items():
            if value is None or value == "":
                query.pop(key, None)
            else:
                query[key] = str(value)
        path = self.request.url.path
        return f"{path}?{urlencode(query)}" if query else path

    def redirect(self, url: str, notice: str | None = None) -> RedirectResponse:
        """303 to a page of the portal, with a one-time notice shown there."""
        response = RedirectResponse(local_path(url), status_code=303)
        if notice:
            payload = base64.urlsafe_b64encode(json.dumps(notice).encode()).decode()
            signature = _mac(self.request, b"notice", payload.encode())
            response.set_cookie(
                NOTICE_COOKIE,
                f"{payload}.{signature}",
                max_age=120,
                httponly=True,
                samesite="lax",
                secure=self.request.url.scheme == "https",
                path=PREFIX,
            )
        return response

    def _notice(self) -> str | None:
        raw = self.request.cookies.get(NOTICE_COOKIE, "")
        payload, _, signature = raw.rpartition(".")
        if not payload or not hmac.compare_digest(
            signature.encode(), _mac(self.request, b"notice", payload.encode()).encode()
        ):
            return None
        try:
            text = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except ValueError:
            return None
        return text if isinstance(text, str) else None

    @property
    def _form_cookie(self) -> str:
        existing = self.request.cookies.get(FORM_COOKIE)
        if existing:
            return existing
        cached: str | None = getattr(self.request.state, "form_cookie", None)
        if cached is None:
            cached = secrets.token_urlsafe(32)
            self.request.state.form_cookie = cached
        return cached


async def _form_of(request: Request) -> FormData | None:
    if request.method not in UNSAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form()
    return None


def _token_in(form: FormData | None) -> str:
    value = form.get("csrf_token") if form is not None else None
    return value if isinstance(value, str) else ""


async def _portal_for(
    request: Request, session: AsyncSession, principal: Principal, form: FormData | None
) -> Portal:
    token = tokens.csrf_token_for(principal.session_token, _settings(request).secret())
    return Portal(
        request=request,
        session=session,
        locale=i18n.negotiate(request),
        principal=principal,
        form=form,
        csrf_token=token,
    )


def page_guard(resource: str, action: str) -> Any:
    """A page's guard: the API's Casbin decision for (resource, action), sessions only."""

    async def dependency(request: Request, session: SessionDep) -> Portal:
        form = await _form_of(request)
        access = await authorize(
            request, session, resource, action, sessions_only=True, form_csrf_token=_token_in(form)
        )
        portal = await _portal_for(request, session, request.state.principal, form)
        portal.access = access
        return portal

    mark_guard(dependency, (resource, action))
    dependency.__name__ = f"page_guard_{resource}_{action}"
    return Depends(dependency)


async def signed_in(request: Request, session: SessionDep) -> Portal:
    """Any signed-in person (enrolled in MFA where their role requires it)."""
    form = await _form_of(request)
    principal = await authenticate(request, session, form_csrf_token=_token_in(form))
    return await _portal_for(request, session, principal, form)


async def signed_in_before_mfa(request: Request, session: SessionDep) -> Portal:
    """A signed-in person who may still have to enrol in MFA (enrolment, sign-out)."""
    form = await _form_of(request)
    principal = await authenticate(
        request, session, require_enrolment=False, form_csrf_token=_token_in(form)
    )
    return await _portal_for(request, session, principal, form)


async def anonymous_form(request: Request, session: SessionDep) -> Portal:
    """Pages before sign-in; their forms are bound to a random pre-session cookie."""
    form = await _form_of(request)
    portal = Portal(request=request, session=session, locale=i18n.negotiate(request), form=form)
    cookie = portal._form_cookie
    portal.csrf_token = tokens.csrf_token_for(cookie, _settings(request).secret())
    if request.method in UNSAFE_METHODS and not (
        form is not None
        and request.cookies.get(FORM_COOKIE)
        and tokens.csrf_token_valid(_token_in(form), cookie, _settings(request).secret())
    ):
        raise ForbiddenError(
            portal.gettext("This form has expired; reload the page and try again.")
        )
    return portal


mark_guard(signed_in, ("self", "any"))
mark_guard(signed_in_before_mfa, ("self", "any"))
mark_guard(anonymous_form, ("public", "form"))

SignedIn = Annotated[Portal, Depends(signed_in)]
SignedInBeforeMfa = Annotated[Portal, Depends(signed_in_before_mfa)]
AnonymousForm = Annotated[Portal, Depends(anonymous_form)]


def sign_in_url(next_path: str, *, expired: bool = False) -> str:
    query = f"?next={quote(local_path(next_path))}"
    return f"{PREFIX}/sign-in{query}{'&expired=1' if expired else ''}"
