"""The citizen's other devices: approvals, the signed device list, and who gets room keys.

The wallet is the citizen's device-trust anchor (``specs/protocol.md`` section 12).
A device of her account that she approves - typically an Element session where
she reads her mailboxes - is pinned with the identity keys the wallet sees for it
at approval time; she compares them with the session key Element shows. From then
on:

* the wallet's ``device.list`` (signed with the PID's holder key, ``seq`` kept
  strictly rising by the store) names the wallet's own device and every approved
  one, and goes to every agency mailbox when approvals change and before each
  credential request; agencies then share room keys with those devices too;
* the wallet's own key sharing (:class:`WalletDevicePolicy`) follows the same
  approvals: its messages reach approved devices, and an approved device that
  asks the wallet for a room key it missed (older mailbox history) gets it
  forwarded; a device not approved, or revoked, gets nothing, and a revocation
  makes both sides start a new Megolm session before the next message.

Approvals live in the encrypted wallet store; the command line writes them while
a running wallet picks them up on its next poll (:class:`DeviceAnnouncer`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final

from onceonly.errors import DeviceKeyMismatch, MalformedInput, QueryNotSatisfied, StoreError
from onceonly.matrix.devices import DeviceInfo
from onceonly.matrix.own_devices import AccountDevice, DeviceKeys
from onceonly.protocol.rooms import DeviceEntry, DeviceList
from onceonly.trust import TrustList
from onceonly.types import RoomId
from wallet.records import ApprovedDevice
from wallet.requests import device_list, pid_holding
from wallet.store import WalletStore

logger = logging.getLogger(__name__)

MAX_APPROVED: Final = 31
"""Other devices a citizen may approve: a signed list holds at most 32, one is the wallet."""


@dataclass(frozen=True)
class DeviceRow:
    """One line of ``wallet devices list``.

    Attributes:
        device_id: The Matrix device id.
        display_name: The device's own name (from the homeserver, or as approved).
        ed25519: The Ed25519 key the homeserver publishes now (``None`` if none verifies).
        curve25519: The Curve25519 key published now.
        status: ``this wallet``, ``approved``, ``revoked``, ``not approved``, or
            ``keys changed`` (approved with other keys than it publishes now: not trusted),
            or ``gone`` (approved but no longer on the account).
    """

    device_id: str
    display_name: str | None
    ed25519: str | None
    curve25519: str | None
    status: str


def fingerprint(key: str) -> str:
    """An identity key in groups of four characters, as Element shows a session key."""
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def device_rows(
    account: Sequence[AccountDevice], approvals: Sequence[ApprovedDevice], own_device_id: str
) -> list[DeviceRow]:
    """Merge the homeserver's devices with the citizen's approvals for display."""
    by_id = {record.device_id: record for record in approvals}
    rows = []
    for device in account:
        keys = device.keys
        record = by_id.pop(device.device_id, None)
        if device.device_id == own_device_id:
            status = "this wallet"
        elif record is None:
            status = "not approved"
        elif record.state == "revoked":
            status = "revoked"
        elif keys is None or (keys.ed25519, keys.curve25519) != (
            record.ed25519,
            record.curve25519,
        ):
            status = "keys changed"
        else:
            status = "approved"
        rows.append(
            DeviceRow(
                device_id=device.device_id,
                display_name=device.display_name,
                ed25519=keys.ed25519 if keys else None,
                curve25519=keys.curve25519 if keys else None,
                status=status,
            )
        )
    # Approved or revoked earlier, no longer on the account (logged out or deleted).
    for record in by_id.values():
        status = "gone" if record.state == "approved" else "revoked"
        rows.append(DeviceRow(record.device_id, record.display_name, None, None, status))
    return rows


def find_device(account: Sequence[AccountDevice], device_id: str) -> AccountDevice:
    """The homeserver's entry for ``device_id``.

    Raises:
        StoreError: the account has no such device.
    """
    for device in account:
        if device.device_id == device_id:
            return device
    raise StoreError(f"your account has no device {device_id}")


def approve_device(
    store: WalletStore,
    device: AccountDevice,
    *,
    own_device_id: str,
    expected_ed25519: str | None,
    now: int,
) -> ApprovedDevice:
    """Pin ``device`` with the keys the homeserver publishes for it now.

    Args:
        expected_ed25519: The session key the citizen read in her other client
            (spaces allowed); when given it must match exactly.

    Raises:
        DeviceKeyMismatch: the device publishes no verifiable keys, or other ones
            than ``expected_ed25519``.
        MalformedInput: it is the wallet's own device (always listed), or too many
            devices are approved already.
    """
    if device.device_id == own_device_id:
        raise MalformedInput("this is the wallet's own device; it is always on the list")
    keys = device.keys
    if keys is None:
        raise DeviceKeyMismatch(
            f"device {device.device_id} publishes no identity keys with a valid self-signature"
        )
    if expected_ed25519 is not None and "".join(expected_ed25519.split()) != keys.ed25519:
        raise DeviceKeyMismatch(
            f"device {device.device_id} publishes another key than the one you entered;"
            " do not approve it"
        )
    others = [
        r for r in store.devices() if r.state == "approved" and r.device_id != device.device_id
    ]
    if len(others) >= MAX_APPROVED:
        raise MalformedInput(f"at most {MAX_APPROVED} other devices can be approved")
    record = ApprovedDevice(
        device_id=device.device_id,
        ed25519=keys.ed25519,
        curve25519=keys.curve25519,
        display_name=(device.display_name or "")[:1024] or None,
        changed_at=now,
    )
    store.put_device(record)
    return record


def revoke_device(store: WalletStore, device_id: str, *, now: int) -> ApprovedDevice:
    """Withdraw an approval; the device gets no new room keys once the list goes out.

    Raises:
        StoreError: the device was never approved, or is revoked already.
    """
    record = next((r for r in store.devices() if r.device_id == device_id), None)
    if record is None or record.state != "approved":
        raise StoreError(f"device {device_id} is not approved")
    revoked = record.model_copy(update={"state": "revoked", "changed_at": now, "announced": False})
    store.put_device(revoked)
    return revoked


def approved_entries(store: WalletStore, own: DeviceKeys) -> tuple[DeviceEntry, ...]:
    """The devices a new list names: the wallet's own first, then the approved ones."""
    listed = [own] + [
        DeviceKeys(r.device_id, r.ed25519, r.curve25519)
        for r in store.devices()
        if r.state == "approved" and r.device_id != own.device_id
    ]
    return tuple(
        DeviceEntry(device_id=d.device_id, ed25519=d.ed25519, curve25519=d.curve25519)
        for d in listed
    )


def signed_device_list(
    store: WalletStore,
    *,
    user_id: str,
    own: DeviceKeys,
    trust: TrustList,
    now: int,
    clock_ms: int,
) -> DeviceList:
    """Sign a new ``device.list`` of the approved devices with a fresh, higher ``seq``.

    Raises:
        QueryNotSatisfied: no usable PID (the PID issuer pins the wallet device instead).
    """
    entries = approved_entries(store, own)
    pid_holding(store, trust=trust, now=now)  # no PID, no list: checked before a seq is spent
    seq = store.next_device_list_seq(clock_ms)
    return device_list(store, user_id=user_id, devices=entries, seq=seq, trust=trust, now=now)


class WalletDevicePolicy:
    """Who receives the wallet's room keys: the agencies' accounts and approved own devices.

    Consulted synchronously at key-share time, so it answers from an in-memory copy
    of the approvals; :meth:`reload` refreshes it (the command line may have changed
    the store). An approved device must still publish the keys it was approved with.

    Args:
        store: The open wallet store.
        own_user: The citizen's Matrix account.
        agencies: The agencies' Matrix accounts (every device of theirs may read).
    """

    def __init__(self, store: WalletStore, *, own_user: str, agencies: Collection[str]) -> None:
        self._store = store
        self._own_user = own_user
        self._agencies = frozenset(agencies)
        self._approved: dict[str, tuple[str, str]] = {}
        self._loaded = False

    def reload(self) -> None:
        """Read the approvals again from the store."""
        self._approved = {
            r.device_id: (r.ed25519, r.curve25519)
            for r in self._store.devices()
            if r.state == "approved"
        }
        self._loaded = True

    def allows(self, device: DeviceInfo) -> bool:
        """Return True if ``device`` may receive the wallet's room keys."""
        if device.user_id in self._agencies:
            return True
        if device.user_id != self._own_user:
            return False
        if not self._loaded:
            self.reload()
        pinned = self._approved.get(device.device_id)
        return pinned is not None and pinned[0] == device.ed25519


SendList = Callable[[RoomId, DeviceList], Awaitable[object]]


class DeviceAnnouncer:
    """Sends a new signed device list to every agency mailbox when approvals changed.

    Args:
        store: The open wallet store.
        policy: The wallet's own key-sharing policy (reloaded on every check).
        own_device: This wallet's device keys (``None`` before the transport runs).
        mailbox_of: The existing mailbox room shared with an agency account, if any.
        send: Sends a content into a room (the runtime's ``send``).
    """

    def __init__(
        self,
        *,
        store: WalletStore,
        policy: WalletDevicePolicy,
        own_device: Callable[[], DeviceKeys | None],
        mailbox_of: Callable[[str], str | None],
        send: SendList,
    ) -> None:
        self._store = store
        self._policy = policy
        self._own_device = own_device
        self._mailbox_of = mailbox_of
        self._send = send

    async def announce_if_changed(
        self, *, user_id: str, trust: TrustList, now: int, clock_ms: int
    ) -> list[RoomId]:
        """Announce changed approvals; return the mailboxes a new list went to.

        A change stays pending (and is tried again) while there is no PID to sign
        with or the transport is not running.
        """
        self._policy.reload()
        pending = [r for r in self._store.devices() if not r.announced]
        own = self._own_device()
        if not pending or own is None:
            return []
        try:
            content = signed_device_list(
                self._store, user_id=user_id, own=own, trust=trust, now=now, clock_ms=clock_ms
            )
        except QueryNotSatisfied:
            logger.info("device approvals changed, but there is no PID to sign a list with yet")
            return []
        rooms = []
        for agency in trust.agencies:
            room = self._mailbox_of(agency.matrix_user_id)
            if room is not None:
                await self._send(RoomId(room), content)
                rooms.append(RoomId(room))
        current = {r.device_id: r for r in self._store.devices()}
        for record in pending:
            # The command line may have changed it meanwhile: that change stays pending.
            if current.get(record.device_id) == record:
                self._store.put_device(record.model_copy(update={"announced": True}))
        return rooms
