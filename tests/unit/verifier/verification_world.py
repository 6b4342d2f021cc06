"""A small, real world for verifier tests: trust list, issuer, status list, holder, verifier.

Nothing is mocked: credentials are issued with the real SD-JWT issuer, status
lists are signed Status List Tokens, the trust list is signed by an authority key.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onceonly import jose
from onceonly.errors import TransportError
from onceonly.query import DcqlQuery, parse_query
from onceonly.sdjwt import issue_sd_jwt_vc, parse_sd_jwt, present
from onceonly.status_list import INVALID, StatusList, sign_status_list_jwt
from onceonly.trust import (
    Agency,
    AgencyKey,
    LocalizedText,
    Purpose,
    RequestGrant,
    TrustListDraft,
    VerifiedTrustList,
    build_trust_list,
    sign_trust_list,
    verify_trust_list_signature,
)
from onceonly.types import ExchangeId, UserId

NOW = 1_800_000_000
DAY = 86_400
RESIDENCE = "urn:onceonly:credential:residence:1"
PID = "urn:onceonly:credential:pid:1"
ISSUER_ID = "https://buergeramt.example"
VERIFIER_ID = "https://familienkasse.example"
STATUS_URI = "https://buergeramt.example/status/1"
CITIZEN = UserId("@erika:localhost")
PURPOSE = "child_benefit_application"

RESIDENCE_CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1984-01-26",
    "address": {
        "street_address": "Heidestraße 17",
        "postal_code": "51147",
        "locality": "Köln",
        "country": "DE",
    },
    "registered_since": "2020-05-01",
    "residence_type": "main",
}
RESIDENCE_DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("address",),
    ("address", "street_address"),
    ("address", "postal_code"),
    ("address", "locality"),
    ("address", "country"),
    ("registered_since",),
    ("residence_type",),
]


def address_query(*, with_birthdate: bool = False) -> DcqlQuery:
    claims: list[dict[str, Any]] = [{"path": ["address", "locality"]}]
    if with_birthdate:
        claims.append({"path": ["birthdate"]})
    return parse_query(
        {
            "credentials": [
                {
                    "id": "residence",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [RESIDENCE]},
                    "claims": claims,
                }
            ]
        }
    )


@dataclass
class World:
    """Keys, a signed trust list and a status list; helpers to issue and present."""

    authority: jose.PrivateKey = field(default_factory=lambda: jose.generate_private_key())
    issuer: jose.PrivateKey = field(
        default_factory=lambda: jose.generate_private_key(kid="buergeramt-1")
    )
    verifier: jose.PrivateKey = field(
        default_factory=lambda: jose.generate_private_key(kid="familienkasse-1")
    )
    holder: jose.PrivateKey = field(default_factory=lambda: jose.generate_private_key())
    status: StatusList = field(default_factory=lambda: StatusList(64, 1))
    fetches: int = 0
    fetch_fails: bool = False
    status_signer: jose.PrivateKey | None = None
    now: int = NOW
    issuer_matrix_id: str = "@buergeramt:localhost"
    verifier_matrix_id: str = "@familienkasse:localhost"
    _trust_tokens: dict[int, str] = field(default_factory=dict)

    def trust_token(self, *, seq: int = 1) -> str:
        """The signed trust list with sequence ``seq`` (signed once, then reused)."""
        if seq not in self._trust_tokens:
            self._trust_tokens[seq] = self._sign_trust_list(seq)
        return self._trust_tokens[seq]

    def _sign_trust_list(self, seq: int) -> str:
        issuer = Agency(
            id=ISSUER_ID,
            name=LocalizedText(de="Bürgeramt", en="Citizens' office"),
            matrix_user_id=self.issuer_matrix_id,
            keys=(AgencyKey(jwk=self.issuer.public().to_jwk(), valid_from=self.now - 400 * DAY),),
            may_issue=(RESIDENCE, PID),
        )
        verifier = Agency(
            id=VERIFIER_ID,
            name=LocalizedText(de="Familienkasse", en="Family benefits office"),
            matrix_user_id=self.verifier_matrix_id,
            keys=(AgencyKey(jwk=self.verifier.public().to_jwk(), valid_from=self.now - 400 * DAY),),
            purposes=(
                Purpose(
                    code=PURPOSE,
                    text=LocalizedText(de="Kindergeldantrag", en="child benefit application"),
                ),
            ),
            may_request=(
                RequestGrant(
                    vct=RESIDENCE, paths=(("address",), ("birthdate",)), purposes=(PURPOSE,)
                ),
            ),
        )
        draft = TrustListDraft(
            iss="https://trust.example",
            name=LocalizedText(de="Vertrauensstelle", en="Trust authority"),
            agencies=(issuer, verifier),
        )
        payload = build_trust_list(
            draft, sequence=seq, now=self.now - DAY, valid_for_seconds=30 * DAY
        )
        return sign_trust_list(payload, self.authority)

    def verified_trust(self) -> VerifiedTrustList:
        return verify_trust_list_signature(self.trust_token(), [self.authority.public()])

    def credential(
        self,
        *,
        idx: int = 3,
        signer: jose.PrivateKey | None = None,
        issuer_id: str = ISSUER_ID,
        with_status: bool = True,
    ) -> str:
        status = {"status_list": {"idx": idx, "uri": STATUS_URI}} if with_status else None
        issued = issue_sd_jwt_vc(
            issuer=issuer_id,
            vct=RESIDENCE,
            claims=RESIDENCE_CLAIMS,
            disclosable=RESIDENCE_DISCLOSABLE,
            holder_key=self.holder.public(),
            signing_key=signer or self.issuer,
            now=self.now - 10 * DAY,
            expires_at=self.now + 365 * DAY,
            status=status,
            random_bytes=os.urandom,
        )
        return issued.serialize()

    def present(
        self,
        credential: str,
        *,
        nonce: str,
        aud: str = VERIFIER_ID,
        disclose: Collection[tuple[str | int | None, ...]] = (("address", "locality"),),
        now: int | None = None,
    ) -> str:
        return present(
            parse_sd_jwt(credential),
            disclose=disclose,
            holder_key=self.holder,
            aud=aud,
            nonce=nonce,
            now=self.now if now is None else now,
        )

    def revoke(self, idx: int) -> None:
        self.status.set(idx, INVALID)

    def status_token(self, *, ttl: int | None = 600) -> str:
        return sign_status_list_jwt(
            self.status,
            self.status_signer or self.issuer,
            uri=STATUS_URI,
            issued_at=self.now - 60,
            expires_at=self.now + DAY,
            ttl=ttl,
        )

    async def fetch(self, uri: str, agency: Agency) -> str:
        self.fetches += 1
        if self.fetch_fails or uri != STATUS_URI or agency.id != ISSUER_ID:
            raise TransportError("status room unreachable")
        return self.status_token()


def exchange(n: int) -> ExchangeId:
    return ExchangeId(f"exchange-{n:08d}-test")


def evidence_dir(tmp_path: Path) -> Path:
    return tmp_path / "evidence"
