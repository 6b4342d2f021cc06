"""The part of the Matrix transport the runtime uses, as an interface.

:class:`~onceonly.matrix.client.PartyClient` implements it. Naming the interface
lets the runtime's purely local logic (dispatch, error mapping, state keeping)
be unit-tested with an in-memory stand-in; everything that involves Matrix is
tested against a real homeserver.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from onceonly.matrix.accounts import Credentials
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import DevicePolicy
from onceonly.matrix.inbox import AlreadyHandled, InboundHandler
from onceonly.matrix.rooms import InvitePolicy
from onceonly.types import EventId, RoomId, UserId


class SentEvent(Protocol):
    """What :meth:`Transport.send` returns (the transport's ``SendHandle``)."""

    async def event_id(self, timeout: float | None = None) -> EventId:
        """Wait until the homeserver accepted the event; return its id."""
        ...


class Transport(Protocol):
    """An encrypted Matrix connection of one party."""

    @property
    def user_id(self) -> UserId:
        """Our Matrix user id (available once started)."""
        ...

    async def start(self) -> None:
        """Connect and start delivering inbound events to the handler."""
        ...

    async def stop(self) -> None:
        """Stop; queued sends and undelivered events are kept for the next start."""
        ...

    async def ensure_direct_room(self, peer: str) -> RoomId:
        """The encrypted direct room with ``peer``, created on first contact."""
        ...

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> SentEvent:
        """Queue an event durably for sending."""
        ...


TransportFactory = Callable[[InboundHandler, AlreadyHandled], Transport]
"""Builds the transport given the runtime's inbound handler and idempotency hook."""


def party_client_factory(
    data_dir: Path,
    *,
    device_policy: DevicePolicy,
    invite_policy: InvitePolicy | None,
    login: Credentials | None,
) -> TransportFactory:
    """The default factory: a :class:`~onceonly.matrix.client.PartyClient` in ``data_dir``."""

    def build(handler: InboundHandler, already_handled: AlreadyHandled) -> Transport:
        return PartyClient(
            data_dir,
            device_policy=device_policy,
            handler=handler,
            login=login,
            invite_policy=invite_policy,
            already_handled=already_handled,
        )

    return build
