"""The issuing agency's register: the source of truth for the attributes it attests.

One register per agency (identity agency, registry office, birth registry,
vehicle registration...), on SQLite (a file path) or PostgreSQL (a DSN), loadable
from JSON and CSV files. It answers three questions for the issuer service:

- *what do we attest about this person?* :meth:`Register.claims_for`
- *who is this?* :meth:`Register.find_person` (PID claims),
  :meth:`Register.person_for_eid_card`, :meth:`Register.person_for_matrix_user`
- *what changed?* :meth:`Register.record_move`, :meth:`Register.pending_life_events`
"""

from issuer.register.files import FORMAT, RegisteredMove, RegisterFile, read_register_file
from issuer.register.model import (
    BIRTH_VCT,
    INCOME_VCT,
    PID_VCT,
    RESIDENCE_VCT,
    VEHICLE_VCT,
    BindingMethod,
    LifeEvent,
    PersonRecord,
    PlaceOfBirth,
    age_on,
    issuable_claims,
    parse_person,
)
from issuer.register.store import Register

__all__ = [
    "BIRTH_VCT",
    "FORMAT",
    "INCOME_VCT",
    "PID_VCT",
    "RESIDENCE_VCT",
    "VEHICLE_VCT",
    "BindingMethod",
    "LifeEvent",
    "PersonRecord",
    "PlaceOfBirth",
    "Register",
    "RegisterFile",
    "RegisteredMove",
    "age_on",
    "issuable_claims",
    "parse_person",
    "read_register_file",
]
