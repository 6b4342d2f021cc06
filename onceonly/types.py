"""Distinct id types, so a room id is never passed where a user id belongs."""

from typing import NewType

UserId = NewType("UserId", str)
"""A Matrix user id, ``@localpart:server``."""

RoomId = NewType("RoomId", str)
"""A Matrix room id, ``!opaque:server``."""

EventId = NewType("EventId", str)
"""A Matrix event id, ``$opaque``."""

DeviceId = NewType("DeviceId", str)
"""A Matrix device id."""

Vct = NewType("Vct", str)
"""An SD-JWT VC credential type (``vct`` claim), a URI."""

ExchangeId = NewType("ExchangeId", str)
"""Correlates the events of one protocol exchange."""
