"""Steps 3 and 5: the family benefits office asks; revocation; a fresh attestation.

Step 3 is the once-only moment: the office needs proof of residence and the date
of birth for a child benefit application and asks Erika's wallet instead of
asking her for paper. The wallet discloses exactly those two claims (her policy
approves it without a prompt); the office verifies and records the verdict in
its audit log. Over-asking is refused before anything is sent.

Step 5: Erika moves again, the registry office revokes the attestation; the
office's next request is answered with the old credential (the wallet's cached
status list still says valid) and rejected as revoked, because the office reads
status lists fresh; Erika's wallet asks for a fresh attestation, and the office's
third request is answered with it and verified.
"""

from __future__ import annotations

from typing import Any

from issuer.register import RESIDENCE_VCT
from onceonly.credential_types import get_type
from onceonly.errors import NotAuthorizedToRequest, VerificationError
from onceonly.types import UserId
from scenario import cast
from scenario.issuing import await_stored, holding
from scenario.narrator import Outcome
from scenario.overasking import wallet_refuses_over_asking
from scenario.parties import Services, services_of
from scenario.queries import QUERY_ID, child_benefit_query
from scenario.scene import Scene
from verifier.service import VerifierService
from verifier.verification import VerificationResult


def top_level(paths: tuple[str, ...]) -> list[str]:
    """Disclosed paths grouped by claim: ``address (country, locality)``, ``birthdate``."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        groups.setdefault(head, [])
        if rest:
            groups[head].append(rest)
    return [
        f"{head} ({', '.join(sorted(rest))})" if rest else head
        for head, rest in sorted(groups.items())
    ]


def withheld_claims(disclosed: tuple[str, ...]) -> list[str]:
    """The residence type's selectively disclosable claims that were not disclosed."""
    shown = {path.split(".", 1)[0] for path in disclosed}
    names = {str(path[0]) for path in get_type(RESIDENCE_VCT).disclosable_paths if path}
    return sorted(names - shown)


async def ask_office(scene: Scene, services: Services) -> VerificationResult:
    """The office asks Erika for the child benefit claims and waits for its verdict."""
    office = services.family_benefits
    pending = await office.request(
        UserId(scene.world.citizen.user_id), child_benefit_query(), cast.CHILD_BENEFIT_PURPOSE
    )
    scene.narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        "asks Erika's wallet for address and birthdate from a residence attestation"
        f" (purpose {cast.CHILD_BENEFIT_PURPOSE}, exchange {pending.exchange_id})",
    )
    return await office.wait(pending.exchange_id, scene.options.step_timeout)


async def refused_over_asking(office: VerifierService, citizen: str) -> str | None:
    """Try to ask for more than the office's registration allows; return the error code."""
    try:
        await office.request(
            UserId(citizen),
            child_benefit_query(extra_paths=(("given_name",), ("family_name",))),
            cast.CHILD_BENEFIT_PURPOSE,
        )
    except NotAuthorizedToRequest as exc:
        return exc.code
    return None


def _accepted(result: VerificationResult) -> Any:
    items = result.credentials.get(QUERY_ID, ())
    return items[0] if len(items) == 1 else None


async def child_benefit(scene: Scene) -> None:
    """Step 3: minimal disclosure, verified and recorded."""
    narrator = scene.narrator
    services = await services_of(scene)
    over_asking = await refused_over_asking(services.family_benefits, scene.world.citizen.user_id)
    narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        f"tries to also ask for given and family name: refused locally ({over_asking}),"
        " its trust-list registration allows address and birthdate only",
    )
    result = await ask_office(scene, services)
    accepted = _accepted(result)
    if not result.verified or accepted is None:
        raise VerificationError(
            f"the office did not verify the answer: {result.error_code} {result.message}",
            detail={"error_code": result.error_code},
        )
    disclosed = tuple(sorted(accepted.disclosed_paths))
    withheld = withheld_claims(disclosed)
    narrator.say("Erika's wallet", "policy approves: residence attestation, these claims only")
    narrator.claims(top_level(disclosed), withheld)
    narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        f"verified (signature, key binding, nonce, trust list, status) and recorded it as"
        f" audit entry {result.audit_seq}",
    )
    scene.results["first_request"] = result.exchange_id
    narrator.say(
        f"{cast.FAMILY_BENEFITS.name_de} (desk device)",
        "sends the over-asking request anyway, past its verifier's check",
    )
    refusal = await wallet_refuses_over_asking(scene)
    narrator.say("Erika's wallet", f"refuses it without showing Erika anything: {refusal}")
    minimal = {path.split(".", 1)[0] for path in disclosed} == {"address", "birthdate"}
    refused = over_asking == refusal == NotAuthorizedToRequest.code
    narrator.end(
        Outcome.DONE if minimal and refused else Outcome.FAILED,
        f"verified; disclosed {', '.join(sorted({p.split('.')[0] for p in disclosed}))};"
        f" withheld {', '.join(withheld)}",
        exchange_id=result.exchange_id,
        verified=result.verified,
        disclosed=list(disclosed),
        withheld=withheld,
        audit_seq=result.audit_seq,
        over_asking=over_asking,
        wallet_refusal=refusal,
    )


async def revocation(scene: Scene) -> None:
    """Step 5: revoke, reject the old credential as revoked, issue a fresh one."""
    narrator = scene.narrator
    services = await services_of(scene)
    registry = services.registry_office
    register = registry.stores.register
    person = cast.erika_residence_record().person_id
    moved = register.record_move(person, cast.ERIKA_LATEST_ADDRESS, at=registry.now())
    # Erika asks for the new attestation herself below, so no offer goes out for it.
    register.mark_life_event_handled(moved.event_id, registry.now())
    revoked = await registry.revoke(person_id=person, vct=RESIDENCE_VCT)
    narrator.say(
        cast.REGISTRY_OFFICE.name_de,
        f"Erika moved again ({cast.ERIKA_LATEST_ADDRESS['street_address']}): revokes"
        f" {len(revoked)} residence attestation(s) and republishes its status list",
    )
    # The wallet still holds the status list it read in step 3 (valid for its ttl), so
    # it presents the old attestation; the office trusts a status list for one second
    # only (its policy), reads the new one and sees the revocation.
    rejected = await ask_office(scene, services)
    narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        f"answer with the old attestation: {'verified' if rejected.verified else 'REJECTED'}"
        f" ({rejected.error_code})",
    )
    exchange_id = await services.wallet.request(cast.REGISTRY_OFFICE.agency_id, RESIDENCE_VCT)
    narrator.say("Erika's wallet", "asks the registry office for a fresh attestation")
    credential_id = await await_stored(scene, exchange_id)
    _sd_jwt, claims = holding(scene, credential_id)
    address = claims.get("address", {})
    narrator.say("Erika's wallet", f"stored the fresh attestation: {address.get('street_address')}")
    accepted = await ask_office(scene, services)
    narrator.say(
        cast.FAMILY_BENEFITS.name_de,
        f"third request, answered with the fresh attestation:"
        f" {'verified' if accepted.verified else 'REJECTED'}"
        + ("" if accepted.verified else f" ({accepted.error_code})"),
    )
    ok = (
        not rejected.verified
        and rejected.error_code == "revoked"
        and address == cast.ERIKA_LATEST_ADDRESS
        and accepted.verified
    )
    narrator.end(
        Outcome.DONE if ok else Outcome.FAILED,
        f"old attestation rejected ({rejected.error_code}); fresh one at"
        f" {address.get('street_address')}"
        f" {'verified' if accepted.verified else 'NOT verified'} at the next request",
        revoked=[record.credential_id for record in revoked],
        second_request=rejected.exchange_id,
        second_verified=rejected.verified,
        second_error=rejected.error_code,
        fresh_credential_id=credential_id,
        fresh_address=address,
        third_request=accepted.exchange_id,
        third_verified=accepted.verified,
    )
