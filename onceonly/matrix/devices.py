"""Which devices receive a room's Megolm keys.

A homeserver admin can add a device to any account, and nio has no cross-signing, so "a
device logged in as @citizen" is not proof that the citizen holds it. The transport
therefore shares room keys only with the devices a :class:`DevicePolicy` allows.

nio's own switch (``ignore_unverified_devices=True``) still sends keys to every device; we
instead translate the policy into nio's trust store before each key share: allowed devices
are marked *verified*, all others *blacklisted*. nio never sends keys to a blacklisted
device, and refuses to send at all while a device is neither (which we treat as "apply the
policy again").
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nio import AsyncClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """What the policy may look at: the owner, the device id and its Ed25519 key."""

    user_id: str
    device_id: str
    ed25519: str


class DevicePolicy(Protocol):
    """Decides whether a device may receive room keys (and so read what we send)."""

    def allows(self, device: DeviceInfo) -> bool:
        """Return True if ``device`` may receive keys."""
        ...


@dataclass(frozen=True)
class AllowListedDevices:
    """Allow exactly the listed devices.

    Attributes:
        devices: user id -> device ids allowed for that user. A device may also be pinned to
            its Ed25519 key with ``"DEVICEID:ed25519key"`` so that a re-registered device id
            with new keys is refused.
    """

    devices: Mapping[str, Collection[str]]

    def allows(self, device: DeviceInfo) -> bool:
        """Return True if the device (or the device pinned to its key) is listed."""
        listed = self.devices.get(device.user_id, ())
        return device.device_id in listed or f"{device.device_id}:{device.ed25519}" in listed


@dataclass(frozen=True)
class AllDevicesOf:
    """Allow every device of the listed users (weaker: trusts the homeserver's device list).

    Useful between agencies that run their own homeserver, and in development.
    """

    users: Collection[str]

    def allows(self, device: DeviceInfo) -> bool:
        """Return True if the device belongs to one of ``users``."""
        return device.user_id in self.users


def apply_device_policy(client: AsyncClient, room_id: str, policy: DevicePolicy) -> set[str]:
    """Mark the room members' devices verified or blacklisted according to ``policy``.

    When the set of allowed devices no longer matches the devices the current outbound
    Megolm session was shared with, the session is discarded so that the next send shares
    a fresh one (a removed device must not read later messages; an added one needs a key).

    Args:
        client: A logged-in nio client with its crypto store loaded.
        room_id: The encrypted room about to be sent to.
        policy: The decision for every device.

    Returns:
        The allowed devices as ``"user_id|device_id"`` strings (for logs and tests).
    """
    assert client.olm is not None, "encryption must be enabled"
    room = client.rooms.get(room_id)
    if room is None:
        return set()
    allowed = _mark_devices(client, list(room.users), policy)
    session = client.olm.outbound_group_sessions.get(room_id)
    if session is not None and session.shared:
        shared_with = set(session.users_shared_with)
        lost_permission = shared_with - allowed
        # A newly allowed device only forces a new session once we can actually reach it
        # (it has an Olm session); otherwise every send would rotate for nothing.
        newly_allowed = {
            (user_id, device_id)
            for user_id, device_id in allowed - shared_with
            if _has_olm_session(client, user_id, device_id)
        }
        if lost_permission or newly_allowed:
            client.invalidate_outbound_session(room_id)
    return {f"{user_id}|{device_id}" for user_id, device_id in allowed}


def apply_policy_to_own_devices(client: AsyncClient, policy: DevicePolicy) -> None:
    """Trust our own other devices only as far as ``policy`` allows.

    nio answers a room key request only from an own device it considers verified, and
    accepts a forwarded room key only from one. Marking our devices by the same policy
    means a device the party approved can recover keys it missed (the late-key path), and
    one it did not approve gets nothing. Requests that arrived before the requesting device
    was known or trusted are continued or cancelled here.
    """
    assert client.olm is not None, "encryption must be enabled"
    _mark_devices(client, [str(client.user_id)], policy)
    for request in list(client.olm.key_request_from_untrusted.values()):
        device = _device(client, request.sender, request.requesting_device_id)
        if device is None:
            continue
        if client.olm.is_device_verified(device):
            client.continue_key_share(request)
        elif client.olm.is_device_blacklisted(device):
            client.cancel_key_share(request)


def _mark_devices(
    client: AsyncClient, user_ids: list[str], policy: DevicePolicy
) -> set[tuple[str, str]]:
    """Mark the users' devices verified (allowed) or blacklisted; return the allowed ones."""
    assert client.olm is not None
    allowed: set[tuple[str, str]] = set()
    for user_id in user_ids:
        for device in client.device_store.active_user_devices(user_id):
            if user_id == client.user_id and device.id == client.device_id:
                continue
            if policy.allows(DeviceInfo(user_id, device.id, device.ed25519)):
                allowed.add((user_id, device.id))
                if client.olm.is_device_blacklisted(device):
                    client.unblacklist_device(device)
                if not client.olm.is_device_verified(device):
                    client.verify_device(device)
            else:
                if client.olm.is_device_verified(device):
                    client.unverify_device(device)
                if not client.olm.is_device_blacklisted(device):
                    logger.info("device policy refuses %s %s", user_id, device.id)
                    client.blacklist_device(device)
    return allowed


def _device(client: AsyncClient, user_id: str, device_id: str) -> Any:
    for device in client.device_store.active_user_devices(user_id):
        if device.id == device_id:
            return device
    return None


def _has_olm_session(client: AsyncClient, user_id: str, device_id: str) -> bool:
    assert client.olm is not None
    device = _device(client, user_id, device_id)
    return device is not None and client.olm.session_store.get(device.curve25519) is not None
