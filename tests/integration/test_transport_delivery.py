"""Delivery guarantees of the transport: attachments, outages, bad input, failing handlers."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from onceonly.errors import MalformedInput
from onceonly.matrix import attachments, files
from onceonly.matrix.homeserver import Homeserver
from onceonly.matrix.homeserver_config import MEDIA_DIR
from onceonly.matrix.inbox import Inbound
from tests.integration.test_transport_support import (
    EVENT_TYPE,
    Collector,
    party,
    raw_room_events,
    register,
)

pytestmark = pytest.mark.integration


async def test_200_kib_payload_arrives_intact_through_an_encrypted_attachment(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()
    marker = "PLAINTEXT-MARKER-" + secrets.token_hex(8)
    big = {
        "body": "Your credential",
        "exchange_id": "ex-big",
        "credential": marker + secrets.token_urlsafe(200 * 1024),
        "nested": {"list": list(range(50))},
    }
    assert len(json.dumps(big)) > 200 * 1024

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id]),
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        sent = await (await agency.send(room_id, EVENT_TYPE, big)).event_id(timeout=60)
        await at_citizen.wait_for(lambda: len(at_citizen.items) == 1)

    received = at_citizen.events[0]
    assert received.event_id == sent
    assert received.type == EVENT_TYPE
    assert received.content == big

    # On the server: one small encrypted event, and media that is ciphertext.
    raw = [
        e
        for e in await raw_room_events(synapse, agency_creds.access_token, room_id)
        if "state_key" not in e
    ]
    assert len(raw) == 1 and raw[0]["type"] == "m.room.encrypted"
    assert len(json.dumps(raw[0])) < 8 * 1024
    media = await _all_media_bytes(synapse)
    assert media, "the attachment was not uploaded"
    assert all(marker.encode() not in blob for blob in media)


async def _all_media_bytes(hs: Homeserver) -> list[bytes]:
    media_dir = hs.data_dir / MEDIA_DIR
    return [p.read_bytes() for p in media_dir.rglob("*") if p.is_file()]


async def test_tampered_or_oversized_attachment_becomes_a_typed_problem(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()
    payload = {"body": "x", "data": "y" * 5000}

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id], max_download=4000),
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        tampered = await attachments.pack(agency.nio, {"body": "x", "data": "small"})
        tampered[attachments.ATTACHMENT_KEY]["file"]["hashes"]["sha256"] = "A" * 43
        oversized = await attachments.pack(agency.nio, payload)  # 5 KB > the 4000 B bound
        not_an_object = {"body": "?", attachments.ATTACHMENT_KEY: "mxc://nope"}
        for content in (tampered, oversized, not_an_object):
            await (await agency.send(room_id, EVENT_TYPE, content)).event_id(timeout=60)
        await agency.send(room_id, EVENT_TYPE, {"body": "after the bad ones"})
        await at_citizen.wait_for(lambda: len(at_citizen.items) == 4)

    codes = [getattr(item, "code", None) for item in at_citizen.items[:3]]
    assert codes == ["malformed", "too_large", "malformed"]
    assert all(
        p.sender == agency_creds.user_id and p.type == EVENT_TYPE for p in at_citizen.problems
    )
    # The loop survived and delivered the next, good event.
    assert at_citizen.events[-1].content == {"body": "after the bad ones"}


async def test_homeserver_outage_during_sends_delays_but_loses_nothing_and_keeps_order(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()
    total = 30

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id]),
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        handles = [await agency.send(room_id, EVENT_TYPE, {"body": "m", "n": 0})]
        await handles[0].event_id(timeout=60)
        await asyncio.to_thread(synapse.stop)
        try:
            # Queued while the homeserver is down: send() must not fail or block.
            for n in range(1, total):
                handles.append(await agency.send(room_id, EVENT_TYPE, {"body": "m", "n": n}))
            await asyncio.sleep(3)
            assert agency.store.queued(), "nothing can have been sent during the outage"
        finally:
            await asyncio.to_thread(synapse.start)
        event_ids = [await h.event_id(timeout=120) for h in handles]
        await at_citizen.wait_for(lambda: len(at_citizen.events) == total, timeout=120)

    assert len(set(event_ids)) == total
    assert [e.content["n"] for e in at_citizen.events] == list(range(total))
    assert [e.event_id for e in at_citizen.events] == event_ids


async def test_failing_handler_is_retried_then_parked_without_blocking_or_losing(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    calls: list[int] = []
    handled: list[int] = []

    async def flaky(item: Inbound) -> None:
        n = item.content["n"]  # type: ignore[union-attr]
        calls.append(n)
        if n == 1 and calls.count(1) < 3:
            raise RuntimeError("temporary failure")  # succeeds on the third try
        if n == 2:
            raise RuntimeError("always fails")
        handled.append(n)

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, flaky, peers=[agency_creds.user_id]) as citizen,
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        for n in range(4):
            await agency.send(room_id, EVENT_TYPE, {"body": "m", "n": n})
        for _ in range(300):
            if handled == [0, 1, 3]:
                break
            await asyncio.sleep(0.1)
        assert handled == [0, 1, 3]
        assert calls.count(1) == 3
        assert calls.count(2) == 5  # max_attempts, then parked
        parked = citizen.store.parked_inbound()
        assert [row.payload["content"]["n"] for row in parked] == [2]
        assert citizen.store.pending_inbound() == []


async def test_content_just_under_the_switch_goes_inline_and_synapse_accepts_it(
    synapse: Homeserver, tmp_path: Path
) -> None:
    agency_creds, agency_dir = register(synapse, "agency", tmp_path)
    citizen_creds, citizen_dir = register(synapse, "citizen", tmp_path)
    at_citizen = Collector()
    content = {"body": "near the limit", "blob": ""}
    while not attachments.needs_attachment(EVENT_TYPE, content, encrypted=True):
        content["blob"] += "z" * 256
    content["blob"] = content["blob"][:-256]  # the largest that still goes inline
    assert not attachments.needs_attachment(EVENT_TYPE, content, encrypted=True)

    async with (
        party(agency_dir, Collector(), peers=[citizen_creds.user_id]) as agency,
        party(citizen_dir, at_citizen, peers=[agency_creds.user_id]),
    ):
        room_id = await agency.ensure_direct_room(citizen_creds.user_id)
        await (await agency.send(room_id, EVENT_TYPE, content)).event_id(timeout=60)
        await at_citizen.wait_for(lambda: len(at_citizen.items) == 1)

    assert at_citizen.events[0].content == content
    (raw,) = [
        e
        for e in await raw_room_events(synapse, agency_creds.access_token, room_id)
        if "state_key" not in e
    ]
    stored = len(json.dumps(raw))
    assert 50 * 1024 < stored < 64 * 1024  # inline, and within Synapse's cap


async def test_a_document_round_trips_as_an_encrypted_file_message(
    synapse: Homeserver, tmp_path: Path
) -> None:
    credentials, data_dir = register(synapse, "clerk", tmp_path)
    document = b"%PDF-1.7 certificate " + secrets.token_bytes(4096)
    async with party(data_dir, Collector(), peers=[]) as clerk:
        content = await files.file_message(
            clerk.nio, document, filename="certificate.pdf", mimetype="application/pdf"
        )
    assert content["msgtype"] == "m.file" and content["info"]["size"] == len(document)
    assert content["file"]["url"].startswith("mxc://") and content["file"]["v"] == "v2"
    stored = await _all_media_bytes(synapse)
    assert all(b"certificate " not in blob for blob in stored)  # only ciphertext uploaded
    fetched = await files.download_file(synapse.base_url, credentials.access_token, content)
    assert fetched == document
    content["file"]["hashes"]["sha256"] = "A" * 43
    with pytest.raises(MalformedInput):
        await files.download_file(synapse.base_url, credentials.access_token, content)
