"""Step 4: the office keeps the citizen informed, asks a question as a poll, gets a document.

This runs between two extra devices: the office's case-worker desk and the
citizen's Element. Both are real Matrix devices on the demo's Synapse; every event
is Megolm-encrypted, and the document is an encrypted ``m.file`` the office
downloads and checks byte for byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from onceonly.errors import MalformedInput
from onceonly.matrix.inbox import InboundEvent
from scenario import cast
from scenario.chat import (
    MESSAGE,
    POLL_RESPONSE,
    POLL_START,
    ChatDevice,
    PollAnswer,
    chosen_answers,
    poll_answer_ids,
    poll_response,
    poll_start,
    status_note,
)
from scenario.narrator import Narrator, Outcome
from scenario.overasking import office_desk
from scenario.scene import Scene

CASE_REFERENCE: Final = "KG-2026-0815"
POLL_QUESTION: Final = (
    "Für wie viele Kinder beantragen Sie Kindergeld?",
    "For how many children are you applying for child benefit?",
)
POLL_ANSWERS: Final = (
    PollAnswer("one", "Ein Kind", "One child"),
    PollAnswer("two", "Zwei Kinder", "Two children"),
    PollAnswer("more", "Drei oder mehr", "Three or more"),
)
CITIZEN_CHOICE: Final = "one"
DOCUMENT_NAME: Final = "geburtsurkunde-demo.pdf"


def demo_document() -> bytes:
    """A small, valid one-page PDF standing in for a scanned birth certificate."""
    text = b"Geburtsurkunde (Demo) - birth certificate (demo)"
    stream = b"BT /F1 12 Tf 40 120 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 200] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@dataclass(frozen=True)
class TalkResult:
    """What step 4 established.

    Attributes:
        notes: Event ids of the office's status notes.
        poll_event_id: The poll.
        answer: The answer id the office received.
        document_sha256: SHA-256 of the document the office downloaded and decrypted.
        document_intact: Whether it equals what the citizen uploaded.
        encrypted: Whether every event of the step arrived Megolm-encrypted.
    """

    notes: tuple[str, ...]
    poll_event_id: str
    answer: str
    document_sha256: str
    document_intact: bool
    encrypted: bool


def _is_poll(event: InboundEvent, sender: str) -> bool:
    return event.type == POLL_START and event.sender == sender


async def converse(
    desk: ChatDevice,
    element: ChatDevice,
    *,
    office_user: str,
    citizen_user: str,
    narrator: Narrator,
    office_name: str,
    timeout: float,
) -> TalkResult:
    """Run the conversation of step 4 and return what each side received.

    Raises:
        TransportError: an expected event did not arrive in time.
        MalformedInput: an event arrived in an unexpected shape.
    """
    room = await desk.room_with(citizen_user)
    await element.room_with(office_user)
    notes = []
    for de, en in (
        (
            f"Ihr Antrag auf Kindergeld ist eingegangen (Aktenzeichen {CASE_REFERENCE}).",
            f"Your child benefit application has been received (reference {CASE_REFERENCE}).",
        ),
        ("Wohnsitz und Geburtsdatum sind nachgewiesen.", "Residence and date of birth are proven."),
    ):
        content = status_note(de, en)
        notes.append(await desk.send(room, MESSAGE, content))
        narrator.body(office_name, content["body"])

    poll = poll_start(*POLL_QUESTION, POLL_ANSWERS)
    poll_id = await desk.send(room, POLL_START, poll)
    narrator.body(office_name, poll["body"])
    seen_poll = await element.wait_for(lambda e: _is_poll(e, office_user), timeout)
    if CITIZEN_CHOICE not in poll_answer_ids(seen_poll.content):
        raise MalformedInput("the poll the citizen received lacks the expected answer")
    await element.send(seen_poll.room_id, POLL_RESPONSE, poll_response(seen_poll.event_id, "one"))
    narrator.say(
        "Erika (Element)", f"answers the poll: {POLL_ANSWERS[0].de} / {POLL_ANSWERS[0].en}"
    )
    answered = await desk.wait_for(
        lambda e: e.type == POLL_RESPONSE and e.sender == citizen_user, timeout
    )
    answer = chosen_answers(answered.content, poll_id)

    ask = status_note(
        "Bitte laden Sie die Geburtsurkunde Ihres Kindes hoch.",
        "Please upload your child's birth certificate.",
    )
    notes.append(await desk.send(room, MESSAGE, ask))
    narrator.body(office_name, ask["body"])
    document = demo_document()
    await element.send_file(
        seen_poll.room_id, document, filename=DOCUMENT_NAME, mimetype="application/pdf"
    )
    narrator.say("Erika (Element)", f"uploads {DOCUMENT_NAME} ({len(document)} bytes, encrypted)")
    upload = await desk.wait_for(
        lambda e: (
            e.type == MESSAGE and e.sender == citizen_user and e.content.get("msgtype") == "m.file"
        ),
        timeout,
    )
    received = await desk.download(upload.content)
    digest = hashlib.sha256(received).hexdigest()
    narrator.say(office_name, f"downloads and decrypts it: sha256 {digest[:16]}...")
    done = status_note(
        "Ihre Unterlagen sind vollständig. Vielen Dank!",
        "Your documents are complete. Thank you!",
    )
    notes.append(await desk.send(room, MESSAGE, done))
    narrator.body(office_name, done["body"])
    return TalkResult(
        notes=tuple(notes),
        poll_event_id=poll_id,
        answer=answer[0] if len(answer) == 1 else ",".join(answer),
        document_sha256=digest,
        document_intact=received == document,
        encrypted=seen_poll.encrypted and answered.encrypted and upload.encrypted,
    )


async def talk(scene: Scene) -> None:
    """Step 4: status notes, a poll and a document between two extra devices."""
    world, narrator = scene.world, scene.narrator
    office, citizen = world.family_benefits, world.citizen
    desk = office_desk(scene)
    element = ChatDevice(
        world.data_dir / "citizen-element",
        citizen.credentials,
        "Element (Demo)",
        peers=[office.user_id],
        invites_from=[agency.matrix_user_id for agency in world.trust_list.agencies],
    )
    async with desk, element:
        narrator.progress("case-worker desk and the citizen's Element device are logged in")
        result = await converse(
            desk,
            element,
            office_user=office.user_id,
            citizen_user=citizen.user_id,
            narrator=narrator,
            office_name=cast.FAMILY_BENEFITS.name_de,
            timeout=scene.options.step_timeout,
        )
    ok = result.answer == CITIZEN_CHOICE and result.document_intact and result.encrypted
    narrator.end(
        Outcome.DONE if ok else Outcome.FAILED,
        f"{len(result.notes)} status notes, poll answered '{result.answer}',"
        f" document {'intact' if result.document_intact else 'CHANGED'}"
        f", {'all encrypted' if result.encrypted else 'NOT all encrypted'}",
        poll_answer=result.answer,
        document_sha256=result.document_sha256,
        document_intact=result.document_intact,
        encrypted=result.encrypted,
        status_notes=len(result.notes),
    )
