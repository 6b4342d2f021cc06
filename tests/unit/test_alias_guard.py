"""Who may create an ``#onceonly-*`` alias (the rule the Synapse module applies)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from onceonly.errors import MalformedInput
from onceonly.matrix.alias_guard import (
    AliasGuard,
    alias_owner,
    may_create_alias,
    owned_room_alias,
)


def test_owned_alias_names_its_owner() -> None:
    alias = owned_room_alias("status", "@meldebehoerde:gov.example")
    assert alias == "#onceonly-status.meldebehoerde:gov.example"
    assert alias_owner(alias) == "@meldebehoerde:gov.example"
    assert alias_owner(owned_room_alias("trust", "@a.b:hs")) == "@a.b:hs"
    with pytest.raises(MalformedInput):
        owned_room_alias("status", "meldebehoerde")
    with pytest.raises(MalformedInput):
        owned_room_alias("other", "@a:hs")


@pytest.mark.parametrize(
    ("user", "alias", "allowed"),
    [
        ("@agency:hs", "#onceonly-status.agency:hs", True),
        ("@agency:hs", "#onceonly-trust.agency:hs", True),
        ("@mallory:hs", "#onceonly-status.agency:hs", False),  # the squatting attack
        ("@agency:other", "#onceonly-status.agency:hs", False),  # same localpart, other server
        ("@agency-x:hs", "#onceonly-status.agency:hs", False),
        ("@agency:hs", "#onceonly-trust:hs", False),  # reserved, owned by nobody
        ("@agency:hs", "#onceonly-misc.agency:hs", False),  # unknown kind
        ("@agency:hs", "#onceonly-status.:hs", False),
        ("@mallory:hs", "#trust:hs", True),  # outside the reserved space
        ("@mallory:hs", "#status.agency:hs", True),
    ],
)
def test_only_the_owner_may_create_a_reserved_alias(user: str, alias: str, allowed: bool) -> None:
    assert may_create_alias(user, alias) is allowed


class _Alias:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_string(self) -> str:
        return self.text


class _ModuleApi:
    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}

    def register_spam_checker_callbacks(self, **callbacks: Any) -> None:
        self.callbacks.update(callbacks)


def test_synapse_module_registers_the_rule_as_alias_callback() -> None:
    api = _ModuleApi()
    AliasGuard(AliasGuard.parse_config(None), api)
    check = api.callbacks["user_may_create_room_alias"]
    assert asyncio.run(check("@a:hs", _Alias("#onceonly-status.a:hs"))) is True
    assert asyncio.run(check("@b:hs", _Alias("#onceonly-status.a:hs"))) is False
