"""The demo's fictional content: accounts, visit reports, and what follows from them.

Every text here is invented for demonstration. It names real Member States and Compact
entities (so the reference data fits), but no finding or recommendation is real.
"""

from dataclasses import dataclass
from datetime import date

from ctcp.assistance.models import Programme
from ctcp.assistance.schemas import ConsultationCreate, IndicatorIn, MeasureIn, Participant
from ctcp.identity.roles import Role
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
