"""A revocation whose publication fails stays pending until a later publication completes it.

The Matrix side (a real Synapse stopped and started again) is in
``tests/integration/test_issuer_pending_publish.py``; here the homeserver is a
loopback port nobody listens on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from issuer.issuance import IssuedCredential, handle_credential_request
from issuer.status_pending import StatusPublication
from onceonly.cli import cli
from onceonly.errors import Revoked
from onceonly.jose import parse_compact
from onceonly.matrix.accounts import Credentials, save_credentials
from onceonly.matrix.homeserver_process import free_loopback_port
from onceonly.status_list import check_status
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    NOW,
    REGISTRY_ID,
    REGISTRY_USER,
    RESIDENCE_VCT,
    Citizen,
    World,
    make_world,
)
from tests.unit.issuer.test_issuance import get_pid


def invoke(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--json", *args], obj={}, catch_exceptions=False)
    try:
        return result.exit_code, json.loads(result.output)
    except json.JSONDecodeError:
        return result.exit_code, result.output


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path)
    yield built
    built.close()


def test_a_change_during_a_publication_stays_pending(target: str) -> None:
    with StatusPublication.open(target) as first, StatusPublication.open(target) as second:
        assert not first.pending
        first.request(now=NOW)
        assert second.pending
        snapshot = second.snapshot()  # a publisher signs the lists now ...
        first.request(now=NOW + 1)  # ... while another process revokes
        second.published(snapshot)
        assert first.pending  # the second change is not in what was published
        second.published(second.snapshot())
        assert not first.pending
        second.published(snapshot)  # a late, older publisher does not undo it
        assert not first.pending


async def issue_residence(world: World) -> IssuedCredential:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    return await handle_credential_request(
        world.registry_office.context, request, sender=citizen.user_id, now=NOW
    )


def test_revoke_with_the_homeserver_down_is_recorded_and_stays_pending(world: World) -> None:
    # The CLI runs its own event loop, so this test must not run inside one.
    issued = asyncio.run(issue_residence(world))
    office = world.registry_office
    save_credentials(
        office.config.matrix_data_dir,
        Credentials(
            homeserver=f"http://127.0.0.1:{free_loopback_port()}",  # nobody listens
            user_id=REGISTRY_USER,
            device_id="OFFICE",
            access_token="token-of-a-homeserver-that-is-down",
        ),
    )
    config = str(office.config.path)
    args = ("issuer", "revoke", "--config", config, "--credential", issued.record.credential_id)

    code, data = invoke(*args)
    assert code == 0, data
    assert [r["credential_id"] for r in data["revoked"]] == [issued.record.credential_id]
    assert data["published"] is False and data["pending"] is True
    # The status file carries the revocation already; the room will once reachable.
    token = (office.config.path.parent / "status" / "1.jwt").read_text()
    with pytest.raises(Revoked):
        check_status(
            issued.record.status_reference,
            token,
            issuer_key=office.key.public(),
            now=parse_compact(token).payload["iat"],
        )
    with StatusPublication.open(office.config.issuer_database) as publication:
        assert publication.pending

    # A second run revokes nothing new, and says the publication is still pending.
    code, again = invoke(*args)
    assert code == 0, again
    assert again["revoked"] == [] and again["pending"] is True
    plain = CliRunner().invoke(cli, args, obj={}, catch_exceptions=False)
    assert plain.exit_code == 0
    assert "recorded; publishing pending" in plain.output
    code, status = invoke("issuer", "status", "--config", config)
    assert code == 0 and status["publication_pending"] is True
    code, published = invoke("issuer", "publish", "--config", config)
    assert code == 1 and published == {"published": False, "pending": True}
