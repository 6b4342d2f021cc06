"""Device and invite policies, and the attachment convention's input checks."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from nio.events.invite_events import InviteEvent

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.matrix import attachments
from onceonly.matrix.devices import AllDevicesOf, AllowListedDevices, DeviceInfo
from onceonly.matrix.rooms import InviteDecision, InvitesFrom, decide, inviter_of


def test_allow_listed_devices_by_id_or_pinned_key() -> None:
    policy = AllowListedDevices({"@c:hs": ["WALLET", "WEB:edkey1"]})
    assert policy.allows(DeviceInfo("@c:hs", "WALLET", "anything"))
    assert policy.allows(DeviceInfo("@c:hs", "WEB", "edkey1"))
    assert not policy.allows(DeviceInfo("@c:hs", "WEB", "edkey2"))  # same id, new keys
    assert not policy.allows(DeviceInfo("@c:hs", "ADMINADDED", "k"))
    assert not policy.allows(DeviceInfo("@other:hs", "WALLET", "k"))


def test_all_devices_of_listed_users_only() -> None:
    policy = AllDevicesOf(["@agency:hs"])
    assert policy.allows(DeviceInfo("@agency:hs", "ANY", "k"))
    assert not policy.allows(DeviceInfo("@mallory:hs", "ANY", "k"))


def _invite_state(invitee: str, inviter: str, *, is_direct: bool) -> list[Any]:
    member: dict[str, Any] = {
        "type": "m.room.member",
        "state_key": invitee,
        "sender": inviter,
        "content": {"membership": "invite", "is_direct": is_direct},
    }
    name = {"type": "m.room.name", "state_key": "", "sender": inviter, "content": {"name": "n"}}
    return [InviteEvent.parse_event(name), InviteEvent.parse_event(member)]


def test_inviter_and_direct_flag_are_read_from_the_invite_state() -> None:
    assert inviter_of(_invite_state("@me:hs", "@agency:hs", is_direct=True), "@me:hs") == (
        "@agency:hs",
        True,
    )
    assert inviter_of(_invite_state("@me:hs", "@agency:hs", is_direct=False), "@me:hs") == (
        "@agency:hs",
        False,
    )
    # An invite state about somebody else tells us nothing.
    assert inviter_of(_invite_state("@else:hs", "@agency:hs", is_direct=True), "@me:hs") == (
        None,
        False,
    )


def test_invites_from_accepts_listed_users_and_ignores_everybody_else() -> None:
    policy = InvitesFrom({"@agency:hs"})
    assert policy("@agency:hs", "!r") is InviteDecision.ACCEPT
    # Not known is not unwanted: the invite is left to the account's other devices.
    assert policy("@spammer:hs", "!r") is InviteDecision.IGNORE
    assert InvitesFrom(())("@agency:hs", "!r") is InviteDecision.IGNORE


def test_invites_from_declines_only_users_listed_as_unwanted() -> None:
    policy = InvitesFrom({"@agency:hs"}, unwanted={"@spammer:hs", "@agency:hs"})
    assert policy("@spammer:hs", "!r") is InviteDecision.DECLINE
    assert policy("@unknown:hs", "!r") is InviteDecision.IGNORE
    # Listed as wanted too: accepting wins over rejecting for the whole account.
    assert policy("@agency:hs", "!r") is InviteDecision.ACCEPT


@pytest.mark.parametrize(
    ("answer", "decision"),
    [
        (True, InviteDecision.ACCEPT),
        (False, InviteDecision.IGNORE),  # a plain "no" never rejects for the account
        (None, InviteDecision.IGNORE),
        (1, InviteDecision.IGNORE),  # truthy but not True: not an explicit acceptance
        ("decline", InviteDecision.IGNORE),  # a string is not a decision
        (InviteDecision.ACCEPT, InviteDecision.ACCEPT),
        (InviteDecision.IGNORE, InviteDecision.IGNORE),
        (InviteDecision.DECLINE, InviteDecision.DECLINE),
    ],
)
def test_policy_answers_are_read_the_safe_way(answer: Any, decision: InviteDecision) -> None:
    seen: list[tuple[str, str]] = []

    def policy(inviter: str, room_id: str) -> Any:
        seen.append((inviter, room_id))
        return answer

    assert decide(policy, "@agency:hs", "!room:hs") is decision
    assert seen == [("@agency:hs", "!room:hs")]


def test_a_failing_policy_ignores_the_invite_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(inviter: str, room_id: str) -> bool:
        raise KeyError(inviter)

    with caplog.at_level(logging.ERROR, logger="onceonly.matrix.rooms"):
        assert decide(broken, "@agency:hs", "!room:hs") is InviteDecision.IGNORE
    assert any("!room:hs" in r.getMessage() and r.exc_info for r in caplog.records)


# --- attachments -------------------------------------------------------------------------


def test_small_contents_go_inline_large_ones_as_attachment() -> None:
    small = {"body": "x" * 1000}
    large = {"body": "x" * 50_000}  # 50 KB plaintext grows by 4/3 once encrypted
    assert not attachments.needs_attachment("t", small, encrypted=True)
    assert attachments.needs_attachment("t", large, encrypted=True)
    assert not attachments.needs_attachment("t", large, encrypted=False)
    assert attachments.needs_attachment("t", {"body": "x" * 62_000}, encrypted=False)


_GOOD_REF: dict[str, Any] = {
    "file": {
        "url": "mxc://hs/media1",
        "key": {"kty": "oct", "alg": "A256CTR", "k": "k", "key_ops": ["decrypt"], "ext": True},
        "iv": "iv",
        "hashes": {"sha256": "h"},
        "v": "v2",
    },
    "size": 10,
    "mimetype": "application/json",
}


def _ref(path: list[str], value: Any) -> dict[str, Any]:
    ref = copy.deepcopy(_GOOD_REF)
    target = ref
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return ref


def test_a_well_formed_reference_is_accepted() -> None:
    server, media_id, size, _ = attachments._checked_reference(_GOOD_REF, 100)
    assert (server, media_id, size) == ("hs", "media1", 10)


@pytest.mark.parametrize(
    "ref",
    [
        "mxc://hs/m",
        {"size": 10},
        _ref(["size"], -1),
        _ref(["size"], True),
        _ref(["size"], "10"),
        _ref(["file", "url"], "https://evil.example/m"),
        _ref(["file", "url"], "mxc://hs/a/b"),
        _ref(["file", "url"], "mxc:///m"),
        _ref(["file", "v"], "v1"),
        _ref(["file", "key", "alg"], "A128CBC"),
        _ref(["file", "hashes"], {}),
        _ref(["file", "iv"], None),
    ],
)
def test_malformed_references_are_refused_before_any_download(ref: Any) -> None:
    with pytest.raises(MalformedInput) as info:
        attachments._checked_reference(ref, 100)
    assert not isinstance(info.value, InputTooLarge)


async def test_oversized_reference_is_refused_before_any_download() -> None:
    # Port 9 (discard) on loopback: if the size check did not come first, the fetch would
    # fail with a TransportError instead.
    with pytest.raises(InputTooLarge) as info:
        await attachments.fetch("http://127.0.0.1:9", "token", _ref(["size"], 101), max_bytes=100)
    assert info.value.code == "too_large"
