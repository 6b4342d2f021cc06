"""Who takes part in the demo: the agencies, the citizen, and what the registers know.

Everything here is invented demo data. The agencies' identifiers use the reserved
``.example`` domain; the citizen, Erika Mustermann, is the name German sample
documents have always used. Her records are added to copies of the shipped sample
registers (``issuer/sample_data/``), so the registers also hold the other sample
people and identity matching has to pick her out among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from issuer.register import PID_VCT, RESIDENCE_VCT, PersonRecord, parse_person

TRUST_AUTHORITY_ID: Final = "https://vertrauensliste.bund.example"
TRUST_AUTHORITY_NAME_DE: Final = "Vertrauensliste der Verwaltung (Demo)"
TRUST_AUTHORITY_NAME_EN: Final = "Public Administration Trust List (Demo)"

CHILD_BENEFIT_PURPOSE: Final = "child_benefit_application"


@dataclass(frozen=True)
class AgencyRole:
    """One agency of the demo.

    Attributes:
        key: Short name used for data directories and the transcript.
        localpart: Its Matrix user name.
        agency_id: Its identifier on the trust list (``iss`` of what it signs).
        name_de: German display name.
        name_en: English display name.
        issues: Credential types it issues (empty for a pure verifier).
        sample_register: The shipped sample register it starts from (issuers only).
    """

    key: str
    localpart: str
    agency_id: str
    name_de: str
    name_en: str
    issues: tuple[str, ...] = ()
    sample_register: str | None = None


IDENTITY_AGENCY: Final = AgencyRole(
    key="identity-agency",
    localpart="bundesamt-identitaet",
    agency_id="https://identitaet.bund.example",
    name_de="Bundesamt für Identität (Demo)",
    name_en="Federal Identity Office (Demo)",
    issues=(PID_VCT,),
    sample_register="identity_agency.json",
)
REGISTRY_OFFICE: Final = AgencyRole(
    key="registry-office",
    localpart="buergeramt-mitte",
    agency_id="https://buergeramt-mitte.berlin.example",
    name_de="Bürgeramt Berlin-Mitte (Demo)",
    name_en="Citizens' Office Berlin-Mitte (Demo)",
    issues=(RESIDENCE_VCT,),
    sample_register="registry_office.json",
)
FAMILY_BENEFITS: Final = AgencyRole(
    key="family-benefits",
    localpart="familienkasse-berlin",
    agency_id="https://familienkasse.berlin.example",
    name_de="Familienkasse Berlin (Demo)",
    name_en="Family Benefits Office Berlin (Demo)",
)
AGENCIES: Final = (IDENTITY_AGENCY, REGISTRY_OFFICE, FAMILY_BENEFITS)

CITIZEN_LOCALPART: Final = "erika"
CITIZEN_NAME: Final = "Erika Mustermann"
CITIZEN_EID_CARD: Final = "T22000129"

# What the family benefits office may ask for a child benefit application: where the
# applicant lives and when she was born - and nothing else of her residence record.
CHILD_BENEFIT_CLAIMS: Final = (("address",), ("birthdate",))

_ERIKA: Final[dict[str, Any]] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1988-08-12",
    "place_of_birth": {"locality": "Berlin", "country": "DE"},
}


def berlin_address(street_address: str, postal_code: str) -> dict[str, str]:
    """A residence ``address`` claim object in Berlin."""
    return {
        "street_address": street_address,
        "postal_code": postal_code,
        "locality": "Berlin",
        "country": "DE",
    }


ERIKA_FIRST_ADDRESS: Final = berlin_address("Invalidenstraße 42", "10115")
ERIKA_NEW_ADDRESS: Final = berlin_address("Torstraße 88", "10119")
ERIKA_LATEST_ADDRESS: Final = berlin_address("Brunnenstraße 7", "10119")


def erika_identity_record() -> PersonRecord:
    """Erika as the identity agency registers her (with her eID card)."""
    return parse_person(
        {
            **_ERIKA,
            "person_id": "ID-DEMO-ERIKA",
            "eid_card_number": CITIZEN_EID_CARD,
            "claims": {PID_VCT: {"nationalities": ["DE"], "address": ERIKA_FIRST_ADDRESS}},
        },
        where="demo citizen (identity agency)",
    )


def erika_residence_record() -> PersonRecord:
    """Erika as the registry office registers her, before her move."""
    return parse_person(
        {
            **_ERIKA,
            "person_id": "MB-DEMO-ERIKA",
            "claims": {
                RESIDENCE_VCT: {
                    "address": ERIKA_FIRST_ADDRESS,
                    "registered_since": "2015-04-01",
                    "residence_type": "main",
                }
            },
        },
        where="demo citizen (registry office)",
    )
