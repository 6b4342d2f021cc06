"""The whole once-only scenario against a real Synapse, through the demo's own code.

``run_demo`` is exactly what ``onceonly demo`` runs; the test gives it a fresh data
dir and a free loopback port and then checks every outcome the story promises -
including the refusals - from the transcript's facts, and that nothing is left
running afterwards.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from onceonly.errors import ConfigError, ExchangeTimeout
from onceonly.matrix.accounts import login
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_process import free_loopback_port
from onceonly.matrix.inbox import Inbound, InboundEvent
from onceonly.matrix.rooms import InvitesFrom
from scenario import cast
from scenario.narrator import Narrator, Outcome
from scenario.runner import STEPS, run_demo
from scenario.scene import DemoOptions, Scene, Step

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _quiet() -> tuple[Narrator, io.StringIO]:
    out = io.StringIO()
    return Narrator(Console(file=out, width=120, highlight=False)), out


def _facts(transcript: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {step["number"]: step for step in transcript["steps"]}


async def test_the_whole_scenario(tmp_path: Path) -> None:
    narrator, out = _quiet()
    options = DemoOptions(data_dir=tmp_path / "demo", port=free_loopback_port())
    transcript = await run_demo(options, narrator)
    steps = _facts(transcript)
    assert [steps[n]["outcome"] for n in range(7)] == ["done"] * 7, out.getvalue()

    setup = steps[0]["facts"]
    assert setup["citizen"] == f"@{cast.CITIZEN_LOCALPART}:localhost"
    assert setup["trust_room"] == "#onceonly-trust.vertrauensliste:localhost"

    pid = steps[1]["facts"]
    assert pid["issuer"] == cast.IDENTITY_AGENCY.agency_id
    assert pid["person_id"] == "ID-DEMO-ERIKA"
    assert {"given_name", "family_name", "birthdate"} <= set(pid["pid_claims"])

    residence = steps[2]["facts"]
    assert residence["address"] == cast.ERIKA_NEW_ADDRESS

    # Minimal disclosure: address and birthdate, nothing else of the attestation.
    presented = steps[3]["facts"]
    assert presented["verified"] is True
    assert {path.split(".")[0] for path in presented["disclosed"]} == {"address", "birthdate"}
    assert set(presented["withheld"]) == {
        "given_name",
        "family_name",
        "registered_since",
        "residence_type",
    }
    assert presented["over_asking"] == "not_authorized_to_request"  # the office's own check
    assert presented["wallet_refusal"] == "not_authorized_to_request"  # the wallet's
    assert presented["audit_seq"] >= 1

    talk = steps[4]["facts"]
    assert talk["poll_answer"] == "one"
    assert talk["document_intact"] is True
    assert talk["encrypted"] is True

    # The old attestation is rejected as revoked; the fresh one has the new address.
    revoked = steps[5]["facts"]
    assert revoked["revoked"] == [residence["issuer_credential_id"]]
    assert revoked["second_verified"] is False
    assert revoked["second_error"] == "revoked"
    assert revoked["fresh_address"] == cast.ERIKA_LATEST_ADDRESS
    assert revoked["third_verified"] is True

    audit = steps[6]["facts"]
    assert audit["clean"] is True and audit["findings"] == []
    # the first verified presentation, the revoked one, and the fresh one
    assert audit["reverified"] == 3
    assert "audit_altered" in audit["tampered_findings"]

    # The citizen can follow every step in Element: the offer's bilingual body was shown.
    bodies = [line["text"] for line in transcript["lines"] if line["kind"] == "body"]
    assert any("Meldebescheinigung" in body and "Residence registration" in body for body in bodies)
    assert json.loads(json.dumps(transcript)) == transcript  # --json can write it as is
    assert not Homeserver.from_data_dir(options.data_dir / "homeserver").status().running


async def _fails(scene: Scene) -> None:
    raise ExchangeTimeout("the citizen never answered")


async def test_a_failing_step_is_reported_and_nothing_keeps_running(tmp_path: Path) -> None:
    narrator, _out = _quiet()
    options = DemoOptions(data_dir=tmp_path / "demo", port=free_loopback_port())
    steps = (
        Step(1, "needs a party that does not exist", ("no_such_party.service",), "x:y"),
        Step(2, "fails", (), f"{__name__}:_fails"),
    )
    transcript = await run_demo(options, narrator, steps)
    outcome = {step["number"]: step for step in transcript["steps"]}
    assert outcome[1]["outcome"] == Outcome.NOT_AVAILABLE.value
    assert outcome[1]["facts"]["missing"] == ["no_such_party.service"]
    assert outcome[2]["outcome"] == Outcome.FAILED.value
    assert outcome[2]["facts"]["error"] == "exchange_timeout"
    assert not Homeserver.from_data_dir(options.data_dir / "homeserver").status().running


async def test_keep_running_leaves_synapse_up_and_says_how_to_log_in(tmp_path: Path) -> None:
    narrator, out = _quiet()
    options = DemoOptions(data_dir=tmp_path / "demo", port=free_loopback_port(), keep_running=True)
    homeserver = Homeserver.from_data_dir(options.data_dir / "homeserver")
    try:
        transcript = await run_demo(options, narrator, steps=())
        assert homeserver.status().running
        login = transcript["citizen_login"]
        assert login["user_id"] == f"@{cast.CITIZEN_LOCALPART}:localhost"
        assert login["password"] in out.getvalue()
        assert f"http://127.0.0.1:{options.port}" in out.getvalue()
        assert "onceonly homeserver stop --data-dir" in out.getvalue()
    finally:
        homeserver.stop()


async def test_the_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("not the demo's")
    narrator, _out = _quiet()
    with pytest.raises(ConfigError, match="not a demo directory"):
        await run_demo(DemoOptions(data_dir=tmp_path), narrator)
    assert narrator.outcomes() == [Outcome.FAILED]
    assert (tmp_path / "precious.txt").exists()


def test_every_story_step_is_wired() -> None:
    assert [step.number for step in STEPS] == [1, 2, 3, 4, 5, 6]
    for step in STEPS:
        module, _, function = step.run.partition(":")
        assert module.startswith("scenario.") and function


async def test_element_logged_in_before_the_story_reads_the_bodies(tmp_path: Path) -> None:
    """What the README promises an Element user: every body readable except credentials."""
    narrator, _out = _quiet()
    port = free_loopback_port()
    options = DemoOptions(
        data_dir=tmp_path / "demo", port=port, wait_for_element=120.0, keep_running=True
    )
    seen: list[Inbound] = []

    async def keep(item: Inbound) -> None:
        seen.append(item)

    async def element() -> PartyClient:
        # Read the password from what the demo printed, as a person would.
        while (password := _printed_password(narrator)) is None:
            await asyncio.sleep(0.2)
        device = await asyncio.to_thread(
            login, f"http://127.0.0.1:{port}", cast.CITIZEN_LOCALPART, password,
            device_display_name="Element",
        )  # fmt: skip
        # A client with its own E2EE keys that takes every key it is sent, as Element
        # does. It must not decline the agencies' invites: a declined invite is gone for
        # every device of the account, the wallet's too.
        agencies = [f"@{role.localpart}:localhost" for role in cast.AGENCIES]
        client = PartyClient(
            tmp_path / "element",
            login=device,
            device_policy=AllDevicesOf([]),
            handler=keep,
            invite_policy=InvitesFrom(agencies),
        )
        await client.start()
        return client

    task = asyncio.create_task(element())
    try:
        transcript = await run_demo(options, narrator)
        client = await task
        await asyncio.sleep(3)  # the last events' sync
        await client.stop()
    finally:
        Homeserver.from_data_dir(options.data_dir / "homeserver").stop()
    outcomes = [(step["outcome"], step["detail"]) for step in transcript["steps"]]
    assert [outcome for outcome, _detail in outcomes] == ["done"] * 7, outcomes
    bodies = [
        str(item.content.get("body", ""))
        for item in seen
        if isinstance(item, InboundEvent) and item.encrypted
    ]
    assert any("bietet Ihnen einen Nachweis an" in body for body in bodies)
    assert any("fragt nach: Anschrift, Geburtsdatum" in body for body in bodies)
    assert any("Vorgang geprüft und bestätigt" in body for body in bodies)
    assert any("Grund: revoked" in body for body in bodies)
    assert any("Für wie viele Kinder" in body for body in bodies)
    # Issued credentials carry personal data: their keys go to the wallet device only.
    assert not any("hat Ihnen einen Nachweis ausgestellt" in body for body in bodies)


def _printed_password(narrator: Narrator) -> str | None:
    printed = [line["text"] for line in narrator.lines]
    return next((text.split()[-1] for text in printed if "password:" in text), None)


async def test_nobody_logging_in_ends_the_wait_with_a_typed_error(tmp_path: Path) -> None:
    narrator, _out = _quiet()
    options = DemoOptions(data_dir=tmp_path / "demo", port=free_loopback_port(), wait_for_element=3)
    with pytest.raises(ExchangeTimeout, match="no new device"):
        await run_demo(options, narrator, steps=())
    assert not Homeserver.from_data_dir(options.data_dir / "homeserver").status().running


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    arguments = ["demo", "--data-dir", str(data_dir), "--port", str(free_loopback_port())]
    process = subprocess.Popen(
        [sys.executable, "-c", "from onceonly.cli import main; main()", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Step 1"):
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert not Homeserver.from_data_dir(data_dir / "homeserver").status().running
