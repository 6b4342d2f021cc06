"""One valid content per event type, built the way services build them."""

from __future__ import annotations

from typing import Any

from onceonly.protocol import (
    NAMESPACE,
    Attachment,
    CredentialDisplay,
    EcPublicJwk,
    LocalizedText,
    MailboxIndex,
    MailboxMarker,
    Outcome,
    Purpose,
    Refusal,
    RefusalCode,
    StatusListState,
    TrustListState,
    to_content,
)
from onceonly.protocol.bodies import (
    build_credential_issue,
    build_credential_offer,
    build_credential_request,
    build_device_list,
    build_error,
    build_exchange_status,
    build_presentation_request,
    build_presentation_response,
)
from onceonly.protocol.fields import Content
from onceonly.query import (
    ClaimsQuery,
    CredentialMeta,
    CredentialQuery,
    CredentialSetQuery,
    DcqlQuery,
)

EXCHANGE_ID = "xch_4Jq9Vt2mW8pZr1Lk"
NONCE = "q0p8V0xk3mH2uUe1Yf6r9A"
NOW = 1_780_000_000
RESIDENCE_VCT = "urn:onceonly:credential:residence:1"
PID_VCT = "urn:onceonly:credential:pid:1"
# Syntactically valid compact JWS / SD-JWT strings: models check shape, not signatures.
JWS = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
SD_JWT = JWS + "~WyJzYWx0IiwiZ2l2ZW5fbmFtZSIsIkVyaWthIl0~"
SD_JWT_KB = SD_JWT + JWS
HOLDER_JWK = EcPublicJwk(
    kty="EC",
    crv="P-256",
    x="f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    y="x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
)
REGISTRY = LocalizedText(de="Bürgeramt Berlin-Mitte", en="Citizens' Office Berlin-Mitte")
FAMILY_OFFICE = LocalizedText(de="Familienkasse Berlin", en="Family Benefits Office Berlin")
RESIDENCE = LocalizedText(de="Meldebescheinigung", en="Residence registration")
ATTACHMENT = Attachment.model_validate(
    {
        "file": {
            "url": "mxc://localhost/AbCdEfGhIjKlMnOp",
            "key": {
                "kty": "oct",
                "key_ops": ["encrypt", "decrypt"],
                "alg": "A256CTR",
                "k": "qcHVMSgYg-71CauWBezXI5qkaRb0LuIy-Wx5kIaHMIA",
                "ext": True,
            },
            "iv": "X85+XgHN+HEAAAAAAAAAAA",
            "hashes": {"sha256": "5qG4fFnbbVdlAB1Q72JDKwCagV6Dbkx9uds4rSak37c"},
            "v": "v2",
        },
        "size": 70_000,
        "mimetype": "application/dc+sd-jwt",
    }
)


def residence_query() -> DcqlQuery:
    """Address and birth date from a residence credential, or the PID as alternative."""
    return DcqlQuery(
        credentials=(
            CredentialQuery(
                id="residence",
                format="dc+sd-jwt",
                meta=CredentialMeta(vct_values=(RESIDENCE_VCT,)),
                claims=(
                    ClaimsQuery(id="addr", path=("address",)),
                    ClaimsQuery(id="birth", path=("birthdate",)),
                ),
            ),
            CredentialQuery(
                id="pid",
                format="dc+sd-jwt",
                meta=CredentialMeta(vct_values=(PID_VCT,)),
                claims=(
                    ClaimsQuery(path=("address", "locality")),
                    ClaimsQuery(path=("nationalities", None)),
                    ClaimsQuery(path=("age_over_18",), values=(True,)),
                ),
            ),
        ),
        credential_sets=(CredentialSetQuery(options=(("residence",), ("pid",))),),
    )


def samples() -> dict[str, Content]:
    """Full event type to a valid content model."""
    out: list[Content] = [
        build_credential_offer(
            exchange_id=EXCHANGE_ID,
            issuer_id="did:web:buergeramt.berlin.example",
            vct=RESIDENCE_VCT,
            display=CredentialDisplay(name=RESIDENCE, issuer_name=REGISTRY),
            reason_code="registered_move",
            reason=LocalizedText(de="Umzug gemeldet", en="registered move"),
            offer_expires_at=NOW + 14 * 86400,
            nonce=NONCE,
        ),
        build_credential_request(
            exchange_id=EXCHANGE_ID,
            vct=RESIDENCE_VCT,
            holder_jwk=HOLDER_JWK,
            proof=JWS,
            credential_name=RESIDENCE,
            offer_event_id="$offer-event:localhost",
            identity_presentation=SD_JWT_KB,
        ),
        build_credential_issue(
            exchange_id=EXCHANGE_ID,
            vct=RESIDENCE_VCT,
            credential_name=RESIDENCE,
            issuer_name=REGISTRY,
            credential=SD_JWT,
        ),
        build_presentation_request(
            exchange_id=EXCHANGE_ID,
            verifier_id="did:web:familienkasse.berlin.example",
            verifier_name=FAMILY_OFFICE,
            query=residence_query(),
            claim_labels=(
                LocalizedText(de="Wohnadresse", en="residence address"),
                LocalizedText(de="Geburtsdatum", en="date of birth"),
            ),
            purpose=Purpose(
                code="child_benefit_application",
                text=LocalizedText(de="Kindergeldantrag", en="child benefit application"),
            ),
            nonce=NONCE,
            expires_at=NOW + 3600,
        ),
        build_presentation_response(
            exchange_id=EXCHANGE_ID,
            verifier_name=FAMILY_OFFICE,
            vp_token={"residence": (SD_JWT_KB,)},
        ),
        build_exchange_status(exchange_id=EXCHANGE_ID, outcome=Outcome.VERIFIED),
        build_error(code="nonce_mismatch", message="KB-JWT nonce differs", exchange_id=EXCHANGE_ID),
        build_device_list(device_list=JWS, device_count=2),
        MailboxMarker(agency="@buergeramt:localhost", citizen="@erika:localhost"),
        MailboxIndex(rooms={"@buergeramt:localhost": "!mailbox:localhost"}),
        TrustListState(jwt=JWS, sequence=7, issued_at=NOW, expires_at=NOW + 86400),
        StatusListState(
            uri="https://buergeramt.berlin.example/status/1", token=JWS, issued_at=NOW, ttl=3600
        ),
    ]
    return {NAMESPACE + content.EVENT_TYPE: content for content in out}


def refusal_response() -> Content:
    """A presentation.response that declines."""
    return build_presentation_response(
        exchange_id=EXCHANGE_ID,
        verifier_name=FAMILY_OFFICE,
        refusal=Refusal(code=RefusalCode.CONSENT_DENIED),
    )


def sample_dict(event_type: str) -> dict[str, Any]:
    """The JSON content of the sample for ``event_type`` (a fresh, mutable copy)."""
    return to_content(samples()[event_type])
