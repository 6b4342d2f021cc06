"""A nio client whose per-event processing of a sync response cannot fail as a whole.

nio decrypts and applies every event of a ``/sync`` response inside
``AsyncClient.sync`` (``receive_response``), one loop per kind of event. An exception
from any single event (a ``RecursionError`` while parsing a deeply nested decrypted
payload, a ``TypeError`` on a wrongly typed field nio did not expect) escapes that loop
and the whole call: the rest of the response is never applied, our sync token is never
advanced, and the same event fails again on every retry. Encrypted payloads are
chosen by the sender and bypass the homeserver's own checks, so any Matrix user who
can reach a party could silence it for good.

:class:`GuardedClient` overrides the per-event steps so that one bad event only affects
itself:

* a timeline event whose decryption or handling raises is replaced by an
  :class:`UnreadableEvent` (the sync loop records it as a problem for that event);
* the same for events decrypted later (``decrypt_event``) or in a backfill
  (``/messages``);
* a to-device event whose decryption raises is dropped (it is logged and counted in
  :attr:`GuardedClient.dropped_to_device`; the sender's next message works again);
* a room's state, an invite's stripped state and other per-room steps are applied room
  by room, a failing room being logged and skipped.

It also keeps the raw stripped state of each invite (nio keeps only member, name and
alias events of it), which the invite checks need: encryption and join rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from nio import (
    AsyncClient,
    BadEvent,
    MegolmEvent,
    Response,
    RoomMessagesResponse,
    SyncResponse,
    UnknownBadEvent,
)
from nio.exceptions import EncryptionError

logger = logging.getLogger(__name__)


@dataclass
class UnreadableEvent(UnknownBadEvent):  # type: ignore[misc]  # nio is untyped
    """An event nio raised on while decrypting or parsing it (see the module docstring).

    Attributes:
        reason: The exception type (never its message: it may quote the content).
    """

    reason: str = field(default="", kw_only=True)


def unreadable(event: Any, reason: str) -> UnreadableEvent:
    """Wrap ``event`` (as received, e.g. still encrypted) as unreadable for ``reason``."""
    source = getattr(event, "source", None)
    return UnreadableEvent(source=source if isinstance(source, dict) else {}, reason=reason)


# nio raises EncryptionError both for a missing key (worth waiting for) and for events no
# key will ever make readable; only the message tells them apart.
_NEVER_READABLE = {
    "Error parsing payload": "payload is not JSON",
    "Duplicate message index": "replayed message index",
}


class GuardedClient(AsyncClient):  # type: ignore[misc]  # nio is untyped
    """``nio.AsyncClient`` with per-event error isolation (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped_to_device = 0
        """To-device events whose processing raised (dropped, logged)."""
        self.invite_states: dict[str, list[dict[str, Any]]] = {}
        """Raw stripped state of the invites in the last sync response, by room id."""

    # --- timeline, backfill and late decryption -------------------------------------

    def _decrypt(self, event: MegolmEvent) -> Any:
        """Decrypt ``event``: the event, None while its key is missing, or unreadable."""
        assert self.olm is not None
        try:
            decrypted = self.olm.decrypt_megolm_event(event)
        except EncryptionError as exc:
            for prefix, reason in _NEVER_READABLE.items():
                if str(exc).startswith(prefix):
                    return unreadable(event, reason)
            return None
        except Exception as exc:
            return unreadable(event, type(exc).__name__)
        if isinstance(decrypted, BadEvent | UnknownBadEvent):
            # nio's view of the *payload*, which lacks the event id: keep the envelope.
            return unreadable(event, "payload is not a valid event")
        return decrypted

    def _handle_timeline_event(
        self, event: Any, room_id: str, room: Any, encrypted_rooms: set[str]
    ) -> Any:
        try:
            if not isinstance(event, MegolmEvent) or self.olm is None:
                return super()._handle_timeline_event(event, room_id, room, encrypted_rooms)
            event.room_id = room_id
            decrypted = self._decrypt(event)
            if decrypted is not None and not isinstance(decrypted, UnreadableEvent):
                # What nio does with a decrypted event (membership, room state).
                super()._handle_timeline_event(decrypted, room_id, room, encrypted_rooms)
            return decrypted
        except Exception as exc:
            logger.warning(
                "cannot process event %s in %s: %s",
                getattr(event, "event_id", "?"),
                room_id,
                type(exc).__name__,
            )
            return unreadable(event, type(exc).__name__)

    def _handle_messages_response(self, response: RoomMessagesResponse) -> None:
        for index, event in enumerate(response.chunk):
            if isinstance(event, MegolmEvent) and self.olm is not None:
                decrypted = self._decrypt(event)
                if decrypted is not None:
                    response.chunk[index] = decrypted

    def decrypt_event(self, event: MegolmEvent) -> Any:
        """Decrypt a kept Megolm event; a payload that can never be read comes back unreadable.

        Raises:
            EncryptionError: The key is still missing.
        """
        if self.olm is None:
            return super().decrypt_event(event)
        decrypted = self._decrypt(event)
        if decrypted is None:
            raise EncryptionError(f"no key for {event.event_id} yet")
        return decrypted

    # --- to-device, room state, invites -------------------------------------------

    def _handle_decrypt_to_device(self, to_device_event: Any) -> Any:
        try:
            return super()._handle_decrypt_to_device(to_device_event)
        except Exception as exc:
            self.dropped_to_device += 1
            logger.warning(
                "dropped a to-device event from %s (%s): %s (%d dropped so far)",
                getattr(to_device_event, "sender", "?"),
                type(to_device_event).__name__,
                type(exc).__name__,
                self.dropped_to_device,
            )
            return None

    async def _on_to_device(self, event: Any) -> None:
        try:
            await super()._on_to_device(event)
        except Exception as exc:
            logger.warning("to-device callback failed: %s", type(exc).__name__)

    def _handle_joined_state(self, room_id: str, join_info: Any, encrypted_rooms: set[str]) -> None:
        try:
            super()._handle_joined_state(room_id, join_info, encrypted_rooms)
        except Exception:
            logger.exception("cannot apply the state of %s; skipped this round", room_id)
            if room_id not in self.rooms:
                raise  # nio needs the room object for the timeline; no way around it

    async def _handle_invited_rooms(self, response: SyncResponse) -> None:
        for room_id, info in response.rooms.invite.items():
            try:
                room = self._get_invited_room(room_id)
                for event in info.invite_state:
                    room.handle_event(event)
                    await self._on_invited_rooms(event, room)
            except Exception:
                logger.exception("cannot apply the invite state of %s", room_id)

    async def _handle_global_account_data_events(self, response: SyncResponse) -> None:
        for event in response.account_data_events:
            try:
                await self._on_global_account_data(event)
            except Exception as exc:
                logger.warning("account data callback failed: %s", type(exc).__name__)

    async def create_matrix_response(
        self,
        response_class: type,
        transport_response: ClientResponse,
        data: tuple[Any, ...] | None = None,
        save_to: Any = None,
    ) -> Response:
        if response_class is SyncResponse and transport_response.status == 200:
            self.invite_states = await self._raw_invite_states(transport_response)
        return await super().create_matrix_response(
            response_class, transport_response, data, save_to
        )

    @staticmethod
    async def _raw_invite_states(
        transport_response: ClientResponse,
    ) -> dict[str, list[dict[str, Any]]]:
        try:
            body = await transport_response.json()
            invites = body.get("rooms", {}).get("invite", {})
            rooms = list(invites.items()) if isinstance(invites, dict) else []
        except Exception as exc:
            logger.warning("cannot read the invites of a sync: %s", type(exc).__name__)
            return {}
        states: dict[str, list[dict[str, Any]]] = {}
        for room_id, info in rooms:
            try:
                events = info["invite_state"]["events"]
                states[str(room_id)] = [e for e in events if isinstance(e, dict)]
            except Exception:
                # Unreadable invite state: the invite checks find nothing, and decline.
                states[str(room_id)] = []
        return states
