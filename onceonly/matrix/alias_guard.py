"""Who may create an ``#onceonly-*`` room alias: the rule, and the Synapse module enforcing it.

Readers find the public status and trust rooms by alias, so an alias taken by
someone else would point them at a room the squatter controls. Each such alias
therefore names its owner: ``#onceonly-<kind>.<localpart>:<server>`` belongs to
``@<localpart>:<server>`` (kinds: ``status``, ``trust``). Every other
``#onceonly-*`` alias is reserved for nobody.

Synapse's own ``alias_creation_rules`` match the user and the alias with
separate globs, so they cannot say "the alias's localpart is the user's";
:class:`AliasGuard` is a small Synapse module (loaded through the generated
config's ``modules`` section, see :mod:`.homeserver_config`) whose
``user_may_create_room_alias`` callback applies :func:`may_create_alias`.
Readers do not rely on it: they check the room's creator and the state's
sender against the same owner (:mod:`.state_rooms`), which also holds on a
homeserver without this module.

This module imports neither nio nor Synapse at import time (Synapse loads it
in its own process).
"""

from __future__ import annotations

from typing import Any, Final

from onceonly.errors import MalformedInput
from onceonly.types import UserId

RESERVED_PREFIX: Final = "onceonly-"
"""Aliases whose localpart starts with this are reserved."""

OWNED_KINDS: Final = frozenset({"status", "trust"})
"""The kinds of public rooms an account may own an alias for."""


def owned_room_alias(kind: str, owner: str) -> str:
    """The alias of ``owner``'s public room of ``kind``.

    ``owned_room_alias("status", "@meldebehoerde:gov.example")`` is
    ``#onceonly-status.meldebehoerde:gov.example``.

    Raises:
        MalformedInput: ``owner`` is not a Matrix user id, or ``kind`` is unknown.
    """
    if kind not in OWNED_KINDS:
        raise MalformedInput(f"unknown public room kind {kind!r}")
    localpart, sep, server = owner.removeprefix("@").partition(":")
    if not owner.startswith("@") or not sep or not localpart or not server:
        raise MalformedInput(f"not a Matrix user id: {owner!r}")
    return f"#{RESERVED_PREFIX}{kind}.{localpart}:{server}"


def is_reserved_alias(alias: str) -> bool:
    """Whether ``alias`` (``#localpart:server``) is in the reserved ``#onceonly-*`` space."""
    return alias.startswith("#" + RESERVED_PREFIX)


def alias_owner(alias: str) -> UserId | None:
    """The account a reserved alias belongs to; ``None`` for a reserved alias nobody owns.

    Also ``None`` for an alias outside the reserved space (check :func:`is_reserved_alias`).
    """
    if not is_reserved_alias(alias):
        return None
    localpart, sep, server = alias[1 + len(RESERVED_PREFIX) :].partition(":")
    kind, dot, owner_localpart = localpart.partition(".")
    if not sep or not server or not dot or not owner_localpart or kind not in OWNED_KINDS:
        return None
    return UserId(f"@{owner_localpart}:{server}")


def may_create_alias(user_id: str, alias: str) -> bool:
    """Whether ``user_id`` may create ``alias``: any alias but a reserved one it does not own."""
    if not is_reserved_alias(alias):
        return True
    return alias_owner(alias) == user_id


class AliasGuard:
    """Synapse module: refuses ``#onceonly-*`` aliases to everyone but their owner.

    Configured in the generated ``homeserver.yaml`` as
    ``modules: [{module: onceonly.matrix.alias_guard.AliasGuard, config: {}}]``.
    It applies to every way of creating an alias (``createRoom`` with
    ``room_alias_name`` and ``PUT /directory/room/{alias}``), also for server admins.

    Args:
        config: The module's (empty) config.
        api: Synapse's ``ModuleApi``.
    """

    def __init__(self, config: dict[str, Any], api: Any) -> None:
        self._config = config
        api.register_spam_checker_callbacks(user_may_create_room_alias=self.user_may_create_alias)

    @staticmethod
    def parse_config(config: dict[str, Any] | None) -> dict[str, Any]:
        """Synapse's config hook: this module takes no options."""
        return dict(config or {})

    async def user_may_create_alias(self, user_id: str, room_alias: Any) -> bool:
        """Spam-checker callback: ``True`` lets Synapse go on, ``False`` is ``M_FORBIDDEN``."""
        return may_create_alias(user_id, room_alias.to_string())
