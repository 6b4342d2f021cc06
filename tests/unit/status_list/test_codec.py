"""StatusList packing, compression and bounded decompression."""

from __future__ import annotations

import zlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.jose import b64url_encode
from onceonly.status_list import (
    INVALID,
    SUSPENDED,
    VALID,
    StatusList,
    bytes_for_entries,
    decompress_bounded,
)
from tests.unit.status_list import draft_vectors as vectors


@st.composite
def lists_with_statuses(draw: st.DrawFn) -> tuple[int, int, dict[int, int]]:
    bits = draw(st.sampled_from([1, 2, 4, 8]))
    size = draw(st.integers(min_value=1, max_value=2000))
    entries = draw(
        st.dictionaries(
            st.integers(min_value=0, max_value=size - 1),
            st.integers(min_value=0, max_value=(1 << bits) - 1),
            max_size=200,
        )
    )
    return bits, size, entries


@given(lists_with_statuses())
@settings(max_examples=200, deadline=None)
def test_round_trip_json_and_cbor(case: tuple[int, int, dict[int, int]]) -> None:
    bits, size, entries = case
    status_list = StatusList(size, bits)
    status_list.set_many(entries)
    for index in range(size):
        assert status_list.get(index) == entries.get(index, VALID)
    from_json = StatusList.from_json(status_list.to_json())
    from_cbor = StatusList.from_cbor_map(cbor2.loads(cbor2.dumps(status_list.to_cbor_map())))
    assert from_json == status_list
    assert from_cbor == status_list
    assert dict(from_json.non_valid()) == {i: v for i, v in entries.items() if v != VALID}


@given(st.sampled_from([1, 2, 4, 8]), st.integers(min_value=1, max_value=5000))
def test_size_rounds_up_to_whole_bytes(bits: int, size: int) -> None:
    status_list = StatusList(size, bits)
    assert len(status_list.to_bytes()) == bytes_for_entries(size, bits)
    assert size <= status_list.size < size + 8 // bits


def test_set_keeps_neighbours() -> None:
    status_list = StatusList(8, 2)
    status_list.set(1, 3)
    status_list.set(2, SUSPENDED)
    status_list.set(1, INVALID)
    assert [status_list.get(i) for i in range(4)] == [0, 1, 2, 0]
    assert status_list.to_bytes().hex() == "2400"


def test_section_4_1_examples() -> None:
    # Draft section 4.1 "Compressed Byte Array", 1-bit and 2-bit examples.
    for example, bits in ((vectors.SECTION_4_1_ONE_BIT, 1), (vectors.SECTION_4_1_TWO_BIT, 2)):
        statuses = example["statuses"]
        status_list = StatusList(len(statuses), bits)
        status_list.set_many(enumerate(statuses))
        assert status_list.to_bytes().hex() == example["byte_array_hex"]
        assert status_list.compress().hex() == example["compressed_hex"]
        assert status_list.encode_lst() == example["lst"]
        decoded = StatusList.from_json({"bits": bits, "lst": example["lst"]})
        assert [decoded.get(i) for i in range(len(statuses))] == statuses


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_appendix_c_vectors(bits: int) -> None:
    # Draft Appendix C "Test vectors for Status List encoding": encode byte-exactly
    # and decode back to exactly the listed statuses.
    expected = dict(vectors.APPENDIX_C_STATUSES[bits])
    status_list = StatusList(vectors.APPENDIX_C_SIZE, bits)
    status_list.set_many(vectors.APPENDIX_C_STATUSES[bits])
    assert status_list.encode_lst() == vectors.APPENDIX_C_JSON_LST[bits]
    assert cbor2.dumps(status_list.to_cbor_map()).hex() == vectors.APPENDIX_C_CBOR_HEX[bits]

    from_json = StatusList.from_json({"bits": bits, "lst": vectors.APPENDIX_C_JSON_LST[bits]})
    cbor_map = cbor2.loads(bytes.fromhex(vectors.APPENDIX_C_CBOR_HEX[bits]))
    from_cbor = StatusList.from_cbor_map(cbor_map)
    for decoded in (from_json, from_cbor):
        assert decoded.size == vectors.APPENDIX_C_SIZE
        assert dict(decoded.non_valid()) == {i: v for i, v in expected.items() if v}
        for index, value in expected.items():
            assert decoded.get(index) == value


def test_aggregation_uri_round_trips() -> None:
    status_list = StatusList(8, 1, aggregation_uri="https://example.org/aggregation")
    assert status_list.to_json()["aggregation_uri"] == "https://example.org/aggregation"
    assert StatusList.from_json(status_list.to_json()).aggregation_uri == (
        "https://example.org/aggregation"
    )
    with pytest.raises(MalformedInput):
        StatusList.from_json({**status_list.to_json(), "aggregation_uri": 7})


@pytest.mark.parametrize("bits", [0, 3, 16, True, "1", None])
def test_bad_bits_rejected(bits: object) -> None:
    with pytest.raises(MalformedInput):
        StatusList.from_json({"bits": bits, "lst": "eNrbuRgAAhcBXQ"})


def test_bad_constructor_arguments() -> None:
    with pytest.raises(MalformedInput):
        StatusList(0, 1)
    with pytest.raises(MalformedInput):
        StatusList(8, 3)


def test_index_and_value_bounds() -> None:
    status_list = StatusList(16, 1)
    with pytest.raises(IndexError):
        status_list.get(16)
    with pytest.raises(IndexError):
        status_list.get(-1)
    with pytest.raises(ValueError):
        status_list.set(0, 2)
    with pytest.raises(ValueError):
        status_list.set(0, -1)
    with pytest.raises(MalformedInput):
        status_list.get(True)


def _zlib(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def test_zip_bomb_rejected_without_inflating_it() -> None:
    bomb = _zlib(bytes(64 * 1024 * 1024))  # 64 MiB of zeros compress to ~64 KB
    assert len(bomb) < 100 * 1024
    with pytest.raises(InputTooLarge) as info:
        StatusList.decode(bomb, 1, max_bytes=1024 * 1024)
    assert info.value.code == "too_large"


def test_decompression_limit_is_exact() -> None:
    payload = bytes(range(256)) * 4
    assert decompress_bounded(_zlib(payload), len(payload)) == payload
    with pytest.raises(InputTooLarge):
        decompress_bounded(_zlib(payload), len(payload) - 1)


def test_default_bound_applies_to_json() -> None:
    lst = b64url_encode(_zlib(bytes(2 * 1024 * 1024)))
    with pytest.raises(InputTooLarge):
        StatusList.from_json({"bits": 1, "lst": lst}, max_bytes=1024 * 1024)


@pytest.mark.parametrize(
    ("compressed", "why"),
    [
        (b"not zlib at all", "garbage"),
        (zlib.compress(b"\x01\x02")[:-3], "truncated"),
        (zlib.compress(b"\x01\x02") + b"\x00", "trailing byte"),
        (zlib.compress(b""), "empty list"),
        (_zlib(b"\x01")[2:-4], "raw DEFLATE without the ZLIB wrapper"),
        (b"", "no bytes"),
    ],
)
def test_malformed_compressed_lists_rejected(compressed: bytes, why: str) -> None:
    with pytest.raises(MalformedInput):
        StatusList.decode(compressed, 1)


def test_gzip_container_rejected() -> None:
    gzip_stream = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = gzip_stream.compress(b"\x01") + gzip_stream.flush()
    with pytest.raises(MalformedInput):
        StatusList.decode(data, 1)


@pytest.mark.parametrize(
    "lst",
    ["eNrbuRgAAhcBXQ==", "eNrbuRgAAhcBX+", "eNrb uRgAAhcBXQ", 42, None, "eNrbuRgAAhcBXR"],
)
def test_malformed_lst_rejected(lst: object) -> None:
    with pytest.raises(MalformedInput):
        StatusList.from_json({"bits": 1, "lst": lst})


def test_cbor_lst_must_be_bytes() -> None:
    with pytest.raises(MalformedInput):
        StatusList.from_cbor_map({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    with pytest.raises(MalformedInput):
        StatusList.from_cbor_map([1, b"x"])


def test_bound_derived_from_max_entries() -> None:
    status_list = StatusList(4096, 2)  # 1024 bytes
    assert StatusList.from_json(status_list.to_json(), max_entries=4096) == status_list
    with pytest.raises(InputTooLarge):
        StatusList.from_json(status_list.to_json(), max_entries=4092)  # 1023 bytes
    with pytest.raises(InputTooLarge):
        StatusList.from_cbor_map(status_list.to_cbor_map(), max_entries=2048)
