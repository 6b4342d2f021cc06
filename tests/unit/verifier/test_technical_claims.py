"""vct#integrity is about the credential, not its subject: never shown as a claim of the citizen."""

from __future__ import annotations

import os

from onceonly import jose
from onceonly.sdjwt import VerificationPolicy, issue_sd_jwt_vc, parse_sd_jwt, verify_presentation
from onceonly.sdjwt.type_metadata import TypeMetadata
from verifier.results import accepted_credential
from wallet.present import verifier_view

NOW = 1_767_225_600
METADATA = TypeMetadata.from_document(b'{"vct": "urn:example:t:1", "claims": []}')


def test_verifier_and_wallet_views_leave_vct_integrity_out() -> None:
    issuer, holder = jose.generate_private_key(), jose.generate_private_key()
    text = issue_sd_jwt_vc(
        issuer="https://issuer.example",
        vct="urn:example:t:1",
        claims={"given_name": "Ana"},
        disclosable=[("given_name",)],
        holder_key=holder.public(),
        signing_key=issuer,
        now=NOW,
        expires_at=NOW + 60,
        random_bytes=os.urandom,
        type_metadata=METADATA,
    ).serialize()
    verified = verify_presentation(
        text,
        issuer_key=issuer.public(),
        policy=VerificationPolicy(require_key_binding=False),
        now=NOW,
    )
    assert verified.claims["vct#integrity"] == METADATA.integrity
    assert accepted_credential("q", verified, None).claims == {"given_name": "Ana"}
    sd_jwt = parse_sd_jwt(text)
    view = verifier_view(sd_jwt, [d.disclosure.encoded for d in sd_jwt.disclosures])
    assert view == {"given_name": "Ana"}


def test_demo_narration_lists_only_subject_claims() -> None:
    from scenario.issuing import subject_claims

    claims = {"vct#integrity": "sha256-x", "vct": "v", "_sd": [], "given_name": "Ana"}
    assert subject_claims(claims) == ["given_name"]
