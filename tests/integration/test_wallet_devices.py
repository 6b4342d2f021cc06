"""The citizen reads her mailbox on a second device she approved in the wallet (real Synapse).

Parties: an agency running the real issuer device policy
(:class:`~issuer.citizen_devices.SignedDeviceListPolicy`; its eID check pinned the
wallet device and it knows the citizen's PID key), the wallet service, and two more
devices of the citizen's account that are nothing but matrix-nio with E2EE: "Element"
(the device she approves) and an "intruder" (a device a homeserver admin could add).

The story, driven through ``onceonly wallet devices`` where a citizen would type it:

1. The agency writes while only the wallet is on its list: Element and the intruder
   cannot decrypt it.
2. ``devices list`` shows Element's keys as the homeserver publishes them; approving
   with a wrong ``--key`` or without confirming does nothing; approving with the key
   Element shows pins it. The running wallet signs and sends a new list; the agency's
   next message is readable on Element (bilingual ``body``), not on the intruder.
3. Older history: Element asks its own devices for the missed key; the wallet forwards
   it to the approved Element (never to the intruder), and Element reads message 1.
4. ``devices revoke``: the agency's next message (a new Megolm session) is unreadable
   on Element, while the wallet still reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from nio import MegolmEvent
from nio.crypto.key_request import OutgoingKeyRequest
from nio.exceptions import EncryptionError, LocalProtocolError

from issuer.citizen_devices import CitizenDevices, SignedDeviceListPolicy
from onceonly.cli import cli
from onceonly.errors import AccountError
from onceonly.matrix.accounts import Credentials, login
from onceonly.matrix.devices import DeviceInfo
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.own_devices import account_devices
from onceonly.matrix.rooms import InvitesFrom
from onceonly.protocol.bodies import build_credential_offer
from onceonly.protocol.events import CredentialDisplay, CredentialOffer
from onceonly.protocol.fields import LocalizedText
from onceonly.protocol.rooms import DeviceList
from onceonly.service import ProtocolService, Received
from onceonly.types import RoomId, UserId
from tests.integration.test_transport_support import PlainNioDevice, register
from tests.unit.wallet.agencies import PID, REGISTRY_ID, RESIDENCE, make_world
from tests.unit.wallet.test_present import hold
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.devices import fingerprint
from wallet.service import WalletService
from wallet.store import WalletStore

pytestmark = pytest.mark.integration

WAIT = 90.0
PASSPHRASE = "devices integration passphrase"
NAME = LocalizedText(de="Meldebescheinigung", en="Residence registration")
REASON = LocalizedText(de="Umzug gemeldet", en="registered move")


class CitizenDevice(PlainNioDevice):
    """A plain nio device of the citizen that keeps syncing and remembers what it read."""

    def __init__(self, credentials: Credentials, store_dir: Path) -> None:
        super().__init__(credentials, store_dir)
        self.read: dict[str, dict[str, Any]] = {}
        self.unreadable: dict[str, MegolmEvent] = {}

    async def run(self) -> None:
        while True:
            response = await self.sync_once()
            await self._claim()
            for info in response.rooms.join.values():
                for event in info.timeline.events:
                    self._take(event)
            self._retry()
            await self.client.send_to_device_messages()

    async def _claim(self) -> None:
        with contextlib.suppress(LocalProtocolError):
            wanted = self.client.get_users_for_key_claiming()
            if wanted:
                await self.client.keys_claim(wanted)

    def _take(self, event: Any) -> None:
        event_id = event.event_id
        if isinstance(event, MegolmEvent):
            self.unreadable.setdefault(event_id, event)
        elif event.source.get("content", {}).get("msgtype", "").startswith("eu.onceonly."):
            self.read[event_id] = event.source["content"]

    def _retry(self) -> None:
        for event_id, event in list(self.unreadable.items()):
            try:
                decrypted = self.client.decrypt_event(event)
            except EncryptionError:
                continue
            del self.unreadable[event_id]
            self._take(decrypted)

    async def ask_own_devices_for_key(self, event_id: str) -> None:
        """What a client does for history it cannot read: ask its own devices for the key.

        Sent directly: nio may already have asked the *sender's* device for this session
        (after unwedging an Olm session), and then refuses a second request of its own.
        """
        await wait_until(lambda: event_id in self.unreadable or event_id in self.read)
        event = self.unreadable.get(event_id)
        if event is None:
            return
        client = self.client
        request = event.as_key_request(str(client.user_id), str(client.device_id))
        if event.session_id not in client.outgoing_key_requests:
            client.olm.outgoing_key_requests[event.session_id] = OutgoingKeyRequest(
                event.session_id, event.session_id, event.room_id, event.algorithm
            )
        await client.to_device(request)


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def syncing(device: CitizenDevice) -> AsyncIterator[CitizenDevice]:
    task = asyncio.create_task(device.run())
    try:
        yield device
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await device.close()


def wallet_cli(data_dir: Path, *args: str, input: str | None = None) -> tuple[int, Any]:
    result = CliRunner().invoke(
        cli,
        ["--json", "wallet", "devices", *args, "--data-dir", str(data_dir)],
        env={"ONCEONLY_WALLET_PASSPHRASE": PASSPHRASE},
        input=input,
        catch_exceptions=False,
    )
    # Only stdout is parsed: the confirmation prompt goes to stderr.
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None


class Agency:
    """An agency whose room keys follow the citizen's signed device list."""

    def __init__(self, data_dir: Path, citizen: str, agency_user: str) -> None:
        self.citizen = citizen
        self.devices = CitizenDevices.open(data_dir / "citizen_devices.sqlite")
        self.lists = 0
        self.service = ProtocolService(
            data_dir=data_dir,
            handlers={DeviceList: self.on_device_list},
            agency=True,
            device_policy=SignedDeviceListPolicy(self.devices, agency_user),
            invite_policy=InvitesFrom([citizen]),
        )

    async def on_device_list(self, item: Received) -> None:
        assert isinstance(item.content, DeviceList)
        assert self.devices.accept_device_list(item.sender, item.content.device_list, now=item.now)
        self.lists += 1

    async def write(self, room: RoomId, exchange_id: str) -> str:
        offer: CredentialOffer = build_credential_offer(
            exchange_id=exchange_id,
            issuer_id=REGISTRY_ID,
            vct=RESIDENCE,
            display=CredentialDisplay(name=NAME, issuer_name=NAME),
            reason_code="registered_move",
            reason=REASON,
            offer_expires_at=self.service.now() + 3600,
            nonce="q0p8V0xk3mH2uUe1Yf6r9A",
        )
        return str(await self.service.send(room, offer))


async def test_approved_element_reads_the_mailbox_revoked_does_not(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "registry", tmp_path)
    citizen_creds, wallet_dir = register(synapse, "citizen", tmp_path)
    citizen = citizen_creds.user_id
    assert citizen_creds.password is not None

    def second_login(name: str) -> Credentials:
        return login(
            synapse.base_url, citizen, str(citizen_creds.password), device_display_name=name
        )

    now = int(time.time())
    world = make_world(registry_user=agency_creds.user_id, now=now)
    with WalletStore.create(
        wallet_dir / "wallet.db", passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS
    ) as setup:
        # Issued now (not at the unit tests' fixed time): the list is signed at wall time.
        pid_id = hold(setup, world, PID, expires_at=now + 86_400)
        pid_key = setup.credential(pid_id).holder_key_id
        assert pid_key is not None
        pid_public = setup.holder_public_key(pid_key)

    agency = Agency(agency_dir, citizen, agency_creds.user_id)
    # What identity binding left behind: the eID check pinned the wallet device and
    # the agency verified the citizen's PID key.
    agency.devices.pin_device(citizen, citizen_creds.device_id, now=now)
    agency.devices.learn_pid_key(citizen, pid_public, now=now)

    element_creds = await asyncio.to_thread(second_login, "Element Web")
    intruder_creds = await asyncio.to_thread(second_login, "added by an admin")
    store = WalletStore.open(wallet_dir / "wallet.db", passphrase=PASSPHRASE)
    wallet = WalletService(
        data_dir=wallet_dir, store=store, trust=lambda _now: world.trust, poll_interval=0.5
    )
    async with (
        agency.service,
        wallet,
        syncing(CitizenDevice(element_creds, tmp_path / "element")) as element,
        syncing(CitizenDevice(intruder_creds, tmp_path / "intruder")) as intruder,
    ):
        room = await agency.service.room_for(UserId(citizen))

        # 1. Only the wallet is on the agency's list.
        before = await agency.write(room, "xch_devices_before_001")
        await wait_until(
            lambda: any(o.offer_id == "xch_devices_before_001" for o in store.offers())
        )
        await wait_until(lambda: before in element.unreadable and before in intruder.unreadable)

        # 2. The citizen compares keys and approves Element.
        element_keys = element.client.olm.account.identity_keys
        code, out = await asyncio.to_thread(wallet_cli, wallet_dir, "list")
        assert code == 0
        rows = {row["device_id"]: row for row in out["devices"]}
        assert rows[citizen_creds.device_id]["status"] == "this wallet"
        assert rows[element_creds.device_id]["status"] == "not approved"
        assert rows[element_creds.device_id]["ed25519"] == element_keys["ed25519"]
        assert rows[element_creds.device_id]["curve25519"] == element_keys["curve25519"]
        assert rows[element_creds.device_id]["display_name"] == "Element Web"
        assert rows[intruder_creds.device_id]["status"] == "not approved"

        wrong = intruder.client.olm.account.identity_keys["ed25519"]
        code, out = await asyncio.to_thread(
            wallet_cli, wallet_dir, "approve", element_creds.device_id, "--key", wrong, "--yes"
        )
        assert code == 1 and out["error"]["code"] == "device_key_mismatch"
        code, out = await asyncio.to_thread(
            wallet_cli, wallet_dir, "approve", element_creds.device_id, input="n\n"
        )
        assert code == 1 and out["error"]["code"] == "consent_denied"
        assert store.devices() == []
        shown_by_element = fingerprint(element_keys["ed25519"])
        code, out = await asyncio.to_thread(
            wallet_cli,
            wallet_dir,
            "approve",
            element_creds.device_id,
            "--key",
            shown_by_element,
            input="y\n",
        )
        assert code == 0 and out["state"] == "approved"

        # The running wallet announces it; the agency verifies the list with the PID key.
        await wait_until(lambda: element_creds.device_id in agency.devices.devices_of(citizen))
        assert dict(agency.devices.devices_of(citizen)) == {
            citizen_creds.device_id: rows[citizen_creds.device_id]["ed25519"],
            element_creds.device_id: element_keys["ed25519"],
        }
        approved = await agency.write(room, "xch_devices_approved_1")
        await wait_until(lambda: approved in element.read)
        body = element.read[approved]["body"]
        assert NAME.de in body and NAME.en in body
        await wait_until(lambda: approved in intruder.unreadable)
        # The agency knew both devices when it shared; its policy took Element only.
        intruder_keys = intruder.client.olm.account.identity_keys
        policy = SignedDeviceListPolicy(agency.devices, agency_creds.user_id)
        assert policy.allows(DeviceInfo(citizen, element_creds.device_id, element_keys["ed25519"]))
        assert not policy.allows(
            DeviceInfo(citizen, intruder_creds.device_id, intruder_keys["ed25519"])
        )

        # 3. History: Element asks its own devices for the key of message 1.
        wallet_device = next(
            d
            for d in element.client.device_store.active_user_devices(citizen)
            if d.id == citizen_creds.device_id
        )
        element.client.verify_device(wallet_device)  # she trusts her wallet
        await element.ask_own_devices_for_key(before)
        await wait_until(lambda: before in element.read)
        assert NAME.en in element.read[before]["body"]
        intruder_trusts = next(
            d
            for d in intruder.client.device_store.active_user_devices(citizen)
            if d.id == citizen_creds.device_id
        )
        intruder.client.verify_device(intruder_trusts)
        await intruder.ask_own_devices_for_key(before)
        await intruder.ask_own_devices_for_key(approved)

        # 4. Revocation: the agency's next message goes to a new session Element lacks.
        code, out = await asyncio.to_thread(
            wallet_cli, wallet_dir, "revoke", element_creds.device_id
        )
        assert code == 0 and out["state"] == "revoked"
        await wait_until(lambda: element_creds.device_id not in agency.devices.devices_of(citizen))
        after = await agency.write(room, "xch_devices_revoked_01")
        await wait_until(
            lambda: any(o.offer_id == "xch_devices_revoked_01" for o in store.offers())
        )
        await wait_until(lambda: after in element.unreadable)
        await element.ask_own_devices_for_key(after)  # the wallet refuses a revoked device
        await asyncio.sleep(5.0)
        assert after not in element.read and after in element.unreadable
        assert before not in intruder.read and approved not in intruder.read
        assert after not in intruder.read
        statuses = {
            row["device_id"]: row["status"]
            for row in (await asyncio.to_thread(wallet_cli, wallet_dir, "list"))[1]["devices"]
        }
        assert statuses[element_creds.device_id] == "revoked"
    store.close()
    agency.devices.close()


def test_account_devices_needs_a_valid_login(synapse: Homeserver, tmp_path: Path) -> None:
    credentials, _data_dir = register(synapse, "lonely", tmp_path)
    [only] = account_devices(credentials)
    assert only.device_id == credentials.device_id and only.keys is None  # no keys uploaded
    with pytest.raises(AccountError):
        account_devices(credentials.model_copy(update={"access_token": "syt_not_a_token"}))
