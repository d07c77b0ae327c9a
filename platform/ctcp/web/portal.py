"""A portal page's context: who reads, in which language, their form, and how to answer.

Portal routes accept sessions only. Every page declares a guard: `page_guard(resource,
action)` admits the reader by the same Casbin decision as the API (`ctcp.authz.guard`),
so a page and the endpoint it mirrors refuse, scope and audit alike, and hands the page
a `GuardedPortal` whose `access` is that grant; `signed_in` is for pages every
signed-in person has (the dashboard, MFA enrolment); `anonymous_form` for sign-in.
Forms carry their CSRF token in a `csrf_token` field: the session's token, or before
sign-in a token bound to a random pre-session cookie.

The jobs live in small modules: `forms` (fields, schema errors), `notices` (redirects
with a one-time notice), `rendering` (templates), `paths`; every "may I?" goes to
`ctcp.authz.guard.decide`, through `Portal.granted` for links and buttons.
"""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from babel.support import NullTranslations
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from ctcp.authn.service import person
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access, admit, decide, granted
from ctcp.core.config import Settings
from ctcp.core.db import SessionDep
from ctcp.core.errors import ForbiddenError
from ctcp.core.http import UNSAFE_METHODS
from ctcp.core.routes import mark_guard
from ctcp.identity import tokens
from ctcp.identity.service import Principal
from ctcp.organizations.models import Organization
from ctcp.web import forms, i18n, notices
from ctcp.web.forms import ModelT
from ctcp.web.labels import LABELS
from ctcp.web.paths import PREFIX, url_with
from ctcp.web.rendering import environment_for

FORM_COOKIE = "ctcp_form"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@dataclass(kw_only=True)
class Portal:
    """One portal request: the reader (None before sign-in), their language and form."""

    request: Request
    session: AsyncSession
    locale: str
    subject: Subject | None = None
    principal: Principal | None = None
    form: FormData | None = None
    csrf_token: str = ""
    _names: dict[str, Organization] | None = field(default=None, repr=False)
    _grant: Access | None = field(default=None, repr=False)

    # --- language ---------------------------------------------------------------------

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

    # --- the submitted form -----------------------------------------------------------

    def field(self, name: str) -> str:
        """A text field of the submitted form ('' when absent)."""
        return forms.Fields(self.form).field(name)

    def fields(self, name: str) -> list[str]:
        return forms.Fields(self.form).fields(name)

    def validate(
        self, schema: type[ModelT], data: dict[str, Any]
    ) -> tuple[ModelT | None, dict[str, str]]:
        """The API's request schema built from a form, or the errors per form field."""
        return forms.validate(schema, data, self.gettext)

    # --- may I? -----------------------------------------------------------------------

    def granted(self, resource: str, action: str) -> bool:
        """Whether the reader may do (resource, action): for links and buttons only."""
        return self.subject is not None and bool(
            decide(self.request, self.subject, resource, action)
        )

    async def access_for(self, resource: str, action: str) -> Access | None:
        """The reader's grant for (resource, action), or None, without auditing a refusal.

        Later refusals in the page (404 outside the scope) are audited once, as the API's
        are: by the page's guard, or by the first grant a signed-in page takes here.
        """
        if self.subject is None or not self.granted(resource, action):
            return None
        if self._grant is not None:
            return granted(self.request, self._grant, resource, action)
        self._grant = admit(self.request, self.session, self.subject, resource, action)
        return self._grant

    # --- names of organizations -------------------------------------------------------

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

    # --- answering --------------------------------------------------------------------

    async def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        await self.organization_names()
        notice = notices.notice_of(self.request)
        values = {
            "portal": self,
            "request": self.request,
            "locale": self.locale,
            "direction": i18n.direction(self.locale),
            "languages": i18n.LANGUAGES,
            "fmt": i18n.Formatter(self.locale),
            "org_name": self.org_name,
            "notice": notice,
            "url_with": self.url_with,
            "label": self.label,
            **context,
        }
        html = environment_for(self.locale).get_template(template).render(values)
        response = HTMLResponse(html, status_code=status)
        if notice is not None:
            notices.forget_notice(response)
        if not self.request.cookies.get(FORM_COOKIE) and self.principal is None:
            response.set_cookie(
                FORM_COOKIE,
                _form_cookie(self.request),
                httponly=True,
                samesite="lax",
                secure=self.request.url.scheme == "https",
                path=PREFIX,
            )
        return response

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
        return url_with(self.request, **changes)

    def redirect(self, url: str, notice: str | None = None) -> RedirectResponse:
        """303 to a page of the portal, with a one-time notice shown there."""
        return notices.redirect(self.request, url, notice)


@dataclass(kw_only=True)
class SignedInPortal(Portal):
    """A page for a signed-in reader: their session and subject are never None."""

    subject: Subject
    principal: Principal


@dataclass(kw_only=True)
class GuardedPortal(SignedInPortal):
    """A page behind `page_guard`: the reader is signed in and holds the page's grant."""

    access: Access

    def __post_init__(self) -> None:
        self._grant = self.access


def _form_cookie(request: Request) -> str:
    """The random pre-session cookie an anonymous form's CSRF token is bound to."""
    existing = request.cookies.get(FORM_COOKIE)
    if existing:
        return existing
    cached: str | None = getattr(request.state, "form_cookie", None)
    if cached is None:
        cached = secrets.token_urlsafe(32)
        request.state.form_cookie = cached
    return cached


def _csrf_token(request: Request, principal: Principal) -> str:
    return tokens.csrf_token_for(principal.session_token, _settings(request).secret())


def page_guard(resource: str, action: str) -> Any:
    """A page's guard: the API's Casbin decision for (resource, action), sessions only."""

    async def dependency(request: Request, session: SessionDep) -> GuardedPortal:
        form = await forms.form_of(request)
        principal, subject = await person(
            request, session, form_csrf_token=forms.csrf_token_in(form)
        )
        return GuardedPortal(
            request=request,
            session=session,
            locale=i18n.negotiate(request),
            subject=subject,
            principal=principal,
            access=admit(request, session, subject, resource, action),
            form=form,
            csrf_token=_csrf_token(request, principal),
        )

    mark_guard(dependency, (resource, action))
    dependency.__name__ = f"page_guard_{resource}_{action}"
    return Depends(dependency)


async def _signed_in_portal(
    request: Request, session: AsyncSession, *, require_enrolment: bool
) -> SignedInPortal:
    form = await forms.form_of(request)
    principal, subject = await person(
        request,
        session,
        require_enrolment=require_enrolment,
        form_csrf_token=forms.csrf_token_in(form),
    )
    return SignedInPortal(
        request=request,
        session=session,
        locale=i18n.negotiate(request),
        subject=subject,
        principal=principal,
        form=form,
        csrf_token=_csrf_token(request, principal),
    )


async def signed_in(request: Request, session: SessionDep) -> SignedInPortal:
    """Any signed-in person (enrolled in MFA where their role requires it)."""
    return await _signed_in_portal(request, session, require_enrolment=True)


async def signed_in_before_mfa(request: Request, session: SessionDep) -> SignedInPortal:
    """A signed-in person who may still have to enrol in MFA (enrolment, sign-out)."""
    return await _signed_in_portal(request, session, require_enrolment=False)


async def anonymous_form(request: Request, session: SessionDep) -> Portal:
    """Pages before sign-in; their forms are bound to a random pre-session cookie."""
    form = await forms.form_of(request)
    cookie = _form_cookie(request)
    secret = _settings(request).secret()
    portal = Portal(
        request=request,
        session=session,
        locale=i18n.negotiate(request),
        form=form,
        csrf_token=tokens.csrf_token_for(cookie, secret),
    )
    if request.method in UNSAFE_METHODS and not (
        form is not None
        and request.cookies.get(FORM_COOKIE)
        and tokens.csrf_token_valid(forms.csrf_token_in(form), cookie, secret)
    ):
        raise ForbiddenError(
            portal.gettext("This form has expired; reload the page and try again.")
        )
    return portal


mark_guard(signed_in, ("self", "any"))
mark_guard(signed_in_before_mfa, ("self", "any"))
mark_guard(anonymous_form, ("public", "form"))

SignedIn = Annotated[SignedInPortal, Depends(signed_in)]
SignedInBeforeMfa = Annotated[SignedInPortal, Depends(signed_in_before_mfa)]
AnonymousForm = Annotated[Portal, Depends(anonymous_form)]
