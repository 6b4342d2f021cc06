"""An identity binding made to obtain a credential is never a consented presentation answer.

An agency that is both issuer and verifier chooses the nonce of its offers and of
its presentation requests. Were the two the same, the PID presentation a citizen
makes to obtain a credential (KB-JWT ``aud`` = the agency, ``nonce`` = the offer's)
would verify as an answer to the presentation request; the KB-JWT's
``onceonly_context`` tells them apart, and the verifier refuses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onceonly.protocol.proofs import IDENTITY_BINDING_CONTEXT
from onceonly.sdjwt import parse_sd_jwt, present

from .test_verification import Setup, expect_rejected, make_setup
from .verification_world import NOW, VERIFIER_ID, World


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = make_setup(World(), str(tmp_path / "verifier.sqlite3"), tmp_path)
    yield built
    built.nonces.close()
    built.audit.close()


async def test_an_identity_binding_replayed_as_a_response_is_rejected(setup: Setup) -> None:
    pending = setup.request()
    world = setup.world
    binding = present(
        parse_sd_jwt(world.credential()),
        disclose=(("address", "locality"),),
        holder_key=world.holder,
        aud=VERIFIER_ID,  # the same agency
        nonce=pending.nonce,  # the agency chose its offer's nonce to be the request's
        now=NOW,
        context=IDENTITY_BINDING_CONTEXT,
    )
    await expect_rejected(setup, await setup.answer(pending, binding), "context_mismatch")
    # The same claims signed as an answer are accepted: only the context differs.
    second = setup.request()
    answer = world.present(world.credential(), nonce=second.nonce)
    assert (await setup.answer(second, answer)).verified
