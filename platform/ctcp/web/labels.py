"""Words for the platform's coded values, in the reader's language (statuses, areas, roles).

The API speaks in codes (`under_review`); pages show these labels. `N_` only marks a
string for the catalog; translation happens when the page is rendered.
"""


def N_(message: str) -> str:
    return message


LABELS: dict[str, str] = {
    # roles
    "state_focal_point": N_("State focal point"),
    "entity_focal_point": N_("Compact-entity focal point"),
    "cted_analyst": N_("CTED analyst"),
    "consent_officer": N_("Consent officer"),
    "platform_admin": N_("Platform administrator"),
    "auditor": N_("Auditor"),
    # organization kinds
    "member_state": N_("Member State"),
    "compact_entity": N_("Compact entity"),
    "secretariat": N_("Secretariat"),
    # reports
    "comprehensive": N_("Comprehensive"),
    "focused": N_("Focused"),
    "follow_up": N_("Follow-up"),
    "draft": N_("Draft"),
    "adopted": N_("Adopted"),
    # thematic areas
    "legislation": N_("Legislation"),
    "counter_financing": N_("Countering the financing of terrorism"),
    "law_enforcement": N_("Law enforcement"),
    "border_management": N_("Border management"),
    "international_cooperation": N_("International cooperation"),
    "countering_violent_extremism": N_("Countering violent extremism"),
    "human_rights": N_("Human rights"),
    "critical_infrastructure": N_("Critical infrastructure"),
    # priorities
    "high": N_("High"),
    "medium": N_("Medium"),
    "low": N_("Low"),
    # consent
    "none": N_("None"),
    "partial": N_("Partial"),
    "full": N_("Full"),
    "compact": N_("Compact entities"),
    "member_states": N_("Member States"),
    "public": N_("Public"),
    # needs
    "open": N_("Open"),
    "partially_met": N_("Partially met"),
    "met": N_("Met"),
    "closed": N_("Closed"),
    "recommendation": N_("Report recommendation"),
    "consultation": N_("Capacity consultation"),
    "state_request": N_("State's request"),
    # requests
    "submitted": N_("Submitted"),
    "under_review": N_("Under review"),
    "circulated": N_("Circulated"),
    "matched": N_("Matched"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "declined": N_("Declined"),
    "withdrawn": N_("Withdrawn"),
    # offers
    "pending": N_("Pending"),
    "accepted": N_("Accepted"),
    "not_selected": N_("Not selected"),
    # programmes
    "countering_terrorist_travel": N_("Countering terrorist travel"),
    "salw_terrorism_nexus": N_("Small arms and light weapons and terrorism"),
    "protection_of_vulnerable_targets": N_("Protection of vulnerable targets"),
    "fusion_cells": N_("Fusion cells"),
    # audit outcomes
    "allowed": N_("Allowed"),
    "denied": N_("Denied"),
    "error": N_("Error"),
    # kinds of contact points (audiences: "secretariat", "compact", "member_states" above)
    "asset_freeze": N_("Asset-freeze requests"),
    "mla_central_authority": N_("Central authority for mutual legal assistance"),
    "extradition_central_authority": N_("Central authority for extradition"),
    "police_24_7": N_("24/7 police network"),
    "financial_intelligence_unit": N_("Financial-intelligence unit"),
    "ct_coordinator": N_("Counter-terrorism coordinator"),
    # a kind's status on a State's card of the directory
    "present": N_("Present"),
    "stale": N_("Out of date"),
    "missing": N_("None listed"),
    # changes in a contact point's history
    "created": N_("Created"),
    "updated": N_("Changed"),
    "confirmed": N_("Confirmed as current"),
    "retired": N_("Retired"),
}
