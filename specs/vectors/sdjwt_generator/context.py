"""What every negative case starts from: the valid base presentation, taken apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onceonly import jose

from .fixtures import (
    ISSUER_KEY,
    Case,
    base_payload,
    error,
    parts,
    payload_of,
    policy,
    sign_jwt,
    with_kb,
)


@dataclass
class NegativeContext:
    """The base presentation's parts plus helpers that each break one thing."""

    base: str
    cases: list[Case] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.jwt, self.discs, self.kb = parts(self.base)
        self.payload = payload_of(self.jwt)
        self.pub: jose.PublicKey = ISSUER_KEY.public()

    def neg(
        self,
        name: str,
        description: str,
        reference: str,
        presentation: str,
        code: str,
        sibling: str = "valid_basic",
        **policy_changes: Any,
    ) -> None:
        """Record a case that must fail with ``code``."""
        case = Case(
            name,
            description,
            reference,
            presentation,
            error(code),
            policy(**policy_changes),
            self.pub,
            sibling,
        )
        self.cases.append(case)

    def resigned(self, **changes: Any) -> str:
        """The base payload with ``changes`` (``None`` removes), re-signed, same disclosures."""
        new = dict(self.payload)
        for name, value in changes.items():
            if value is None:
                new.pop(name, None)
            else:
                new[name] = value
        return with_kb(sign_jwt(new), self.discs)

    def crafted(self, extra: dict[str, Any], disclosures: list[str]) -> str:
        """A minimal valid payload plus ``extra``, signed, with these disclosures and a KB-JWT."""
        return with_kb(sign_jwt(base_payload(**extra)), disclosures)
