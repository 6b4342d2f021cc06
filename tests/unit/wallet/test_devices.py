"""The citizen's device approvals: store records, the signed list, the wallet's key policy."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from onceonly.errors import (
    DeviceKeyMismatch,
    MalformedInput,
    QueryNotSatisfied,
    ReplayDetected,
    StoreCorrupt,
    StoreError,
)
from onceonly.matrix.devices import DeviceInfo
from onceonly.matrix.own_devices import AccountDevice, DeviceKeys, verified_device_keys
from onceonly.protocol.proofs import verify_device_list
from onceonly.protocol.rooms import DeviceList
from onceonly.types import RoomId
from tests.unit.wallet.agencies import CITIZEN, NOW, PID, REGISTRY_USER, World, make_world
from tests.unit.wallet.conftest import PASSPHRASE
from tests.unit.wallet.test_present import hold
from wallet.devices import (
    MAX_APPROVED,
    DeviceAnnouncer,
    WalletDevicePolicy,
    approve_device,
    device_rows,
    fingerprint,
    revoke_device,
    signed_device_list,
)
from wallet.store import WalletStore

WALLET = DeviceKeys("WALLETDEV", "W" * 43, "w" * 43)
ELEMENT = DeviceKeys("ELEMENTDEV", "E" * 43, "e" * 43)
INTRUDER = DeviceKeys("ADMINADDED", "I" * 43, "i" * 43)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def account(*devices: DeviceKeys) -> list[AccountDevice]:
    return [AccountDevice(d.device_id, f"{d.device_id} client", d) for d in devices]


def approve(store: WalletStore, device: DeviceKeys, *, now: int = NOW) -> None:
    approve_device(
        store, account(device)[0], own_device_id=WALLET.device_id, expected_ed25519=None, now=now
    )


def pid_key(store: WalletStore, world: World) -> Any:
    key_id = store.credential(hold(store, world, PID)).holder_key_id
    assert key_id is not None
    return store.holder_public_key(key_id)


def test_approval_is_kept_encrypted_and_survives_reopening(
    store: WalletStore, wallet_path: Path
) -> None:
    approve(store, ELEMENT)
    store.close()
    raw = wallet_path.read_bytes()
    assert ELEMENT.ed25519.encode() not in raw and b"ELEMENTDEV client" not in raw
    with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as reopened:
        [record] = reopened.devices()
        assert (record.device_id, record.ed25519, record.curve25519, record.state) == (
            ELEMENT.device_id,
            ELEMENT.ed25519,
            ELEMENT.curve25519,
            "approved",
        )
        assert record.announced is False


def test_tampered_device_record_is_refused(store: WalletStore, wallet_path: Path) -> None:
    approve(store, ELEMENT)
    # Moving a sealed record to another row id breaks its authentication.
    store._db.execute("UPDATE devices SET device_id = 'OTHERDEV'")
    with pytest.raises(StoreCorrupt):
        store.devices()


def test_approve_checks_the_key_the_citizen_read_elsewhere(store: WalletStore) -> None:
    [element] = account(ELEMENT)
    spaced = fingerprint(ELEMENT.ed25519)
    assert " " in spaced
    with pytest.raises(DeviceKeyMismatch):
        approve_device(
            store, element, own_device_id=WALLET.device_id, expected_ed25519="X" * 43, now=NOW
        )
    assert store.devices() == []
    approve_device(store, element, own_device_id=WALLET.device_id, expected_ed25519=spaced, now=NOW)
    assert [r.device_id for r in store.devices()] == [ELEMENT.device_id]


def test_devices_without_verified_keys_and_the_wallet_itself_are_not_approved(
    store: WalletStore,
) -> None:
    keyless = AccountDevice("NOKEYS", None, None)
    with pytest.raises(DeviceKeyMismatch):
        approve_device(
            store, keyless, own_device_id=WALLET.device_id, expected_ed25519=None, now=NOW
        )
    with pytest.raises(MalformedInput):
        approve(store, WALLET)
    assert store.devices() == []


def test_at_most_31_other_devices(store: WalletStore) -> None:
    for n in range(MAX_APPROVED):
        device = DeviceKeys(f"DEV{n}", f"{n:02d}".ljust(43, "A"), "c" * 43)
        approve(store, device)
    with pytest.raises(MalformedInput):
        approve(store, ELEMENT)
    # Approving one already approved again (new keys after a re-login) is no new slot.
    approve_device(
        store,
        account(DeviceKeys("DEV0", "Z" * 43, "z" * 43))[0],
        own_device_id=WALLET.device_id,
        expected_ed25519=None,
        now=NOW + 1,
    )
    assert next(r for r in store.devices() if r.device_id == "DEV0").ed25519 == "Z" * 43


def test_revoke(store: WalletStore) -> None:
    with pytest.raises(StoreError):
        revoke_device(store, ELEMENT.device_id, now=NOW)
    approve(store, ELEMENT)
    revoked = revoke_device(store, ELEMENT.device_id, now=NOW + 5)
    assert (revoked.state, revoked.changed_at, revoked.announced) == ("revoked", NOW + 5, False)
    with pytest.raises(StoreError):
        revoke_device(store, ELEMENT.device_id, now=NOW + 6)


def test_rows_merge_the_homeserver_and_the_approvals(store: WalletStore) -> None:
    moved = DeviceKeys("MOVED", "M" * 43, "m" * 43)
    for device in (ELEMENT, moved, DeviceKeys("GONE", "G" * 43, "g" * 43)):
        approve(store, device)
    now_published = [
        *account(WALLET, ELEMENT, INTRUDER),
        AccountDevice("MOVED", "re-keyed", DeviceKeys("MOVED", "N" * 43, "n" * 43)),
    ]
    rows = {
        row.device_id: row.status
        for row in device_rows(now_published, store.devices(), "WALLETDEV")
    }
    assert rows == {
        "WALLETDEV": "this wallet",
        "ELEMENTDEV": "approved",
        "ADMINADDED": "not approved",
        "MOVED": "keys changed",
        "GONE": "gone",
    }


def test_signed_list_names_the_wallet_and_approved_devices_with_rising_seq(
    store: WalletStore, world: World
) -> None:
    with pytest.raises(QueryNotSatisfied):
        signed_device_list(
            store, user_id=CITIZEN, own=WALLET, trust=world.trust, now=NOW, clock_ms=5
        )
    key = pid_key(store, world)
    first = signed_device_list(
        store, user_id=CITIZEN, own=WALLET, trust=world.trust, now=NOW, clock_ms=1000
    )
    payload = verify_device_list(first.device_list, key, user_id=CITIZEN, now=NOW)
    assert [d.device_id for d in payload.devices] == ["WALLETDEV"] and payload.seq == 1000
    approve(store, ELEMENT)
    # The clock went backwards (or stood still): seq still rises.
    second = signed_device_list(
        store, user_id=CITIZEN, own=WALLET, trust=world.trust, now=NOW, clock_ms=10
    )
    newer = verify_device_list(
        second.device_list, key, user_id=CITIZEN, newer_than=payload.seq, now=NOW
    )
    assert newer.seq == 1001
    assert [(d.device_id, d.ed25519, d.curve25519) for d in newer.devices] == [
        ("WALLETDEV", WALLET.ed25519, WALLET.curve25519),
        ("ELEMENTDEV", ELEMENT.ed25519, ELEMENT.curve25519),
    ]
    assert "2" in second.body
    revoke_device(store, ELEMENT.device_id, now=NOW)
    third = signed_device_list(
        store, user_id=CITIZEN, own=WALLET, trust=world.trust, now=NOW, clock_ms=10
    )
    latest = verify_device_list(third.device_list, key, user_id=CITIZEN, newer_than=1001, now=NOW)
    assert [d.device_id for d in latest.devices] == ["WALLETDEV"]
    # An agency holding the newer list refuses the older one.
    with pytest.raises(ReplayDetected):
        verify_device_list(second.device_list, key, user_id=CITIZEN, newer_than=latest.seq, now=NOW)


def test_wallet_policy_follows_the_approvals(store: WalletStore) -> None:
    policy = WalletDevicePolicy(store, own_user=CITIZEN, agencies=[REGISTRY_USER])
    element = DeviceInfo(CITIZEN, ELEMENT.device_id, ELEMENT.ed25519)
    assert policy.allows(DeviceInfo(REGISTRY_USER, "ANY", "K" * 43))
    assert not policy.allows(DeviceInfo("@stranger:hs", "ANY", "K" * 43))
    assert not policy.allows(element)
    approve(store, ELEMENT)
    assert not policy.allows(element)  # the in-memory copy changes on reload only
    policy.reload()
    assert policy.allows(element)
    assert not policy.allows(DeviceInfo(CITIZEN, ELEMENT.device_id, "X" * 43))
    assert not policy.allows(DeviceInfo(CITIZEN, INTRUDER.device_id, INTRUDER.ed25519))
    revoke_device(store, ELEMENT.device_id, now=NOW)
    policy.reload()
    assert not policy.allows(element)


async def test_announcer_sends_changes_once_to_existing_mailboxes(
    store: WalletStore, world: World
) -> None:
    key = pid_key(store, world)
    sent: list[tuple[RoomId, DeviceList]] = []

    async def send(room: RoomId, content: DeviceList) -> None:
        sent.append((room, content))

    policy = WalletDevicePolicy(store, own_user=CITIZEN, agencies=[REGISTRY_USER])
    announcer = DeviceAnnouncer(
        store=store,
        policy=policy,
        own_device=lambda: WALLET,
        mailbox_of={REGISTRY_USER: "!registry:hs"}.get,
        send=send,
    )

    async def announce() -> list[RoomId]:
        return await announcer.announce_if_changed(
            user_id=CITIZEN, trust=world.trust, now=NOW, clock_ms=1
        )

    assert await announce() == [] and sent == []
    approve(store, ELEMENT)
    assert await announce() == ["!registry:hs"]
    assert policy.allows(DeviceInfo(CITIZEN, ELEMENT.device_id, ELEMENT.ed25519))
    [(_room, content)] = sent
    listed = verify_device_list(content.device_list, key, user_id=CITIZEN, now=NOW)
    assert {d.device_id for d in listed.devices} == {"WALLETDEV", "ELEMENTDEV"}
    assert await announce() == [] and len(sent) == 1  # nothing changed since
    revoke_device(store, ELEMENT.device_id, now=NOW)
    assert await announce() == ["!registry:hs"]
    latest = verify_device_list(sent[-1][1].device_list, key, user_id=CITIZEN, now=NOW)
    assert [d.device_id for d in latest.devices] == ["WALLETDEV"] and latest.seq > listed.seq


async def test_announcer_keeps_a_change_pending_without_a_pid(
    store: WalletStore, world: World
) -> None:
    sent: list[object] = []

    async def send(room: RoomId, content: DeviceList) -> None:
        sent.append(content)

    announcer = DeviceAnnouncer(
        store=store,
        policy=WalletDevicePolicy(store, own_user=CITIZEN, agencies=[]),
        own_device=lambda: WALLET,
        mailbox_of=lambda _peer: "!room:hs",
        send=send,
    )
    approve(store, ELEMENT)
    await announcer.announce_if_changed(user_id=CITIZEN, trust=world.trust, now=NOW, clock_ms=1)
    assert sent == [] and not store.devices()[0].announced


# --- the homeserver's device documents ----------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def device_document(user: str, device_id: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    document: dict[str, Any] = {
        "user_id": user,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": _b64(public), f"curve25519:{device_id}": "c" * 43},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    document["signatures"] = {user: {f"ed25519:{device_id}": _b64(key.sign(canonical))}}
    document["unsigned"] = {"device_display_name": "Element"}
    return document


def test_device_keys_are_taken_only_with_a_valid_self_signature() -> None:
    key = Ed25519PrivateKey.generate()
    document = device_document(CITIZEN, "ELEMENTDEV", key)
    keys = verified_device_keys(document, CITIZEN, "ELEMENTDEV")
    assert keys is not None and keys.curve25519 == "c" * 43
    # Unsigned extras may change; signed content may not.
    assert verified_device_keys({**document, "unsigned": {}}, CITIZEN, "ELEMENTDEV") == keys
    swapped = json.loads(json.dumps(document))
    swapped["keys"]["curve25519:ELEMENTDEV"] = "d" * 43
    assert verified_device_keys(swapped, CITIZEN, "ELEMENTDEV") is None
    assert verified_device_keys(document, CITIZEN, "OTHERDEV") is None
    assert verified_device_keys(document, "@mallory:hs", "ELEMENTDEV") is None
    other = device_document(CITIZEN, "ELEMENTDEV", Ed25519PrivateKey.generate())
    forged = {**document, "signatures": other["signatures"]}
    assert verified_device_keys(forged, CITIZEN, "ELEMENTDEV") is None
    for broken in (
        None,
        [],
        {"user_id": CITIZEN, "device_id": "ELEMENTDEV"},
        {**document, "keys": 5},
    ):
        assert verified_device_keys(broken, CITIZEN, "ELEMENTDEV") is None
