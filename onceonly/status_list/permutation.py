"""A keyed pseudo-random permutation of ``[0, size)`` for status index allocation.

Pure: the key is an argument. The draft recommends against handing out status
indices sequentially (an index would then reveal issuance order and let
verifiers estimate when and how many credentials were issued). An issuer keeps
a plain counter ``position = 0, 1, 2, ...`` per list and publishes
``IndexPermutation(key, size).index_at(position)``: distinct positions give
distinct indices, the sequence looks random to anyone without the key, and no
table of ``size`` entries needs storing.

Construction: a balanced Feistel network (HMAC-SHA256 round function) on the
smallest even bit width covering ``size``, with cycle walking to stay inside
``[0, size)``. A Feistel network is a bijection whatever its round function, so
distinctness does not depend on the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

_ROUNDS: Final = 8
MIN_KEY_BYTES: Final = 16


class IndexPermutation:
    """Bijection from allocation positions to status list indices.

    Attributes:
        size: The domain ``[0, size)``.
    """

    __slots__ = ("_half_bits", "_half_mask", "_key", "size")

    def __init__(self, key: bytes, size: int) -> None:
        """Bind the permutation to a secret ``key`` and a domain size.

        Raises:
            ValueError: key shorter than 16 bytes or ``size`` not positive.
        """
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"permutation key must be at least {MIN_KEY_BYTES} bytes")
        if size <= 0:
            raise ValueError("permutation size must be positive")
        self._key = bytes(key)
        self.size = size
        width = max(2, (size - 1).bit_length())
        width += width % 2  # balanced halves need an even width
        self._half_bits = width // 2
        self._half_mask = (1 << self._half_bits) - 1

    def _round(self, round_number: int, half: int) -> int:
        message = round_number.to_bytes(1, "big") + half.to_bytes(8, "big")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") & self._half_mask

    def _feistel(self, value: int) -> int:
        left, right = value >> self._half_bits, value & self._half_mask
        for round_number in range(_ROUNDS):
            left, right = right, left ^ self._round(round_number, right)
        return (left << self._half_bits) | right

    def index_at(self, position: int) -> int:
        """The index handed out at allocation ``position`` (``0 <= position < size``).

        Raises:
            IndexError: ``position`` outside ``[0, size)``.
        """
        if not 0 <= position < self.size:
            raise IndexError(f"position {position} outside [0, {self.size})")
        value = self._feistel(position)
        # Cycle walking: the Feistel domain is at most 4x larger than size, so
        # this loop runs a few times on average and always ends (it follows the
        # permutation's cycle from a point inside [0, size)).
        while value >= self.size:
            value = self._feistel(value)
        return value
