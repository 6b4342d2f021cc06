"""The inline stand-in of an event whose content travels as an encrypted attachment."""

import pytest

from onceonly.errors import OnceOnlyError
from onceonly.matrix import attachments
from onceonly.protocol.envelope import from_wire


def test_stand_in_stays_a_displayable_message() -> None:
    content = {
        "msgtype": "eu.onceonly.v1.credential.issue",
        "body": "Ihre Meldebescheinigung\n\nYour residence attestation",
        "exchange_id": "x1",
        "credential": "A" * 70_000,
    }
    small = attachments.stand_in(content)
    assert small == {k: content[k] for k in ("msgtype", "body", "exchange_id")}
    assert not attachments.needs_attachment("m.room.message", small, encrypted=True)


def test_long_body_is_shortened_not_dropped() -> None:
    small = attachments.stand_in({"msgtype": "m.text", "body": "ä" * 5000})
    assert small["msgtype"] == "m.text"
    assert len(small["body"]) == 1024 and small["body"].endswith("…")


def test_non_string_fields_are_not_copied() -> None:
    small = attachments.stand_in({"body": 3, "exchange_id": {"x": 1}})
    assert small == {}


def test_stand_in_alone_is_not_mistaken_for_a_protocol_message() -> None:
    # The receiver must reassemble the attachment before parsing; the stand-in by itself
    # lacks the protocol fields and is refused by the envelope parser, never half-read.
    small = attachments.stand_in(
        {"msgtype": "eu.onceonly.v1.exchange.status", "body": "b", "exchange_id": "x"}
    )
    with pytest.raises(OnceOnlyError):
        from_wire("m.room.message", small)


def test_stand_in_keeps_the_mentions_of_the_message_it_stands_for() -> None:
    small = attachments.stand_in({"msgtype": "m.text", "body": "b", "m.mentions": {}})
    assert small["m.mentions"] == {}


def test_the_reference_lives_under_the_protocol_namespace() -> None:
    assert attachments.ATTACHMENT_KEY.startswith("eu.onceonly.v1.")
    reference = {"file": {"url": "mxc://hs/abc"}, "size": 3}
    assert attachments.attachment_reference({attachments.ATTACHMENT_KEY: reference}) == reference
    # What earlier senders wrote is still read.
    legacy = {"org.onceonly.attachment": reference}
    assert attachments.attachment_reference(legacy) == reference
    assert attachments.attachment_reference({"body": "plain"}) is None
