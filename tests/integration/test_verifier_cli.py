"""``onceonly verifier`` and ``onceonly audit log --evidence`` end to end on a real Synapse.

The verifier is set up and driven only through the command line (``request
--wait`` in its own OS process, as an operator would run it); the issuer's status
list is published in its public status room, so the verifier reads it through
Matrix; a citizen responder in the test's event loop answers with a minimal
presentation. ``request --wait`` must print the verified claims as
JSON, ``status`` must show the settled request, and the auditor must re-verify the
exported log from files.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from onceonly.cli import cli
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.state_rooms import ensure_public_room, put_state, state_client
from onceonly.protocol import StatusListState, to_content
from onceonly.status_fetch import STATUS_LIST_EVENT_TYPE, status_room_alias
from onceonly.trust_cache import TrustCache
from tests.integration.test_transport_support import register
from tests.integration.test_verifier_synapse import Citizen, presentation
from tests.unit.verifier.verification_world import STATUS_URI, VERIFIER_ID, World, address_query

pytestmark = pytest.mark.integration


async def publish_status(world: World, credentials: object) -> None:
    async with state_client(credentials) as client:  # type: ignore[arg-type]
        room_id, _ = await ensure_public_room(
            client,
            status_room_alias(world.issuer_matrix_id),
            name="Status lists",
            topic="Token Status Lists (test)",
            state_event_types=(STATUS_LIST_EVENT_TYPE,),
        )
        state = StatusListState(
            uri=STATUS_URI, token=world.status_token(), issued_at=world.now - 60, ttl=600
        )
        await put_state(client, room_id, STATUS_LIST_EVENT_TYPE, to_content(state), STATUS_URI)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


async def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``onceonly ARGS`` as a separate process (its own Matrix client and stores)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("onceonly")),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    return int(process.returncode or 0), out.decode("utf-8"), err.decode("utf-8")


async def test_verifier_cli_request_wait_status_and_audit(
    synapse: Homeserver, tmp_path: Path
) -> None:
    verifier_creds, verifier_dir = register(synapse, "vcli", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "ccli", tmp_path)
    issuer_creds, _ = register(synapse, "icli", tmp_path)
    world = World(
        now=int(time.time()),
        verifier_matrix_id=verifier_creds.user_id,
        issuer_matrix_id=issuer_creds.user_id,
    )
    await publish_status(world, issuer_creds)
    anchor = json.dumps(world.authority.public().to_jwk())

    code, out = invoke(
        "--json", "verifier", "init", "--data-dir", str(verifier_dir),
        "--id", VERIFIER_ID, "--trust-anchor", anchor,
    )  # fmt: skip
    assert code == 0, out
    audit_key = json.dumps(json.loads(out)["audit_key"])
    code, out = invoke("verifier", "init", "--data-dir", str(verifier_dir), "--id", VERIFIER_ID,
                       "--trust-anchor", anchor)  # fmt: skip
    assert code == 1 and "config_error" in out
    TrustCache.in_data_dir(verifier_dir, [world.authority.public()]).offer(
        world.trust_token(), now=world.now
    )
    query_file = tmp_path / "query.json"
    query_file.write_text(json.dumps(address_query().to_json_dict()), encoding="utf-8")

    citizen = Citizen(citizen_dir, verifier_creds.user_id)
    citizen.answer = presentation(world)
    async with citizen.runtime:
        code, out, err = await run_cli(
            "--json", "verifier", "request", citizen_creds.user_id, "--data-dir", str(verifier_dir),
            "--query", str(query_file), "--purpose", "child_benefit_application",
            "--wait", "--timeout", "120",
        )  # fmt: skip
        assert code == 0, out + err
        result = json.loads(out)
        assert result["verified"] is True
        (credential,) = result["credentials"]["residence"]
        assert credential["claims"] == {"address": {"locality": "Köln"}}
        assert credential["status"]["uri"] == STATUS_URI
        told = await citizen.wait_told(result["exchange_id"])
        assert told.outcome.value == "verified"

        # Over-asking is refused before anything is sent.
        code, out, err = await run_cli(
            "verifier", "request", citizen_creds.user_id, "--data-dir", str(verifier_dir),
            "--query", '{"credentials": [{"id": "r", "format": "dc+sd-jwt", "meta": '
            '{"vct_values": ["urn:onceonly:credential:residence:1"]}, '
            '"claims": [{"path": ["given_name"]}]}]}',
            "--purpose", "child_benefit_application",
        )  # fmt: skip
        assert code == 1 and "not_authorized_to_request" in err

        # A request sent without waiting; the answer arrives while no verifier runs,
        # and 'verifier run' judges it when it starts.
        code, out, err = await run_cli(
            "--json", "verifier", "request", citizen_creds.user_id, "--data-dir", str(verifier_dir),
            "--query", str(query_file), "--purpose", "child_benefit_application",
        )  # fmt: skip
        assert code == 0, out + err
        later = json.loads(out)["exchange_id"]
        await citizen.wait_answered(later)
        runner = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("onceonly")), "verifier", "run",
            "--data-dir", str(verifier_dir),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            told = await citizen.wait_told(later)
            assert told.outcome.value == "verified"
        finally:
            runner.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(runner.wait(), timeout=120) == 0

    code, out = invoke(
        "--json", "verifier", "status", result["exchange_id"], "--data-dir", str(verifier_dir)
    )
    assert code == 0, out
    assert json.loads(out)["outcome"] == "verified"

    config = json.loads((verifier_dir / "verifier.json").read_text(encoding="utf-8"))
    key_file = verifier_dir / "keys" / f"{config['signing_kid']}.jwk.json"
    export = tmp_path / "audit.jsonl"
    code, out = invoke(
        "audit", "export-log", "--store", str(verifier_dir / "verifier.sqlite3"),
        "--out", str(export), "--signing-key", str(key_file),
    )  # fmt: skip
    assert code == 0, out
    code, out = invoke(
        "--json", "audit", "log", str(export), "--verifier-key", audit_key,
        "--evidence", str(verifier_dir / "evidence"), "--trust-anchor", anchor,
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["reverified"] == 2
    # The same log judged against another authority: the verdict is not reproduced.
    other = json.dumps(World().authority.public().to_jwk())
    code, out = invoke(
        "--json", "audit", "log", str(export), "--verifier-key", audit_key,
        "--evidence", str(verifier_dir / "evidence"), "--trust-anchor", other,
    )  # fmt: skip
    assert code == 1 and "audit_reverify_mismatch" in out
