"""Build the demo data set through the same services the API calls.

Each demo user acts with the data scopes the loaded policy grants their roles, so every
rule is checked, every change is audited in the hash chain, and every invariant (a
publication per consent decision, needs shared only by consent, offers only on circulated
requests) holds as it would through the API.
"""

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import NoReturn

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.assistance import consultations, needs, offers, requests
from ctcp.assistance.models import (
    AssistanceRequest,
    CapacityConsultation,
    Need,
    NeedSource,
    NeedStatus,
    Offer,
    OfferStatus,
    PlanIndicator,
    PlanMeasure,
    RequestStatus,
)
from ctcp.assistance.schemas import (
    ConsultationCreate,
    NeedCreate,
    NeedUpdate,
    OfferCreate,
    ProgressIn,
    RequestCreate,
    TransitionIn,
)
from ctcp.audit.service import AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access
from ctcp.authz.policy import PolicyEngine, load_engine
from ctcp.authz.scopes import DataScope
from ctcp.consent import needs_sharing
from ctcp.consent import service as consent_service
from ctcp.consent.models import Audience, ConsentScope, Publication
from ctcp.consent.schemas import ConsentDecision, NeedsSharingDecision
from ctcp.contacts import service as contacts
from ctcp.contacts.models import ContactPoint, ContactPointVersion
from ctcp.contacts.schemas import ContactPointCreate, ContactPointUpdate
from ctcp.core.clock import clock
from ctcp.core.errors import DomainError
from ctcp.identity import service as identity
from ctcp.identity.models import User
from ctcp.identity.passwords import PasswordHasher
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization
from ctcp.planning import service as planning
from ctcp.planning.models import Activity, ActivityMeasure, ActivityNeed, ActivityPartner
from ctcp.planning.schemas import ActivityRead
from ctcp.reports import service as reports
from ctcp.reports.models import Priority, Recommendation, ReportSection, ThematicArea, VisitReport
from ctcp.reports.schemas import ReportContent
from ctcp_demo import content
from ctcp_demo.content import (
    ACCOUNTS,
    CONTACT_MARKER_ID,
    DEMO_DOMAIN,
    MARKER_EMAIL,
    DemoAccount,
)


class DemoSetupError(DomainError):
    title = "The demo data cannot be loaded"


def check_demo_password(password: str) -> None:
    """The password must pass the platform's rules for every demo account (422 if not)."""
    for account in ACCOUNTS:
        identity.check_password(password, email=account.email)


@dataclass(frozen=True)
class Actor:
    """A demo user acting with the scopes the policy grants their roles."""

    subject: Subject
    engine: PolicyEngine

    def may(self, resource: str, action: str) -> bool:
        return bool(self._scopes(resource, action))

    def access(self, resource: str, action: str) -> Access:
        scopes = self._scopes(resource, action)
        if not scopes:
            raise DemoSetupError(
                f"The policy grants {sorted(self.subject.roles)} no {action} on {resource}: "
                "run `ctcp policy load` first."
            )
        return Access(self.subject, resource, action, scopes)

    def _scopes(self, resource: str, action: str) -> frozenset[DataScope]:
        organization = self.subject.organization.code
        return self.engine.scopes(self.subject.roles, organization, resource, action)


@dataclass
class DemoSummary:
    """What the demo added: counts, and the accounts to sign in with."""

    counts: dict[str, int]
    accounts: tuple[DemoAccount, ...] = ACCOUNTS


@dataclass
class _Demo:
    """The demo's users at work in one transaction, and a tally of what they made."""

    session: AsyncSession
    engine: PolicyEngine
    context: AuditContext
    actors: dict[str, Actor] = field(default_factory=dict)
    tally: Counter[str] = field(default_factory=Counter)
    report_ids: list[uuid.UUID] = field(default_factory=list)
    request_ids: list[uuid.UUID] = field(default_factory=list)
    offer_ids: list[uuid.UUID] = field(default_factory=list)
    contact_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    activity_ids: list[uuid.UUID] = field(default_factory=list)

    def __getitem__(self, key: str) -> Actor:
        return self.actors[key]

    # --- accounts ----------------------------------------------------------------------

    async def create_accounts(self, password: str, hasher: PasswordHasher) -> None:
        for account in ACCOUNTS:
            organization = await self._organization(account.organization)
            created = await identity.create_user(
                self.session,
                email=account.email,
                name=account.name,
                organization=organization,
                password=password,
                roles=[account.role.value],
                hasher=hasher,
                context=self.context,
            )
            subject = Subject(
                user_id=created.user.id,
                client_id=None,
                organization=organization,
                roles=created.roles,
                audit=self.context.as_user(created.user.id, organization.code),
            )
            self.actors[account.key] = Actor(subject, self.engine)
            self.tally["users"] += 1

    async def sign_in_accounts(self) -> None:
        """The accounts of a demo loaded earlier, acting with the roles they hold now."""
        for account in ACCOUNTS:
            found = await identity.load_account(self.session, email=account.email)
            if found is None:
                _missing(f"the demo account {account.email}")
            subject = Subject(
                user_id=found.user.id,
                client_id=None,
                organization=found.organization,
                roles=found.roles,
                audit=self.context.as_user(found.user.id, found.organization.code),
            )
            self.actors[account.key] = Actor(subject, self.engine)

    async def _organization(self, code: str) -> Organization:
        organization = await organizations.organization_by_code(self.session, code)
        if organization is None:
            raise DemoSetupError(
                f"No organization with code {code!r}: run `ctcp load-reference-data` first."
            )
        return organization

    # --- reports and consent -----------------------------------------------------------

    async def report(self, state: str, body: ReportContent, *, adopt: bool = True) -> VisitReport:
        writer = self["analyst"].access("report", "write")
        created = (
            await reports.create_report(self.session, writer, state_code=state, content=body)
        ).report
        self.tally["report versions"] += 1
        self.report_ids.append(created.id)
        if adopt:
            await reports.adopt(self.session, writer, created.id)
        return created

    async def amend(self, report: VisitReport, body: ReportContent) -> VisitReport:
        writer = self["analyst"].access("report", "write")
        amended = await reports.amend(self.session, writer, report.id)
        await reports.update_draft(self.session, writer, amended.id, body)
        await reports.adopt(self.session, writer, amended.id)
        self.tally["report versions"] += 1
        self.report_ids.append(amended.id)
        return amended

    async def sections(self, report: VisitReport) -> dict[str, ReportSection]:
        rows = await self.session.exec(
            select(ReportSection).where(col(ReportSection.report_id) == report.id)
        )
        return {section.area: section for section in rows.all()}

    async def recommendation(self, report: VisitReport, area: ThematicArea) -> Recommendation:
        section = (await self.sections(report))[area.value]
        found = await self.session.exec(
            select(Recommendation)
            .where(col(Recommendation.section_id) == section.id)
            .order_by(col(Recommendation.position))
        )
        return found.first() or _missing(f"a recommendation in {area.value}")

    async def consent(self, who: str, report: VisitReport, decision: ConsentDecision) -> None:
        actor = self[who]
        # As the portal does: the decision names the latest one its author saw.
        seen = await consent_service.history(self.session, report.id)
        await consent_service.record(
            self.session,
            actor.access("consent", "narrow"),
            report.id,
            decision.model_copy(update={"after_sequence": seen[-1].sequence if seen else 0}),
            may_broaden=actor.may("consent", "broaden"),
        )
        self.tally["consent decisions"] += 1

    async def withdraw(self, who: str, report: VisitReport, reason: str) -> None:
        await consent_service.withdraw(
            self.session, self[who].access("consent", "narrow"), report.id, reason
        )
        self.tally["consent decisions"] += 1

    async def share_needs(self, state: str, reference: str) -> None:
        officer = self["consent.officer"]
        access = officer.access("consent", "narrow")
        organization = await needs_sharing.sharing_state(self.session, access, state)
        seen = await needs_sharing.history(self.session, organization.id)
        await needs_sharing.record(
            self.session,
            access,
            organization,
            NeedsSharingDecision(
                share_needs=True,
                reference=reference,
                after_sequence=seen[-1].sequence if seen else 0,
            ),
            may_broaden=officer.may("consent", "broaden"),
        )
        self.tally["needs-sharing decisions"] += 1

    # --- technical assistance ----------------------------------------------------------

    async def need(self, body: NeedCreate) -> Need:
        created = await needs.create_need(
            self.session, self["analyst"].access("need", "write"), body
        )
        self.tally["needs"] += 1
        return created

    async def need_from(
        self, report: VisitReport, area: ThematicArea, description: str, priority: Priority
    ) -> Need:
        recommendation = await self.recommendation(report, area)
        state = await self._state_code(report)
        return await self.need(
            NeedCreate(
                state=state,
                description=description,
                priority=priority,
                source=NeedSource.RECOMMENDATION,
                recommendation_id=recommendation.id,
            )
        )

    async def _state_code(self, report: VisitReport) -> str:
        state = await self.session.get(Organization, report.state_id)
        return state.code if state is not None else _missing("the report's State")

    async def file(
        self, who: str, title: str, description: str, *filed_needs: Need, state: str | None = None
    ) -> AssistanceRequest:
        filed = await requests.create_request(
            self.session,
            self[who].access("request", "create"),
            RequestCreate(
                state=state,
                title=title,
                description=description,
                need_ids=[n.id for n in filed_needs],
            ),
        )
        self.request_ids.append(filed.id)
        return filed

    async def move(
        self,
        who: str,
        filed: AssistanceRequest,
        to: RequestStatus,
        *,
        reason: str | None = None,
        notify: list[str] | None = None,
    ) -> None:
        await requests.transition(
            self.session,
            self[who].access("request", "transition"),
            filed.id,
            TransitionIn(to=to, reason=reason, notify=notify),
        )

    async def circulate(self, filed: AssistanceRequest, notify: list[str] | None = None) -> None:
        await self.move("analyst", filed, RequestStatus.UNDER_REVIEW)
        await self.move("analyst", filed, RequestStatus.CIRCULATED, notify=notify)

    async def offer(
        self,
        who: str,
        filed: AssistanceRequest,
        programme: str,
        description: str,
        timeline: str,
        budget: int | None = None,
    ) -> Offer:
        made = await offers.create_offer(
            self.session,
            self[who].access("offer", "create"),
            filed.id,
            OfferCreate(
                programme=programme,
                description=description,
                timeline=timeline,
                budget=None if budget is None else Decimal(budget),
                currency=None if budget is None else "USD",
            ),
        )
        self.offer_ids.append(made.id)
        return made

    async def decide(self, who: str, offer: Offer, *, accept: bool, reason: str | None) -> None:
        access = self[who].access("offer", "decide")
        await offers.decide(self.session, access, offer.id, accept=accept, reason=reason)

    async def consultation(self, body: ConsultationCreate) -> CapacityConsultation:
        created = await consultations.create_consultation(
            self.session, self["analyst"].access("consultation", "write"), body
        )
        self.tally["capacity consultations"] += 1
        self.tally["plan measures"] += len(body.measures)
        self.tally["indicators"] += sum(len(m.indicators) for m in body.measures)
        return created

    async def indicator(self, consultation: CapacityConsultation, name: str) -> PlanIndicator:
        found = await self.session.exec(
            select(PlanIndicator)
            .join(PlanMeasure, col(PlanMeasure.id) == col(PlanIndicator.measure_id))
            .where(
                col(PlanMeasure.consultation_id) == consultation.id,
                col(PlanIndicator.name) == name,
            )
        )
        return found.first() or _missing(f"the indicator {name!r}")

    async def progress(
        self, who: str, consultation: CapacityConsultation, name: str, value: float, note: str
    ) -> None:
        indicator = await self.indicator(consultation, name)
        await consultations.record_progress(
            self.session,
            self[who].access("consultation", "progress"),
            indicator.id,
            ProgressIn(value=value, note=note),
        )
        self.tally["progress updates"] += 1

    # --- the directory of national contact points ------------------------------------------

    async def contact_point(self, entry: content.DemoContactPoint) -> None:
        """Add an entry as the API would: the focal point's own State through the service's
        create, or, for an entry from CTED's former database, the analyst with the date of
        its last confirmation there."""
        access = self[entry.writer].access("contact", "write")
        if entry.confirmed_days_ago is None:
            created = await contacts.create_contact_point(
                self.session,
                access,
                ContactPointCreate(state=entry.state, **entry.body.model_dump()),
            )
            self.contact_ids[entry.key] = created.id
        else:
            written = await contacts.insert_contact_point(
                self.session,
                contacts.Editor.of(access),
                await reports.member_state(self.session, entry.state),
                entry.body,
                contact_id=content.former_database_id(entry.key),
                confirmed_at=clock.now() - timedelta(days=entry.confirmed_days_ago),
            )
            self.contact_ids[entry.key] = written.id

    async def update_contact_point(self, who: str, key: str, body: ContactPointUpdate) -> None:
        await contacts.update_contact_point(
            self.session, self[who].access("contact", "write"), self.contact_ids[key], body
        )

    async def confirm_contact_point(self, who: str, key: str) -> None:
        await contacts.confirm_contact_point(
            self.session, self[who].access("contact", "write"), self.contact_ids[key]
        )

    # --- joint planning ----------------------------------------------------------------------

    async def _needs_named(self, state: str, words: Sequence[str]) -> list[uuid.UUID]:
        """The State's needs whose descriptions hold these words, one each."""
        found = []
        for phrase in words:
            rows = await self.session.exec(
                select(Need.id)
                .join(Organization, col(Organization.id) == col(Need.state_id))
                .where(col(Organization.code) == state, col(Need.description).contains(phrase))
            )
            matches = rows.all()
            if len(matches) != 1:
                _missing(f"one need of {state} about {phrase!r}")
            found.append(matches[0])
        return found

    async def _measures_named(self, state: str, titles: Sequence[str]) -> list[uuid.UUID]:
        """The State's plan measures with these titles."""
        found = []
        for title in titles:
            rows = await self.session.exec(
                select(PlanMeasure.id)
                .join(
                    CapacityConsultation,
                    col(CapacityConsultation.id) == col(PlanMeasure.consultation_id),
                )
                .join(Organization, col(Organization.id) == col(CapacityConsultation.state_id))
                .where(col(Organization.code) == state, col(PlanMeasure.title) == title)
            )
            found.append(rows.first() or _missing(f"{state}'s plan measure {title!r}"))
        return found

    async def activity(self, entry: content.DemoActivity) -> ActivityRead:
        """Record an activity as the API would, then its writer's later change, if any."""
        state = entry.body.state
        body = entry.body.model_copy(
            update={
                "need_ids": await self._needs_named(state, entry.needs),
                "measure_ids": await self._measures_named(state, entry.measures),
            }
        )
        access = self[entry.writer].access("activity", "write")
        recorded = await planning.create_activity(self.session, access, body)
        self.activity_ids.append(recorded.id)
        if entry.then is not None:
            recorded = await planning.update_activity(self.session, access, recorded.id, entry.then)
        return recorded

    async def plan_accepted_offers(self) -> None:
        """The planned activity of every accepted offer that has none: what accepting it
        does today, for a demo whose offers were accepted before joint planning existed.
        Done as the focal point who accepted it (the analyst if that is no demo account)."""
        rows = await self.session.exec(
            select(Offer, AssistanceRequest)
            .join(AssistanceRequest, col(AssistanceRequest.id) == col(Offer.request_id))
            .where(
                col(Offer.status) == OfferStatus.ACCEPTED.value,
                ~col(Offer.id).in_(
                    select(Activity.offer_id).where(col(Activity.offer_id).is_not(None))
                ),
            )
            .order_by(col(Offer.decided_at), col(Offer.id))
        )
        deciders = {actor.subject.user_id: actor for actor in self.actors.values()}
        for offer, filed in rows.all():
            actor = deciders.get(offer.decided_by, self["analyst"])
            resource = (
                ("offer", "decide") if actor.may("offer", "decide") else ("activity", "write")
            )
            planned = await planning.plan_from_offer(
                self.session, actor.access(*resource), filed, offer
            )
            self.activity_ids.append(planned.id)

    async def complete_planned_offer(self, entry: content.DemoPlannedOffer) -> None:
        """The lead's focal point fills in the activity an accepted offer planned."""
        found = await self.session.exec(
            select(Activity)
            .join(Organization, col(Organization.id) == col(Activity.state_id))
            .where(
                col(Organization.code) == entry.state,
                col(Activity.offer_id).is_not(None),
                col(Activity.lead_id)
                == select(Organization.id)
                .where(col(Organization.code) == entry.lead)
                .scalar_subquery(),
            )
        )
        planned = found.first() or _missing(f"the activity {entry.lead}'s offer planned")
        if planned.id not in self.activity_ids:
            self.activity_ids.append(planned.id)
        linked = await self.session.exec(
            select(ActivityNeed.need_id).where(col(ActivityNeed.activity_id) == planned.id)
        )
        change = entry.change.model_copy(
            update={
                "need_ids": [*linked.all(), *await self._needs_named(entry.state, entry.needs)],
                "measure_ids": await self._measures_named(entry.state, entry.measures),
            }
        )
        await planning.update_activity(
            self.session, self[entry.writer].access("activity", "write"), planned.id, change
        )

    async def activity_counts(self) -> dict[str, int]:
        """The activities the demo added, by status, and what they are linked to."""
        ids = self.activity_ids
        statuses = await self.session.exec(select(Activity.status).where(col(Activity.id).in_(ids)))
        counts = {"activities": len(ids)}
        for status, number in sorted(Counter(statuses.all()).items()):
            counts[f"  {status} activities"] = number
        for label, table in (
            ("activity partners", ActivityPartner),
            ("activity needs", ActivityNeed),
            ("activity measures", ActivityMeasure),
        ):
            linked = await self.session.exec(
                select(func.count()).select_from(table).where(col(table.activity_id).in_(ids))
            )
            counts[label] = linked.one()
        return counts

    async def summary(self) -> DemoSummary:
        """The tally in reading order, with requests and offers by their final status."""
        live = await self.session.exec(
            select(func.count())
            .select_from(Publication)
            .where(
                col(Publication.report_id).in_(self.report_ids),
                consent_service.live(clock.now()),
            )
        )
        request_statuses = await self.session.exec(
            select(AssistanceRequest.status).where(col(AssistanceRequest.id).in_(self.request_ids))
        )
        offer_statuses = await self.session.exec(
            select(Offer.status).where(col(Offer.id).in_(self.offer_ids))
        )
        tally = self.tally
        counts = {
            "users": tally["users"],
            "report versions": tally["report versions"],
            "consent decisions": tally["consent decisions"],
            "live publications": live.one(),
            "needs-sharing decisions": tally["needs-sharing decisions"],
            "needs": tally["needs"],
            "assistance requests": len(self.request_ids),
        }
        for status, number in sorted(Counter(request_statuses.all()).items()):
            counts[f"  {status}"] = number
        counts["offers"] = len(self.offer_ids)
        for status, number in sorted(Counter(offer_statuses.all()).items()):
            counts[f"  {status} offers"] = number
        for label in ("capacity consultations", "plan measures", "indicators", "progress updates"):
            counts[label] = tally[label]
        counts.update(await self.activity_counts())
        counts.update(await self.contact_counts())
        return DemoSummary(counts=counts)

    async def contact_counts(self) -> dict[str, int]:
        """The entries the demo added, and the versions their history holds."""
        versions = await self.session.exec(
            select(func.count())
            .select_from(ContactPointVersion)
            .where(col(ContactPointVersion.contact_point_id).in_(self.contact_ids.values()))
        )
        return {
            "contact points": len(self.contact_ids),
            "contact-point versions": versions.one(),
        }


def _missing(what: str) -> NoReturn:
    raise DemoSetupError(f"The demo data is inconsistent: {what} is missing.")


async def demo_present(session: AsyncSession) -> bool:
    """Whether the demo data is there already (its CTED analyst account is the marker)."""
    return await identity.load_account(session, email=MARKER_EMAIL) is not None


async def demo_contacts_present(session: AsyncSession) -> bool:
    """Whether the demo's directory is there (its first entry, retired or not, is the
    marker)."""
    return await session.get(ContactPoint, CONTACT_MARKER_ID) is not None


async def demo_activities_present(session: AsyncSession) -> bool:
    """Whether the demo's activities are there: any activity recorded by a demo account
    (activities are never deleted, so the demo's own stay the marker)."""
    recorded = await session.exec(
        select(Activity.id)
        .join(User, col(User.id) == col(Activity.created_by))
        .where(col(User.email).endswith(f"@{DEMO_DOMAIN}"))
        .limit(1)
    )
    return recorded.first() is not None


async def load_demo(
    session: AsyncSession,
    *,
    password: str,
    hasher: PasswordHasher,
    context: AuditContext,
) -> DemoSummary | None:
    """Fill the demo data set in this transaction; None when it is present already.

    A demo data set loaded before joint planning or the directory of contact points
    existed gets what it lacks of them (its accounts write it) and nothing else.
    """
    check_demo_password(password)
    if await demo_present(session):
        missing_activities = not await demo_activities_present(session)
        missing_contacts = not await demo_contacts_present(session)
        if not (missing_activities or missing_contacts):
            return None
        demo = _Demo(session, await load_engine(session), context)
        await demo.sign_in_accounts()
        counts: dict[str, int] = {}
        if missing_activities:
            await demo.plan_accepted_offers()
            await _activities(demo)
            counts.update(await demo.activity_counts())
        if missing_contacts:
            await _contact_points(demo)
            counts.update(await demo.contact_counts())
        return DemoSummary(counts=counts)
    demo = _Demo(session, await load_engine(session), context)
    await demo.create_accounts(password, hasher)
    await _kenya(demo)
    await _france(demo)
    await _indonesia(demo)
    await _jordan(demo)
    await _colombia(demo)
    await _activities(demo)
    await _contact_points(demo)
    return await demo.summary()


async def _kenya(demo: _Demo) -> None:
    """Full consent to the Compact with needs shared; a draft follow-up; a travel plan."""
    A = ThematicArea
    report = await demo.report("KEN", content.KENYA_REPORT)
    await demo.consent(
        "consent.officer",
        report,
        ConsentDecision(
            scope=ConsentScope.FULL,
            audience=Audience.COMPACT,
            share_needs=True,
            reference="Note verbale KEN/MFA/2025/118 (fictional)",
        ),
    )
    await demo.report("KEN", content.KENYA_FOLLOW_UP, adopt=False)
    await demo.share_needs("KEN", "Note verbale KEN/MFA/2026/031 (fictional)")
    api_pnr = await demo.need_from(
        report,
        A.BORDER_MANAGEMENT,
        "An advance passenger information and passenger name record system for all "
        "international air carriers.",
        Priority.HIGH,
    )
    freezing = await demo.need_from(
        report,
        A.COUNTER_FINANCING,
        "Procedures and training to freeze terrorist assets without delay.",
        Priority.HIGH,
    )
    await demo.need_from(
        report,
        A.LAW_ENFORCEMENT,
        "Two regional digital-forensics laboratories and training for investigators.",
        Priority.HIGH,
    )
    travel = await _kenya_travel_plan(demo)
    await demo.need(
        NeedCreate(
            state="KEN",
            area=A.BORDER_MANAGEMENT,
            description="Training of passenger information unit analysts in risk targeting.",
            priority=Priority.MEDIUM,
            source=NeedSource.CONSULTATION,
            consultation_id=travel.id,
        )
    )
    passenger_data = await demo.file(
        "focal.kenya",
        "Passenger information unit and API/PNR system",
        "Kenya requests support to set up a passenger information unit and to receive and "
        "screen API and PNR data from every international air carrier.",
        api_pnr,
    )
    await demo.circulate(passenger_data, notify=["IOM", "ICAO", "INTERPOL", "UNODC"])
    chosen = await demo.offer(
        "focal.iom",
        passenger_data,
        "Border management information systems",
        "Installation of a passenger-data system, equipment for the passenger information "
        "unit and a six-month mentoring of its analysts.",
        "2027 Q1 - 2027 Q4",
        450_000,
    )
    await demo.offer(
        "focal.icao",
        passenger_data,
        "Traveller Identification Programme",
        "Legal and technical advice on API/PNR in line with Annex 9, and a workshop for "
        "the civil aviation authority.",
        "2027 Q2",
    )
    await demo.offer(
        "focal.interpol",
        passenger_data,
        "I-24/7 extension",
        "Screening of passenger data against INTERPOL databases from the passenger "
        "information unit.",
        "2027 Q1 - 2027 Q2",
        120_000,
    )
    await demo.decide(
        "focal.kenya", chosen, accept=True, reason="The most complete proposal for the unit."
    )
    await demo.move("analyst", passenger_data, RequestStatus.IN_PROGRESS)
    await needs.update_need(
        demo.session,
        demo["analyst"].access("need", "write"),
        api_pnr.id,
        NeedUpdate(status=NeedStatus.PARTIALLY_MET),
    )
    assets = await demo.file(
        "analyst",
        "Freezing terrorist assets without delay",
        "Filed by CTED on Kenya's behalf: drafting of procedures and training of the "
        "financial intelligence unit and supervisors on targeted financial sanctions.",
        freezing,
        state="KEN",
    )
    await demo.circulate(assets)
    await demo.offer(
        "focal.unodc",
        assets,
        "Global Programme against Money Laundering",
        "A mentor for the financial intelligence unit and two national workshops on "
        "targeted financial sanctions.",
        "2027 Q1 - 2027 Q3",
        180_000,
    )


async def _kenya_travel_plan(demo: _Demo) -> CapacityConsultation:
    """Kenya's countering-terrorist-travel plan, with progress reported by the entities."""
    plan = await demo.consultation(content.KENYA_CONSULTATION)
    trained = "Officers trained in passenger-data analysis"
    await demo.progress("focal.iom", plan, trained, 12, "First course for 12 analysts.")
    await demo.progress("focal.iom", plan, trained, 26, "Second course completed.")
    await demo.progress(
        "focal.iom", plan, "International flights with API data", 52, "Two more carriers."
    )
    await demo.progress(
        "focal.interpol", plan, "Border posts connected to I-24/7", 7, "Three posts connected."
    )
    await demo.progress(
        "analyst", plan, "Annex 9 PNR standards implemented", 35, "Assessed during the review."
    )
    return plan


async def _france(demo: _Demo) -> None:
    """A report in French, partially consented to the Member States, expiring in two years."""
    report = await demo.report("FRA", content.FRANCE_REPORT)
    sections = await demo.sections(report)
    await demo.consent(
        "consent.officer",
        report,
        ConsentDecision(
            scope=ConsentScope.PARTIAL,
            sections=[sections[area.value].id for area in content.FRANCE_CONSENTED],
            audience=Audience.MEMBER_STATES,
            reference="Note verbale n° 2025-0412 (fictive)",
            expires_at=clock.now() + timedelta(days=730),
        ),
    )


async def _indonesia(demo: _Demo) -> None:
    """An amended report: version 2 published to the public, version 1's consent withdrawn."""
    A = ThematicArea
    first = await demo.report("IDN", content.INDONESIA_REPORT)
    await demo.consent(
        "consent.officer",
        first,
        ConsentDecision(
            scope=ConsentScope.FULL,
            audience=Audience.COMPACT,
            reference="Note verbale IDN/2025/77 (fictional)",
        ),
    )
    second = await demo.amend(first, content.INDONESIA_AMENDED)
    await demo.consent(
        "consent.officer",
        second,
        ConsentDecision(
            scope=ConsentScope.FULL,
            audience=Audience.PUBLIC,
            share_needs=True,
            reference="Note verbale IDN/2026/15 (fictional)",
        ),
    )
    await demo.withdraw(
        "consent.officer", first, "Superseded by version 2, published at the State's request."
    )
    seaports = await demo.need_from(
        second,
        A.BORDER_MANAGEMENT,
        "Document-verification and watch-list screening equipment for the remaining "
        "passenger seaports.",
        Priority.HIGH,
    )
    await demo.need_from(
        second,
        A.HUMAN_RIGHTS,
        "Training of defence lawyers and police on access to counsel in terrorism cases.",
        Priority.HIGH,
    )
    prisons = await demo.need(
        NeedCreate(
            state="IDN",
            area=A.LAW_ENFORCEMENT,
            description="Training of prison intelligence officers and a secure channel to "
            "the counter-terrorism police unit.",
            priority=Priority.MEDIUM,
            source=NeedSource.STATE_REQUEST,
        )
    )
    equipment = await demo.file(
        "focal.indonesia",
        "Screening equipment for passenger seaports",
        "Indonesia requests document-verification equipment and training for four passenger "
        "seaports.",
        seaports,
    )
    await demo.circulate(equipment, notify=["UNODC", "IOM"])
    maritime = await demo.offer(
        "focal.unodc",
        equipment,
        "Global Maritime Crime Programme",
        "Equipment for four seaports, training of port officers and a joint exercise.",
        "2027 Q1 - 2027 Q4",
        600_000,
    )
    await demo.decide("focal.indonesia", maritime, accept=True, reason=None)
    intelligence = await demo.file(
        "focal.indonesia",
        "Prison intelligence",
        "Indonesia requests training for prison intelligence officers.",
        prisons,
    )
    await demo.move("analyst", intelligence, RequestStatus.UNDER_REVIEW)


async def _jordan(demo: _Demo) -> None:
    """Consent given, then withdrawn by the State itself: nothing of it remains published."""
    A = ThematicArea
    report = await demo.report("JOR", content.JORDAN_REPORT)
    await demo.consent(
        "consent.officer",
        report,
        ConsentDecision(
            scope=ConsentScope.FULL,
            audience=Audience.COMPACT,
            share_needs=True,
            reference="Note verbale 12/3/2026 (fictional)",
        ),
    )
    biometrics = await demo.need_from(
        report,
        A.BORDER_MANAGEMENT,
        "Biometric screening at every land crossing point, connected to INTERPOL databases.",
        Priority.HIGH,
    )
    await demo.need_from(
        report,
        A.COUNTER_FINANCING,
        "A declaration system for cash carried across land borders.",
        Priority.HIGH,
    )
    await demo.withdraw(
        "focal.jordan",
        report,
        "The Government asks that the report not be shared until the national "
        "counter-terrorism committee has reviewed it.",
    )
    await demo.file(
        "focal.jordan",
        "Biometric screening at land crossings",
        "Jordan requests biometric equipment and training for its land crossing points.",
        biometrics,
    )


async def _colombia(demo: _Demo) -> None:
    """No consent to the report, but needs shared: a SALW plan, offers pending and declined."""
    A = ThematicArea
    report = await demo.report("COL", content.COLOMBIA_REPORT)
    await demo.share_needs("COL", "Nota verbal S-GAIID-26-012345 (ficticia)")
    await demo.need_from(
        report,
        A.HUMAN_RIGHTS,
        "Guidance for prosecutors on protecting human-rights defenders in terrorism cases.",
        Priority.HIGH,
    )
    plan = await demo.consultation(content.COLOMBIA_CONSULTATION)
    await demo.progress("focal.unodc", plan, "Seized firearms traced", 28, "New tracing desk.")
    await demo.progress(
        "focal.interpol", plan, "iARMS queries per month", 64, "Border units now query iARMS."
    )
    await demo.progress(
        "analyst", plan, "Depots with improved physical security", 4, "Reported by the State."
    )
    firearms = await demo.need(
        NeedCreate(
            state="COL",
            area=A.BORDER_MANAGEMENT,
            description="Firearms marking, record-keeping and tracing at river and land borders.",
            priority=Priority.HIGH,
            source=NeedSource.STATE_REQUEST,
        )
    )
    await demo.need(
        NeedCreate(
            state="COL",
            area=A.LAW_ENFORCEMENT,
            description="Secure storage of seized firearms and ammunition in regional depots.",
            priority=Priority.MEDIUM,
            source=NeedSource.CONSULTATION,
            consultation_id=plan.id,
        )
    )
    forensics = await demo.need(
        NeedCreate(
            state="COL",
            area=A.LAW_ENFORCEMENT,
            description="Mobile forensic teams for rural departments.",
            priority=Priority.MEDIUM,
            source=NeedSource.STATE_REQUEST,
        )
    )
    tracing = await demo.file(
        "focal.colombia",
        "Tracing of illicit firearms",
        "Colombia requests support to mark, record and trace firearms seized near its borders.",
        firearms,
    )
    await demo.circulate(tracing, notify=["UNODC", "INTERPOL"])
    await demo.offer(
        "focal.unodc",
        tracing,
        "Global Firearms Programme",
        "Marking machines, a tracing desk and training of investigators.",
        "2027 Q2 - 2028 Q1",
        350_000,
    )
    iarms = await demo.offer(
        "focal.interpol",
        tracing,
        "iARMS and firearms reference table",
        "Access and training for border units.",
        "2027 Q1",
    )
    await demo.decide(
        "focal.colombia",
        iarms,
        accept=False,
        reason="Already covered by a bilateral arrangement with INTERPOL.",
    )
    mobile = await demo.file(
        "analyst",
        "Mobile forensic teams",
        "Filed by CTED on Colombia's behalf after the visit.",
        forensics,
        state="COL",
    )
    await demo.move(
        "analyst",
        mobile,
        RequestStatus.DECLINED,
        reason="Covered by an ongoing national programme; to be reassessed in 2027.",
    )


async def _activities(demo: _Demo) -> None:
    """Who does what where in the five States: the plans of the accepted offers filled in
    by their leads, then the entities' and CTED's other work, so that the matrix shows
    every open need worked on but one (a gap) and one cell with two leads at work at the
    same time (an overlap); a cancelled activity, two completed ones with their outputs,
    plan measures carried out."""
    for planned in content.PLANNED_OFFERS:
        await demo.complete_planned_offer(planned)
    for entry in content.ACTIVITIES:
        await demo.activity(entry)


async def _contact_points(demo: _Demo) -> None:
    """The five States' directories: a mix of audiences and languages, France complete and
    the others missing kinds, two entries stale and Kenya's central authority about to be;
    then a change and a confirmation, for the history."""
    for entry in content.CONTACT_POINTS:
        await demo.contact_point(entry)
    await demo.update_contact_point("focal.france", "fra.fiu", content.FRANCE_FIU_UPDATE)
    await demo.confirm_contact_point("focal.kenya", "ken.fiu")
