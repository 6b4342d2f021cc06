"""Steps 1 and 2: the PID after an eID check, and the residence attestation after a move."""

from __future__ import annotations

import secrets
from typing import Any

from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.register import PID_VCT, RESIDENCE_VCT, BindingMethod
from onceonly.errors import IssuanceError
from onceonly.sdjwt import parse_sd_jwt
from onceonly.sdjwt.claims import TECHNICAL_CLAIMS
from scenario import cast
from scenario.narrator import Outcome
from scenario.parties import services_of
from scenario.scene import Scene

_TECHNICAL = TECHNICAL_CLAIMS | {"_sd"}


def holding(scene: Scene, credential_id: str) -> tuple[str, dict[str, Any]]:
    """The stored credential's SD-JWT and its claims, as Erika's wallet holds them."""
    services = scene.services
    assert services is not None  # a step that holds a credential started them
    stored = services.wallet.store.credential(credential_id)
    return stored.sd_jwt, parse_sd_jwt(stored.sd_jwt).claims


def subject_claims(claims: dict[str, Any]) -> list[str]:
    """The top-level claim names about the person (technical claims left out)."""
    return sorted(name for name in claims if name not in _TECHNICAL)


async def await_stored(scene: Scene, exchange_id: str) -> str:
    """Wait until the wallet stored the credential of ``exchange_id``; return its id.

    Raises:
        IssuanceError: the wallet rejected the credential or the agency refused.
    """
    notice = await scene.wallet_notice({"stored", "rejected", "error"}, exchange_id)
    if notice.kind != "stored":
        code = notice.detail.get("code")
        raise IssuanceError(
            f"no credential stored: {notice.kind} {code}",
            detail={"exchange_id": exchange_id, "code": code},
        )
    return str(notice.detail["credential_id"])


async def pid_issuance(scene: Scene) -> None:
    """Step 1: the identity agency checks Erika's eID card and issues her PID."""
    world, narrator = scene.world, scene.narrator
    services = await services_of(scene)
    agency = services.identity_agency
    stores = agency.stores
    citizen = world.citizen
    now = agency.now()
    code = start_eid_check(
        stores.register,
        stores.ledger,
        cast.CITIZEN_EID_CARD,
        now=now,
        random_bytes=secrets.token_bytes,
    )
    narrator.say(
        "Erika",
        f"identifies herself at the agency's portal with her eID card {cast.CITIZEN_EID_CARD}"
        f" (SIMULATED eID check; the card app shows the one-time code {code})",
    )
    person = complete_eid_check(
        stores.register,
        stores.ledger,
        card_number=cast.CITIZEN_EID_CARD,
        code=code,
        matrix_user_id=citizen.user_id,
        now=now,
        device_id=citizen.credentials.device_id,
        devices=stores.devices,
    )
    narrator.say(
        cast.IDENTITY_AGENCY.name_de,
        f"binds {citizen.user_id} to register person {person} and pins her wallet device"
        f" {citizen.credentials.device_id}",
    )
    exchange_id = await services.wallet.request(cast.IDENTITY_AGENCY.agency_id, PID_VCT)
    narrator.say("Erika's wallet", "asks for her PID with a fresh holder key (key proof)")
    credential_id = await await_stored(scene, exchange_id)
    _sd_jwt, claims = holding(scene, credential_id)
    names = subject_claims(claims)
    narrator.say(
        "Erika's wallet",
        f"verified and stored the PID of {claims.get('given_name')} {claims.get('family_name')}",
    )
    narrator.note(f"claims it can disclose one by one: {', '.join(names)}")
    scene.results["pid_credential_id"] = credential_id
    ok = (claims.get("given_name"), claims.get("family_name")) == ("Erika", "Mustermann")
    narrator.end(
        Outcome.DONE if ok else Outcome.FAILED,
        f"PID issued by {cast.IDENTITY_AGENCY.name_de}, bound to the wallet's key",
        exchange_id=exchange_id,
        credential_id=credential_id,
        person_id=person,
        pid_claims=names,
        issuer=claims.get("iss"),
    )


async def residence_offer(scene: Scene) -> None:
    """Step 2: Erika registers a move; the office offers, the wallet accepts, it is issued."""
    world, narrator = scene.world, scene.narrator
    services = await services_of(scene)
    office = services.registry_office
    register = office.stores.register
    citizen = world.citizen
    person = cast.erika_residence_record().person_id
    now = office.now()
    # At the counter the clerk checks her ID card and notes her Matrix address for
    # notifications: that binding is what lets the office reach her proactively.
    register.bind_matrix_user(person, citizen.user_id, BindingMethod.IN_PERSON, now)
    register.record_move(person, cast.ERIKA_NEW_ADDRESS, at=now)
    narrator.say(
        "Erika",
        f"registers her move to {cast.ERIKA_NEW_ADDRESS['street_address']} at the counter of"
        f" {cast.REGISTRY_OFFICE.name_de} and leaves her Matrix address {citizen.user_id}",
    )
    offers = [o for o in await office.send_pending_offers() if o.matrix_user_id == citizen.user_id]
    if len(offers) != 1:
        raise IssuanceError(f"expected one offer to Erika, the office sent {len(offers)}")
    offer = offers[0]
    exchange_id = offer.content.exchange_id
    narrator.body(cast.REGISTRY_OFFICE.name_de, offer.content.body)
    narrator.say(
        "Erika's wallet",
        "accepts by her policy and asks for it, proving who she is with her PID"
        " (given_name, family_name, birthdate, place_of_birth - for this office only)",
    )
    credential_id = await await_stored(scene, exchange_id)
    _sd_jwt, claims = holding(scene, credential_id)
    address = claims.get("address", {})
    narrator.say(
        "Erika's wallet",
        f"verified and stored the residence attestation: {address.get('street_address')},"
        f" {address.get('postal_code')} {address.get('locality')}",
    )
    record = office.issued_in.get(exchange_id)
    scene.results["residence_credential_id"] = credential_id
    scene.results["residence_exchange_id"] = exchange_id
    ok = address == cast.ERIKA_NEW_ADDRESS and claims.get("vct") == RESIDENCE_VCT
    narrator.end(
        Outcome.DONE if ok else Outcome.FAILED,
        f"offer after the move accepted by policy; residence at {address.get('street_address')}",
        exchange_id=exchange_id,
        credential_id=credential_id,
        issuer_credential_id=record.credential_id if record else None,
        address=address,
    )
