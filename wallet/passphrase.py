"""The strength floor for new wallet and backup passphrases, and a generated one.

A stolen wallet file or backup can be attacked offline, as fast as scrypt
allows; scrypt only multiplies the cost of each guess, so a one-character
passphrase falls at once. Every *new* passphrase (``wallet init``, a changed
secret, a backup) must therefore pass :func:`require_strong`; opening an
existing wallet or backup never checks it, so nothing made before stays locked.

The rule is deliberately simple and stated in the refusal: at least
:data:`MIN_LENGTH` characters and at least :data:`MIN_DISTINCT` different ones
(which refuses ``aaaaaaaaaaaa`` and ``abcabcabcabc``). A citizen who does not
want to invent one can take :func:`generate_passphrase`'s recovery key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

from onceonly.errors import WeakPassphrase

MIN_LENGTH: Final = 12
"""Least number of characters of a new passphrase."""

MIN_DISTINCT: Final = 5
"""Least number of different characters of a new passphrase."""

RULE: Final = (
    f"a passphrase needs at least {MIN_LENGTH} characters, at least {MIN_DISTINCT}"
    " of them different (e.g. several words)"
)
"""The rule, as told to the citizen when a passphrase is refused."""

# Crockford's base32 alphabet: no I, L, O or U, so a written-down key reads back unambiguously.
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUPS: Final = 8
_GROUP_LENGTH: Final = 4


def require_strong(passphrase: str, *, what: str = "wallet passphrase") -> None:
    """Refuse a passphrase below the strength floor, naming the rule.

    Raises:
        WeakPassphrase: too short or too repetitive (``detail["rule"]`` says which).
    """
    rule = RULE + (
        "; or let 'wallet init --generate-passphrase' make one"
        if what == "wallet passphrase"
        else ""
    )
    if len(passphrase) < MIN_LENGTH:
        raise WeakPassphrase(
            f"the {what} is too short ({len(passphrase)} characters): {rule}",
            detail={"rule": "min_length", "min_length": MIN_LENGTH},
        )
    if len(set(passphrase)) < MIN_DISTINCT:
        raise WeakPassphrase(
            f"the {what} is too repetitive ({len(set(passphrase))} different characters): {rule}",
            detail={"rule": "min_distinct", "min_distinct": MIN_DISTINCT},
        )


def generate_passphrase(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A random recovery key: 8 groups of 4 base32 characters (160 bits), e.g. ``7KQ2-M9XD-...``.

    Each character takes one random byte's low 5 bits (256 is a multiple of 32, so
    every character is equally likely).
    """
    raw = random_bytes(_GROUPS * _GROUP_LENGTH)
    chars = "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in raw)
    return "-".join(
        chars[start : start + _GROUP_LENGTH] for start in range(0, len(chars), _GROUP_LENGTH)
    )
