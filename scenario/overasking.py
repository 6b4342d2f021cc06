"""The wallet's own guard against over-asking, shown with a request the office never vetted.

The office's verifier refuses to *send* a query its trust-list registration does
not cover. The wallet must not rely on that: a misconfigured or compromised
verifier could send one anyway. So the demo sends such a request from another
device of the office's account (its case-worker desk), bypassing the verifier's
check, and shows that Erika's wallet answers with a refusal
(``not_authorized_to_request``) without showing her anything or disclosing a claim.
"""

from __future__ import annotations

import os
import time
from typing import Final

from onceonly.errors import MalformedInput
from onceonly.jose import b64url_encode
from onceonly.matrix.inbox import InboundEvent
from onceonly.protocol import PresentationResponse
from onceonly.protocol.bodies import build_presentation_request
from onceonly.protocol.envelope import from_wire, to_wire
from onceonly.protocol.events import Purpose
from onceonly.protocol.fields import LocalizedText
from scenario import cast
from scenario.chat import ChatDevice
from scenario.queries import child_benefit_query
from scenario.scene import Scene
from verifier.requests import claim_labels

DESK_DIR: Final = "family-benefits-desk"
DESK_NAME: Final = "Sachbearbeitung Kindergeld"
OVER_ASKED: Final = (("given_name",), ("family_name",))


def office_desk(scene: Scene) -> ChatDevice:
    """The office's case-worker desk: a second device of its account."""
    world = scene.world
    return ChatDevice(
        world.data_dir / DESK_DIR,
        world.family_benefits.credentials,
        DESK_NAME,
        peers=[world.citizen.user_id],
    )


def _unvetted_request(exchange_id: str) -> tuple[str, dict[str, object]]:
    query = child_benefit_query(extra_paths=OVER_ASKED)
    content = build_presentation_request(
        exchange_id=exchange_id,
        verifier_id=cast.FAMILY_BENEFITS.agency_id,
        verifier_name=LocalizedText(
            de=cast.FAMILY_BENEFITS.name_de, en=cast.FAMILY_BENEFITS.name_en
        ),
        query=query,
        claim_labels=claim_labels(query),
        purpose=Purpose(
            code=cast.CHILD_BENEFIT_PURPOSE,
            text=LocalizedText(de="Antrag auf Kindergeld", en="Child benefit application"),
        ),
        nonce=b64url_encode(os.urandom(16)),
        expires_at=int(time.time()) + 300,
    )
    return to_wire(content)


async def wallet_refuses_over_asking(scene: Scene) -> str:
    """Send an over-asking request past the verifier's check; return the wallet's refusal code.

    Raises:
        MalformedInput: the wallet answered with something other than a refusal.
        TransportError: no answer arrived in time.
    """
    citizen = scene.world.citizen.user_id
    exchange_id = "xch_overask_" + b64url_encode(os.urandom(9))
    async with office_desk(scene) as desk:
        room = await desk.room_with(citizen)
        event_type, content = _unvetted_request(exchange_id)
        await desk.send(room, event_type, content)

        def answers(event: InboundEvent) -> bool:
            return event.sender == citizen and event.content.get("exchange_id") == exchange_id

        answer = await desk.wait_for(answers, scene.options.step_timeout)
    response = from_wire(answer.type, answer.content)
    if not isinstance(response, PresentationResponse) or response.refusal is None:
        raise MalformedInput("the wallet did not refuse the over-asking request")
    if response.vp_token is not None:
        raise MalformedInput("the wallet disclosed claims to an over-asking request")
    return str(response.refusal.code.value)
