"""A **simulated** eID check: how the identity agency learns who a Matrix account belongs to.

In production the identity agency would run the national eID online function
(card, PIN, eID server) in its web portal, out of band of Matrix (spec section
11). Nothing of that exists here, so this module stands in for it, and says so:

1. :func:`start_eid_check`: the citizen names an eID card number from the
   register; the "card" answers with a one-time code (here: generated and
   returned to the caller, as if shown by the card reader app). Only a digest of
   the code is stored, valid for :data:`CODE_TTL` seconds.
2. :func:`complete_eid_check`: the citizen enters card number and code for a
   Matrix account; a correct, unused, unexpired code binds the account to the
   card holder (:attr:`BindingMethod.EID_CHECK`) in the identity agency's register.

After that, a ``credential.request`` for the PID from that account needs no
``identity_presentation``: the binding is the identity evidence, and the PID is
delivered only to the wallet device named during the check. A wrong code burns
the card's outstanding codes, so each code allows one guess (one in a million);
a real eID check has no such code at all.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Final

from issuer.citizen_devices import CitizenDevices
from issuer.nonce_ledger import NonceLedger
from issuer.register import BindingMethod, Register
from onceonly.errors import IdentityNotBound, MalformedInput, UnknownSubject
from onceonly.jose import b64url_encode

CODE_TTL: Final = 600
"""Seconds a one-time code stays usable."""
CODE_DIGITS: Final = 6


def _code_digest(card_number: str, code: str) -> str:
    # The ledger keys entries by this digest: a code is only good for its own card.
    return "eid_" + b64url_encode(hashlib.sha256(f"{card_number}:{code}".encode()).digest())


def start_eid_check(
    register: Register,
    ledger: NonceLedger,
    card_number: str,
    *,
    now: int,
    random_bytes: Callable[[int], bytes],
) -> str:
    """Simulation: "read" the card and return the one-time code it shows.

    Raises:
        UnknownSubject: no register person holds this card.
    """
    person_id = register.person_for_eid_card(card_number)
    code = str(int.from_bytes(random_bytes(8), "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)
    ledger.record_code(_code_digest(card_number, code), person_id=person_id, now=now, ttl=CODE_TTL)
    return code


def complete_eid_check(
    register: Register,
    ledger: NonceLedger,
    *,
    card_number: str,
    code: str,
    matrix_user_id: str,
    now: int,
    device_id: str | None = None,
    devices: CitizenDevices | None = None,
) -> str:
    """Simulation: check the card's one-time code and bind ``matrix_user_id`` to its holder.

    Args:
        register: The identity agency's register.
        ledger: Where the codes are.
        card_number: The eID card.
        code: The one-time code the card showed.
        matrix_user_id: The citizen's Matrix account.
        now: Current Unix time.
        device_id: The wallet device shown during the check; pinned in ``devices``
            so the PID is delivered to that device only.
        devices: The agency's citizen device store (required with ``device_id``).

    Returns:
        The register person id now bound to the account.

    Raises:
        MalformedInput: the code is not :data:`CODE_DIGITS` digits.
        IdentityNotBound: wrong, used or expired code (the attempt binds nothing).
        IdentityBindingConflict: the account is bound to another person already.
    """
    if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
        raise MalformedInput(f"an eID one-time code has {CODE_DIGITS} digits")
    person_id = ledger.consume_code(_code_digest(card_number, code), now=now)
    if person_id is None:
        # One guess per code: a wrong one burns the card's outstanding codes, and a
        # new code needs the card again (start_eid_check).
        with contextlib.suppress(UnknownSubject):
            ledger.void_codes(register.person_for_eid_card(card_number), now=now)
        raise IdentityNotBound("eID check failed: wrong, used or expired one-time code")
    register.bind_matrix_user(person_id, matrix_user_id, BindingMethod.EID_CHECK, now)
    if device_id is not None:
        if devices is None:
            raise ValueError("pinning a device needs the citizen device store")
        devices.pin_device(matrix_user_id, device_id, now=now)
    return person_id
