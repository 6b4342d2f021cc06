"""``onceonly issuer init|status|eid-check|revoke`` (the Matrix commands run in integration)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from issuer.issuance import handle_credential_request
from issuer.register import Register
from onceonly.cli import cli
from onceonly.errors import Revoked
from onceonly.jose import parse_compact
from onceonly.status_list import check_status
from onceonly.types import UserId
from tests.unit.issuer.issuer_world import (
    NOW,
    REGISTRY_ID,
    RESIDENCE_VCT,
    SAMPLE_DATA,
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


def test_init_creates_an_agency_and_imports_its_register(tmp_path: Path) -> None:
    code, data = invoke(
        "issuer", "init", str(tmp_path / "amt"), "--id", "https://amt.example",
        "--name-de", "Meldeamt", "--name-en", "Registration office",
        "--matrix-user", "@amt:localhost", "--vct", RESIDENCE_VCT,
        "--register", str(SAMPLE_DATA / "registry_office.json"),
    )  # fmt: skip
    assert code == 0, data
    assert data["issues"] == [RESIDENCE_VCT]
    assert data["register"] == {"persons": 14, "moves": 3}
    assert set(data["public_jwk"]) >= {"kty", "crv", "x", "y", "kid"}
    assert "d" not in data["public_jwk"]
    keys = tmp_path / "amt" / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys.iterdir())

    code, status = invoke("issuer", "status", "--config", data["config"])
    assert code == 0
    assert status["issued_by_vct"] == {}
    assert [e["person_id"] for e in status["pending_life_events"]] == [
        "MB-0001",
        "MB-0002",
        "MB-0003",
    ]
    # A second init into the same directory is refused with a typed error.
    code, again = invoke(
        "issuer", "init", str(tmp_path / "amt"), "--id", "https://amt.example",
        "--name-de", "x", "--name-en", "x", "--matrix-user", "@amt:localhost",
        "--vct", RESIDENCE_VCT,
    )  # fmt: skip
    assert code == 1
    assert again["error"]["code"] == "config_error"


def test_simulated_eid_check_in_two_steps(world: World) -> None:
    config = str(world.identity.config.path)
    code, shown = invoke("issuer", "eid-check", "--config", config, "LXH67HC3V")
    assert code == 0 and shown["simulated"] is True
    code, bound = invoke(
        "issuer", "eid-check", "--config", config, "LXH67HC3V", "--code", shown["code"],
        "--matrix-user", "@juergen:localhost", "--device-id", "WALLETDEV",
    )  # fmt: skip
    assert code == 0, bound
    assert bound["person_id"] == "ID-0001"
    with Register.open(world.identity.config.register_database) as register:
        assert register.person_for_matrix_user("@juergen:localhost") == "ID-0001"
    code, reused = invoke(
        "issuer", "eid-check", "--config", config, "LXH67HC3V", "--code", shown["code"],
        "--matrix-user", "@other:localhost",
    )  # fmt: skip
    assert code == 1
    assert reused["error"]["code"] == "identity_not_bound"


async def test_revoke_writes_the_new_status_files(world: World) -> None:
    citizen = Citizen(UserId("@juergen:localhost"))
    await get_pid(world, citizen)
    request = citizen.request(audience=REGISTRY_ID, vct=RESIDENCE_VCT, identity_for=REGISTRY_ID)
    office = world.registry_office
    issued = await handle_credential_request(
        office.context, request, sender=citizen.user_id, now=NOW
    )
    config = str(office.config.path)

    code, data = invoke(
        "issuer", "revoke", "--config", config, "--person", "MB-0001", "--no-publish"
    )

    assert code == 0, data
    assert [r["credential_id"] for r in data["revoked"]] == [issued.record.credential_id]
    token = (office.config.path.parent / "status" / "1.jwt").read_text()
    with pytest.raises(Revoked):
        # The file was signed at the real current time: check it at that time.
        check_status(
            issued.record.status_reference,
            token,
            issuer_key=office.key.public(),
            now=parse_compact(token).payload["iat"],
        )
    assert (office.config.path.parent / "status" / "1.cwt").stat().st_size > 0
    code, status = invoke("issuer", "status", "--config", config)
    assert status["issued_by_vct"] == {RESIDENCE_VCT: 1}
    code, missing = invoke("issuer", "revoke", "--config", config, "--no-publish")
    assert code == 1 and missing["error"]["code"] == "malformed"
