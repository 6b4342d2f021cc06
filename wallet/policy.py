"""Unattended consent: a policy file that approves named requests and denies everything else.

For a wallet that runs without a person at the terminal (tests, the demo, a
citizen who pre-approves a recurring request). The file is JSON (``.json``) or
TOML (anything else)::

    # Approve the family benefits office, for child benefit, for these claims only.
    [[presentations]]
    verifier = "did:web:familienkasse.berlin.example"
    purposes = ["child_benefit_application"]
    vcts = ["urn:onceonly:credential:residence:1"]
    claims = ["address", "birthdate"]

    # Request the residence certificate whenever the registry office offers it.
    [[offers]]
    issuer = "did:web:buergeramt.berlin.example"
    vcts = ["urn:onceonly:credential:residence:1"]

Claim paths are dotted (``address.locality``, ``nationalities.*``, ``a.0``) or,
in JSON, DCQL arrays. A rule's path covers itself and everything below it.

A presentation is approved only when *every* credential in it is covered by one
rule for that verifier, purpose and type, and every leaf its disclosures would
show the verifier lies under that rule's paths - including the plain members of
an object opened to reach a requested member (approving ``place_of_birth.locality``
does not approve ``place_of_birth.country`` riding along). Every field of a rule
is required: a policy never approves "anything" by omission. No rule, no
disclosure; and a request nothing answers is never "approved" (it is refused
after the same decision, see :mod:`wallet.answer`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from onceonly.errors import ConfigError, OnceOnlyError
from onceonly.trust.claim_paths import (
    ClaimPath,
    any_path_covers,
    parse_claim_path,
    validate_claim_path,
)
from wallet.present import DisclosurePlan, PlannedPresentation
from wallet.records import PendingOffer

MAX_POLICY_BYTES: Final = 256 * 1024

Name = Annotated[StrictStr, Field(min_length=1, max_length=1024)]
Names = Annotated[tuple[Name, ...], Field(min_length=1, max_length=256)]


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PresentationRule(_Rule):
    """Approve one verifier, for these purposes and types, up to these claims.

    Attributes:
        verifier: The verifier's trust-list id.
        purposes: Purpose codes approved.
        vcts: Credential types that may be presented.
        claims: Claim paths that may be disclosed (each covers everything below it).
    """

    verifier: Name
    purposes: Names
    vcts: Names
    claims: Annotated[tuple[ClaimPath, ...], Field(min_length=1, max_length=256)]

    @field_validator("claims", mode="before")
    @classmethod
    def _parse_paths(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("claims must be an array of claim paths")
        try:
            return tuple(
                parse_claim_path(item) if isinstance(item, str) else validate_claim_path(item)
                for item in value
            )
        except OnceOnlyError as exc:
            raise ValueError(exc.message) from exc

    def covers(self, plan: DisclosurePlan, item: PlannedPresentation) -> bool:
        """Return whether this rule approves presenting ``item`` as part of ``plan``."""
        if plan.verifier.id != self.verifier and plan.request.verifier_id != self.verifier:
            return False
        if plan.request.purpose.code not in self.purposes:
            return False
        if item.holding.stored.vct not in self.vcts:
            return False
        return all(any_path_covers(self.claims, path) for path in item.candidate.revealed)


class OfferRule(_Rule):
    """Accept offers of these types from this issuer without asking.

    Attributes:
        issuer: The issuer's trust-list id.
        vcts: Credential types to accept.
    """

    issuer: Name
    vcts: Names


class ConsentPolicy(_Rule):
    """The whole policy file: rules that approve; everything else is denied."""

    presentations: tuple[PresentationRule, ...] = ()
    offers: tuple[OfferRule, ...] = ()

    def approves(self, plan: DisclosurePlan) -> bool:
        """Consent callback: yes only if every presentation in ``plan`` has a covering rule."""
        if plan.unanswerable is not None or not plan.presentations:
            return False
        return all(
            any(rule.covers(plan, item) for rule in self.presentations)
            for item in plan.presentations
        )

    def __call__(self, plan: DisclosurePlan) -> bool:
        return self.approves(plan)

    def accepts_offer(self, offer: PendingOffer) -> bool:
        """Return whether ``offer`` may be answered with a request without asking."""
        return any(rule.issuer == offer.issuer and offer.vct in rule.vcts for rule in self.offers)


DENY_ALL: Final = ConsentPolicy()
"""The policy of an unattended wallet without a policy file: nothing is approved."""


def parse_policy(text: str, *, is_json: bool) -> ConsentPolicy:
    """Validate policy text.

    Raises:
        ConfigError: not JSON/TOML, or a rule is incomplete or malformed.
    """
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"policy is not valid {'JSON' if is_json else 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("policy must be an object / table")
    try:
        return ConsentPolicy.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"policy: {where}: {problem['msg']}") from exc


def load_policy(path: Path) -> ConsentPolicy:
    """Read a policy file (``.json`` is JSON, anything else TOML).

    Raises:
        ConfigError: unreadable, too large, or invalid.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read policy {path.name}: {exc.strerror}") from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise ConfigError(f"policy {path.name} is larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"policy {path.name} is not UTF-8") from exc
    return parse_policy(text, is_json=path.suffix.lower() == ".json")
