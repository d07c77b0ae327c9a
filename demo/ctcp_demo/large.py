"""`ctcp demo --scale large`: a large, seeded data set written in bulk, for benchmarks.

The small demo (`ctcp demo`) goes through the services one call at a time; at this size
that would take hours, so this module writes rows in batches (SQLAlchemy Core
`executemany`, and `COPY` on PostgreSQL for the biggest tables) while keeping every
invariant the services keep:

- each publication is exactly `consent.service.publication_sections` of its consent
  event, for that event's audience, and is revoked by the report's next event;
- requests name needs of their own State, offers are made on requests that were
  circulated while every need was shared, accepting one offer leaves the others
  `not_selected`;
- every write is matched by the audit event the service would have recorded, and the
  reads and sign-ins of the generated users fill the rest of the audit log, chained with
  `audit.service.compute_hash` and ending at the chain head.

Everything is drawn from one seeded generator and a fixed calendar (the two years before
`END`), so the same data lands on SQLite and on PostgreSQL. Every synthetic user shares
one argon2id hash of the demo password, computed once.
"""

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, Protocol, cast

import phonenumbers
import pycountry
from babel.core import Locale, get_global
from babel.languages import get_official_languages
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col

from ctcp.assistance.models import (
    AssistanceRequest,
    Need,
    NeedSource,
    NeedStatus,
    OfferStatus,
    Programme,
    RequestStatus,
)
from ctcp.audit import service as audit
from ctcp.audit.models import AuditChainHead
from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.authz.models import CasbinRule
from ctcp.changes import service as changes
from ctcp.consent import needs_sharing
from ctcp.consent import service as consent_service
from ctcp.consent.models import Audience, ConsentEvent, ConsentScope, NeedsSharingEvent
from ctcp.contacts.models import ContactAudience, ContactChange, ContactKind, ContactPoint
from ctcp.contacts.schemas import ContactPointContent, iso_639_1_codes
from ctcp.core.db import Database
from ctcp.core.errors import DomainError
from ctcp.identity import service as identity
from ctcp.identity.models import User, UserRole
from ctcp.identity.passwords import PasswordHasher
from ctcp.identity.roles import Role
from ctcp.organizations import service as organizations
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.planning import service as planning_service
from ctcp.planning.models import Activity, ActivityKind, ActivityStatus
from ctcp.planning.regions import RegionalGroup, group_of
from ctcp.reports.models import (
    Priority,
    ReportKind,
    ReportSection,
    ReportStatus,
    ThematicArea,
    VisitReport,
)

SEED = 20_261_122
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 730
START = END - timedelta(days=DAYS)
# Users join during the first month; their reads and sign-ins start after it.
ONBOARDING_DAYS = 30
DOMAIN = "large.ctcp.example"
MARKER_EMAIL = f"admin.00001@cted.{DOMAIN}"
BATCH = 5_000
SQLITE_CACHE_KIB = 512 * 1024
# Tables written with COPY on PostgreSQL (no JSON columns, many rows).
COPY_TABLES = frozenset(
    {
        "audit_events",
        "report_sections",
        "recommendations",
        "publication_sections",
        "users",
        "user_roles",
        "assistance_needs",
        "activity_partners",
        "activity_needs",
    }
)


class LargeDataSetError(DomainError):
    title = "The large data set cannot be loaded"


@dataclass(frozen=True)
class Scale:
    """How much to build: `large` is the issue's figure, the others divide it."""

    name: str
    users: int
    reports: int
    needs: int
    requests: int
    audit_events: int
    activities: int


SCALES = {
    "small": Scale("small", 200, 100, 300, 100, 10_000, 200),
    "medium": Scale("medium", 2_000, 1_000, 3_000, 1_000, 100_000, 2_000),
    "large": Scale("large", 20_000, 10_000, 30_000, 10_000, 1_000_000, 20_000),
}


class BuildProgress(Protocol):
    """Where the build reports its phases (a progress bar in the CLI)."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass
class BuildResult:
    """What was built, and how long each phase took (seconds)."""

    scale: Scale
    counts: dict[str, int]
    phases: list[tuple[str, float]]
    chain_length: int

    @property
    def total_seconds(self) -> float:
        return sum(seconds for _, seconds in self.phases)


# --- text ---------------------------------------------------------------------------------

AREA_TEXT: dict[ThematicArea, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    ThematicArea.LEGISLATION: (
        "Legislation and criminalization",
        (
            "The counter-terrorism law of {state} criminalizes the financing of terrorism "
            "and the travel of foreign terrorist fighters.",
            "The definition of terrorist acts in the penal code of {state} remains broad and "
            "could reach lawful protest.",
            "Preparatory acts are criminalized since the {year} amendment of the penal code.",
            "Courts of {state} heard {n} terrorism cases in the period under review.",
        ),
        (
            "Narrow the definition of terrorist acts in line with international law.",
            "Criminalize the receipt of terrorist training.",
            "Publish the case law of the specialized court.",
        ),
    ),
    ThematicArea.COUNTER_FINANCING: (
        "Counter-financing of terrorism and asset freezing",
        (
            "The financial intelligence unit of {state} received {n} suspicious transaction "
            "reports in {year}.",
            "Designations under resolution 1373 are implemented, but freezing takes weeks.",
            "Non-profit organizations are supervised by a risk-based approach since {year}.",
            "Cash couriers are declared at airports but rarely at land borders.",
        ),
        (
            "Freeze terrorist assets without delay after a designation.",
            "Train supervisors of money-value transfer services on targeted sanctions.",
            "Extend the cash declaration system to every land crossing.",
        ),
    ),
    ThematicArea.LAW_ENFORCEMENT: (
        "Law enforcement",
        (
            "A specialized counter-terrorism police unit of {n} officers covers the country.",
            "Digital evidence is examined by one laboratory in the capital of {state}.",
            "Police and intelligence services of {state} share information through a fusion "
            "cell set up in {year}.",
            "Special investigative techniques require a judge's warrant.",
        ),
        (
            "Open regional digital-forensics laboratories.",
            "Train investigators in financial investigations of terrorism cases.",
            "Give the fusion cell a secure channel to every border post.",
        ),
    ),
    ThematicArea.BORDER_MANAGEMENT: (
        "Border management and aviation security",
        (
            "Advance passenger information is received for {n} per cent of international "
            "flights to {state}.",
            "Border posts of {state} query INTERPOL databases at the main airport only.",
            "A passenger information unit was established in {year}.",
            "Screening at land crossings relies on paper watch lists.",
        ),
        (
            "Receive API and PNR data from every international air carrier.",
            "Connect every border post to INTERPOL's I-24/7 network.",
            "Introduce biometric screening at the main land crossings.",
        ),
    ),
    ThematicArea.INTERNATIONAL_COOPERATION: (
        "International judicial and law-enforcement cooperation",
        (
            "{state} has ratified {n} of the international counter-terrorism instruments.",
            "Mutual legal assistance is handled by a central authority created in {year}.",
            "Extradition requests take on average fourteen months.",
            "Joint investigation teams are permitted but have not been used.",
        ),
        (
            "Ratify the remaining international counter-terrorism instruments.",
            "Set deadlines for mutual legal assistance requests.",
            "Use joint investigation teams with neighbouring States.",
        ),
    ),
    ThematicArea.COUNTERING_VIOLENT_EXTREMISM: (
        "Countering incitement and violent extremism",
        (
            "The national strategy of {state} on preventing violent extremism dates from {year}.",
            "{n} local prevention networks involve municipalities, schools and civil society.",
            "Prison rehabilitation programmes reach a minority of those convicted.",
            "Online incitement is handled by a police unit without a legal mandate to refer "
            "content.",
        ),
        (
            "Evaluate the prevention strategy with civil society.",
            "Extend rehabilitation programmes to every prison.",
            "Give the online unit a clear legal basis with judicial oversight.",
        ),
    ),
    ThematicArea.HUMAN_RIGHTS: (
        "Human rights and rule of law",
        (
            "Suspects in terrorism cases in {state} may be held for {n} days before seeing a "
            "judge.",
            "Access to a lawyer is guaranteed from the first interrogation since {year}.",
            "An independent body reviews the use of counter-terrorism powers.",
            "Civil society reports that the law is used against human-rights defenders.",
        ),
        (
            "Shorten police custody in terrorism cases.",
            "Guarantee access to counsel from the moment of arrest.",
            "Protect human-rights defenders from misuse of counter-terrorism law.",
        ),
    ),
    ThematicArea.CRITICAL_INFRASTRUCTURE: (
        "Protection of critical infrastructure and vulnerable targets",
        (
            "{state} lists {n} critical infrastructure sites under a protection plan.",
            "Operators of soft targets were trained in {year}.",
            "A public-private partnership on the protection of stadiums is being prepared.",
            "Drones near airports are a growing concern for the authorities of {state}.",
        ),
        (
            "Adopt a national plan for the protection of vulnerable targets.",
            "Hold joint exercises with the operators of critical infrastructure.",
            "Regulate the use of drones near sensitive sites.",
        ),
    ),
}
AREAS = list(ThematicArea)
KIND_TITLES = {
    ReportKind.COMPREHENSIVE: "Comprehensive assessment visit",
    ReportKind.FOCUSED: "Focused assessment visit",
    ReportKind.FOLLOW_UP: "Follow-up visit",
}
NEED_TEXT = (
    "Training of {n} officers in {area}.",
    "Equipment and mentoring for the national unit responsible for {area}.",
    "Legal drafting support on {area}.",
    "A regional workshop on {area} with neighbouring States.",
    "An assessment of the capacity gaps in {area}.",
)
PROGRAMMES = (
    "Global Programme against Terrorism",
    "Countering Terrorist Travel Programme",
    "Border Management Programme",
    "Global Programme against Money Laundering",
    "Global Firearms Programme",
    "Traveller Identification Programme",
    "Programme on Prevention of Violent Extremism",
    "Protection of Vulnerable Targets Programme",
    "Fusion Cells Programme",
    "Criminal Justice Reform Programme",
)
FIRST_NAMES = (  # noqa: SIM905
    "Amina Ana Chen David Elena Farid Grace Hiro Ines Jonas Karim Lena Maria Nadia "
    "Omar Pablo Quynh Rosa Samuel Tariq Ursula Victor Wanjiru Xavier Yasmin Zoran"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Abebe Alvarez Bauer Chowdhury Diallo Dubois Evans Fernandes Gupta Haddad Ivanova "
    "Jensen Kim Lopez Mensah Nakamura Okafor Petrov Quispe Rahman Santos Tanaka Umar "
    "Vargas Wang Yilmaz Zulu"
).split()
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
)
REQUEST_STATUS_WEIGHTS = (
    (RequestStatus.SUBMITTED, 15),
    (RequestStatus.UNDER_REVIEW, 15),
    (RequestStatus.CIRCULATED, 20),
    (RequestStatus.MATCHED, 10),
    (RequestStatus.IN_PROGRESS, 15),
    (RequestStatus.COMPLETED, 10),
    (RequestStatus.DECLINED, 8),
    (RequestStatus.WITHDRAWN, 7),
)
# The workflow each final status went through (declined and withdrawn: from a random stage).
PATHS: dict[RequestStatus, tuple[RequestStatus, ...]] = {
    RequestStatus.SUBMITTED: (RequestStatus.SUBMITTED,),
    RequestStatus.UNDER_REVIEW: (RequestStatus.SUBMITTED, RequestStatus.UNDER_REVIEW),
    RequestStatus.CIRCULATED: (
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.CIRCULATED,
    ),
    RequestStatus.MATCHED: (
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.CIRCULATED,
        RequestStatus.MATCHED,
    ),
    RequestStatus.IN_PROGRESS: (
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.CIRCULATED,
        RequestStatus.MATCHED,
        RequestStatus.IN_PROGRESS,
    ),
    RequestStatus.COMPLETED: (
        RequestStatus.SUBMITTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.CIRCULATED,
        RequestStatus.MATCHED,
        RequestStatus.IN_PROGRESS,
        RequestStatus.COMPLETED,
    ),
}
MATCHED_OR_LATER = (RequestStatus.MATCHED, RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED)

# The directory of national contact points. CTED's database of the authorities receiving
# third-party asset-freeze requests held 59 Member States' entries (S/2017/1065, the
# Counter-Terrorism Committee's report on resolution 2322): the directory is that size
# at every scale, as it is a count of States, not of users.
CONTACT_STATES = 59
# The directory draws from a generator of its own, so every other row stays as it was.
CONTACT_SEED = SEED + 2322
# Kinds beyond the asset-freeze authority each State has: the chance of one entry, and of
# a second (two central authorities, a second 24/7 desk).
CONTACT_KINDS = (
    (ContactKind.MLA_CENTRAL_AUTHORITY, 0.95, 0.4),
    (ContactKind.EXTRADITION_CENTRAL_AUTHORITY, 0.85, 0.15),
    (ContactKind.POLICE_24_7, 0.95, 0.35),
    (ContactKind.FINANCIAL_INTELLIGENCE_UNIT, 0.95, 0.1),
    (ContactKind.CT_COORDINATOR, 0.8, 0.0),
)
CONTACT_AUDIENCES = (
    (ContactAudience.MEMBER_STATES, 50),
    (ContactAudience.COMPACT, 35),
    (ContactAudience.SECRETARIAT, 15),
)
# Share of entries their State keeps confirming; the others go stale after a year.
CONTACT_KEPT = 0.85
# Authority names by the language of the State's first official language (English when
# neither French nor Spanish); {state} is the State's name in that language.
AUTHORITIES: dict[str, dict[ContactKind, tuple[str, ...]]] = {
    "en": {
        ContactKind.ASSET_FREEZE: (
            "Ministry of Finance of {state} — Targeted Financial Sanctions Unit",
            "Ministry of Foreign Affairs of {state} — Sanctions Committee Secretariat",
            "National Committee on Counter-Terrorist Financing of {state}",
        ),
        ContactKind.MLA_CENTRAL_AUTHORITY: (
            "Ministry of Justice of {state} — Central Authority for Mutual Legal Assistance",
            "Office of the Attorney General of {state} — Central Authority",
            "Office of the Prosecutor General of {state} — International Cooperation Department",
        ),
        ContactKind.EXTRADITION_CENTRAL_AUTHORITY: (
            "Ministry of Justice of {state} — Extradition Unit",
            "Office of the Attorney General of {state} — Extradition Section",
        ),
        ContactKind.POLICE_24_7: (
            "INTERPOL National Central Bureau of {state} — 24/7 desk",
            "National Police of {state} — 24/7 Cybercrime Contact Point",
        ),
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: (
            "Financial Intelligence Unit of {state}",
            "Financial Intelligence Centre of {state}",
            "Financial Analysis Unit of {state}",
        ),
        ContactKind.CT_COORDINATOR: (
            "National Counter-Terrorism Centre of {state}",
            "Office of the National Counter-Terrorism Coordinator of {state}",
        ),
    },
    "fr": {
        ContactKind.ASSET_FREEZE: (
            "Ministère des Finances ({state}) — Cellule des sanctions financières",
            "Ministère des Affaires étrangères ({state}) — Comité national de gel des avoirs",
        ),
        ContactKind.MLA_CENTRAL_AUTHORITY: (
            "Ministère de la Justice ({state}) — Autorité centrale d'entraide judiciaire",
            "Parquet général ({state}) — Service de la coopération internationale",
        ),
        ContactKind.EXTRADITION_CENTRAL_AUTHORITY: (
            "Ministère de la Justice ({state}) — Bureau des extraditions",
        ),
        ContactKind.POLICE_24_7: (
            "Bureau central national INTERPOL ({state}) — permanence 24/7",
            "Police nationale ({state}) — point de contact 24/7 cybercriminalité",
        ),
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: (
            "Cellule de renseignement financier ({state})",
            "Cellule nationale de traitement des informations financières ({state})",
        ),
        ContactKind.CT_COORDINATOR: (
            "Coordination nationale de la lutte contre le terrorisme ({state})",
        ),
    },
    "es": {
        ContactKind.ASSET_FREEZE: (
            "Ministerio de Hacienda — Unidad de Sanciones Financieras",
            "Ministerio de Relaciones Exteriores — Comité de Sanciones",
        ),
        ContactKind.MLA_CENTRAL_AUTHORITY: (
            "Fiscalía General — Dirección de Cooperación Internacional",
            "Ministerio de Justicia — Autoridad Central de Asistencia Judicial",
        ),
        ContactKind.EXTRADITION_CENTRAL_AUTHORITY: (
            "Ministerio de Justicia — Oficina de Extradiciones",
        ),
        ContactKind.POLICE_24_7: (
            "Policía Nacional — Oficina Central Nacional INTERPOL, guardia 24/7",
        ),
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: (
            "Unidad de Información Financiera",
            "Unidad de Análisis Financiero",
        ),
        ContactKind.CT_COORDINATOR: ("Coordinación Nacional contra el Terrorismo",),
    },
}
# Procedural notes (channel, urgency, format): one on the kind's own channel where it has
# one, one on requests in general.
CONTACT_NOTES: dict[str, tuple[str, ...]] = {
    "en": (
        "Send requests by e-mail with a signed cover letter; the original follows through "
        "diplomatic channels.",
        "Urgent requests: call the duty officer first, then confirm by e-mail.",
        "Requests in {languages}; supporting documents with a certified translation.",
        "Answers within 10 working days, within 48 hours when marked urgent.",
    ),
    "fr": (
        "Demandes par courriel, accompagnées d'une lettre signée ; l'original suit par la "
        "voie diplomatique.",
        "En cas d'urgence, appeler la permanence puis confirmer par courriel.",
        "Demandes reçues en français ou accompagnées d'une traduction certifiée.",
        "Réponse sous 10 jours ouvrés ; sous 48 heures pour les demandes urgentes.",
    ),
    "es": (
        "Solicitudes por correo electrónico con una carta firmada; el original sigue por "
        "vía diplomática.",
        "Casos urgentes: llamar al oficial de guardia y confirmar por correo electrónico.",
        "Solicitudes en español o con traducción certificada.",
    ),
}
KIND_NOTES: dict[str, dict[ContactKind, str]] = {
    "en": {
        ContactKind.ASSET_FREEZE: "Requests under resolution 1373 (2001) by note verbale, with "
        "the identifying information and the reasons for the designation.",
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: "Exchanges between financial intelligence "
        "units through the Egmont Secure Web only.",
        ContactKind.POLICE_24_7: "Preservation of electronic evidence on request, 24 hours a "
        "day; police-to-police requests through I-24/7.",
        ContactKind.EXTRADITION_CENTRAL_AUTHORITY: "Requests for provisional arrest through "
        "INTERPOL, the full request within the time the applicable treaty allows.",
    },
    "fr": {
        ContactKind.ASSET_FREEZE: "Demandes de gel au titre de la résolution 1373 (2001) par "
        "note verbale, avec les éléments d'identification et l'exposé des motifs.",
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: "Échanges entre cellules de renseignement "
        "financier par le réseau Egmont uniquement.",
        ContactKind.POLICE_24_7: "Permanence 24 h/24 ; conservation rapide de données "
        "informatiques sur demande.",
    },
    "es": {
        ContactKind.FINANCIAL_INTELLIGENCE_UNIT: "Intercambio con unidades de inteligencia "
        "financiera por la red Egmont.",
        ContactKind.POLICE_24_7: "Guardia 24/7; conservación de evidencia digital a pedido.",
    },
}
CONTACT_SLUGS = {
    ContactKind.ASSET_FREEZE: ("sanctions", "tfs.requests"),
    ContactKind.MLA_CENTRAL_AUTHORITY: ("justice", "central.authority"),
    ContactKind.EXTRADITION_CENTRAL_AUTHORITY: ("justice", "extradition"),
    ContactKind.POLICE_24_7: ("police", "duty.officer"),
    ContactKind.FINANCIAL_INTELLIGENCE_UNIT: ("fiu", "international"),
    ContactKind.CT_COORDINATOR: ("ctc", "coordination"),
}
ENGLISH = Locale("en")
# What a State adds to its notes when it changes them.
COPY_NOTE = {
    "en": "Copy every request to the duty officer.",
    "fr": "Toute demande en copie à la permanence.",
    "es": "Toda solicitud con copia al oficial de guardia.",
}
WORKING_HOURS = ("Mon-Fri 08:00-17:00", "Mon-Fri 09:00-18:00", "Mon-Thu 08:00-16:00")
# The capital's zone of Member States spanning several (CLDR lists them without an order).
CAPITAL_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "CY": "Asia/Nicosia",
    "DE": "Europe/Berlin",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei",
    "ID": "Asia/Jakarta",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MH": "Pacific/Majuro",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PG": "Pacific/Port_Moresby",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}


# Joint planning: the activities of the Compact, those of accepted offers and the others
# over 2019-2028, the ones begun before the platform loaded from CTED's former matrix of
# technical assistance in its first year. They draw from a generator of their own, like
# the directory, so every other row stays as it was.
ACTIVITY_SEED = SEED + 18
FIRST_START = date(2019, 1, 1)
LAST_START = date(2028, 6, 30)
LAST_END = date(2028, 12, 31)
TODAY = END.date()
# How much capacity building each regional group receives (little in WEOG's States);
# each State's share is drawn around its group's.
REGION_WEIGHTS = {
    RegionalGroup.AFRICAN: 5.0,
    RegionalGroup.ASIA_PACIFIC: 4.0,
    RegionalGroup.LATIN_AMERICAN_CARIBBEAN: 3.0,
    RegionalGroup.EASTERN_EUROPEAN: 2.0,
    RegionalGroup.WESTERN_EUROPEAN_OTHERS: 0.3,
}
# The leads' shares of the work (1 for an entity not named; CTED leads none) and the
# areas each works in most.
LEAD_WEIGHTS = {
    "UNODC": 24,
    "UNOCT": 14,
    "INTERPOL": 8,
    "IOM": 7,
    "UNDP": 6,
    "OHCHR": 4,
    "ICAO": 4,
    "WCO": 4,
    "IMO": 3,
    "UNICRI": 3,
    "UNESCO": 2,
    "UNICEF": 2,
    "UNWOMEN": 2,
    "WORLDBANK": 2,
    "IMF": 2,
    "UNODA": 2,
    "UNITAR": 2,
}
_A = ThematicArea
LEAD_AREAS: dict[str, tuple[ThematicArea, ...]] = {
    "UNODC": (_A.LEGISLATION, _A.COUNTER_FINANCING, _A.INTERNATIONAL_COOPERATION),
    "INTERPOL": (_A.LAW_ENFORCEMENT, _A.BORDER_MANAGEMENT, _A.INTERNATIONAL_COOPERATION),
    "IOM": (_A.BORDER_MANAGEMENT,),
    "ICAO": (_A.BORDER_MANAGEMENT,),
    "WCO": (_A.BORDER_MANAGEMENT, _A.COUNTER_FINANCING),
    "IMO": (_A.BORDER_MANAGEMENT, _A.CRITICAL_INFRASTRUCTURE),
    "OHCHR": (_A.HUMAN_RIGHTS,),
    "UNDP": (_A.COUNTERING_VIOLENT_EXTREMISM, _A.HUMAN_RIGHTS),
    "UNESCO": (_A.COUNTERING_VIOLENT_EXTREMISM,),
    "UNICEF": (_A.COUNTERING_VIOLENT_EXTREMISM, _A.HUMAN_RIGHTS),
    "UNWOMEN": (_A.COUNTERING_VIOLENT_EXTREMISM, _A.HUMAN_RIGHTS),
    "UNAOC": (_A.COUNTERING_VIOLENT_EXTREMISM,),
    "WORLDBANK": (_A.COUNTER_FINANCING,),
    "IMF": (_A.COUNTER_FINANCING,),
    "FATF": (_A.COUNTER_FINANCING,),
    "UNODA": (_A.CRITICAL_INFRASTRUCTURE,),
    "UNIDIR": (_A.CRITICAL_INFRASTRUCTURE,),
    "IAEA": (_A.CRITICAL_INFRASTRUCTURE,),
    "OPCW": (_A.CRITICAL_INFRASTRUCTURE,),
    "COMMITTEE_1540": (_A.CRITICAL_INFRASTRUCTURE, _A.LEGISLATION),
    "UNICRI": (_A.COUNTERING_VIOLENT_EXTREMISM, _A.CRITICAL_INFRASTRUCTURE),
}
_K = ActivityKind
ACTIVITY_KINDS = (
    (_K.TRAINING, 40),
    (_K.LEGISLATIVE_DRAFTING, 12),
    (_K.EQUIPMENT, 14),
    (_K.MENTORING, 14),
    (_K.ASSESSMENT, 12),
    (_K.OTHER, 8),
)
# How long an activity of each kind runs (days), and what its title opens with.
KIND_DAYS = {
    _K.TRAINING: (2, 90),
    _K.LEGISLATIVE_DRAFTING: (60, 540),
    _K.EQUIPMENT: (90, 720),
    _K.MENTORING: (90, 900),
    _K.ASSESSMENT: (20, 180),
    _K.OTHER: (30, 720),
}
KIND_WORDS = {
    _K.TRAINING: "Training on",
    _K.LEGISLATIVE_DRAFTING: "Drafting support on",
    _K.EQUIPMENT: "Equipment for",
    _K.MENTORING: "Mentoring on",
    _K.ASSESSMENT: "Assessment of",
    _K.OTHER: "Support on",
}
# What a completed activity of each kind records: (name, unit, low, high).
KIND_OUTPUTS: dict[ActivityKind, tuple[tuple[str, str, int, int], ...]] = {
    _K.TRAINING: (("Participants trained", "participants", 12, 180),),
    _K.LEGISLATIVE_DRAFTING: (
        ("Texts adopted", "texts", 1, 4),
        ("Drafters trained", "participants", 5, 40),
    ),
    _K.EQUIPMENT: (("Items of equipment delivered", "items", 3, 400),),
    _K.MENTORING: (("Officials mentored", "officials", 3, 40),),
    _K.ASSESSMENT: (("Assessment reports", "reports", 1, 3),),
    _K.OTHER: (("Meetings held", "meetings", 1, 12),),
}
CURRENCIES = (("USD", 62), ("EUR", 22), ("CHF", 5), ("GBP", 4), ("CAD", 4), ("AUD", 3))
# Shares of the activities with partners, with needs linked, with a budget, open-ended.
ACTIVITY_PARTNERED = 0.35
ACTIVITY_LINKED = 0.35
ACTIVITY_BUDGETED = 0.8
ACTIVITY_OPEN_ENDED = 0.05


@dataclass(frozen=True)
class _Country:
    """What an entry of a State draws on: its country code, languages and capital's zone."""

    alpha_2: str
    languages: tuple[str, ...]
    zone: str | None

    @classmethod
    def of(cls, state: Organization) -> "_Country | None":
        country = pycountry.countries.get(alpha_3=state.code)
        if country is None:
            return None
        alpha_2 = country.alpha_2
        official = get_official_languages(alpha_2, de_facto=True)
        languages = tuple(code for code in official if code in iso_639_1_codes())
        zones = get_global("territory_zones").get(alpha_2, [])
        zone = zones[0] if len(zones) == 1 else CAPITAL_ZONES.get(alpha_2)
        return cls(alpha_2, languages or ("en",), zone)

    @property
    def text_language(self) -> str:
        return self.languages[0] if self.languages[0] in AUTHORITIES else "en"


# --- the people and the calendar ------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    id: uuid.UUID
    org: Organization
    role: str
    email: str
    ip: str
    agent: str


@dataclass(slots=True)
class _Write:
    """A change and the audit event its service records (details already as stored)."""

    at: datetime
    actor: _Person | None
    action: str
    object_type: str
    object_id: str
    details: str
    effect: tuple[Any, ...] | None = None


@dataclass(slots=True)
class _Section:
    id: uuid.UUID
    area: str
    recommendations: list[uuid.UUID]


@dataclass(slots=True)
class _SectionText:
    id: uuid.UUID
    report_id: uuid.UUID
    area: str
    title: str
    body: str
    position: int


@dataclass(slots=True)
class _Report:
    id: uuid.UUID
    state: Organization
    adopted_at: datetime | None
    sections: list[_Section]
    # Sections whose needs the final consent shares (a live publication with share_needs).
    shared_sections: set[uuid.UUID] = field(default_factory=set)


@dataclass(slots=True)
class _NeedRef:
    id: uuid.UUID
    state: Organization
    created_at: datetime
    shared: bool


@dataclass(slots=True)
class _Accepted:
    """An accepted offer and what became of its request: the planned activity's makings."""

    request_id: uuid.UUID
    state: Organization
    title: str
    offer: dict[str, Any]
    needs: list[_NeedRef]
    decider: _Person
    # The request's steps after the acceptance: (status, moment).
    later: list[tuple[RequestStatus, datetime]]


def _snapshot(row: dict[str, Any], state: str, lead: str) -> dict[str, Any]:
    """An activity's audit snapshot as `planning.service` records it on creation (the
    row's columns stand in for an `Activity`, as plain records do for sections)."""
    return planning_service._snapshot(cast(Activity, SimpleNamespace(**row)), state, lead)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _code(organization: Organization) -> str:
    return organization.code


def _json(details: dict[str, Any]) -> str:
    """Details exactly as `audit.service._append` stores them."""
    return json.dumps(details, sort_keys=True, default=str)


def _phone(rng: random.Random, alpha_2: str) -> str | None:
    """A number valid for the country, in E.164: phonenumbers' example fixed line with
    other last digits (the example itself if no variation is valid)."""
    example = phonenumbers.example_number_for_type(alpha_2, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is None:
        return None
    digits = str(example.national_number)
    changed = min(4, len(digits) - 3)
    for _ in range(10):
        candidate = phonenumbers.PhoneNumber()
        candidate.merge_from(example)
        tail = "".join(str(rng.randrange(10)) for _ in range(changed))
        candidate.national_number = int(digits[: len(digits) - changed] + tail)
        if phonenumbers.is_valid_number_for_region(candidate, alpha_2):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _after(changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The content fields a change sets (languages back to a list)."""
    return {
        name: change["after"].split(",") if name == "languages" else change["after"]
        for name, change in changes.items()
    }


def _version(
    rng: random.Random,
    entry_id: uuid.UUID,
    version: int,
    change: ContactChange,
    state: Organization,
    content: dict[str, Any],
    changes: dict[str, Any],
    actor: _Person,
    at: datetime,
) -> dict[str, Any]:
    """A contact_point_versions row: the entry as it is after the change, and who made it."""
    return {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "contact_point_id": entry_id,
        "version": version,
        "change": change.value,
        "snapshot": {"state": state.code, **content},
        "changes": changes,
        "actor_user_id": actor.id,
        "actor_organization_id": actor.org.id,
        "at": at,
    }


class _Rows:
    """Buffered bulk inserts: Core executemany, or COPY on PostgreSQL for big tables.

    A flush writes every buffered table in foreign-key order, so a child row never
    reaches the database before its parent.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.order = [table.name for table in SQLModel.metadata.sorted_tables]
        self.counts: Counter[str] = Counter()
        self.pending = 0

    async def add(self, table: str, row: dict[str, Any]) -> None:
        self.buffers.setdefault(table, []).append(row)
        self.pending += 1
        if self.pending >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        for name in self.order:
            rows = self.buffers.pop(name, None)
            if rows:
                await self.write(SQLModel.metadata.tables[name], rows)
        self.pending = 0

    async def write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.counts[table.name] += len(rows)
        if self.postgres and table.name in COPY_TABLES:
            columns = list(rows[0])
            raw = await self.connection.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                table.name,
                records=[tuple(row[column] for column in columns) for row in rows],
                columns=columns,
            )
        else:
            await self.connection.execute(insert(table), rows)


class _Build:
    """One build: the seeded generator, the people, and everything written so far."""

    def __init__(
        self,
        scale: Scale,
        rows: _Rows,
        organizations_: Sequence[Organization],
        password_hash: str,
        progress: BuildProgress,
    ) -> None:
        self.scale = scale
        self.rows = rows
        # Seeded on purpose: the same data on every backend (nothing here is a secret).
        self.rng = random.Random(SEED)  # noqa: S311
        self.password_hash = password_hash
        self.progress = progress
        by_code = {org.code: org for org in organizations_}
        if "CTED" not in by_code:
            raise LargeDataSetError("No CTED organization: run `ctcp load-reference-data`.")
        self.cted = by_code["CTED"]
        kinds: dict[str, list[Organization]] = {}
        for org in sorted(organizations_, key=lambda o: o.code):
            kinds.setdefault(org.kind, []).append(org)
        self.states = kinds.get(OrganizationKind.MEMBER_STATE.value, [])
        # State order: reports and focal points go round it, so small scales still give
        # the States with reports their focal points.
        self.rng.shuffle(self.states)
        self.entities = kinds.get(OrganizationKind.COMPACT_ENTITY.value, [])
        self.secretariat = kinds.get(OrganizationKind.SECRETARIAT.value, [])
        if not self.states or not self.entities:
            raise LargeDataSetError("No Member States or Compact entities: load reference data.")
        self.people: list[_Person] = []
        self.by_role: dict[str, list[_Person]] = {}
        self.state_focal_points: dict[uuid.UUID, list[_Person]] = {}
        self.entity_focal_points: dict[uuid.UUID, list[_Person]] = {}
        self.writes: list[_Write] = []
        self.reports: list[_Report] = []
        self.needs: list[_NeedRef] = []
        self.sharing_states: set[uuid.UUID] = set()
        self.accepted: list[_Accepted] = []
        self.tally: Counter[str] = Counter()

    # --- helpers ------------------------------------------------------------------------

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def later(
        self,
        after: datetime,
        low_days: float,
        high_days: float,
        rng: random.Random | None = None,
    ) -> datetime:
        """A moment some days after `after`, always before END (squeezed if need be)."""
        rng = rng or self.rng
        moment = after + timedelta(days=rng.uniform(low_days, high_days))
        limit = END - timedelta(minutes=1)
        if moment >= limit:
            moment = after + (limit - after) / 2
        return moment.replace(microsecond=rng.randrange(1_000_000))

    def someone(self, role: Role, org: Organization | None = None) -> _Person:
        if role is Role.STATE_FOCAL_POINT and org is not None:
            pool = self.state_focal_points.get(org.id)
            if pool:
                return self.rng.choice(pool)
            return self.rng.choice(self.by_role[Role.CONSENT_OFFICER.value])
        if role is Role.ENTITY_FOCAL_POINT and org is not None:
            return self.rng.choice(self.entity_focal_points[org.id])
        return self.rng.choice(self.by_role[role.value])

    def write(
        self,
        at: datetime,
        actor: _Person | None,
        action: str,
        object_type: str,
        object_id: uuid.UUID,
        details: dict[str, Any] | None = None,
        effect: tuple[Any, ...] | None = None,
    ) -> None:
        self.writes.append(
            _Write(at, actor, action, object_type, str(object_id), _json(details or {}), effect)
        )

    # --- users --------------------------------------------------------------------------

    def _plan_users(self) -> list[tuple[Organization, Role]]:
        n = self.scale.users
        fixed = [
            (Role.PLATFORM_ADMIN, max(2, n // 2000)),
            (Role.AUDITOR, max(2, n // 2000)),
            (Role.CONSENT_OFFICER, max(3, n // 500)),
            (Role.CTED_ANALYST, max(5, n * 3 // 200)),
        ]
        plan: list[tuple[Organization, Role]] = []
        for role, count in fixed:
            plan.extend((self.cted, role) for _ in range(count))
        secretariat_fps = max(1, n // 200)
        plan.extend(
            (self.secretariat[i % len(self.secretariat)], Role.ENTITY_FOCAL_POINT)
            for i in range(secretariat_fps)
        )
        rest = n - len(plan)
        entity_fps = max(len(self.entities), rest * 35 // 100)
        for i in range(rest):
            # Focal points of States and entities interleaved: every entity has some.
            if i * entity_fps // rest != (i + 1) * entity_fps // rest:
                k = i * entity_fps // rest
                plan.append((self.entities[k % len(self.entities)], Role.ENTITY_FOCAL_POINT))
            else:
                k = i - i * entity_fps // rest
                plan.append((self.states[k % len(self.states)], Role.STATE_FOCAL_POINT))
        return plan[:n]

    async def users(self) -> None:
        plan = self._plan_users()
        self.progress.start("users", len(plan))
        numbers: Counter[str] = Counter()
        prefixes = {
            Role.PLATFORM_ADMIN: "admin",
            Role.AUDITOR: "auditor",
            Role.CONSENT_OFFICER: "consent",
            Role.CTED_ANALYST: "analyst",
            Role.ENTITY_FOCAL_POINT: "focal",
            Role.STATE_FOCAL_POINT: "focal",
        }
        admin: _Person | None = None
        for index, (org, role) in enumerate(plan):
            numbers[prefixes[role]] += 1
            domain = f"{org.code.lower().replace('_', '-')}.{DOMAIN}"
            person = _Person(
                id=self.new_id(),
                org=org,
                role=role.value,
                email=f"{prefixes[role]}.{numbers[prefixes[role]]:05d}@{domain}",
                ip=".".join(("10", *(str(self.rng.randrange(1, 255)) for _ in range(3)))),
                agent=self.rng.choice(USER_AGENTS),
            )
            created = START + timedelta(
                days=ONBOARDING_DAYS * index / len(plan), microseconds=self.rng.randrange(10**6)
            )
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            await self.rows.add(
                "users",
                {
                    "id": person.id,
                    "email": person.email,
                    "name": name,
                    "organization_id": org.id,
                    "password_hash": self.password_hash,
                    "active": True,
                    "created_at": created,
                    "password_changed_at": created,
                    "totp_secret_encrypted": None,
                    "mfa_enabled_at": None,
                    "totp_last_step": None,
                },
            )
            await self.rows.add(
                "user_roles",
                {
                    "user_id": person.id,
                    "role": role.value,
                    "granted_at": created,
                    "granted_by": admin.id if admin else None,
                },
            )
            self.write(
                created,
                admin,
                "user.create",
                "user",
                person.id,
                {"email": person.email, "organization": org.code, "roles": [role.value]},
                ("user", person),
            )
            if admin is None:
                admin = person
            self.people.append(person)
            self.by_role.setdefault(role.value, []).append(person)
            if role is Role.STATE_FOCAL_POINT:
                self.state_focal_points.setdefault(org.id, []).append(person)
            elif role is Role.ENTITY_FOCAL_POINT:
                self.entity_focal_points.setdefault(org.id, []).append(person)
            self.progress.advance(1)
        await self.rows.flush()
        self.tally["users"] = len(plan)

    # --- reports, consent, publications ---------------------------------------------------

    def _body(self, area: ThematicArea, state: Organization, year: int) -> tuple[str, str]:
        title, findings, _ = AREA_TEXT[area]
        chosen = self.rng.sample(findings, 3)
        body = " ".join(
            sentence.format(state=state.name_en, year=year, n=self.rng.randrange(3, 95))
            for sentence in chosen
        )
        return title, body

    async def reports_and_consent(self) -> None:
        total = self.scale.reports
        self.progress.start("reports, consent, publications", total)
        made = 0
        lineage = 0
        adopted_count = 0
        while made < total:
            state = self.states[lineage % len(self.states)]
            lineage += 1
            versions = 2 if made + 2 <= total and self.rng.random() < 0.08 else 1
            visit_start = START + timedelta(days=self.rng.uniform(ONBOARDING_DAYS, 450))
            kind = self.rng.choices(list(ReportKind), weights=(5, 3, 2))[0]
            year = visit_start.year
            title = f"{KIND_TITLES[kind]} to {state.name_en}, {year}"
            language = self.rng.choices(("en", "fr", "es"), weights=(7, 2, 1))[0]
            lineage_id = self.new_id()
            created = self.later(visit_start, 10, 40)
            previous: tuple[uuid.UUID, list[tuple[ThematicArea, str, str, list[str]]]] | None
            previous = None
            for version in range(1, versions + 1):
                latest = version == versions
                draft = latest and self.rng.random() < (0.3 if version > 1 else 0.03)
                analyst = self.someone(Role.CTED_ANALYST)
                report_id = self.new_id()
                if previous is None:
                    content = [
                        (
                            area,
                            *self._body(area, state, year),
                            [
                                self.rng.choice(AREA_TEXT[area][2])
                                for _ in range(self.rng.randint(1, 3))
                            ],
                        )
                        for area in AREAS
                    ]
                    self.write(
                        created,
                        analyst,
                        "report.create",
                        "report",
                        report_id,
                        {"state": state.code, "version": 1},
                    )
                else:
                    created = self.later(created, 20, 60)
                    content = previous[1]
                    self.write(
                        created,
                        analyst,
                        "report.amend",
                        "report",
                        report_id,
                        {"from": str(previous[0]), "version": version},
                    )
                edited = self.later(created, 1, 15)
                adopted_at = None if draft else self.later(edited, 5, 35)
                await self.rows.add(
                    "visit_reports",
                    {
                        "id": report_id,
                        "lineage_id": lineage_id,
                        "version": version,
                        "state_id": state.id,
                        "kind": kind.value,
                        "title": title,
                        "language": language,
                        "visit_start_date": visit_start.date(),
                        "visit_end_date": visit_start.date()
                        + timedelta(days=self.rng.randint(3, 10)),
                        "status": (ReportStatus.DRAFT if draft else ReportStatus.ADOPTED).value,
                        "created_at": created,
                        "created_by": analyst.id,
                        "adopted_at": adopted_at,
                        "adopted_by": None if draft else analyst.id,
                    },
                )
                sections: list[_SectionText] = []
                report = _Report(report_id, state, adopted_at, [])
                for position, (area, section_title, body, recommendations) in enumerate(content):
                    section = _SectionText(
                        id=self.new_id(),
                        report_id=report_id,
                        area=area.value,
                        title=section_title,
                        body=body,
                        position=position,
                    )
                    sections.append(section)
                    await self.rows.add(
                        "report_sections",
                        {
                            "id": section.id,
                            "report_id": report_id,
                            "area": section.area,
                            "title": section.title,
                            "body": section.body,
                            "position": position,
                        },
                    )
                    ids = []
                    for index, recommendation in enumerate(recommendations):
                        ids.append(self.new_id())
                        await self.rows.add(
                            "recommendations",
                            {
                                "id": ids[-1],
                                "section_id": section.id,
                                "text": recommendation,
                                "priority": self.rng.choice(list(Priority)).value,
                                "position": index,
                            },
                        )
                    report.sections.append(_Section(section.id, section.area, ids))
                self.write(
                    edited, analyst, "report.update", "report", report_id, None,
                    ("report", state.id, report_id),
                )  # fmt: skip
                if adopted_at is not None:
                    self.write(
                        adopted_at,
                        analyst,
                        "report.adopt",
                        "report",
                        report_id,
                        {"version": version},
                    )
                    category = ("full", "partial", "none or withdrawn")[adopted_count % 3]
                    adopted_count += 1
                    # `consent.service.publication_sections` reads ids and positions only:
                    # plain records stand in for ReportSection (136 µs each to build).
                    await self._consent(
                        report, cast(list[ReportSection], sections), category, title
                    )
                    self.reports.append(report)
                    self.tally["adopted report versions"] += 1
                else:
                    self.tally["draft report versions"] += 1
                previous = (report_id, content)
                made += 1
                self.progress.advance(1)
        await self.rows.flush()
        self.tally["report versions"] = made

    def _decision(
        self, kind: str, sections: Sequence[ReportSection], first: bool
    ) -> tuple[ConsentScope, list[str], Audience, bool]:
        audiences = (Audience.COMPACT, Audience.MEMBER_STATES, Audience.PUBLIC)
        if kind == "full":
            audience = self.rng.choices(audiences, weights=(5, 3, 2))[0]
            return ConsentScope.FULL, [], audience, self.rng.random() < 0.6
        chosen = self.rng.sample(sections, self.rng.randint(2, 6))
        audience = Audience.COMPACT if first else self.rng.choices(audiences, weights=(6, 3, 1))[0]
        return (
            ConsentScope.PARTIAL,
            sorted(str(s.id) for s in chosen),
            audience,
            self.rng.random() < 0.5,
        )

    async def _consent(
        self, report: _Report, sections: Sequence[ReportSection], category: str, title: str
    ) -> None:
        """The report's consent history ending in `category`, with its publications.

        As `consent.service.record` and `withdraw` do: each event revokes the report's
        live publication and publishes exactly `publication_sections` of itself.
        """
        assert report.adopted_at is not None
        self.tally[f"consent: {category}"] += 1
        # (scope, sections, audience, share needs, by the State's focal point, withdrawal)
        steps: list[tuple[ConsentScope, list[str], Audience | None, bool, bool, bool]] = []
        roll = self.rng.random()
        if category == "full":
            if roll < 0.4:
                steps.append((*self._decision("partial", sections, True), False, False))
            steps.append((*self._decision("full", sections, not steps), False, False))
        elif category == "partial":
            if roll < 0.4:
                steps.append((*self._decision("full", sections, True), False, False))
                scope, chosen, _, share = self._decision("partial", sections, True)
                # Narrowed: same audience, needs shared only if they were.
                steps.append(
                    (
                        scope,
                        chosen,
                        steps[0][2],
                        share and steps[0][3],
                        self.rng.random() < 0.5,
                        False,
                    )
                )
            else:
                steps.append((*self._decision("partial", sections, True), False, False))
        elif roll < 0.5:
            return  # never decided: nothing published
        elif roll < 0.7:
            steps.append((ConsentScope.NONE, [], None, False, False, False))
        else:
            first = self._decision(self.rng.choice(("full", "partial")), sections, True)
            steps.append((*first, False, False))
            steps.append((ConsentScope.NONE, [], None, False, self.rng.random() < 0.5, True))
        events: list[tuple[ConsentEvent, _Person]] = []
        at = report.adopted_at
        for sequence, (scope, chosen, audience, share, by_state, withdrawal) in enumerate(
            steps, start=1
        ):
            at = self.later(at, 5, 60)
            actor = (
                self.someone(Role.STATE_FOCAL_POINT, report.state)
                if by_state
                else self.someone(Role.CONSENT_OFFICER)
            )
            last = sequence == len(steps)
            decided = scope is not ConsentScope.NONE
            expires = (
                END + timedelta(days=self.rng.randint(365, 1100))
                if last and decided and self.rng.random() < 0.1
                else None
            )
            reference = f"Note verbale {report.state.code}/{at.year}/{self.rng.randrange(1, 999)}"
            event = ConsentEvent(
                id=self.new_id(),
                report_id=report.id,
                sequence=sequence,
                scope=scope.value,
                section_ids=chosen,
                audience=audience.value if decided and audience else None,
                share_needs=share and decided,
                reference=None if withdrawal else reference,
                reason="The Government asks that the report not be shared for now."
                if withdrawal
                else None,
                withdrawal=withdrawal,
                effective_at=at,
                expires_at=expires,
                recorded_at=at,
                recorded_by=actor.id,
                on_behalf_of=report.state.id,
            )
            events.append((event, actor))
        previous_publication: uuid.UUID | None = None
        for index, (event, actor) in enumerate(events):
            await self.rows.add(
                "consent_events",
                {name: getattr(event, name) for name in ConsentEvent.model_fields},
            )
            published = consent_service.publication_sections(
                sections, event.scope, event.section_ids
            )
            publication_id: uuid.UUID | None = None
            if published:
                publication_id = self.new_id()
                following = events[index + 1][0] if index + 1 < len(events) else None
                await self._publication(
                    publication_id,
                    report,
                    event,
                    title,
                    published,
                    None if following is None else following.recorded_at,
                )
            before = events[index - 1][0] if index else None
            self.write(
                event.recorded_at,
                actor,
                "consent.withdraw" if event.withdrawal else "consent.record",
                "report",
                report.id,
                {
                    "before": None
                    if before is None
                    else consent_service.as_read(before).model_dump(mode="json"),
                    "after": consent_service.as_read(event).model_dump(mode="json"),
                    "revoked_publications": 0 if previous_publication is None else 1,
                    "publication": None if publication_id is None else str(publication_id),
                },
                ("consent", report.id, publication_id),
            )
            previous_publication = publication_id
        self.tally["consent events"] += len(events)
        final = events[-1][0]
        if final.share_needs:
            report.shared_sections = {
                section.id
                for section in consent_service.publication_sections(
                    sections, final.scope, final.section_ids
                )
            }

    async def _publication(
        self,
        publication_id: uuid.UUID,
        report: _Report,
        event: ConsentEvent,
        title: str,
        sections: Sequence[ReportSection],
        revoked_at: datetime | None,
    ) -> None:
        await self.rows.add(
            "publications",
            {
                "id": publication_id,
                "report_id": report.id,
                "consent_event_id": event.id,
                "state_id": report.state.id,
                "audience": event.audience or Audience.COMPACT.value,
                "title": title,
                "published_at": event.recorded_at,
                "expires_at": event.expires_at,
                "revoked_at": revoked_at,
            },
        )
        for section in sections:
            await self.rows.add(
                "publication_sections",
                {
                    "id": self.new_id(),
                    "publication_id": publication_id,
                    "section_id": section.id,
                    "area": section.area,
                    "title": section.title,
                    "body": section.body,
                    "position": section.position,
                },
            )
        self.tally["publications"] += 1
        if revoked_at is None:
            self.tally["live publications"] += 1

    # --- needs sharing and needs ----------------------------------------------------------

    async def needs_sharing(self) -> None:
        """One needs-sharing decision per State, a second for some (withdrawn or given)."""
        for state in self.states:
            at = START + timedelta(days=self.rng.uniform(ONBOARDING_DAYS, 400))
            share = self.rng.random() < 0.7
            decisions = [(share, False)]
            if self.rng.random() < 0.2:
                decisions.append((not share, share))  # a withdrawal, or sharing at last
            before: NeedsSharingEvent | None = None
            for sequence, (shares, withdrawal) in enumerate(decisions, start=1):
                at = self.later(at, 1, 200)
                actor = (
                    self.someone(Role.STATE_FOCAL_POINT, state)
                    if withdrawal
                    else self.someone(Role.CONSENT_OFFICER)
                )
                event = NeedsSharingEvent(
                    id=self.new_id(),
                    state_id=state.id,
                    sequence=sequence,
                    share_needs=shares,
                    reference=None
                    if withdrawal
                    else f"Note verbale {state.code}/{at.year}/{self.rng.randrange(1, 999)}",
                    reason="Needs are shared bilaterally for now." if withdrawal else None,
                    withdrawal=withdrawal,
                    effective_at=at,
                    expires_at=None,
                    recorded_at=at,
                    recorded_by=actor.id,
                )
                await self.rows.add(
                    "needs_sharing_events",
                    {name: getattr(event, name) for name in NeedsSharingEvent.model_fields},
                )
                self.write(
                    at,
                    actor,
                    "needs_sharing.withdraw" if withdrawal else "needs_sharing.record",
                    "organization",
                    state.id,
                    {
                        "state": state.code,
                        "before": None
                        if before is None
                        else needs_sharing.as_read(before).model_dump(mode="json"),
                        "after": needs_sharing.as_read(event).model_dump(mode="json"),
                    },
                )
                before = event
                self.tally["needs-sharing events"] += 1
            if decisions[-1][0]:
                self.sharing_states.add(state.id)

    def plan_needs(self) -> list[dict[str, Any]]:
        """The needs (rows to write once the requests have decided their statuses)."""
        rows: list[dict[str, Any]] = []
        from_reports = self.scale.needs * 6 // 10 if self.reports else 0
        # States without focal points file nothing: their needs come from reports only.
        self.need_states = [s for s in self.states if s.id in self.state_focal_points]
        self.need_states = self.need_states or self.states
        for index in range(self.scale.needs):
            need_id = self.new_id()
            analyst = self.someone(Role.CTED_ANALYST)
            row: dict[str, Any] = {
                "id": need_id,
                "priority": self.rng.choices(list(Priority), weights=(3, 5, 2))[0].value,
                "status": NeedStatus.OPEN.value,
                "consultation_id": None,
                "created_by": analyst.id,
            }
            if index < from_reports:
                report = self.rng.choice(self.reports)
                section = self.rng.choice(report.sections)
                assert report.adopted_at is not None
                created = self.later(report.adopted_at, 1, 90)
                state = report.state
                area = section.area
                row |= {
                    "source": NeedSource.RECOMMENDATION.value,
                    "report_id": report.id,
                    "section_id": section.id,
                    "recommendation_id": self.rng.choice(section.recommendations),
                }
                shared = section.id in report.shared_sections
            else:
                state = self.rng.choice(self.need_states)
                created = self.later(START, ONBOARDING_DAYS, DAYS - 10)
                area = self.rng.choice(AREAS).value
                row |= {
                    "source": NeedSource.STATE_REQUEST.value,
                    "report_id": None,
                    "section_id": None,
                    "recommendation_id": None,
                }
                shared = state.id in self.sharing_states
            description = self.rng.choice(NEED_TEXT).format(
                n=self.rng.randrange(10, 200), area=AREA_TEXT[ThematicArea(area)][0].lower()
            )
            row |= {
                "state_id": state.id,
                "area": area,
                "description": description,
                "created_at": created,
                "updated_at": created,
            }
            rows.append(row)
            self.needs.append(_NeedRef(need_id, state, created, shared))
            self.write(
                created,
                analyst,
                "need.create",
                "need",
                need_id,
                {"state": state.code, "area": area, "source": row["source"]},
                ("need", state.id, need_id),
            )
        return rows

    # --- requests and offers ----------------------------------------------------------------

    def _pick_needs(self, pools: dict[bool, list[_NeedRef]], shared: bool) -> list[_NeedRef]:
        """One unused need (shared ones if the request is to be circulated), and up to two
        more of the same State."""
        pool = pools[shared]
        while pool and pool[-1].id in self._used_needs:
            pool.pop()
        if not pool:
            return []
        first = pool.pop()
        chosen = [first]
        same_state = self._needs_by_state[(first.state.id, shared)]  # shared, or any
        for _ in range(self.rng.choice((0, 0, 0, 1, 1, 2))):
            while same_state and (
                same_state[-1].id in self._used_needs or same_state[-1].id == first.id
            ):
                same_state.pop()
            if same_state:
                chosen.append(same_state.pop())
        self._used_needs.update(need.id for need in chosen)
        return chosen

    _used_needs: set[uuid.UUID]
    _request_rows: list[tuple[str, dict[str, Any]]]
    need_states: list[Organization]
    _needs_by_state: dict[tuple[uuid.UUID, bool], list[_NeedRef]]

    def _path(self) -> tuple[RequestStatus, ...]:
        final = self.rng.choices(
            [status for status, _ in REQUEST_STATUS_WEIGHTS],
            weights=[weight for _, weight in REQUEST_STATUS_WEIGHTS],
        )[0]
        if final is RequestStatus.DECLINED:
            stage = self.rng.choice(
                (RequestStatus.SUBMITTED, RequestStatus.UNDER_REVIEW, RequestStatus.CIRCULATED)
            )
            return (*PATHS[stage], final)
        if final is RequestStatus.WITHDRAWN:
            stage = self.rng.choice(
                (
                    RequestStatus.SUBMITTED,
                    RequestStatus.UNDER_REVIEW,
                    RequestStatus.CIRCULATED,
                    RequestStatus.MATCHED,
                )
            )
            return (*PATHS[stage], final)
        return PATHS[final]

    async def requests_and_offers(self, need_rows: list[dict[str, Any]]) -> None:
        self.progress.start("requests and offers", self.scale.requests)
        self._used_needs = set()
        self._needs_by_state = {}
        self._request_rows = []
        pools: dict[bool, list[_NeedRef]] = {True: [], False: []}
        for need in self.needs:
            self._needs_by_state.setdefault((need.state.id, False), []).append(need)
            if need.shared:
                pools[True].append(need)
                self._needs_by_state.setdefault((need.state.id, True), []).append(need)
        # Any need may go into a request that is never circulated.
        pools[False] = list(self.needs)
        for pool in (*pools.values(), *self._needs_by_state.values()):
            self.rng.shuffle(pool)
        need_status: dict[uuid.UUID, str] = {}
        for _ in range(self.scale.requests):
            path = self._path()
            circulated = RequestStatus.CIRCULATED in path
            chosen = self._pick_needs(pools, circulated)
            if not chosen:  # no shared need left: the request stays in review
                path = PATHS[RequestStatus.UNDER_REVIEW]
                chosen = self._pick_needs(pools, False)
            if not chosen:
                raise LargeDataSetError("Too few needs for the requests of this scale.")
            self._request(path, chosen, need_status)
            self.progress.advance(1)
        for row in need_rows:
            row["status"] = need_status.get(row["id"], row["status"])
            if row["status"] == NeedStatus.OPEN.value and self.rng.random() < 0.03:
                row["status"] = NeedStatus.CLOSED.value
                closed = self.later(row["created_at"], 30, 300)
                self._need_update(row, closed, NeedStatus.OPEN.value, NeedStatus.CLOSED.value)
            await self.rows.add("assistance_needs", row)
        # The needs first: the requests point at them.
        for table, row in self._request_rows:
            await self.rows.add(table, row)
        await self.rows.flush()
        self.tally["needs"] = len(need_rows)

    def _need_update(self, row: dict[str, Any], at: datetime, before: str, after: str) -> None:
        row["updated_at"] = max(row["updated_at"], at)
        self.write(
            at,
            self.someone(Role.CTED_ANALYST),
            "need.update",
            "need",
            row["id"],
            {"status": {"before": before, "after": after}},
        )

    def _request(
        self,
        path: tuple[RequestStatus, ...],
        chosen: list[_NeedRef],
        need_status: dict[uuid.UUID, str],
    ) -> None:
        state = chosen[0].state
        request_id = self.new_id()
        by_state = bool(self.state_focal_points.get(state.id)) and self.rng.random() < 0.8
        filer = (
            self.someone(Role.STATE_FOCAL_POINT, state)
            if by_state
            else self.someone(Role.CTED_ANALYST)
        )
        created = self.later(max(need.created_at for need in chosen), 1, 30)
        area = AREA_TEXT[ThematicArea(self.rng.choice(AREAS))][0]
        transitions: list[dict[str, Any]] = []
        offers: list[dict[str, Any]] = []
        decider: _Person | None = None
        at = created
        for step, status in enumerate(path):
            if step == 0:
                actor = filer
            elif status in (RequestStatus.WITHDRAWN, RequestStatus.MATCHED) or (
                status in MATCHED_OR_LATER and self.rng.random() < 0.6
            ):
                actor = self.someone(Role.STATE_FOCAL_POINT, state)
            else:
                actor = self.someone(Role.CTED_ANALYST)
            if step:
                at = self.later(at, 2, 25)
            if status is RequestStatus.MATCHED:
                self._accept(request_id, offers, actor, at)
                decider = actor
            closing = status in (RequestStatus.DECLINED, RequestStatus.WITHDRAWN)
            transitions.append(
                {
                    "id": self.new_id(),
                    "request_id": request_id,
                    "from_status": path[step - 1].value if step else None,
                    "to_status": status.value,
                    "reason": f"{status.value.capitalize()}: covered by a national programme."
                    if closing
                    else None,
                    "at": at,
                    "by_user": actor.id,
                    "by_org": actor.org.id,
                }
            )
            if step:
                self.write(
                    at,
                    actor,
                    "request.transition",
                    "request",
                    request_id,
                    {"from": path[step - 1].value, "to": status.value},
                )
            else:
                self.write(
                    at,
                    actor,
                    "request.create",
                    "request",
                    request_id,
                    {"state": state.code, "needs": sorted(str(need.id) for need in chosen)},
                    ("request", state.id, request_id),
                )
            if closing:
                pending = [o for o in offers if o["status"] == OfferStatus.PENDING.value]
                for offer in pending:
                    offer |= {"status": OfferStatus.CLOSED.value, "decided_at": at}
                if pending:
                    self.write(
                        at.replace(microsecond=min(at.microsecond + 1, 999_999)),
                        actor,
                        "offer.close",
                        "request",
                        request_id,
                        {
                            "offers": sorted(str(o["id"]) for o in pending),
                            "because": status.value,
                        },
                    )
            if status is RequestStatus.CIRCULATED:
                at = self._offers(request_id, state, offers, at, final=step == len(path) - 1)
            if status in (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED):
                after = (
                    NeedStatus.PARTIALLY_MET
                    if status is RequestStatus.IN_PROGRESS
                    else NeedStatus.MET
                ).value
                for need in chosen:
                    before = need_status.get(need.id, NeedStatus.OPEN.value)
                    need_status[need.id] = after
                    self.write(
                        at,
                        self.someone(Role.CTED_ANALYST),
                        "need.update",
                        "need",
                        need.id,
                        {"status": {"before": before, "after": after}},
                    )
        title = f"{area}: support requested by {state.name_en}"
        accepted = [o for o in offers if o["status"] == OfferStatus.ACCEPTED.value]
        if accepted and decider is not None:
            # Accepting it planned the activity (written with the other activities).
            matched = path.index(RequestStatus.MATCHED)
            self.accepted.append(
                _Accepted(
                    request_id,
                    state,
                    title,
                    accepted[0],
                    chosen,
                    decider,
                    [
                        (RequestStatus(row["to_status"]), row["at"])
                        for row in transitions[matched + 1 :]
                    ],
                )
            )
        later = self._request_rows
        later.append(
            (
                "assistance_requests",
                {
                    "id": request_id,
                    "state_id": state.id,
                    "title": title,
                    "description": f"{state.name_en} requests assistance on {area.lower()}.",
                    "status": path[-1].value,
                    "filed_by_org": filer.org.id,
                    "filed_by": filer.id,
                    "created_at": created,
                    "updated_at": at,
                },
            )
        )
        later.extend(
            ("assistance_request_needs", {"request_id": request_id, "need_id": need.id})
            for need in chosen
        )
        later.extend(("assistance_request_transitions", row) for row in transitions)
        later.extend(("assistance_offers", offer) for offer in offers)
        self.tally["requests"] += 1
        self.tally[f"requests: {path[-1].value}"] += 1
        self.tally["offers"] += len(offers)
        for offer in offers:
            self.tally[f"offers: {offer['status']}"] += 1

    def _offers(
        self,
        request_id: uuid.UUID,
        state: Organization,
        offers: list[dict[str, Any]],
        circulated: datetime,
        *,
        final: bool,
    ) -> datetime:
        """One to three entities offer on a circulated request; returns the last offer's time."""
        last = circulated
        for entity in self.rng.sample(self.entities, self.rng.randint(1, 3)):
            author = self.someone(Role.ENTITY_FOCAL_POINT, entity)
            at = self.later(circulated, 1, 15)
            last = max(last, at)
            budget = self.rng.randrange(20, 900) * 1000 if self.rng.random() < 0.7 else None
            offer_id = self.new_id()
            programme = self.rng.choice(PROGRAMMES)
            offers.append(
                {
                    "id": offer_id,
                    "request_id": request_id,
                    "organization_id": entity.id,
                    "programme": programme,
                    "description": f"{programme}: training, equipment and mentoring.",
                    "timeline": f"{at.year + 1} Q{self.rng.randint(1, 4)}",
                    "budget": None if budget is None else Decimal(budget),
                    "currency": None if budget is None else "USD",
                    "status": OfferStatus.PENDING.value,
                    "created_at": at,
                    "created_by_user": author.id,
                    "created_by_client": None,
                    "decided_at": None,
                    "decided_by": None,
                    "decision_reason": None,
                }
            )
            self.write(
                at,
                author,
                "offer.create",
                "offer",
                offer_id,
                {"request_id": str(request_id), "programme": programme},
                ("offer", entity.id, offer_id),
            )
        if final and len(offers) > 1 and self.rng.random() < 0.3:
            declined = offers[0]
            at = self.later(last, 1, 10)
            decider = self.someone(Role.STATE_FOCAL_POINT, state)
            declined |= {
                "status": OfferStatus.DECLINED.value,
                "decided_at": at,
                "decided_by": decider.id,
                "decision_reason": "Already covered by another partner.",
            }
            self.write(
                at,
                decider,
                "offer.decline",
                "offer",
                declined["id"],
                {"request_id": str(request_id), "not_selected": []},
            )
        return last

    def _accept(
        self, request_id: uuid.UUID, offers: list[dict[str, Any]], actor: _Person, at: datetime
    ) -> None:
        """The State accepts one pending offer: the others are not selected (offers.decide)."""
        pending = [offer for offer in offers if offer["status"] == OfferStatus.PENDING.value]
        chosen = self.rng.choice(pending)
        chosen |= {
            "status": OfferStatus.ACCEPTED.value,
            "decided_at": at,
            "decided_by": actor.id,
            "decision_reason": None,
        }
        others = [offer for offer in pending if offer is not chosen]
        for offer in others:
            offer |= {"status": OfferStatus.NOT_SELECTED.value, "decided_at": at}
        self.write(
            at.replace(microsecond=min(at.microsecond + 1, 999_999)),
            actor,
            "offer.accept",
            "offer",
            chosen["id"],
            {"request_id": str(request_id), "not_selected": [str(o["id"]) for o in others]},
        )

    # --- joint planning: activities ---------------------------------------------------------

    async def activities(self, need_rows: Sequence[dict[str, Any]]) -> None:
        """`scale.activities` activities: the plan of every accepted offer, followed through
        its request, then the entities' other work over 2019-2028, each with the events
        `planning.service` records (created, filled in, status moves)."""
        rng = random.Random(ACTIVITY_SEED)  # noqa: S311 (seeded on purpose, like SEED)
        self.progress.start("activities", self.scale.activities)
        areas = {row["id"]: row["area"] for row in need_rows}
        for accepted in self.accepted[: self.scale.activities]:
            await self._offer_activity(rng, accepted, areas)
            self.progress.advance(1)
        cells: dict[tuple[uuid.UUID, str], list[_NeedRef]] = {}
        for need in self.needs:
            cells.setdefault((need.state.id, areas[need.id]), []).append(need)
        leads = [*self.entities, *(o for o in self.secretariat if o.code != "CTED")]
        lead_weights = [LEAD_WEIGHTS.get(lead.code, 1) for lead in leads]
        states = list(self.states)
        state_weights = [
            REGION_WEIGHTS[group_of(state.code) or RegionalGroup.WESTERN_EUROPEAN_OTHERS]
            * rng.lognormvariate(0, 0.8)
            for state in states
        ]
        for _ in range(self.scale.activities - min(len(self.accepted), self.scale.activities)):
            state = rng.choices(states, weights=state_weights)[0]
            lead = rng.choices(leads, weights=lead_weights)[0]
            await self._activity(rng, state, lead, leads, lead_weights, cells)
            self.progress.advance(1)
        await self.rows.flush()

    def _lead_person(self, rng: random.Random, lead: Organization) -> _Person:
        """One of the lead's focal points; an analyst for a lead without any."""
        pool = self.entity_focal_points.get(lead.id) or self.by_role[Role.CTED_ANALYST.value]
        return rng.choice(pool)

    async def _offer_activity(
        self, rng: random.Random, accepted: _Accepted, areas: dict[uuid.UUID, str]
    ) -> None:
        """What `planning.service.plan_from_offer` writes on acceptance, then the lead's
        focal point filling it in and moving it as the request moves."""
        offer = accepted.offer
        decided: datetime = offer["decided_at"]
        need_areas = [areas[need.id] for need in accepted.needs]
        counted = Counter(need_areas)
        area = max(counted, key=lambda a: (counted[a], -need_areas.index(a)))
        activity_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        lead = next(e for e in self.entities if e.id == offer["organization_id"])
        # As planned: no end, no budget (the offer's stays the offer's), kind "other".
        row: dict[str, Any] = {
            "id": activity_id,
            "state_id": accepted.state.id,
            "area": area,
            "programme": planning_service.programme_of(offer["programme"]),
            "kind": ActivityKind.OTHER.value,
            "title": accepted.title,
            "description": offer["description"],
            "status": ActivityStatus.PLANNED.value,
            "starts_on": decided.date(),
            "ends_on": None,
            "lead_id": lead.id,
            "budget": None,
            "currency": None,
            "offer_id": offer["id"],
            "outputs": [],
            "created_at": decided,
            "created_by": accepted.decider.id,
        }
        self.write(
            decided,
            accepted.decider,
            "activity.create",
            "activity",
            activity_id,
            _snapshot(row, accepted.state.code, lead.code)
            | {
                "from_offer": str(offer["id"]),
                "request_id": str(accepted.request_id),
                "need_ids": sorted(str(need.id) for need in accepted.needs),
            },
            ("activity", accepted.state.id, activity_id, lead.id),
        )
        moves = {
            RequestStatus.IN_PROGRESS: ActivityStatus.ONGOING,
            RequestStatus.COMPLETED: ActivityStatus.COMPLETED,
            RequestStatus.WITHDRAWN: ActivityStatus.CANCELLED,
        }
        events: list[tuple[datetime, dict[str, Any]]] = []
        status = ActivityStatus.PLANNED
        for step, at in accepted.later:
            if step in moves:
                change = {"status": {"before": status.value, "after": moves[step].value}}
                events.append((at, change))
                status = moves[step]
        kind = rng.choices([k for k, _ in ACTIVITY_KINDS], [w for _, w in ACTIVITY_KINDS])[0]
        outputs = self._outputs(rng, kind) if status is ActivityStatus.COMPLETED else []
        if outputs:
            events[-1][1]["outputs"] = {"before": [], "after": outputs}
        if rng.random() < 0.95:  # the lead's focal point fills in what the offer left out
            ends_on = row["starts_on"] + timedelta(days=rng.randint(*KIND_DAYS[kind]))
            until = events[0][0] if events else min(END, decided + timedelta(days=40))
            filled = decided + (until - decided) * rng.uniform(0.2, 0.8)
            filled_in: dict[str, Any] = {
                "kind": {"before": ActivityKind.OTHER.value, "after": kind.value},
                "ends_on": {"before": None, "after": ends_on.isoformat()},
            }
            row |= {"kind": kind.value, "ends_on": ends_on}
            if offer["budget"] is not None:
                filled_in |= {
                    "budget": {"before": None, "after": str(offer["budget"])},
                    "currency": {"before": None, "after": offer["currency"]},
                }
                row |= {"budget": offer["budget"], "currency": offer["currency"]}
            events.append((filled, filled_in))
        events.sort(key=lambda event: event[0])
        for version, (at, change) in enumerate(events, start=2):
            self.write(
                at,
                self._lead_person(rng, lead),
                "activity.update",
                "activity",
                activity_id,
                {**change, "version": version},
            )
        row |= {
            "status": status.value,
            "outputs": outputs,
            "version": 1 + len(events),
            "updated_at": events[-1][0] if events else decided,
        }
        await self.rows.add("activities", row)
        for need in accepted.needs:
            await self.rows.add("activity_needs", {"activity_id": activity_id, "need_id": need.id})
        self.tally["activities"] += 1
        self.tally["activities from accepted offers"] += 1
        self.tally[f"activities: {status.value}"] += 1
        self.tally["activity needs"] += len(accepted.needs)

    def _outputs(self, rng: random.Random, kind: ActivityKind) -> list[dict[str, Any]]:
        """A completed activity's figures, as the service stores them."""
        return [
            {"name": name, "value": float(rng.randint(low, high)), "unit": unit}
            for name, unit, low, high in KIND_OUTPUTS[kind]
        ]

    def _final_status(
        self, rng: random.Random, starts_on: date, ends_on: date | None
    ) -> ActivityStatus:
        """Where the activity stands at END: done if it ended, under way if it began; a
        few cancelled, a few begun late."""
        if ends_on is not None and ends_on < TODAY:
            done = rng.random() < 0.88
            return ActivityStatus.COMPLETED if done else ActivityStatus.CANCELLED
        if starts_on >= TODAY:
            ahead = rng.random() < 0.93
            return ActivityStatus.PLANNED if ahead else ActivityStatus.CANCELLED
        draw = rng.random()
        if draw < 0.85:
            return ActivityStatus.ONGOING
        return ActivityStatus.PLANNED if draw < 0.92 else ActivityStatus.CANCELLED

    def _recorded(self, rng: random.Random, begins: datetime) -> datetime:
        """When an activity was recorded: weeks or months before it began; during the
        platform's first year for work begun before it (from CTED's former matrix); in its
        last year for work far ahead."""
        earliest = START + timedelta(days=ONBOARDING_DAYS)
        moment = begins - timedelta(days=rng.uniform(14, 180))
        if moment < earliest:
            moment = earliest + timedelta(days=rng.uniform(0, 365))
        if moment >= END:
            moment = END - timedelta(days=rng.uniform(1, 365))
        return moment.replace(microsecond=rng.randrange(1_000_000))

    async def _activity(
        self,
        rng: random.Random,
        state: Organization,
        lead: Organization,
        leads: Sequence[Organization],
        lead_weights: Sequence[float],
        cells: dict[tuple[uuid.UUID, str], list[_NeedRef]],
    ) -> None:
        """One activity of `lead` in `state` and its history, as the service writes them."""
        favoured = LEAD_AREAS.get(lead.code)
        area = rng.choice(favoured) if favoured and rng.random() < 0.7 else rng.choice(AREAS)
        kind = rng.choices([k for k, _ in ACTIVITY_KINDS], [w for _, w in ACTIVITY_KINDS])[0]
        starts_on = FIRST_START + timedelta(days=rng.randrange((LAST_START - FIRST_START).days))
        ends_on: date | None = None
        if kind not in (ActivityKind.MENTORING, ActivityKind.OTHER) or (
            rng.random() >= ACTIVITY_OPEN_ENDED * 3
        ):
            ends_on = min(starts_on + timedelta(days=rng.randint(*KIND_DAYS[kind])), LAST_END)
        final = self._final_status(rng, starts_on, ends_on)
        begins = _at(starts_on, 9)
        ends = None if ends_on is None else _at(ends_on, 17)
        recorded = self._recorded(rng, begins)
        backfilled = recorded > begins
        writer = (
            self.someone(Role.CTED_ANALYST)
            if rng.random() < (0.7 if backfilled else 0.3)
            else self._lead_person(rng, lead)
        )
        chosen: list[_NeedRef] = []
        if rng.random() < ACTIVITY_LINKED:
            known = [n for n in cells.get((state.id, area.value), []) if n.created_at < recorded]
            chosen = rng.sample(known, min(len(known), rng.randint(1, 2)))
            if writer.role != Role.CTED_ANALYST.value and not all(need.shared for need in chosen):
                writer = self.someone(Role.CTED_ANALYST)  # an entity links shared needs only
        partners: list[Organization] = []
        if rng.random() < ACTIVITY_PARTNERED:
            drawn = rng.choices(leads, weights=lead_weights, k=rng.randint(1, 2))
            partners = sorted({o.id: o for o in drawn if o.id != lead.id}.values(), key=_code)
        # The status it was recorded with, and the moves since, each at its moment.
        if final is ActivityStatus.PLANNED or recorded < begins:
            initial = ActivityStatus.PLANNED
        elif ends is None or recorded < ends:
            initial = ActivityStatus.ONGOING
        else:
            initial = ActivityStatus.COMPLETED
        if final is ActivityStatus.CANCELLED and initial is ActivityStatus.COMPLETED:
            initial = ActivityStatus.CANCELLED
        moves: list[tuple[datetime, ActivityStatus]] = []
        if final is ActivityStatus.CANCELLED and initial is not ActivityStatus.CANCELLED:
            moves.append((self.later(recorded, 1, 200, rng), final))
        elif final in (ActivityStatus.ONGOING, ActivityStatus.COMPLETED):
            if initial is ActivityStatus.PLANNED:
                moves.append((self.later(max(begins, recorded), 0, 2, rng), ActivityStatus.ONGOING))
            if final is ActivityStatus.COMPLETED and initial is not ActivityStatus.COMPLETED:
                assert ends is not None
                since = max(ends, moves[-1][0] if moves else recorded)
                moves.append((self.later(since, 0, 10, rng), final))
        outputs = self._outputs(rng, kind) if final is ActivityStatus.COMPLETED else []
        activity_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        budget = (
            Decimal(rng.randrange(10, 1500) * 1000) if rng.random() < ACTIVITY_BUDGETED else None
        )
        currency = None
        if budget is not None:
            currency = rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]
        programme = rng.choice(list(Programme)).value if rng.random() < 0.4 else None
        subject = AREA_TEXT[area][0].lower()
        row: dict[str, Any] = {
            "id": activity_id,
            "state_id": state.id,
            "area": area.value,
            "programme": programme,
            "kind": kind.value,
            "title": f"{KIND_WORDS[kind]} {subject} in {state.name_en}",
            "description": f"{KIND_WORDS[kind]} {subject} for the authorities of "
            f"{state.name_en}, led by {lead.code}.",
            "status": initial.value,
            "starts_on": starts_on,
            "ends_on": ends_on,
            "lead_id": lead.id,
            "budget": budget,
            "currency": currency,
            "offer_id": None,
            "outputs": outputs if initial is ActivityStatus.COMPLETED else [],
            "created_at": recorded,
            "created_by": writer.id,
        }
        self.write(
            recorded,
            writer,
            "activity.create",
            "activity",
            activity_id,
            _snapshot(row, state.code, lead.code)
            | {
                "partners": [o.code for o in partners],
                "need_ids": sorted(str(need.id) for need in chosen),
                "measure_ids": [],
                "offer_id": None,
            },
            ("activity", state.id, activity_id, lead.id),
        )
        status = initial
        for version, (at, moved) in enumerate(moves, start=2):
            change: dict[str, Any] = {"status": {"before": status.value, "after": moved.value}}
            if moved is ActivityStatus.COMPLETED:
                change["outputs"] = {"before": [], "after": outputs}
            change["version"] = version
            actor = writer if writer.org.id == lead.id else self._lead_person(rng, lead)
            self.write(at, actor, "activity.update", "activity", activity_id, change)
            status = moved
        row |= {
            "status": final.value,
            "outputs": outputs,
            "version": 1 + len(moves),
            "updated_at": moves[-1][0] if moves else recorded,
        }
        await self.rows.add("activities", row)
        for partner in partners:
            await self.rows.add(
                "activity_partners", {"activity_id": activity_id, "organization_id": partner.id}
            )
        for need in chosen:
            await self.rows.add("activity_needs", {"activity_id": activity_id, "need_id": need.id})
        self.tally["activities"] += 1
        self.tally[f"activities: {final.value}"] += 1
        self.tally["activity partners"] += len(partners)
        self.tally["activity needs"] += len(chosen)

    # --- the directory of national contact points ----------------------------------------

    async def contact_points(self) -> None:
        """CONTACT_STATES States' entries: an asset-freeze authority each and most other
        kinds, some twice; each written by CTED (loading its former database) or the
        State's focal point, then confirmed, or changed, by the State over the two years
        (the neglected ones left to go stale), with every version and audit event."""
        rng = random.Random(CONTACT_SEED)  # noqa: S311 (seeded on purpose, like SEED)
        states = [
            (state, country) for state in self.states if (country := _Country.of(state)) is not None
        ][:CONTACT_STATES]
        self.progress.start("contact points", len(states))
        for state, country in states:
            kinds = [(ContactKind.ASSET_FREEZE, 1)]
            for kind, first, second in CONTACT_KINDS:
                if rng.random() < first:
                    kinds.append((kind, 1))
                    if rng.random() < second:
                        kinds.append((kind, 2))
            for kind, number in kinds:
                await self._contact_point(rng, state, country, kind, number)
            self.progress.advance(1)
        await self.rows.flush()
        self.tally["States with contact points"] = len(states)

    def _contact_writer(self, rng: random.Random, state: Organization) -> _Person:
        """One of the State's focal points; an analyst for a State without any."""
        pool = self.state_focal_points.get(state.id) or self.by_role[Role.CTED_ANALYST.value]
        return rng.choice(pool)

    def _contact_content(
        self,
        rng: random.Random,
        state: Organization,
        country: _Country,
        kind: ContactKind,
        number: int,
    ) -> ContactPointContent:
        language = country.text_language
        name = state.name_fr if language == "fr" and state.name_fr else state.name_en
        authority = rng.choice(AUTHORITIES[language][kind]).format(state=name)
        languages = set(country.languages)
        if rng.random() < 0.8:
            languages.add("en")
        if rng.random() < 0.12:
            languages.add("fr")
        host, local = CONTACT_SLUGS[kind]
        domain = f"{host}{'' if number == 1 else number}.{state.code.lower()}.{DOMAIN}"
        names = ", ".join(ENGLISH.languages.get(code, code) for code in sorted(languages))
        general = rng.choice(CONTACT_NOTES[language]).format(languages=names)
        own = KIND_NOTES[language].get(kind)
        notes = f"{own} {general}" if own else general
        website = f"https://{domain}/" if rng.random() < 0.6 else None
        return ContactPointContent(
            kind=kind,
            authority=authority,
            email=f"{local}@{domain}",
            phone=_phone(rng, country.alpha_2),
            fax=_phone(rng, country.alpha_2) if rng.random() < 0.25 else None,
            website=website,
            request_form_url=f"{website}requests/form" if website and rng.random() < 0.3 else None,
            languages=sorted(languages),
            working_hours="24/7" if kind is ContactKind.POLICE_24_7 else rng.choice(WORKING_HOURS),
            time_zone=country.zone,
            notes=notes,
            audience=rng.choices(
                [a for a, _ in CONTACT_AUDIENCES], weights=[w for _, w in CONTACT_AUDIENCES]
            )[0],
        )

    async def _contact_point(
        self,
        rng: random.Random,
        state: Organization,
        country: _Country,
        kind: ContactKind,
        number: int,
    ) -> None:
        """One entry and its history, as `contacts.service` writes them: a `created`
        version, then `confirmed` (same version) or `updated` (a new one) versions."""
        body = self._contact_content(rng, state, country, kind, number)
        entry_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = START + timedelta(days=rng.uniform(ONBOARDING_DAYS, 330))
        creator = (
            rng.choice(self.by_role[Role.CTED_ANALYST.value])
            if rng.random() < 0.5
            else self._contact_writer(rng, state)
        )
        content = body.model_dump(mode="json")
        versions = [
            _version(rng, entry_id, 1, ContactChange.CREATED, state, content, {}, creator, created)
        ]
        self.write(
            created,
            creator,
            "contact.create",
            "contact",
            entry_id,
            {"state": state.code, "kind": content["kind"], "audience": content["audience"]},
            ("contact", state.id, entry_id, content["audience"]),
        )
        version, confirmed, updated, moment = 1, created, created, created
        kept = rng.random() < CONTACT_KEPT
        while kept:
            moment = moment + timedelta(days=rng.uniform(60, 240))
            if moment >= END:
                break
            writer = self._contact_writer(rng, state)
            changes = self._contact_change(rng, country, content) if rng.random() < 0.2 else {}
            if changes:
                content = {**content, **_after(changes)}
                version += 1
                updated = moment
                versions.append(
                    _version(
                        rng,
                        entry_id,
                        version,
                        ContactChange.UPDATED,
                        state,
                        content,
                        changes,
                        writer,
                        moment,
                    )
                )
                named = {n: "changed" if n == "notes" else c for n, c in changes.items()}
                details = {"version": version, "changes": named}
                self.write(moment, writer, "contact.update", "contact", entry_id, details)
            else:
                versions.append(
                    _version(
                        rng,
                        entry_id,
                        version,
                        ContactChange.CONFIRMED,
                        state,
                        content,
                        {},
                        writer,
                        moment,
                    )
                )
                details = {"version": version, "previously_confirmed_at": confirmed.isoformat()}
                self.write(moment, writer, "contact.confirm", "contact", entry_id, details)
                confirmed = moment
        await self.rows.add(
            "contact_points",
            {
                **content,
                "languages": ",".join(content["languages"]),
                "id": entry_id,
                "state_id": state.id,
                "version": version,
                "confirmed_at": confirmed,
                "created_at": created,
                "updated_at": updated,
                "retired_at": None,
                "soon_stale_reminded_at": None,
                "stale_reminded_at": None,
            },
        )
        # After their entry: a batch flushed in between never holds a version without it.
        for row in versions:
            await self.rows.add("contact_point_versions", row)
        self.tally["contact points"] += 1
        self.tally["contact-point versions"] += len(versions)

    def _contact_change(
        self, rng: random.Random, country: _Country, content: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """What a State corrects in an entry (its number, hours, notes or languages), with
        before and after as the service records them (languages joined: "en,fr")."""
        name = rng.choice(("phone", "working_hours", "notes", "languages"))
        before = content[name]
        after: Any
        if name == "phone":
            after = _phone(rng, country.alpha_2)
        elif name == "working_hours":
            after = rng.choice([hours for hours in WORKING_HOURS if hours != before])
        elif name == "notes":
            after = f"{before} {COPY_NOTE[country.text_language]}"
        else:
            after = sorted({*before, rng.choice(("ar", "en", "es", "fr", "ru", "zh"))})
        if after == before:
            return {}
        ContactPointContent.model_validate({**content, name: after})  # as the service checks
        if name == "languages":
            return {name: {"before": ",".join(before), "after": ",".join(after)}}
        return {name: {"before": before, "after": after}}

    # --- the audit log --------------------------------------------------------------------

    async def audit_log(self, head: tuple[int, str]) -> tuple[int, str]:
        """Every write's event and the users' reads, in time order, chained onto `head`."""
        self.writes.sort(key=lambda write: write.at)
        reads = self.scale.audit_events - len(self.writes)
        if reads < 0:
            raise LargeDataSetError("The scale has fewer audit events than writes.")
        self.progress.start("audit events", self.scale.audit_events)
        table = SQLModel.metadata.tables["audit_events"]
        last_id, last_hash = head
        batch: list[dict[str, Any]] = []
        for (
            at,
            person,
            anonymous,
            action,
            outcome,
            object_type,
            object_id,
            details,
        ) in self._timeline(reads):
            last_id += 1
            row: dict[str, Any] = {
                "id": last_id,
                "at": at,
                "actor_user_id": None if person is None or anonymous else person.id,
                "actor_client_id": None,
                "actor_organization": None if person is None or anonymous else person.org.code,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "outcome": outcome,
                "ip": None if person is None else person.ip,
                "user_agent": "ctcp-cli" if person is None else person.agent,
                "request_id": None if person is None else f"{self.rng.getrandbits(128):032x}",
                "details": details,
                "prev_hash": last_hash,
            }
            row["hash"] = last_hash = audit.compute_hash(row)
            batch.append(row)
            if len(batch) >= BATCH:
                await self.rows.write(table, batch)
                self.progress.advance(len(batch))
                batch = []
        if batch:
            await self.rows.write(table, batch)
            self.progress.advance(len(batch))
        return last_id, last_hash

    def _timeline(
        self, reads: int
    ) -> Iterator[tuple[datetime, _Person | None, bool, str, str, str | None, str | None, str]]:
        """(at, person, anonymous, action, outcome, object type, object id, details) in order.

        Reads only touch what exists at their moment: each write adds its object to the
        pools the readers draw from when its time comes.
        """
        pools = _Pools()
        writes = self.writes
        position = 0
        reading_days = DAYS - ONBOARDING_DAYS
        weights = [
            0.3 if (START + timedelta(days=ONBOARDING_DAYS + d)).weekday() >= 5 else 1.0
            for d in range(reading_days)
        ]
        scale = reads / sum(weights)
        planned = [int(w * scale) for w in weights]
        for day in range(reads - sum(planned)):
            planned[day % reading_days] += 1
        mix = [kind for kind, _ in READ_MIX]
        cumulative: list[float] = []
        for _, weight in READ_MIX:
            cumulative.append((cumulative[-1] if cumulative else 0) + weight)
        for day in range(DAYS):
            day_end = START + timedelta(days=day + 1)
            count = planned[day - ONBOARDING_DAYS] if day >= ONBOARDING_DAYS else 0
            day_start = day_end - timedelta(days=1)
            moments = sorted(
                # Office hours, UTC, give or take the time zones.
                day_start + timedelta(seconds=self.rng.uniform(5 * 3600, 21 * 3600))
                for _ in range(count)
            )
            for moment in moments:
                while position < len(writes) and writes[position].at <= moment:
                    yield self._written(writes[position], pools)
                    position += 1
                kind = self.rng.choices(mix, cum_weights=cumulative)[0]
                yield self._read(kind, moment, pools)
            while position < len(writes) and writes[position].at < day_end:
                yield self._written(writes[position], pools)
                position += 1
        while position < len(writes):
            yield self._written(writes[position], pools)
            position += 1

    def _written(
        self, write: _Write, pools: "_Pools"
    ) -> tuple[datetime, _Person | None, bool, str, str, str | None, str | None, str]:
        if write.effect is not None:
            pools.apply(write.effect)
        return (
            write.at,
            write.actor,
            False,
            write.action,
            "allowed",
            write.object_type,
            write.object_id,
            write.details,
        )

    def _read(
        self, kind: str, at: datetime, pools: "_Pools"
    ) -> tuple[datetime, _Person | None, bool, str, str, str | None, str | None, str]:
        rng = self.rng
        allowed = "allowed"
        if kind in ("report", "report.list", "consent.read", "report.denied") and pools.reports:
            report_id, state_id = rng.choice(pools.reports)
            readers = self.state_focal_points.get(state_id)
            if kind == "report.denied":
                other = rng.choice(self.by_role[Role.STATE_FOCAL_POINT.value])
                if other.org.id != state_id:
                    details = {
                        "method": "GET",
                        "path": f"/api/v1/reports/{report_id}",
                        "reason": "No such report.",
                        "status": 404,
                    }
                    return (
                        at,
                        other,
                        False,
                        "report.read",
                        "denied",
                        "report",
                        report_id,
                        _json(details),
                    )
            elif readers and kind == "report.list":
                ids = pools.by_state[state_id][-20:][::-1]
                return (
                    at,
                    rng.choice(readers),
                    False,
                    "report.list",
                    allowed,
                    "report",
                    None,
                    _json({"ids": ids}),
                )
            elif readers and kind == "consent.read":
                return (
                    at,
                    rng.choice(readers),
                    False,
                    "consent.read",
                    allowed,
                    "report",
                    report_id,
                    "{}",
                )
            reader = (
                rng.choice(readers)
                if readers and rng.random() < 0.65
                else self.someone(Role.CTED_ANALYST)
            )
            return at, reader, False, "report.read", allowed, "report", report_id, "{}"
        if kind == "publication.list" and pools.publications:
            reader = rng.choice(self.by_role[Role.ENTITY_FOCAL_POINT.value])
            ids = pools.publications[-20:][::-1]
            return (
                at,
                reader,
                False,
                "publication.list",
                allowed,
                "publication",
                None,
                _json({"ids": ids}),
            )
        if kind == "publication.read" and pools.publications:
            reader = rng.choice(self.by_role[Role.ENTITY_FOCAL_POINT.value])
            publication_id = rng.choice(pools.publications)
            return (
                at,
                reader,
                False,
                "publication.read",
                allowed,
                "publication",
                publication_id,
                "{}",
            )
        if kind == "need.read" and pools.needs:
            need_id, state_id = rng.choice(pools.needs)
            readers = self.state_focal_points.get(state_id)
            reader = (
                rng.choice(readers)
                if readers and rng.random() < 0.5
                else self.someone(Role.CTED_ANALYST)
            )
            return at, reader, False, "need.read", allowed, "need", need_id, "{}"
        if kind == "request.read" and pools.requests:
            request_id, state_id = rng.choice(pools.requests)
            readers = self.state_focal_points.get(state_id)
            reader = (
                rng.choice(readers)
                if readers and rng.random() < 0.6
                else self.someone(Role.CTED_ANALYST)
            )
            return at, reader, False, "request.read", allowed, "request", request_id, "{}"
        if kind == "offer.read" and pools.offers:
            offer_id, entity_id = rng.choice(pools.offers)
            reader = rng.choice(self.entity_focal_points[entity_id])
            return at, reader, False, "offer.read", allowed, "offer", offer_id, "{}"
        if kind == "contact.read" and pools.contacts:
            contact_id, state_id, audience = rng.choice(pools.contacts)
            reader = self._contact_reader(state_id, audience)
            return at, reader, False, "contact.read", allowed, "contact", contact_id, "{}"
        if kind == "activity.read" and pools.activities:
            activity_id, state_id, lead_id = rng.choice(pools.activities)
            reader = self._activity_reader(state_id, lead_id)
            return at, reader, False, "activity.read", allowed, "activity", activity_id, "{}"
        person = rng.choice(self.people)
        if kind == "sign-in.denied":
            details = {"email": person.email, "reason": "bad_password"}
            return (
                at,
                person,
                True,
                "session.create",
                "denied",
                "user",
                str(person.id),
                _json(details),
            )
        details = {"rehashed": False, "second_factor": None}
        return at, person, False, "session.create", allowed, "user", str(person.id), _json(details)

    def _activity_reader(self, state_id: uuid.UUID, lead_id: uuid.UUID) -> _Person:
        """Who opens an activity: its lead's focal points, the State's, or CTED."""
        draw = self.rng.random()
        own = self.entity_focal_points.get(lead_id)
        if own and draw < 0.5:
            return self.rng.choice(own)
        state = self.state_focal_points.get(state_id)
        if state and draw < 0.7:
            return self.rng.choice(state)
        return self.someone(Role.CTED_ANALYST)

    def _contact_reader(self, state_id: uuid.UUID, audience: str) -> _Person:
        """Who looks an entry up: the State's own focal points, the entities and other
        States the audience lets in, or CTED."""
        draw = self.rng.random()
        own = self.state_focal_points.get(state_id)
        if own and draw < 0.3:
            return self.rng.choice(own)
        if audience != ContactAudience.SECRETARIAT.value and draw < 0.7:
            return self.rng.choice(self.by_role[Role.ENTITY_FOCAL_POINT.value])
        if audience == ContactAudience.MEMBER_STATES.value and draw < 0.85:
            return self.rng.choice(self.by_role[Role.STATE_FOCAL_POINT.value])
        return self.someone(Role.CTED_ANALYST)


READ_MIX = (
    ("sign-in", 10),
    ("sign-in.denied", 1),
    ("report", 24),
    ("report.list", 6),
    ("consent.read", 4),
    ("report.denied", 1),
    ("publication.list", 8),
    ("publication.read", 16),
    ("need.read", 8),
    ("request.read", 8),
    ("offer.read", 5),
    ("contact.read", 3),
    ("activity.read", 3),
)


class _Pools:
    """What exists at a moment of the timeline, for the reads to draw from."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, uuid.UUID]] = []
        self.by_state: dict[uuid.UUID, list[str]] = {}
        self.publications: list[str] = []
        self._publication_at: dict[str, int] = {}
        self._publication_of: dict[uuid.UUID, str] = {}
        self.needs: list[tuple[str, uuid.UUID]] = []
        self.requests: list[tuple[str, uuid.UUID]] = []
        self.offers: list[tuple[str, uuid.UUID]] = []
        self.contacts: list[tuple[str, uuid.UUID, str]] = []
        self.activities: list[tuple[str, uuid.UUID, uuid.UUID]] = []

    def apply(self, effect: tuple[Any, ...]) -> None:
        kind = effect[0]
        if kind == "report":
            _, state_id, report_id = effect
            self.reports.append((str(report_id), state_id))
            self.by_state.setdefault(state_id, []).append(str(report_id))
        elif kind == "consent":
            _, report_id, publication_id = effect
            revoked = self._publication_of.pop(report_id, None)
            if revoked is not None:
                self._remove(revoked)
            if publication_id is not None:
                self._publication_of[report_id] = str(publication_id)
                self._publication_at[str(publication_id)] = len(self.publications)
                self.publications.append(str(publication_id))
        elif kind == "need":
            self.needs.append((str(effect[2]), effect[1]))
        elif kind == "request":
            self.requests.append((str(effect[2]), effect[1]))
        elif kind == "offer":
            self.offers.append((str(effect[2]), effect[1]))
        elif kind == "contact":
            _, state_id, contact_id, audience = effect
            self.contacts.append((str(contact_id), state_id, audience))
        elif kind == "activity":
            _, state_id, activity_id, lead_id = effect
            self.activities.append((str(activity_id), state_id, lead_id))

    def _remove(self, publication_id: str) -> None:
        index = self._publication_at.pop(publication_id)
        last = self.publications.pop()
        if last != publication_id:
            self.publications[index] = last
            self._publication_at[last] = index


# --- the build ------------------------------------------------------------------------------


async def _other_data(connection: AsyncConnection) -> list[str]:
    """What the database holds besides reference data, policy and administrators."""
    admins = select(col(UserRole.user_id)).where(col(UserRole.role) == Role.PLATFORM_ADMIN.value)
    checks = {
        "users other than administrators": select(func.count())
        .select_from(User)
        .where(col(User.id).not_in(admins)),
        "visit reports": select(func.count()).select_from(VisitReport),
        "needs": select(func.count()).select_from(Need),
        "assistance requests": select(func.count()).select_from(AssistanceRequest),
        "contact points": select(func.count()).select_from(ContactPoint),
        "activities": select(func.count()).select_from(Activity),
    }
    found = []
    for label, statement in checks.items():
        number = (await connection.execute(statement)).scalar_one()
        if number:
            found.append(f"{number} {label}")
    return found


async def large_present(database: Database) -> bool:
    """Whether a large data set (of any scale) is there already: its first admin is the marker."""
    async with database.read_sessionmaker() as session:
        return await identity.load_account(session, email=MARKER_EMAIL) is not None


async def build(
    database: Database,
    *,
    scale: Scale,
    password: str,
    hasher: PasswordHasher,
    context: AuditContext,
    progress: BuildProgress | None = None,
) -> BuildResult | None:
    """Build the data set of `scale`; None when one is present already.

    Refuses (LargeDataSetError) a database holding other data than reference data, the
    policy and administrators. Everything but the reference data is written in one
    transaction: a failed build leaves nothing behind.
    """
    identity.check_password(password, email=MARKER_EMAIL)
    if await large_present(database):
        return None
    shown = progress or _Silent()
    phases: list[tuple[str, float]] = []
    clock_start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock_start
        now = time.perf_counter()
        phases.append((name, now - clock_start))
        clock_start = now

    async with database.transaction() as session:
        found = await _other_data(await session.connection())
        if found:
            raise LargeDataSetError(
                "The database holds other data (" + ", ".join(found) + "): build the large "
                "data set in an empty database (reference data, policy and administrators only)."
            )
        await organizations.load_reference_data(session, context=context)
        rules = select(func.count()).select_from(CasbinRule)
        if not (await (await session.connection()).execute(rules)).scalar_one():
            await policy.sync_policy(session, policy.read_policy_file(), context=context)
    lap("reference data and policy")
    password_hash = await hasher.hash(password)
    lap("password hash (once)")
    postgres = database.backend == "postgresql"
    async with database.engine.begin() as connection:
        # The chain head's lock, held to the commit: no other writer can fork the chain.
        head = (
            await connection.execute(
                select(col(AuditChainHead.last_id), col(AuditChainHead.last_hash))
                .where(col(AuditChainHead.id) == 1)
                .with_for_update()
            )
        ).one()
        if not postgres:
            # The audit table's six indexes outgrow SQLite's default 2 MB page cache early
            # on; with a larger cache for this connection they are written once, at commit.
            await connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        orgs = [
            Organization(
                id=row.id, code=row.code, kind=row.kind, name_en=row.name_en, name_fr=row.name_fr
            )
            for row in await connection.execute(
                select(
                    col(Organization.id),
                    col(Organization.code),
                    col(Organization.kind),
                    col(Organization.name_en),
                    col(Organization.name_fr),
                )
            )
        ]
        rows = _Rows(connection)
        run = _Build(scale, rows, orgs, password_hash, shown)
        await run.users()
        lap("users")
        await run.reports_and_consent()
        lap("reports, sections, consent, publications")
        shown.start("needs", scale.needs)
        await run.needs_sharing()
        await rows.flush()
        need_rows = run.plan_needs()
        shown.advance(scale.needs)
        lap("needs-sharing decisions, needs (planned)")
        await run.requests_and_offers(need_rows)
        lap("needs, requests, offers")
        await run.activities(need_rows)
        lap("activities")
        await run.contact_points()
        lap("contact points")
        last_id, last_hash = await run.audit_log((head.last_id, head.last_hash))
        await connection.execute(
            update(AuditChainHead)
            .where(col(AuditChainHead.id) == 1)
            .values(last_id=last_id, last_hash=last_hash)
        )
        lap("audit events")
        if not postgres:
            await connection.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default
        shown.start("commit", 1)
    shown.advance(1)
    lap("commit")
    # The rows above were written directly: the change feed records them all at once.
    async with database.transaction() as session:
        await changes.backfill(session)
    lap("change feed")
    if postgres:
        async with database.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
        lap("ANALYZE")
    else:
        async with database.engine.connect() as connection:
            # On the driver's connection: SQLAlchemy's would open a transaction first,
            # and a checkpoint cannot run inside one.
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            )
        lap("WAL checkpoint")
    counts = {
        "users": run.tally["users"],
        **{k: v for k, v in sorted(run.tally.items()) if k != "users"},
    }
    counts["audit events"] = scale.audit_events
    return BuildResult(scale=scale, counts=counts, phases=phases, chain_length=last_id)
