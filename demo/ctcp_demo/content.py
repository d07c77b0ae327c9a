"""The demo's fictional content: accounts, visit reports, and what follows from them.

Every text here is invented for demonstration. It names real Member States and Compact
entities (so the reference data fits), but no finding or recommendation is real.
"""

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ctcp.assistance.models import Programme
from ctcp.assistance.schemas import ConsultationCreate, IndicatorIn, MeasureIn, Participant
from ctcp.contacts.models import ContactAudience, ContactKind
from ctcp.contacts.schemas import STALE_AFTER_DAYS, ContactPointContent, ContactPointUpdate
from ctcp.identity.roles import Role
from ctcp.planning.models import ActivityKind, ActivityStatus
from ctcp.planning.schemas import ActivityCreate, ActivityOutput, ActivityUpdate
from ctcp.reports.models import Priority, ReportKind, ThematicArea
from ctcp.reports.schemas import RecommendationIn, ReportContent, SectionIn

# Public by design: the README documents it; `ctcp demo --password` chooses another.
DEMO_PASSWORD = "Lantern-harbour-morning-2026"  # noqa: S105
DEMO_DOMAIN = "demo.ctcp.example"


@dataclass(frozen=True)
class DemoAccount:
    key: str
    email: str
    name: str
    organization: str
    role: Role


def _account(key: str, name: str, organization: str, role: Role) -> DemoAccount:
    return DemoAccount(key, f"{key}@{DEMO_DOMAIN}", name, organization, role)


# The CTED analyst is the marker: when that account exists, the demo data is present.
ACCOUNTS: tuple[DemoAccount, ...] = (
    _account("analyst", "Amina Haddad (CTED analyst)", "CTED", Role.CTED_ANALYST),
    _account("consent.officer", "Lucas Moreau (consent officer)", "CTED", Role.CONSENT_OFFICER),
    _account("auditor", "Ingrid Solberg (auditor)", "CTED", Role.AUDITOR),
    _account("focal.kenya", "Wanjiru Kamau (Kenya)", "KEN", Role.STATE_FOCAL_POINT),
    _account("focal.france", "Claire Dubois (France)", "FRA", Role.STATE_FOCAL_POINT),
    _account("focal.indonesia", "Budi Santoso (Indonesia)", "IDN", Role.STATE_FOCAL_POINT),
    _account("focal.colombia", "Camila Restrepo (Colombia)", "COL", Role.STATE_FOCAL_POINT),
    _account("focal.jordan", "Omar Khalil (Jordan)", "JOR", Role.STATE_FOCAL_POINT),
    _account("focal.unodc", "Elena Petrova (UNODC)", "UNODC", Role.ENTITY_FOCAL_POINT),
    _account("focal.interpol", "Marc Lefèvre (INTERPOL)", "INTERPOL", Role.ENTITY_FOCAL_POINT),
    _account("focal.icao", "Daniel Okafor (ICAO)", "ICAO", Role.ENTITY_FOCAL_POINT),
    _account("focal.iom", "Sofia Lindqvist (IOM)", "IOM", Role.ENTITY_FOCAL_POINT),
)
MARKER_EMAIL = ACCOUNTS[0].email

A = ThematicArea
HIGH, MEDIUM, LOW = Priority.HIGH, Priority.MEDIUM, Priority.LOW

TITLES_EN = {
    A.LEGISLATION: "Legislation and criminalization",
    A.COUNTER_FINANCING: "Countering the financing of terrorism and asset freezing",
    A.LAW_ENFORCEMENT: "Law enforcement",
    A.BORDER_MANAGEMENT: "Border management and aviation security",
    A.INTERNATIONAL_COOPERATION: "International judicial and law-enforcement cooperation",
    A.COUNTERING_VIOLENT_EXTREMISM: "Countering incitement and violent extremism",
    A.HUMAN_RIGHTS: "Human rights and the rule of law",
    A.CRITICAL_INFRASTRUCTURE: "Protection of critical infrastructure and vulnerable targets",
}
TITLES_FR = {
    A.LEGISLATION: "Législation et incrimination",
    A.COUNTER_FINANCING: "Lutte contre le financement du terrorisme et gel des avoirs",
    A.LAW_ENFORCEMENT: "Services de détection et de répression",
    A.BORDER_MANAGEMENT: "Gestion des frontières et sûreté aérienne",
    A.INTERNATIONAL_COOPERATION: "Coopération judiciaire et policière internationale",
    A.COUNTERING_VIOLENT_EXTREMISM: "Lutte contre l'incitation et l'extrémisme violent",
    A.HUMAN_RIGHTS: "Droits de l'homme et état de droit",
    A.CRITICAL_INFRASTRUCTURE: "Protection des infrastructures critiques et des cibles vulnérables",
}

# area -> (body, ((priority, recommendation), ...))
Sections = dict[ThematicArea, tuple[str, tuple[tuple[Priority, str], ...]]]


def report(
    title: str,
    kind: ReportKind,
    visit: tuple[date, date],
    sections: Sections,
    *,
    language: str = "en",
) -> ReportContent:
    titles = TITLES_FR if language == "fr" else TITLES_EN
    return ReportContent(
        title=title,
        kind=kind,
        visit_start=visit[0],
        visit_end=visit[1],
        language=language,
        sections=[
            SectionIn(
                area=area,
                title=titles[area],
                body=body,
                recommendations=[RecommendationIn(text=text, priority=p) for p, text in recs],
            )
            for area, (body, recs) in sections.items()
        ],
    )


KENYA_SECTIONS: Sections = {
    A.LEGISLATION: (
        "The delegation reviewed the counter-terrorism legal framework and its recent "
        "amendments. Terrorist offences are broadly criminalized, although the definition of "
        "a terrorist act remains wide and travel for terrorist purposes is not yet an offence "
        "of its own.",
        (
            (
                MEDIUM,
                "Narrow the definition of a terrorist act and criminalize travel for "
                "terrorist purposes.",
            ),
        ),
    ),
    A.COUNTER_FINANCING: (
        "The financial intelligence unit receives suspicious-transaction reports from banks "
        "and mobile-money operators. Reporting by mobile-money agents and informal value "
        "transfer services remains low, and freezing decisions take several weeks.",
        (
            (
                HIGH,
                "Introduce a mechanism to freeze terrorist assets without delay and extend "
                "outreach to mobile-money providers.",
            ),
        ),
    ),
    A.LAW_ENFORCEMENT: (
        "A multi-agency coordination unit brings together police, intelligence and "
        "prosecution services. Digital forensic capacity is concentrated in the capital: "
        "regional units wait up to three months for the examination of seized devices.",
        (
            (
                HIGH,
                "Establish two regional digital-forensics laboratories and train "
                "investigators in handling electronic evidence.",
            ),
        ),
    ),
    A.BORDER_MANAGEMENT: (
        "Advance passenger information is received for some international flights at the "
        "main airport but is not yet screened systematically against national and INTERPOL "
        "databases. Several land border posts have no connectivity.",
        (
            (
                HIGH,
                "Implement an advance passenger information and passenger name record "
                "system covering all international air carriers.",
            ),
            (MEDIUM, "Connect the principal land border posts to INTERPOL's I-24/7 network."),
        ),
    ),
    A.INTERNATIONAL_COOPERATION: (
        "Mutual legal assistance is handled by the prosecution service. Regional cooperation "
        "is good, but outgoing requests take long to prepare and translate.",
        (
            (
                LOW,
                "Publish guidance for foreign counterparts on submitting mutual legal "
                "assistance requests.",
            ),
        ),
    ),
    A.COUNTERING_VIOLENT_EXTREMISM: (
        "County action plans on preventing violent extremism have been adopted in most "
        "coastal and north-eastern counties, with religious leaders, youth and women's "
        "organizations taking part.",
        ((MEDIUM, "Give the county action plans dedicated budgets and evaluate their results."),),
    ),
    A.HUMAN_RIGHTS: (
        "Interlocutors raised concerns about long pre-trial detention in terrorism cases. "
        "An independent oversight body receives complaints against the police.",
        (
            (
                MEDIUM,
                "Ensure judicial review of pre-trial detention in terrorism cases within "
                "the statutory time limits.",
            ),
        ),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "Shopping centres, hotels and transport hubs have strengthened their security; a "
        "national list of critical infrastructure is being drafted.",
        (
            (
                MEDIUM,
                "Adopt the national critical-infrastructure list and set up public-private "
                "partnerships for the protection of soft targets.",
            ),
        ),
    ),
}

KENYA_FOLLOW_UP_SECTIONS: Sections = {
    A.BORDER_MANAGEMENT: (
        "Draft. The passenger information unit has started operating at the main airport; "
        "the delegation will verify the coverage of air carriers before adoption.",
        ((MEDIUM, "Extend passenger-data screening to the second international airport."),),
    ),
    A.COUNTER_FINANCING: (
        "Draft. Amended regulations on targeted financial sanctions were presented to the "
        "delegation; their application is still to be assessed.",
        (),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "Draft. The national critical-infrastructure list has been adopted by the cabinet "
        "committee (to be confirmed).",
        (),
    ),
}

FRANCE_SECTIONS: Sections = {
    A.LEGISLATION: (
        "Le cadre juridique de la lutte contre le terrorisme est complet et régulièrement "
        "actualisé. La délégation a relevé l'incrimination de l'association de malfaiteurs "
        "terroriste et des déplacements à des fins terroristes.",
        ((LOW, "Poursuivre l'évaluation parlementaire de l'application des lois récentes."),),
    ),
    A.COUNTER_FINANCING: (
        "La cellule de renseignement financier traite un volume élevé de déclarations de "
        "soupçon. Le gel administratif des avoirs est décidé rapidement ; les crypto-actifs "
        "font l'objet d'une attention croissante.",
        ((MEDIUM, "Renforcer la supervision des prestataires de services sur actifs numériques."),),
    ),
    A.LAW_ENFORCEMENT: (
        "La coordination entre les services de renseignement et la police judiciaire repose "
        "sur une cellule nationale de coordination ; les échanges sont jugés fluides par "
        "l'ensemble des interlocuteurs.",
        (
            (
                LOW,
                "Partager les pratiques de coordination interservices avec les États de la région.",
            ),
        ),
    ),
    A.BORDER_MANAGEMENT: (
        "Le traitement des données des dossiers passagers est opérationnel pour les vols "
        "extra-européens et intra-européens ; les contrôles aux frontières extérieures "
        "s'appuient sur les bases de données européennes.",
        (
            (
                LOW,
                "Évaluer la proportionnalité de la durée de conservation des données des "
                "passagers.",
            ),
        ),
    ),
    A.INTERNATIONAL_COOPERATION: (
        "La France apporte une assistance technique à plusieurs États partenaires et traite "
        "les demandes d'entraide judiciaire dans des délais satisfaisants.",
        (
            (
                LOW,
                "Recenser l'assistance technique fournie afin de mieux la coordonner avec "
                "les entités du Pacte mondial.",
            ),
        ),
    ),
    A.COUNTERING_VIOLENT_EXTREMISM: (
        "Le plan national de prévention de la radicalisation associe les collectivités "
        "territoriales, l'éducation et les associations. La délégation a visité un centre "
        "d'accompagnement individualisé.",
        ((MEDIUM, "Faire évaluer de manière indépendante les dispositifs de désengagement."),),
    ),
    A.HUMAN_RIGHTS: (
        "Les mesures individuelles de contrôle administratif sont soumises au juge "
        "administratif. Des représentants de la société civile se sont inquiétés de leur "
        "renouvellement répété.",
        (
            (
                MEDIUM,
                "Veiller à ce que les mesures de contrôle administratif restent "
                "nécessaires et proportionnées.",
            ),
        ),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "La sécurisation des grands événements sportifs a donné lieu à une planification "
        "interservices jugée exemplaire par la délégation.",
        (
            (
                LOW,
                "Consigner l'expérience acquise lors des grands événements dans un guide national.",
            ),
        ),
    ),
}
# The sections France consents to publish (to the Member States); the others stay private.
FRANCE_CONSENTED = (
    A.LEGISLATION,
    A.INTERNATIONAL_COOPERATION,
    A.COUNTERING_VIOLENT_EXTREMISM,
    A.CRITICAL_INFRASTRUCTURE,
)

INDONESIA_SECTIONS: Sections = {
    A.LEGISLATION: (
        "Amendments to the counter-terrorism law introduced offences of preparatory acts and "
        "of participation in foreign terrorist organizations. Implementing regulations on the "
        "rehabilitation of returnees are pending.",
        (
            (
                MEDIUM,
                "Adopt the implementing regulations on the rehabilitation and "
                "reintegration of returnees.",
            ),
        ),
    ),
    A.COUNTER_FINANCING: (
        "The financial intelligence unit has issued guidance on the misuse of non-profit "
        "organizations; a domestic list of designated persons is maintained and published.",
        (
            (
                MEDIUM,
                "Assess the risks of the non-profit sector and apply targeted, "
                "proportionate measures.",
            ),
        ),
    ),
    A.LAW_ENFORCEMENT: (
        "A specialized counter-terrorism police unit investigates nationwide. Cooperation "
        "with prison authorities on intelligence from detention facilities is developing.",
        (
            (
                MEDIUM,
                "Formalize information sharing between the counter-terrorism unit and the "
                "prison service.",
            ),
        ),
    ),
    A.BORDER_MANAGEMENT: (
        "The archipelago's maritime borders are a major challenge. Passenger screening at "
        "the main airports is effective, but smaller seaports lack document-verification "
        "equipment.",
        (
            (
                HIGH,
                "Equip the main passenger seaports with document-verification and "
                "watch-list screening tools.",
            ),
        ),
    ),
    A.INTERNATIONAL_COOPERATION: (
        "Indonesia takes an active part in regional law-enforcement cooperation and has "
        "concluded several mutual legal assistance treaties.",
        ((LOW, "Designate a single central authority for incoming and outgoing requests."),),
    ),
    A.COUNTERING_VIOLENT_EXTREMISM: (
        "Disengagement programmes run by the national counter-terrorism agency involve "
        "former offenders and civil society; the delegation visited a community resilience "
        "centre.",
        ((MEDIUM, "Evaluate the reoffending outcomes of the disengagement programmes."),),
    ),
    A.HUMAN_RIGHTS: (
        "Extended pre-charge detention under the amended law raised concerns among "
        "civil-society interlocutors.",
        (
            (
                HIGH,
                "Guarantee prompt access to a lawyer for every person detained on terrorism "
                "charges.",
            ),
        ),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "Places of worship and tourist sites are identified as vulnerable targets; local "
        "security plans exist in some provinces.",
        (
            (
                MEDIUM,
                "Develop a national framework for the protection of places of worship and "
                "tourist sites.",
            ),
        ),
    ),
}
# Version 2 of the Indonesian report: what changed after the Government's comments.
INDONESIA_AMENDED_SECTIONS: Sections = INDONESIA_SECTIONS | {
    A.LEGISLATION: (
        "Amendments to the counter-terrorism law introduced offences of preparatory acts and "
        "of participation in foreign terrorist organizations. Version 2: the implementing "
        "regulations on the rehabilitation of returnees were adopted after the visit.",
        ((LOW, "Monitor the application of the new regulations on returnees."),),
    ),
    A.BORDER_MANAGEMENT: (
        "The archipelago's maritime borders are a major challenge. Passenger screening at "
        "the main airports is effective. Version 2: two of the main seaports have received "
        "document-verification equipment since the visit; the others still lack it.",
        (
            (
                HIGH,
                "Equip the remaining passenger seaports with document-verification and "
                "watch-list screening tools.",
            ),
        ),
    ),
}

JORDAN_SECTIONS: Sections = {
    A.LEGISLATION: (
        "The anti-terrorism law criminalizes terrorist financing and the recruitment of "
        "foreign terrorist fighters. Some offences concerning online expression are broadly "
        "worded.",
        ((MEDIUM, "Review the online-expression offences so that they are clearly defined."),),
    ),
    A.COUNTER_FINANCING: (
        "The anti-money-laundering unit has strengthened its cooperation with exchange "
        "houses; cash couriers crossing land borders remain a risk.",
        (
            (
                HIGH,
                "Introduce a declaration system for the cross-border transport of cash at "
                "land borders.",
            ),
        ),
    ),
    A.LAW_ENFORCEMENT: (
        "The delegation observed well-resourced specialized units and a national fusion "
        "centre bringing the security agencies together.",
        ((LOW, "Extend joint training between the fusion centre and prosecutors."),),
    ),
    A.BORDER_MANAGEMENT: (
        "Long land borders with conflict-affected areas require sustained surveillance; "
        "biometric screening is in place at the main crossing points only.",
        (
            (
                HIGH,
                "Extend biometric screening to every land crossing point and connect them to "
                "INTERPOL databases.",
            ),
        ),
    ),
    A.INTERNATIONAL_COOPERATION: (
        "Jordan contributes to regional information sharing and has repatriated several "
        "nationals from conflict zones.",
        ((MEDIUM, "Make greater use of joint investigation teams with partner States."),),
    ),
    A.COUNTERING_VIOLENT_EXTREMISM: (
        "A national strategy on countering violent extremism involves the ministries of "
        "youth, education and religious affairs.",
        ((MEDIUM, "Develop indicators of the reach of prevention programmes among young people."),),
    ),
    A.HUMAN_RIGHTS: (
        "A special security court retains jurisdiction over terrorism cases involving civilians.",
        ((HIGH, "Transfer terrorism cases involving civilians to the ordinary courts."),),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "Protection plans exist for airports and key water infrastructure; tourist sites "
        "have dedicated police units.",
        ((MEDIUM, "Hold regular joint exercises on the protection of tourist sites."),),
    ),
}

COLOMBIA_SECTIONS: Sections = {
    A.LEGISLATION: (
        "The criminal code covers terrorist offences and terrorist financing; the framework "
        "is under review in the light of the peace process.",
        (
            (
                LOW,
                "Keep terrorist offences distinct from other forms of organized crime in the "
                "review.",
            ),
        ),
    ),
    A.COUNTER_FINANCING: (
        "The financial analysis unit has good access to information; links between illegal "
        "mining, drug trafficking and the financing of armed groups are monitored.",
        ((MEDIUM, "Strengthen financial investigations into the proceeds of illegal mining."),),
    ),
    A.LAW_ENFORCEMENT: (
        "Police and prosecutors have long experience of complex investigations; rural "
        "departments lack forensic capacity.",
        ((MEDIUM, "Deploy mobile forensic teams to rural departments."),),
    ),
    A.BORDER_MANAGEMENT: (
        "Porous land borders and river routes facilitate the smuggling of firearms and ammunition.",
        (
            (
                HIGH,
                "Strengthen controls of river and land routes against firearms trafficking, "
                "including marking and tracing.",
            ),
        ),
    ),
    A.INTERNATIONAL_COOPERATION: (
        "Colombia has an extensive practice of extradition and mutual legal assistance.",
        ((LOW, "Share its extradition experience through regional prosecutor networks."),),
    ),
    A.COUNTERING_VIOLENT_EXTREMISM: (
        "Reintegration programmes for former combatants offer lessons for preventing violent "
        "extremism.",
        ((MEDIUM, "Document reintegration practices relevant to preventing violent extremism."),),
    ),
    A.HUMAN_RIGHTS: (
        "Interlocutors stressed the protection of social leaders and human-rights "
        "defenders in remote regions.",
        (
            (
                HIGH,
                "Ensure that counter-terrorism measures are never used against human-rights "
                "defenders.",
            ),
        ),
    ),
    A.CRITICAL_INFRASTRUCTURE: (
        "Oil pipelines and power lines have repeatedly been attacked by armed groups; an "
        "interagency protection plan is in place.",
        (
            (
                MEDIUM,
                "Include energy operators in a national critical-infrastructure protection "
                "exercise.",
            ),
        ),
    ),
}

SUFFIX = " (fictional demonstration report)"
KENYA_REPORT = report(
    "Comprehensive assessment visit to Kenya" + SUFFIX,
    ReportKind.COMPREHENSIVE,
    (date(2025, 3, 10), date(2025, 3, 14)),
    KENYA_SECTIONS,
)
KENYA_FOLLOW_UP = report(
    "Follow-up visit to Kenya" + SUFFIX,
    ReportKind.FOLLOW_UP,
    (date(2026, 10, 5), date(2026, 10, 7)),
    KENYA_FOLLOW_UP_SECTIONS,
)
FRANCE_REPORT = report(
    "Visite d'évaluation approfondie en France (rapport fictif de démonstration)",
    ReportKind.COMPREHENSIVE,
    (date(2025, 6, 16), date(2025, 6, 20)),
    FRANCE_SECTIONS,
    language="fr",
)
INDONESIA_REPORT = report(
    "Comprehensive assessment visit to Indonesia" + SUFFIX,
    ReportKind.COMPREHENSIVE,
    (date(2025, 9, 8), date(2025, 9, 12)),
    INDONESIA_SECTIONS,
)
INDONESIA_AMENDED = report(
    "Comprehensive assessment visit to Indonesia" + SUFFIX,
    ReportKind.COMPREHENSIVE,
    (date(2025, 9, 8), date(2025, 9, 12)),
    INDONESIA_AMENDED_SECTIONS,
)
JORDAN_REPORT = report(
    "Focused assessment visit to Jordan" + SUFFIX,
    ReportKind.FOCUSED,
    (date(2025, 11, 17), date(2025, 11, 20)),
    JORDAN_SECTIONS,
)
COLOMBIA_REPORT = report(
    "Comprehensive assessment visit to Colombia" + SUFFIX,
    ReportKind.COMPREHENSIVE,
    (date(2026, 2, 23), date(2026, 2, 27)),
    COLOMBIA_SECTIONS,
)


def _indicator(name: str, unit: str, baseline: float, target: float, due: date) -> IndicatorIn:
    return IndicatorIn(name=name, unit=unit, baseline=baseline, target=target, due_date=due)


KENYA_CONSULTATION = ConsultationCreate(
    state="KEN",
    programme=Programme.COUNTERING_TERRORIST_TRAVEL,
    start_date=date(2026, 5, 12),
    end_date=date(2026, 5, 14),
    participants=[
        Participant(name="Wanjiru Kamau", organization="Ministry of Interior (focal point)"),
        Participant(name="Peter Otieno", organization="Immigration services"),
        Participant(name="Grace Mwangi", organization="Civil aviation authority"),
        Participant(name="Amina Haddad", organization="CTED"),
    ],
    baseline_findings=(
        "Advance passenger information reaches the main airport for about a third of "
        "international flights and is checked by hand. No passenger information unit exists "
        "yet; four land border posts are connected to INTERPOL databases."
    ),
    measures=[
        MeasureIn(
            title="Legal basis for processing passenger data",
            recommendations="Adopt regulations on API/PNR processing with data-protection "
            "safeguards and an independent supervisor.",
            entity="UNODC",
            indicators=[
                _indicator(
                    "Implementing regulations adopted", "regulations", 0, 1, date(2027, 6, 30)
                ),
            ],
        ),
        MeasureIn(
            title="An operational passenger information unit",
            recommendations="Set up a passenger information unit staffed by trained analysts "
            "from immigration, police and customs.",
            entity="IOM",
            indicators=[
                _indicator(
                    "Officers trained in passenger-data analysis",
                    "officers",
                    0,
                    40,
                    date(2027, 3, 31),
                ),
                _indicator("International flights with API data", "%", 35, 100, date(2027, 12, 31)),
            ],
        ),
        MeasureIn(
            title="Border posts connected to INTERPOL databases",
            recommendations="Extend I-24/7 connectivity to the principal land border posts.",
            entity="INTERPOL",
            indicators=[
                _indicator("Border posts connected to I-24/7", "posts", 4, 12, date(2027, 9, 30)),
            ],
        ),
        MeasureIn(
            title="PNR standards of ICAO Annex 9",
            recommendations="Align the national PNR system with the Standards and Recommended "
            "Practices of Annex 9.",
            entity="ICAO",
            indicators=[
                _indicator("Annex 9 PNR standards implemented", "%", 20, 80, date(2027, 12, 31)),
            ],
        ),
    ],
)

COLOMBIA_CONSULTATION = ConsultationCreate(
    state="COL",
    programme=Programme.SALW_TERRORISM_NEXUS,
    start_date=date(2026, 7, 7),
    end_date=date(2026, 7, 9),
    participants=[
        Participant(name="Camila Restrepo", organization="Ministry of Foreign Affairs"),
        Participant(name="Andrés Gómez", organization="National police, firearms directorate"),
        Participant(name="Amina Haddad", organization="CTED"),
    ],
    baseline_findings=(
        "Seized firearms are recorded in a national registry but few are traced abroad; "
        "ammunition depots in two regions lack physical security; iARMS is little used."
    ),
    measures=[
        MeasureIn(
            title="Marking, record-keeping and tracing of firearms",
            recommendations="Trace every seized firearm through the national registry and "
            "international requests.",
            entity="UNODC",
            indicators=[
                _indicator("Seized firearms traced", "%", 15, 60, date(2027, 12, 31)),
            ],
        ),
        MeasureIn(
            title="Physical security of ammunition depots",
            recommendations="Upgrade the physical security and stockpile management of "
            "regional depots.",
            entity="UNODA",
            indicators=[
                _indicator(
                    "Depots with improved physical security", "depots", 2, 10, date(2028, 6, 30)
                ),
            ],
        ),
        MeasureIn(
            title="Use of INTERPOL's iARMS",
            recommendations="Query iARMS for every firearm seized near the borders.",
            entity="INTERPOL",
            indicators=[
                _indicator("iARMS queries per month", "queries", 20, 200, date(2027, 6, 30)),
            ],
        ),
    ],
)


# --- the directory of national contact points -----------------------------------------------


@dataclass(frozen=True)
class DemoContactPoint:
    """An entry of the demo directory.

    `confirmed_days_ago` None: the State's focal point (`writer`) adds it today through the
    service, as the API does. A number: CTED loaded it from its former database with the
    date it was last confirmed there, which is what makes entries stale or about to be.
    """

    key: str
    state: str
    writer: str
    body: ContactPointContent
    confirmed_days_ago: int | None = None


K = ContactKind
SECRETARIAT, COMPACT, MEMBER_STATES = (
    ContactAudience.SECRETARIAT,
    ContactAudience.COMPACT,
    ContactAudience.MEMBER_STATES,
)
# Kenya's central authority turns stale within the reminder window (30 days): the entry
# "to confirm" on Kenya's focal point's dashboard. Two others are stale already.
SOON_STALE_DAYS = STALE_AFTER_DAYS - 20
STALE_DAYS = (STALE_AFTER_DAYS + 65, STALE_AFTER_DAYS + 35)


def _entry(
    key: str,
    state: str,
    writer: str,
    kind: ContactKind,
    authority: str,
    email: str,
    languages: list[str],
    audience: ContactAudience,
    *,
    confirmed_days_ago: int | None = None,
    **optional: str,
) -> DemoContactPoint:
    body = ContactPointContent(
        kind=kind,
        authority=authority,
        email=email,
        languages=languages,
        audience=audience,
        **optional,
    )
    return DemoContactPoint(key, state, writer, body, confirmed_days_ago)


CONTACT_POINTS: tuple[DemoContactPoint, ...] = (
    # Kenya: five kinds (no separate extradition authority: the Attorney General's central
    # authority handles both), one of them to confirm, one visible to the Secretariat only.
    _entry(
        "ken.mla",
        "KEN",
        "analyst",
        K.MLA_CENTRAL_AUTHORITY,
        "Office of the Attorney General — Central Authority",
        "central.authority@ag.go.ke.example",
        ["en", "sw"],
        MEMBER_STATES,
        confirmed_days_ago=SOON_STALE_DAYS,
        phone="+254 20 2012 870",
        website="https://ag.go.ke.example/central-authority",
        request_form_url="https://ag.go.ke.example/central-authority/mla-request",
        working_hours="Mon-Fri 08:00-17:00",
        time_zone="Africa/Nairobi",
        notes="Send requests by e-mail with a signed letter of request and a certified copy "
        "in English; the original follows through diplomatic channels. Also handles "
        "extradition requests. Urgent requests (detained suspects, evidence at risk): call "
        "first, then e-mail.",
    ),
    _entry(
        "ken.fiu",
        "KEN",
        "analyst",
        K.FINANCIAL_INTELLIGENCE_UNIT,
        "Financial Intelligence Unit of Kenya",
        "requests@fiu.go.ke.example",
        ["en", "sw"],
        MEMBER_STATES,
        confirmed_days_ago=200,
        phone="+254 20 2012 345",
        website="https://fiu.go.ke.example",
        working_hours="Mon-Fri 08:00-17:00",
        time_zone="Africa/Nairobi",
        notes="Requests from foreign financial intelligence units through the Egmont Secure "
        "Web only; no requests from law enforcement abroad directly. Answer within 10 working "
        "days, within 48 hours when marked urgent.",
    ),
    _entry(
        "ken.asset_freeze",
        "KEN",
        "focal.kenya",
        K.ASSET_FREEZE,
        "Counter-Financing of Terrorism Inter-Ministerial Committee — Secretariat",
        "tfs.secretariat@treasury.go.ke.example",
        ["en"],
        COMPACT,
        phone="+254 20 2012 590",
        working_hours="Mon-Fri 08:00-17:00",
        time_zone="Africa/Nairobi",
        notes="Receives third-party requests to freeze assets under resolution 1373 (2001). "
        "Send the request by note verbale, with the identifying information and the reasons "
        "for the designation; an advance copy by e-mail is welcome.",
    ),
    _entry(
        "ken.police",
        "KEN",
        "focal.kenya",
        K.POLICE_24_7,
        "National Police Service — INTERPOL National Central Bureau Nairobi (24/7)",
        "ncb.nairobi@police.go.ke.example",
        ["en", "sw"],
        COMPACT,
        phone="+254 712 123 456",
        working_hours="24/7",
        time_zone="Africa/Nairobi",
        notes="Staffed around the clock. Use I-24/7 for police-to-police requests; call the "
        "duty officer for preservation of electronic evidence.",
    ),
    _entry(
        "ken.ct",
        "KEN",
        "focal.kenya",
        K.CT_COORDINATOR,
        "National Counter Terrorism Centre — Office of the Director",
        "director.office@counterterrorism.go.ke.example",
        ["en"],
        SECRETARIAT,
        phone="+254 20 2012 011",
        time_zone="Africa/Nairobi",
        notes="Coordinates the national strategy; the contact for CTED's follow-up visits.",
    ),
    # France: every kind, notes in French.
    _entry(
        "fra.asset_freeze",
        "FRA",
        "focal.france",
        K.ASSET_FREEZE,
        "Direction générale du Trésor — Bureau des sanctions financières internationales",
        "gel-des-avoirs@tresor.gouv.fr.example",
        ["en", "fr"],
        MEMBER_STATES,
        phone="+33 1 99 00 12 34",
        website="https://tresor.gouv.fr.example/gel-des-avoirs",
        request_form_url="https://tresor.gouv.fr.example/gel-des-avoirs/demande",
        working_hours="lun.-ven. 09:00-18:00",
        time_zone="Europe/Paris",
        notes="Demandes de gel au titre de la résolution 1373 : par courriel, avec les "
        "éléments d'identification et l'exposé des motifs. Réponse sous 15 jours ; en cas "
        "d'urgence, appeler le bureau.",
    ),
    _entry(
        "fra.mla",
        "FRA",
        "focal.france",
        K.MLA_CENTRAL_AUTHORITY,
        "Ministère de la Justice — Bureau de l'entraide pénale internationale",
        "entraide-penale@justice.gouv.fr.example",
        ["en", "fr"],
        MEMBER_STATES,
        phone="+33 1 99 00 45 10",
        fax="+33 1 99 00 45 11",
        website="https://justice.gouv.fr.example/entraide",
        working_hours="lun.-ven. 09:00-18:00",
        time_zone="Europe/Paris",
        notes="Les demandes d'entraide sont reçues en français ou accompagnées d'une "
        "traduction. Transmission par voie électronique acceptée ; l'original suit par la "
        "voie diplomatique.",
    ),
    _entry(
        "fra.extradition",
        "FRA",
        "focal.france",
        K.EXTRADITION_CENTRAL_AUTHORITY,
        "Ministère de la Justice — Bureau de l'entraide pénale internationale, section extradition",
        "extradition@justice.gouv.fr.example",
        ["fr"],
        MEMBER_STATES,
        phone="+33 1 99 00 45 20",
        time_zone="Europe/Paris",
        notes="Demandes d'arrestation provisoire : par INTERPOL et, en copie, par courriel. "
        "Le dossier complet est attendu dans les délais de la convention applicable.",
    ),
    _entry(
        "fra.police",
        "FRA",
        "focal.france",
        K.POLICE_24_7,
        "Direction centrale de la police judiciaire — permanence 24/7 de coopération "
        "internationale",
        "permanence.cooperation@interieur.gouv.fr.example",
        ["en", "es", "fr"],
        COMPACT,
        phone="+33 1 99 00 77 02",
        working_hours="24/7",
        time_zone="Europe/Paris",
        notes="Permanence 24 h/24. Conservation rapide de données informatiques : "
        "formulaire Budapest en anglais ou en français.",
    ),
    _entry(
        "fra.fiu",
        "FRA",
        "focal.france",
        K.FINANCIAL_INTELLIGENCE_UNIT,
        "Tracfin — cellule de renseignement financier",
        "international@tracfin.gouv.fr.example",
        ["en", "fr"],
        COMPACT,
        phone="+33 1 99 00 30 00",
        website="https://tracfin.gouv.fr.example",
        time_zone="Europe/Paris",
        notes="Échanges avec les cellules étrangères par le réseau Egmont uniquement.",
    ),
    _entry(
        "fra.ct",
        "FRA",
        "focal.france",
        K.CT_COORDINATOR,
        "Coordination nationale du renseignement et de la lutte contre le terrorisme",
        "coordination@cnrlt.gouv.fr.example",
        ["en", "fr"],
        SECRETARIAT,
        time_zone="Europe/Paris",
        notes="Interlocuteur de la Direction exécutive pour les visites d'évaluation.",
    ),
    # Indonesia: two central authorities for mutual legal assistance; no asset-freeze or
    # extradition entry yet.
    _entry(
        "idn.mla",
        "IDN",
        "focal.indonesia",
        K.MLA_CENTRAL_AUTHORITY,
        "Ministry of Law — Directorate of International Law and Central Authority",
        "central.authority@kemenkum.go.id.example",
        ["en", "id"],
        MEMBER_STATES,
        phone="+62 21 8350 140",
        website="https://kemenkum.go.id.example/central-authority",
        working_hours="Mon-Fri 08:00-16:00",
        time_zone="Asia/Jakarta",
        notes="The central authority for requests under the MLA law. Requests in English or "
        "Bahasa Indonesia, sent by e-mail and by diplomatic note.",
    ),
    _entry(
        "idn.mla.prosecution",
        "IDN",
        "analyst",
        K.MLA_CENTRAL_AUTHORITY,
        "Attorney General's Office — Centre for International Legal Cooperation",
        "mla.prosecution@kejaksaan.go.id.example",
        ["en", "id"],
        COMPACT,
        confirmed_days_ago=90,
        phone="+62 21 8350 333",
        time_zone="Asia/Jakarta",
        notes="For requests once a terrorism case is before the courts: the prosecutor in "
        "charge answers through this centre. Permintaan mendesak: telepon terlebih dahulu.",
    ),
    _entry(
        "idn.police",
        "IDN",
        "focal.indonesia",
        K.POLICE_24_7,
        "Indonesian National Police — NCB-INTERPOL Jakarta",
        "ncb.jakarta@polri.go.id.example",
        ["en", "id"],
        COMPACT,
        phone="+62 21 8350 500",
        working_hours="24/7",
        time_zone="Asia/Jakarta",
    ),
    _entry(
        "idn.fiu",
        "IDN",
        "focal.indonesia",
        K.FINANCIAL_INTELLIGENCE_UNIT,
        "Indonesian Financial Transaction Reports and Analysis Centre",
        "international@ppatk.go.id.example",
        ["en", "id"],
        MEMBER_STATES,
        phone="+62 21 8350 210",
        website="https://ppatk.go.id.example",
        time_zone="Asia/Jakarta",
        notes="Egmont Secure Web for exchanges between financial intelligence units.",
    ),
    _entry(
        "idn.ct",
        "IDN",
        "focal.indonesia",
        K.CT_COORDINATOR,
        "National Counter-Terrorism Agency — Deputy for International Cooperation",
        "international@bnpt.go.id.example",
        ["en", "id"],
        COMPACT,
        time_zone="Asia/Jakarta",
    ),
    # Jordan: three kinds, its asset-freeze entry stale.
    _entry(
        "jor.asset_freeze",
        "JOR",
        "analyst",
        K.ASSET_FREEZE,
        "Committee for the Implementation of Security Council Sanctions Resolutions "
        "(لجنة تنفيذ قرارات مجلس الأمن)",
        "sanctions.committee@mfa.gov.jo.example",
        ["ar", "en"],
        MEMBER_STATES,
        confirmed_days_ago=STALE_DAYS[0],
        phone="+962 6 200 1480",
        time_zone="Asia/Amman",
        notes="Requests under resolution 1373 by note verbale to the Ministry of Foreign "
        "Affairs, in Arabic or English, with the supporting evidence.",
    ),
    _entry(
        "jor.fiu",
        "JOR",
        "focal.jordan",
        K.FINANCIAL_INTELLIGENCE_UNIT,
        "Anti-Money Laundering and Counter-Terrorist Financing Unit",
        "international@amlu.gov.jo.example",
        ["ar", "en"],
        COMPACT,
        phone="+962 6 200 1399",
        website="https://amlu.gov.jo.example",
        time_zone="Asia/Amman",
        notes="Egmont Secure Web; urgent requests marked as such are answered within 24 hours.",
    ),
    _entry(
        "jor.mla",
        "JOR",
        "focal.jordan",
        K.MLA_CENTRAL_AUTHORITY,
        "Ministry of Justice — International Cooperation Directorate",
        "international.cooperation@moj.gov.jo.example",
        ["ar", "en"],
        MEMBER_STATES,
        phone="+962 6 200 1220",
        working_hours="Sun-Thu 08:30-15:30",
        time_zone="Asia/Amman",
        notes="Letters of request in Arabic, or with an Arabic translation.",
    ),
    # Colombia: four kinds, its 24/7 entry stale; notes in Spanish.
    _entry(
        "col.fiu",
        "COL",
        "focal.colombia",
        K.FINANCIAL_INTELLIGENCE_UNIT,
        "Unidad de Información y Análisis Financiero",
        "cooperacion.internacional@uiaf.gov.co.example",
        ["en", "es"],
        COMPACT,
        phone="+57 601 234 5110",
        website="https://uiaf.gov.co.example",
        time_zone="America/Bogota",
        notes="Intercambio con unidades de inteligencia financiera extranjeras por la red Egmont.",
    ),
    _entry(
        "col.mla",
        "COL",
        "focal.colombia",
        K.MLA_CENTRAL_AUTHORITY,
        "Fiscalía General de la Nación — Dirección de Asuntos Internacionales",
        "asistencia.judicial@fiscalia.gov.co.example",
        ["en", "es"],
        MEMBER_STATES,
        phone="+57 601 234 5999",
        request_form_url="https://fiscalia.gov.co.example/asistencia-judicial/solicitud",
        working_hours="lun.-vie. 08:00-17:00",
        time_zone="America/Bogota",
        notes="Solicitudes en español o con traducción al español. Casos urgentes: llamar "
        "antes de enviar la solicitud por correo electrónico.",
    ),
    _entry(
        "col.extradition",
        "COL",
        "focal.colombia",
        K.EXTRADITION_CENTRAL_AUTHORITY,
        "Ministerio de Justicia y del Derecho — Grupo de Extradiciones",
        "extradiciones@minjusticia.gov.co.example",
        ["es"],
        MEMBER_STATES,
        phone="+57 601 234 5400",
        time_zone="America/Bogota",
        notes="Solicitudes formales de extradición por vía diplomática; la detención "
        "preventiva puede pedirse por INTERPOL.",
    ),
    _entry(
        "col.police",
        "COL",
        "analyst",
        K.POLICE_24_7,
        "Policía Nacional — Oficina Central Nacional INTERPOL Bogotá",
        "ocn.bogota@policia.gov.co.example",
        ["en", "es"],
        COMPACT,
        confirmed_days_ago=STALE_DAYS[1],
        phone="+57 310 123 4567",
        working_hours="24/7",
        time_zone="America/Bogota",
        notes="Punto de contacto 24/7 para la conservación de evidencia digital.",
    ),
)
# Entries from CTED's former database keep an id of their own there: the same in every
# demo database. The first is the marker of the demo directory (ids never change, and a
# retired entry keeps its row): `ctcp demo` adds the directory to a demo data set loaded
# before it existed, and nothing once that entry is there.
CONTACT_NAMESPACE = uuid.UUID("6f1c2f0e-5d43-4a5e-9c55-2322c7ed0000")


def former_database_id(key: str) -> uuid.UUID:
    return uuid.uuid5(CONTACT_NAMESPACE, key)


CONTACT_MARKER_ID = former_database_id(CONTACT_POINTS[0].key)
# Changes made after the entries are in, for their history: France's financial
# intelligence unit moves to another number; Kenya's confirms its entry, nothing changed.
FRANCE_FIU_UPDATE = ContactPointUpdate(
    version=1,
    phone="+33 1 99 00 30 10",
    working_hours="lun.-ven. 09:00-18:00",
)


# --- joint planning: who does what, where --------------------------------------------------


@dataclass(frozen=True)
class DemoActivity:
    """An activity of the demo, recorded by `writer` (an entity's focal point for their own
    organization's work, or the CTED analyst for any lead).

    `needs` are words of the descriptions of the State's needs it answers, `measures` the
    titles of the State's plan measures it carries out (both looked up when it is
    recorded); `then` is what its writer changes afterwards, for the history.
    """

    key: str
    writer: str
    body: ActivityCreate
    needs: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    then: ActivityUpdate | None = None


@dataclass(frozen=True)
class DemoPlannedOffer:
    """The activity an accepted offer planned (led by the offering entity, in the request's
    State), completed by its lead's focal point: dates, partners, budget (the offer's stays
    the offer's), more needs, measures."""

    state: str
    lead: str
    writer: str
    change: ActivityUpdate
    needs: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()


T = ActivityKind
S = ActivityStatus

# The two activities accepting the demo's offers planned. Kenya's passenger information
# unit (IOM) overlaps INTERPOL's work at the land border posts in 2027: the demo's one
# overlap.
PLANNED_OFFERS = (
    DemoPlannedOffer(
        state="KEN",
        lead="IOM",
        writer="focal.iom",
        change=ActivityUpdate(
            version=1,
            programme=Programme.COUNTERING_TERRORIST_TRAVEL,
            kind=T.EQUIPMENT,
            starts_on=date(2027, 1, 11),
            ends_on=date(2027, 12, 17),
            partners=["ICAO"],
            budget=Decimal("450000"),
            currency="USD",
        ),
        needs=("passenger information unit analysts",),
        measures=("An operational passenger information unit",),
    ),
    DemoPlannedOffer(
        state="IDN",
        lead="UNODC",
        writer="focal.unodc",
        change=ActivityUpdate(
            version=1,
            kind=T.EQUIPMENT,
            starts_on=date(2027, 2, 1),
            ends_on=date(2027, 11, 30),
            partners=["IMO"],
            budget=Decimal("600000"),
            currency="USD",
        ),
    ),
)

# Every State's open needs have someone at work on them but one: Kenya's asset freezing,
# whose IMF workshop was cancelled (a cancelled activity closes no gap) and whose request
# still waits on UNODC's offer. The demo's one gap.
ACTIVITIES = (
    DemoActivity(
        key="ken.i24-7",
        writer="focal.interpol",
        body=ActivityCreate(
            state="KEN",
            area=A.BORDER_MANAGEMENT,
            programme=Programme.COUNTERING_TERRORIST_TRAVEL,
            kind=T.EQUIPMENT,
            title="Connection of land border posts to INTERPOL databases",
            description="Extension of I-24/7 to eight land border posts, with screening of "
            "passenger data against the nominal and travel-document databases.",
            status=S.ONGOING,
            starts_on=date(2026, 9, 1),
            ends_on=date(2027, 6, 30),
            partners=["IOM"],
            budget=Decimal("95000"),
            currency="EUR",
        ),
        needs=("passenger name record",),
        measures=("Border posts connected to INTERPOL databases",),
    ),
    DemoActivity(
        key="ken.annex-9",
        writer="focal.icao",
        body=ActivityCreate(
            state="KEN",
            area=A.BORDER_MANAGEMENT,
            programme=Programme.COUNTERING_TERRORIST_TRAVEL,
            kind=T.TRAINING,
            title="Workshop on the PNR standards of ICAO Annex 9",
            description="Three days with the civil aviation authority, immigration and the "
            "data-protection commissioner on the Standards and Recommended Practices of "
            "Annex 9 for passenger name record data.",
            status=S.COMPLETED,
            starts_on=date(2026, 2, 10),
            ends_on=date(2026, 2, 12),
            budget=Decimal("18500"),
            currency="CAD",
            outputs=[
                ActivityOutput(name="Officials trained", value=28, unit="participants"),
                ActivityOutput(name="Gap analysis against Annex 9", value=1, unit="reports"),
            ],
        ),
        measures=("PNR standards of ICAO Annex 9",),
    ),
    DemoActivity(
        key="ken.forensics",
        writer="focal.unodc",
        body=ActivityCreate(
            state="KEN",
            area=A.LAW_ENFORCEMENT,
            kind=T.TRAINING,
            title="Digital forensics for regional investigators",
            description="Four courses on the seizure and examination of digital evidence for "
            "investigators of the regional units, and the equipment of two laboratories.",
            status=S.ONGOING,
            starts_on=date(2026, 6, 1),
            ends_on=date(2027, 3, 31),
            partners=["INTERPOL"],
            budget=Decimal("240000"),
            currency="USD",
        ),
        needs=("digital-forensics laboratories",),
    ),
    DemoActivity(
        key="ken.sanctions-workshop",
        writer="analyst",
        body=ActivityCreate(
            state="KEN",
            area=A.COUNTER_FINANCING,
            lead="IMF",
            kind=T.TRAINING,
            title="Workshop on targeted financial sanctions for supervisors",
            description="A week with the central bank, the capital markets authority and the "
            "financial intelligence unit on freezing without delay.",
            status=S.PLANNED,
            starts_on=date(2026, 10, 5),
            ends_on=date(2026, 10, 9),
            budget=Decimal("60000"),
            currency="USD",
        ),
        needs=("freeze terrorist assets",),
        then=ActivityUpdate(version=1, status=S.CANCELLED),
    ),
    DemoActivity(
        key="ken.travel-offence",
        writer="analyst",
        body=ActivityCreate(
            state="KEN",
            area=A.LEGISLATION,
            lead="UNOCT",
            kind=T.LEGISLATIVE_DRAFTING,
            title="Drafting support: travel for terrorist purposes",
            description="Support to the drafters of the amendments criminalizing travel for "
            "terrorist purposes, with a review of the definition of a terrorist act.",
            status=S.ONGOING,
            starts_on=date(2025, 9, 1),
            ends_on=date(2026, 6, 30),
            partners=["UNODC"],
            budget=Decimal("85000"),
            currency="USD",
        ),
        then=ActivityUpdate(
            version=1,
            status=S.COMPLETED,
            outputs=[
                ActivityOutput(name="Draft amendments submitted to Parliament", value=1),
                ActivityOutput(
                    name="Drafters and prosecutors trained", value=32, unit="participants"
                ),
            ],
        ),
    ),
    DemoActivity(
        key="idn.counsel",
        writer="analyst",
        body=ActivityCreate(
            state="IDN",
            area=A.HUMAN_RIGHTS,
            lead="OHCHR",
            kind=T.TRAINING,
            title="Access to counsel in terrorism cases",
            description="Joint training of defence lawyers and police investigators on "
            "access to counsel from the first hour of custody.",
            status=S.ONGOING,
            starts_on=date(2026, 4, 1),
            ends_on=date(2027, 2, 26),
            partners=["UNODC"],
            budget=Decimal("150000"),
            currency="CHF",
        ),
        needs=("defence lawyers",),
    ),
    DemoActivity(
        key="idn.prisons",
        writer="analyst",
        body=ActivityCreate(
            state="IDN",
            area=A.LAW_ENFORCEMENT,
            lead="UNOCT",
            kind=T.TRAINING,
            title="Prison intelligence course",
            description="A course for prison intelligence officers and a protocol for the "
            "secure exchange of information with the counter-terrorism police unit.",
            starts_on=date(2027, 3, 1),
            ends_on=date(2027, 9, 30),
            partners=["UNODC"],
            budget=Decimal("210000"),
            currency="USD",
        ),
        needs=("prison intelligence",),
    ),
    DemoActivity(
        key="jor.biometrics",
        writer="analyst",
        body=ActivityCreate(
            state="JOR",
            area=A.BORDER_MANAGEMENT,
            lead="INTERPOL",
            programme=Programme.COUNTERING_TERRORIST_TRAVEL,
            kind=T.EQUIPMENT,
            title="Biometric screening at the land crossings",
            description="Fingerprint and face capture at the four main land crossings, "
            "checked against INTERPOL's biometric databases.",
            starts_on=date(2027, 2, 1),
            ends_on=date(2027, 12, 31),
            budget=Decimal("300000"),
            currency="EUR",
        ),
        needs=("Biometric screening",),
    ),
    DemoActivity(
        key="jor.cash-couriers",
        writer="analyst",
        body=ActivityCreate(
            state="JOR",
            area=A.COUNTER_FINANCING,
            lead="UNODC",
            kind=T.ASSESSMENT,
            title="Cash declarations at the land borders: an assessment",
            description="An assessment of the declaration of cash and bearer instruments at "
            "the land borders, with customs and the financial intelligence unit.",
            status=S.ONGOING,
            starts_on=date(2026, 5, 4),
            ends_on=date(2026, 12, 18),
            partners=["WCO"],
            budget=Decimal("70000"),
            currency="USD",
        ),
        needs=("declaration system for cash",),
    ),
    DemoActivity(
        key="col.tracing",
        writer="focal.unodc",
        body=ActivityCreate(
            state="COL",
            area=A.BORDER_MANAGEMENT,
            programme=Programme.SALW_TERRORISM_NEXUS,
            kind=T.EQUIPMENT,
            title="Firearms marking and a tracing desk",
            description="Marking machines for the national police, a tracing desk and the "
            "training of its investigators.",
            status=S.ONGOING,
            starts_on=date(2026, 8, 3),
            ends_on=date(2027, 12, 17),
            budget=Decimal("350000"),
            currency="USD",
        ),
        needs=("Firearms marking",),
        measures=("Marking, record-keeping and tracing of firearms",),
    ),
    DemoActivity(
        key="col.depots",
        writer="analyst",
        body=ActivityCreate(
            state="COL",
            area=A.LAW_ENFORCEMENT,
            lead="UNODA",
            programme=Programme.SALW_TERRORISM_NEXUS,
            kind=T.EQUIPMENT,
            title="Physical security of regional ammunition depots",
            description="Fences, locks, alarms and stockpile-management training for the "
            "regional depots holding seized firearms and ammunition.",
            status=S.ONGOING,
            starts_on=date(2026, 9, 15),
            ends_on=date(2028, 6, 30),
            partners=["UNDP"],
            budget=Decimal("420000"),
            currency="USD",
        ),
        needs=("Secure storage of seized firearms",),
        measures=("Physical security of ammunition depots",),
    ),
    DemoActivity(
        key="col.defenders",
        writer="analyst",
        body=ActivityCreate(
            state="COL",
            area=A.HUMAN_RIGHTS,
            lead="OHCHR",
            kind=T.LEGISLATIVE_DRAFTING,
            title="Guidance for prosecutors on human-rights defenders",
            description="Drafting, with the Attorney General's office, of guidance on "
            "protecting human-rights defenders in terrorism investigations.",
            starts_on=date(2027, 1, 18),
            ends_on=date(2027, 7, 30),
            partners=["UNDP"],
            budget=Decimal("90000"),
            currency="CHF",
        ),
        needs=("human-rights defenders",),
    ),
)
# The cells the demo's matrix flags (State, area), for the tests and the README.
DEMO_GAP = ("KEN", A.COUNTER_FINANCING.value)
DEMO_OVERLAP = ("KEN", A.BORDER_MANAGEMENT.value)
