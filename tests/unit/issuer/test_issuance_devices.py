"""Citizen device lists: kept pending until the PID key is known, then enforced by the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.citizen_devices import CitizenDevices, SignedDeviceListPolicy
from onceonly import jose
from onceonly.errors import InvalidClaim, InvalidSignature, ReplayDetected
from onceonly.matrix.devices import DeviceInfo
from onceonly.protocol import DeviceEntry, DeviceListPayload, sign_device_list

NOW = 1_800_000_000
USER = "@erika:localhost"
AGENCY = "@amt:localhost"
PHONE = DeviceEntry(device_id="PHONE", ed25519="A" * 43, curve25519="B" * 43)
LAPTOP = DeviceEntry(device_id="LAPTOP", ed25519="C" * 43, curve25519="D" * 43)


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[CitizenDevices]:
    store = CitizenDevices.open(str(tmp_path / "issuer.sqlite3"))
    yield store
    store.close()


def signed(key: jose.PrivateKey, *entries: DeviceEntry, seq: int = 1, sub: str = USER) -> str:
    payload = DeviceListPayload(sub=sub, seq=seq, iat=NOW, devices=entries)
    return sign_device_list(payload, key)


def info(device: DeviceEntry, *, user: str = USER, ed25519: str | None = None) -> DeviceInfo:
    return DeviceInfo(user_id=user, device_id=device.device_id, ed25519=ed25519 or device.ed25519)


def test_a_list_before_the_pid_key_waits_and_then_applies(devices: CitizenDevices) -> None:
    pid_key = jose.generate_private_key(jose.ES256)
    policy = SignedDeviceListPolicy(devices, AGENCY)
    # Before any list: only contents without personal data go out, to every device.
    assert policy.allows(info(PHONE)) and policy.allows(info(LAPTOP))
    assert devices.accept_device_list(USER, signed(pid_key, PHONE), now=NOW) is False
    assert devices.devices_of(USER) == {}

    devices.learn_pid_key(USER, pid_key.public(), now=NOW)

    assert devices.devices_of(USER) == {"PHONE": PHONE.ed25519}
    assert policy.allows(info(PHONE))
    assert not policy.allows(info(LAPTOP))
    assert not policy.allows(info(PHONE, ed25519="Z" * 43))  # same id, other key
    assert not policy.allows(info(PHONE, user=AGENCY))  # our own other devices: never


def test_newer_lists_replace_older_ones_and_rollbacks_fail(devices: CitizenDevices) -> None:
    pid_key = jose.generate_private_key(jose.EDDSA)
    devices.learn_pid_key(USER, pid_key.public(), now=NOW)
    assert devices.accept_device_list(USER, signed(pid_key, PHONE, seq=3), now=NOW)
    assert devices.accept_device_list(USER, signed(pid_key, PHONE, LAPTOP, seq=4), now=NOW)
    assert set(devices.devices_of(USER)) == {"PHONE", "LAPTOP"}
    with pytest.raises(ReplayDetected):
        devices.accept_device_list(USER, signed(pid_key, PHONE, seq=4), now=NOW)
    with pytest.raises(InvalidSignature):
        other = jose.generate_private_key(jose.EDDSA)
        devices.accept_device_list(USER, signed(other, PHONE, seq=9), now=NOW)
    with pytest.raises(InvalidClaim):  # a list about another account
        devices.accept_device_list(USER, signed(pid_key, PHONE, seq=9, sub="@x:y"), now=NOW)
    assert set(devices.devices_of(USER)) == {"PHONE", "LAPTOP"}


def test_a_pending_list_that_fails_is_dropped(devices: CitizenDevices) -> None:
    forged = signed(jose.generate_private_key(jose.ES256), PHONE)
    devices.accept_device_list(USER, forged, now=NOW)
    devices.learn_pid_key(USER, jose.generate_private_key(jose.ES256).public(), now=NOW)
    assert devices.devices_of(USER) == {}


def test_eid_pin_allows_the_pinned_device_and_survives_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "issuer.sqlite3")
    with_pin = CitizenDevices.open(path)
    with_pin.pin_device(USER, "WALLET", now=NOW)
    with_pin.close()
    reopened = CitizenDevices.open(path)
    policy = SignedDeviceListPolicy(reopened, AGENCY)
    assert policy.allows(DeviceInfo(user_id=USER, device_id="WALLET", ed25519="E" * 43))
    assert not policy.allows(DeviceInfo(user_id=USER, device_id="OTHER", ed25519="E" * 43))
    reopened.close()
