"""The human side of a mailbox: status notes, a poll, and a document upload.

Besides protocol exchanges, an agency and a citizen talk in their mailbox room the
way people do in Matrix: the office posts status notes (``m.notice``), asks a
multiple-choice question as a poll, and the citizen answers it and uploads a
document. These are ordinary Matrix events any client shows:

* ``m.poll.start`` / ``m.poll.response``: polls, with the stable identifiers of
  MSC3381 (Matrix spec v1.7 and later); every poll also carries a plain-text
  fallback, so a client without poll support shows the question and answers;
* ``m.room.message`` with ``msgtype`` ``m.file`` and an encrypted ``file``
  object: a document, encrypted with its own key (:mod:`onceonly.matrix.files`).

:class:`ChatDevice` is a separate device of a party's account (the case worker's
desktop, the citizen's Element), so talking never interferes with the party's
protocol service on its own device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from onceonly.errors import MalformedInput, TransportError
from onceonly.matrix.accounts import (
    Credentials,
    account_path,
    load_credentials,
    login,
    save_credentials,
)
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.files import download_file, file_message
from onceonly.matrix.inbox import Inbound, InboundEvent
from onceonly.matrix.rooms import InvitesFrom
from onceonly.types import RoomId

POLL_START: Final = "m.poll.start"
POLL_RESPONSE: Final = "m.poll.response"
MESSAGE: Final = "m.room.message"
_DISCLOSED: Final = "m.poll.disclosed"


@dataclass(frozen=True)
class PollAnswer:
    """One choice of a poll, in German and English."""

    answer_id: str
    de: str
    en: str


def bilingual(de: str, en: str) -> str:
    """The project's body convention: German first, a blank line, then English."""
    return f"{de}\n\n{en}"


def status_note(de: str, en: str) -> dict[str, Any]:
    """An ``m.notice`` status note (clients show notices as the sender's automated posts)."""
    return {"msgtype": "m.notice", "body": bilingual(de, en)}


def poll_start(question_de: str, question_en: str, answers: Sequence[PollAnswer]) -> dict[str, Any]:
    """The content of a single-choice, disclosed ``m.poll.start``.

    Raises:
        MalformedInput: fewer than two answers, or answer ids that repeat.
    """
    ids = [answer.answer_id for answer in answers]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise MalformedInput("a poll needs at least two answers with distinct ids")
    question = f"{question_de} / {question_en}"
    labels = [f"{answer.de} / {answer.en}" for answer in answers]
    fallback = "\n".join([question, *(f"{n}. {label}" for n, label in enumerate(labels, 1))])
    return {
        POLL_START: {
            "question": {"m.text": question},
            "kind": _DISCLOSED,
            "max_selections": 1,
            "answers": [
                {"id": answer.answer_id, "m.text": label}
                for answer, label in zip(answers, labels, strict=True)
            ],
        },
        "m.text": fallback,
        "body": fallback,
    }


def poll_answer_ids(content: dict[str, Any]) -> list[str]:
    """The answer ids a received ``m.poll.start`` offers.

    Raises:
        MalformedInput: the content is not a poll with answers.
    """
    poll = content.get(POLL_START)
    answers = poll.get("answers") if isinstance(poll, dict) else None
    if not isinstance(answers, list) or not answers:
        raise MalformedInput("not an m.poll.start content with answers")
    ids = [answer.get("id") for answer in answers if isinstance(answer, dict)]
    if not all(isinstance(answer_id, str) and answer_id for answer_id in ids):
        raise MalformedInput("poll answers need string ids")
    return [str(answer_id) for answer_id in ids]


def poll_response(poll_event_id: str, answer_id: str) -> dict[str, Any]:
    """The content of an ``m.poll.response`` choosing ``answer_id``."""
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
        POLL_RESPONSE: {"answers": [answer_id]},
    }


def chosen_answers(content: dict[str, Any], poll_event_id: str) -> list[str]:
    """The answer ids of an ``m.poll.response`` to the poll ``poll_event_id``.

    Raises:
        MalformedInput: not a response to that poll, or no answer list.
    """
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict) or relation.get("event_id") != poll_event_id:
        raise MalformedInput("the poll response refers to another poll")
    response = content.get(POLL_RESPONSE)
    answers = response.get("answers") if isinstance(response, dict) else None
    if not isinstance(answers, list) or not all(isinstance(item, str) for item in answers):
        raise MalformedInput("the poll response has no answer list")
    return [str(item) for item in answers]


class ChatDevice:
    """A second device of a party's account, for talking in its mailbox rooms.

    Nothing happens in the constructor; ``async with`` logs the device in (once; the
    login is kept in ``data_dir``), starts its transport and keeps what arrives.

    Args:
        data_dir: Where this device keeps its login, crypto and transport stores.
        account: The account's credentials, with its password (to log the device in).
        device_name: The name other clients show for this device.
        peers: The users whose devices may read what this device sends.
        invites_from: Whose invites this device accepts (default: ``peers``). A device
            declines every other invite, and a declined invite is gone for all devices
            of the account, so a citizen's device must accept every agency's.
    """

    def __init__(
        self,
        data_dir: Path,
        account: Credentials,
        device_name: str,
        peers: Sequence[str],
        invites_from: Sequence[str] | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._account = account
        self._device_name = device_name
        self._peers = tuple(peers)
        self._invites_from = tuple(invites_from if invites_from is not None else peers)
        self._client: PartyClient | None = None
        self._received: list[InboundEvent] = []
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> ChatDevice:
        if self._account.password is None:
            raise TransportError("a chat device needs the account's password to log in")
        if account_path(self._data_dir).exists():
            device = load_credentials(self._data_dir)
        else:
            device = await asyncio.to_thread(
                login,
                self._account.homeserver,
                self._account.user_id,
                self._account.password,
                device_display_name=self._device_name,
            )
            # Kept, so a restart reuses the device (and its Olm keys) instead of adding one.
            save_credentials(self._data_dir, device)
        self._client = PartyClient(
            self._data_dir,
            login=device,
            device_policy=AllDevicesOf(self._peers),
            handler=self._keep,
            invite_policy=InvitesFrom(self._invites_from),
        )
        await self._client.start()
        await self._client.wait_ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None

    @property
    def client(self) -> PartyClient:
        """The running transport."""
        if self._client is None:
            raise TransportError("the chat device is not started")
        return self._client

    async def room_with(self, peer: str) -> RoomId:
        """The account's mailbox room with ``peer``."""
        return await self.client.ensure_direct_room(peer)

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send an event (encrypted) and return its event id once the server has it."""
        handle = await self.client.send(room_id, event_type, content)
        return str(await handle.event_id(60.0))

    async def send_file(self, room_id: str, data: bytes, *, filename: str, mimetype: str) -> str:
        """Upload ``data`` encrypted and post it as an ``m.file`` message; return the event id."""
        content = await file_message(self.client.nio, data, filename=filename, mimetype=mimetype)
        return await self.send(room_id, MESSAGE, content)

    async def download(self, content: dict[str, Any]) -> bytes:
        """Fetch and decrypt the document of a received ``m.file`` message."""
        return await download_file(
            self._account.homeserver, str(self.client.nio.access_token), content
        )

    async def wait_for(
        self, matches: Callable[[InboundEvent], bool], timeout: float
    ) -> InboundEvent:
        """Wait until an event that ``matches`` has arrived; return the first such event.

        Raises:
            TransportError: none arrived within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = next((event for event in self._received if matches(event)), None)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TransportError(f"the expected event did not arrive within {timeout:.0f} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue

    async def _keep(self, item: Inbound) -> None:
        if isinstance(item, InboundEvent):
            self._received.append(item)
            self._arrived.set()
