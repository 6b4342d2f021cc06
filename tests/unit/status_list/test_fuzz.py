"""Hostile bytes never escape as anything but a typed onceonly error."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.cose import sign1
from onceonly.errors import OnceOnlyError
from onceonly.jose import b64url_encode, generate_private_key
from onceonly.status_list import (
    StatusList,
    StatusReference,
    check_status,
    sign_status_list_cwt,
    verify_status_list_cwt,
)
from tests.unit.status_list.conftest import NOW, URI

SETTINGS = settings(max_examples=300, deadline=None)


def _only_typed_errors(action: Callable[[], object]) -> None:
    # Any other exception type propagates and fails the test.
    with contextlib.suppress(OnceOnlyError):
        action()


@given(st.binary(max_size=300), st.sampled_from([1, 2, 4, 8]))
@SETTINGS
def test_random_compressed_bytes(data: bytes, bits: int) -> None:
    _only_typed_errors(lambda: StatusList.decode(data, bits, max_bytes=4096))
    _only_typed_errors(
        lambda: StatusList.from_json({"bits": bits, "lst": b64url_encode(data)}, max_bytes=4096)
    )


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64))
@SETTINGS
def test_corrupted_zlib_streams(noise: bytes, cut: int) -> None:
    stream = bytearray(zlib.compress(bytes(range(200)) * 3, 9))
    for offset, byte in enumerate(noise):
        stream[(offset * 7 + cut) % len(stream)] ^= byte
    _only_typed_errors(lambda: StatusList.decode(bytes(stream[: len(stream) - cut]), 1))


@given(st.binary(max_size=400))
@SETTINGS
def test_random_cwt_bytes(data: bytes) -> None:
    public = generate_private_key("EdDSA").public()
    _only_typed_errors(lambda: verify_status_list_cwt(data, public, uri=URI, now=NOW))
    _only_typed_errors(
        lambda: check_status(StatusReference(idx=0, uri=URI), data, issuer_key=public, now=NOW)
    )


@given(st.data())
@SETTINGS
def test_mutated_valid_cwt(data: st.DataObject) -> None:
    key = generate_private_key("EdDSA")
    token = bytearray(
        sign_status_list_cwt(StatusList(64, 2), key, uri=URI, issued_at=NOW, expires_at=NOW + 60)
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
        token[position] = data.draw(st.integers(min_value=0, max_value=255))
    _only_typed_errors(lambda: verify_status_list_cwt(bytes(token), key.public(), uri=URI, now=NOW))


CBOR_VALUES = st.recursive(
    st.integers() | st.binary(max_size=8) | st.text(max_size=8) | st.none() | st.booleans(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.integers() | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(CBOR_VALUES)
@SETTINGS
def test_arbitrary_cbor_claims(claims: object) -> None:
    key = generate_private_key("EdDSA")
    token = sign1(cbor2.dumps(claims), key, protected={16: "application/statuslist+cwt"})
    _only_typed_errors(lambda: verify_status_list_cwt(token, key.public(), uri=URI, now=NOW))
