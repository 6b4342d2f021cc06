"""What the register holds about a person, and how a credential payload is built from it.

A register record has two parts:

- the **identifying attributes** (given name, family name, birthdate, place of
  birth, optionally a simulated eID card number) that identity matching uses, and
- per credential type (``vct``) the **claim values** only this register knows
  (the residence address, a vehicle's plate, a tax assessment...).

:func:`issuable_claims` joins both: the identifying attributes a type's schema
declares at top level are filled in from the identity, then the type's own
claim values are laid over them (so a birth certificate may state the family
name at birth while the person's current name differs). Every record is checked
against the credential type schemas when it is built, so a record that exists
always yields payloads that validate.

Pure: no I/O, no clock (age claims take ``as_of``).
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import jsonschema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from onceonly.credential_types import get_type
from onceonly.errors import ConfigError, MalformedInput
from onceonly.types import Vct

PID_VCT: Final = Vct("urn:onceonly:credential:pid:1")
RESIDENCE_VCT: Final = Vct("urn:onceonly:credential:residence:1")
BIRTH_VCT: Final = Vct("urn:onceonly:credential:birth-certificate:1")
VEHICLE_VCT: Final = Vct("urn:onceonly:credential:vehicle-registration:1")
INCOME_VCT: Final = Vct("urn:onceonly:credential:income-tax-assessment:1")

IDENTITY_CLAIMS: Final = ("given_name", "family_name", "birthdate", "place_of_birth")
"""Identifying attributes copied into a payload when the type's schema declares them."""

RESERVED_CLAIMS: Final = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "vct#integrity", "cnf", "status", "_sd", "_sd_alg", "..."}
)
"""Claims the issuer sets itself (or SD-JWT syntax); a register never supplies them."""

# Stand-ins for the claims the issuer adds at signing time, so that a register
# payload can be checked against the full credential schema before any signing.
_SIGNING_PLACEHOLDERS: Final[Mapping[str, Any]] = {
    "iss": "https://register.invalid",
    "iat": 0,
    "exp": 1,
    "cnf": {"jwk": {}},
}
_ADULT_AGE: Final = 18


def _normalised_text(value: str) -> str:
    # NFC, so a name typed with a combining umlaut matches the precomposed one;
    # surrounding blanks are refused rather than trimmed, since matching is exact.
    value = unicodedata.normalize("NFC", value)
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _iso_date(value: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    date.fromisoformat(value)  # raises ValueError for 2024-02-30 and the like
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_normalised_text)]
IsoDate = Annotated[str, AfterValidator(_iso_date)]
PersonId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class PlaceOfBirth(BaseModel):
    """Where a person was born; either part may be unknown to a register."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    locality: Name | None = None
    country: CountryCode | None = None

    def as_claim(self) -> dict[str, str]:
        """The ``place_of_birth`` claim object (known parts only)."""
        return self.model_dump(exclude_none=True)


class PersonRecord(BaseModel):
    """One person in an agency's register.

    Attributes:
        person_id: The register's own id for the person (not shared across agencies).
        given_name: Given name(s), NFC-normalised.
        family_name: Current family name, NFC-normalised.
        birthdate: ``YYYY-MM-DD``.
        place_of_birth: Place of birth, if the register knows it.
        eid_card_number: Simulated eID card number (identity agency only).
        claims: Per ``vct``, the claim values this register issues for that type.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: PersonId
    given_name: Name
    family_name: Name
    birthdate: IsoDate
    place_of_birth: PlaceOfBirth | None = None
    eid_card_number: Annotated[str, Field(pattern=r"^[A-Z0-9]{9,10}$")] | None = None
    claims: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _claims_fit_their_types(self) -> PersonRecord:
        for vct in self.claims:
            check_payload(self, Vct(vct))
        return self


class BindingMethod(StrEnum):
    """How the agency established that a Matrix account belongs to a register person."""

    EID_CHECK = "eid_check"
    """The citizen passed the (simulated) eID card check."""
    PID_PRESENTATION = "pid_presentation"
    """The citizen presented a verified PID credential whose claims matched the register."""
    IN_PERSON = "in_person"
    """Staff verified the citizen's identity at a counter."""


class LifeEvent(BaseModel):
    """A change the register recorded that may warrant a proactive credential offer.

    It carries no claim values: the service reads the current ones with
    :meth:`~issuer.register.Register.claims_for` when it builds the offer.

    Attributes:
        event_id: Register-assigned id.
        person_id: Whose record changed.
        kind: What happened (``"move"``).
        vct: The credential type whose contents changed.
        effective_on: When the change took effect, ``YYYY-MM-DD``.
        recorded_at: When the register recorded it, Unix seconds.
        handled_at: When the service handled it, Unix seconds, or ``None`` while pending.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: int
    person_id: str
    kind: Literal["move"]
    vct: str
    effective_on: IsoDate
    recorded_at: int
    handled_at: int | None = None


def issuable_claims(record: PersonRecord, vct: Vct, *, as_of: date | None = None) -> dict[str, Any]:
    """The claim set to sign for ``record`` as a ``vct`` credential.

    Args:
        record: The register record.
        vct: The credential type; ``record.claims`` must hold values for it.
        as_of: The issuance date; when given and the type has ``age_over_18``,
            that claim is derived from the birthdate.

    Returns:
        A fresh dict without ``iss``/``iat``/``exp``/``vct``/``cnf``/``status``.

    Raises:
        KeyError: the record has no values for ``vct``.
    """
    own = record.claims[vct]
    properties = get_type(vct).schema.get("properties", {})
    payload: dict[str, Any] = {}
    for name in IDENTITY_CLAIMS:
        if name not in properties:
            continue
        if name == "place_of_birth":
            if record.place_of_birth is not None and record.place_of_birth.as_claim():
                payload[name] = record.place_of_birth.as_claim()
        else:
            payload[name] = getattr(record, name)
    payload.update(copy.deepcopy(own))
    if as_of is not None and "age_over_18" in properties and "age_over_18" not in own:
        payload["age_over_18"] = age_on(record.birthdate, as_of) >= _ADULT_AGE
    return payload


def age_on(birthdate: str, day: date) -> int:
    """Completed years of life on ``day`` for someone born on ``birthdate``."""
    born = date.fromisoformat(birthdate)
    before_birthday = (day.month, day.day) < (born.month, born.day)
    return day.year - born.year - int(before_birthday)


class ClaimProblem(ValueError):
    """A record's claim values do not fit their credential type.

    Attributes:
        location: Where in the record the problem is (e.g. ``("claims", vct, "address")``),
            so that file readers can point at the right line.
    """

    def __init__(self, message: str, location: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.location = location


def check_payload(record: PersonRecord, vct: Vct) -> None:
    """Check that ``record`` yields a valid ``vct`` payload.

    Raises:
        ClaimProblem: unknown type, a reserved claim name, or a schema violation
            (a ``ValueError``, so pydantic reports it as a validation error).
    """
    where: tuple[str | int, ...] = ("claims", vct)
    try:
        credential_type = get_type(vct)
    except ConfigError:
        raise ClaimProblem(f"unknown credential type {vct!r}", where) from None
    own = record.claims[vct]
    reserved = sorted(RESERVED_CLAIMS & set(own))
    if reserved:
        raise ClaimProblem(f"the issuer sets {', '.join(reserved)} itself", where)
    payload = {**issuable_claims(record, vct), **_SIGNING_PLACEHOLDERS, "vct": vct}
    validator = jsonschema.Draft202012Validator(
        credential_type.schema, format_checker=jsonschema.FormatChecker()
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is None:
        return
    path = tuple(error.absolute_path)
    # A claim the type's own values supply is reported there; others come from identity.
    location = (*where, *path) if path and path[0] in own else path or where
    raise ClaimProblem(f"{error.message} (in the {credential_type.key} credential)", location)


def parse_person(data: Any, *, where: str = "record") -> PersonRecord:
    """Build a :class:`PersonRecord` from untrusted data.

    Args:
        data: The decoded record (a mapping).
        where: Where the record came from, prefixed to error messages (e.g. ``"line 7"``).

    Raises:
        MalformedInput: naming the first problem and its field.
    """
    try:
        return PersonRecord.model_validate(data)
    except ValidationError as exc:
        raise MalformedInput(f"{where}: {describe_validation_error(exc)}") from None


def error_location(exc: ValidationError) -> tuple[str | int, ...]:
    """Where in the input the first problem of ``exc`` lies."""
    first = exc.errors(include_url=False)[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ClaimProblem):
        return cause.location
    return tuple(first["loc"])


def describe_validation_error(exc: ValidationError) -> str:
    """One line for a pydantic error: the field path and the first message."""
    first = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error_location(exc)) or "record"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = exc.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{location}: {message}{suffix}"
