"""The Status List itself: packed status values and their compressed encodings.

Pure: no I/O, no clock. A :class:`StatusList` is a mutable array of small
integers (``bits`` wide each) packed least-significant-bit first into bytes,
as the Token Status List draft (section "Compressed Byte Array") specifies, and
serialized as DEFLATE in the ZLIB format.

Decoding is where attackers get in: a few hundred bytes of DEFLATE can expand
to gigabytes. :func:`decompress_bounded` therefore decompresses incrementally
with an output limit chosen by the caller and rejects anything longer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeVar

from onceonly.errors import InputTooLarge, MalformedInput
from onceonly.jose import b64url_decode, b64url_encode

VALID: Final = 0x00
"""The referenced token is valid."""
INVALID: Final = 0x01
"""The referenced token is revoked (permanently)."""
SUSPENDED: Final = 0x02
"""The referenced token is temporarily invalid."""
APPLICATION_SPECIFIC: Final[frozenset[int]] = frozenset({0x03, *range(0x0C, 0x10)})
"""Status values the draft reserves for application-specific meanings."""

ALLOWED_BITS: Final[frozenset[int]] = frozenset({1, 2, 4, 8})

DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 16 * 1024 * 1024
"""Default decompression bound: 16 MiB, i.e. 2**27 one-bit entries.

Far above any list we issue (the draft's examples hold 2**20 entries), far
below what would hurt a service.
"""

_COMPRESSION_LEVEL: Final = 9  # the draft recommends the highest level


def bytes_for_entries(entries: int, bits: int) -> int:
    """Number of bytes needed to hold ``entries`` statuses of ``bits`` bits each."""
    _check_bits(bits)
    return (entries * bits + 7) // 8


def _check_bits(bits: Any) -> int:
    # bool is an int subclass; True must not pass as 1.
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in ALLOWED_BITS:
        raise MalformedInput(f"status list 'bits' must be one of 1, 2, 4, 8, not {bits!r}")
    return bits


class StatusList:
    """A packed array of status values.

    Index ``i`` occupies bits ``[i*bits, (i+1)*bits)`` of the byte array, counted
    from the least significant bit of byte 0. Every entry starts as ``VALID``.

    Attributes:
        bits: Bits per entry (1, 2, 4 or 8).
        aggregation_uri: Optional URI of the Status List Aggregation.
    """

    __slots__ = ("_data", "_size", "aggregation_uri", "bits")

    def __init__(self, size: int, bits: int = 1, *, aggregation_uri: str | None = None) -> None:
        """Create a list of ``size`` entries, all ``VALID``.

        Args:
            size: Number of entries; rounded up so the byte array is whole bytes.
            bits: Bits per entry: 1, 2, 4 or 8.
            aggregation_uri: Optional ``aggregation_uri`` member.

        Raises:
            MalformedInput: ``bits`` not allowed or ``size`` not positive.
        """
        self.bits = _check_bits(bits)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise MalformedInput("status list size must be a positive integer")
        self._data = bytearray(bytes_for_entries(size, bits))
        self._size = len(self._data) * 8 // bits
        self.aggregation_uri = aggregation_uri

    @classmethod
    def from_bytes(
        cls, data: bytes, bits: int, *, aggregation_uri: str | None = None
    ) -> StatusList:
        """Wrap an uncompressed byte array (copied).

        Raises:
            MalformedInput: ``bits`` not allowed or ``data`` empty.
        """
        _check_bits(bits)
        if not data:
            raise MalformedInput("status list byte array is empty")
        out = cls.__new__(cls)
        out.bits = bits
        out._data = bytearray(data)
        out._size = len(data) * 8 // bits
        out.aggregation_uri = aggregation_uri
        return out

    @property
    def size(self) -> int:
        """Number of addressable entries (byte length * 8 / bits)."""
        return self._size

    @property
    def max_status(self) -> int:
        """Largest value an entry can hold (``2**bits - 1``)."""
        return (1 << self.bits) - 1

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return (self.bits, self._data, self.aggregation_uri) == (
            other.bits,
            other._data,
            other.aggregation_uri,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return f"StatusList(size={self.size}, bits={self.bits})"

    def _locate(self, index: int) -> tuple[int, int]:
        # `type(...) is int` rejects bool (and is cheaper than two isinstance calls).
        if type(index) is not int:
            raise MalformedInput("status list index must be an integer")
        if not 0 <= index < self._size:
            raise IndexError(f"status list index {index} outside [0, {self._size})")
        bit_offset = index * self.bits
        return bit_offset >> 3, bit_offset & 7

    def get(self, index: int) -> int:
        """Return the status at ``index``.

        Raises:
            IndexError: ``index`` is outside the list.
        """
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self.bits) - 1)

    def set(self, index: int, status: int) -> None:
        """Store ``status`` at ``index``.

        Raises:
            IndexError: ``index`` is outside the list.
            ValueError: ``status`` does not fit in ``bits`` bits.
        """
        if isinstance(status, bool) or not isinstance(status, int):
            raise ValueError("status must be an integer")
        if not 0 <= status <= self.max_status:
            raise ValueError(f"status {status} does not fit in {self.bits} bit(s)")
        byte, shift = self._locate(index)
        mask = self.max_status << shift
        self._data[byte] = (self._data[byte] & ~mask & 0xFF) | (status << shift)

    def set_many(self, statuses: Mapping[int, int] | Iterable[tuple[int, int]]) -> None:
        """Store several ``(index, status)`` pairs (e.g. the rows of a registry)."""
        pairs = statuses.items() if isinstance(statuses, Mapping) else statuses
        for index, status in pairs:
            self.set(index, status)

    def non_valid(self) -> Iterator[tuple[int, int]]:
        """Yield ``(index, status)`` for every entry that is not ``VALID``, in index order."""
        per_byte = 8 // self.bits
        for byte_index, byte in enumerate(self._data):
            if byte:  # most bytes are zero; skip them without unpacking
                for slot in range(per_byte):
                    value = (byte >> (slot * self.bits)) & self.max_status
                    if value:
                        yield byte_index * per_byte + slot, value

    def to_bytes(self) -> bytes:
        """The uncompressed byte array."""
        return bytes(self._data)

    def compress(self) -> bytes:
        """The byte array as DEFLATE in the ZLIB format, at the highest compression level."""
        return zlib.compress(bytes(self._data), _COMPRESSION_LEVEL)

    def encode_lst(self) -> str:
        """The JSON ``lst`` value: base64url of :meth:`compress`."""
        return b64url_encode(self.compress())

    def to_json(self) -> dict[str, Any]:
        """The JSON ``StatusList`` object (``bits``, ``lst``, optional ``aggregation_uri``)."""
        out: dict[str, Any] = {"bits": self.bits, "lst": self.encode_lst()}
        if self.aggregation_uri is not None:
            out["aggregation_uri"] = self.aggregation_uri
        return out

    def to_cbor_map(self) -> dict[str, Any]:
        """The CBOR ``StatusList`` map, ready for ``cbor2`` (``lst`` as a byte string)."""
        out: dict[str, Any] = {"bits": self.bits, "lst": self.compress()}
        if self.aggregation_uri is not None:
            out["aggregation_uri"] = self.aggregation_uri
        return out

    @classmethod
    def decode(
        cls,
        compressed: bytes,
        bits: int,
        *,
        max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_entries: int | None = None,
        aggregation_uri: str | None = None,
    ) -> StatusList:
        """Decompress a ZLIB byte array into a list, refusing more than ``max_bytes``.

        Args:
            compressed: The ZLIB stream.
            bits: Bits per entry.
            max_bytes: Hard bound on the decompressed size.
            max_entries: Optional tighter bound expressed as a number of entries
                (e.g. the largest list size the caller's ecosystem uses).
            aggregation_uri: Carried over from the enclosing structure.

        Raises:
            InputTooLarge: the array decompresses beyond the bound.
            MalformedInput: not ZLIB/DEFLATE, truncated, trailing data, empty, or bad ``bits``.
        """
        _check_bits(bits)
        if max_entries is not None:
            max_bytes = min(max_bytes, bytes_for_entries(max_entries, bits))
        return cls.from_bytes(
            decompress_bounded(compressed, max_bytes), bits, aggregation_uri=aggregation_uri
        )

    @classmethod
    def from_json(
        cls,
        obj: Any,
        *,
        max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_entries: int | None = None,
    ) -> StatusList:
        """Parse the JSON ``StatusList`` object (as found in a ``status_list`` claim).

        ``max_bytes`` and ``max_entries`` bound the decompression as in :meth:`decode`.

        Raises:
            MalformedInput, InputTooLarge: on any deviation from the draft's structure.
        """
        lst = _lst_member(
            obj,
            str,
            not_a_map="'status_list' must be a JSON object",
            bad_lst="'status_list.lst' must be a string",
        )
        return cls._decode_member(obj, b64url_decode(lst), max_bytes, max_entries)

    @classmethod
    def from_cbor_map(
        cls,
        obj: Any,
        *,
        max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_entries: int | None = None,
    ) -> StatusList:
        """Parse the CBOR ``StatusList`` map (``lst`` must be a byte string).

        ``max_bytes`` and ``max_entries`` bound the decompression as in :meth:`decode`.

        Raises:
            MalformedInput, InputTooLarge: on any deviation from the draft's structure.
        """
        lst = _lst_member(
            obj,
            bytes,
            not_a_map="CBOR status list must be a map",
            bad_lst="CBOR status list 'lst' must be a byte string",
        )
        return cls._decode_member(obj, lst, max_bytes, max_entries)

    @classmethod
    def _decode_member(
        cls, obj: Mapping[str, Any], compressed: bytes, max_bytes: int, max_entries: int | None
    ) -> StatusList:
        # The JSON object and the CBOR map differ only in how ``lst`` is carried.
        return cls.decode(
            compressed,
            obj.get("bits"),  # type: ignore[arg-type]  # checked in decode
            max_bytes=max_bytes,
            max_entries=max_entries,
            aggregation_uri=_optional_uri(obj),
        )


_Lst = TypeVar("_Lst", str, bytes)


def _lst_member(obj: Any, kind: type[_Lst], *, not_a_map: str, bad_lst: str) -> _Lst:
    """The ``lst`` member of a status list structure, which must be a ``kind``."""
    if not isinstance(obj, Mapping):
        raise MalformedInput(not_a_map)
    lst = obj.get("lst")
    if not isinstance(lst, kind):
        raise MalformedInput(bad_lst)
    return lst


def _optional_uri(obj: Mapping[str, Any]) -> str | None:
    uri = obj.get("aggregation_uri")
    if uri is not None and not isinstance(uri, str):
        raise MalformedInput("'aggregation_uri' must be a string")
    return uri


def decompress_bounded(compressed: bytes, max_bytes: int) -> bytes:
    """Inflate a complete ZLIB stream, producing at most ``max_bytes`` bytes.

    The output limit is enforced while inflating, so a zip bomb costs at most
    ``max_bytes + 1`` bytes of memory before it is rejected.

    Raises:
        InputTooLarge: the stream would inflate to more than ``max_bytes``.
        MalformedInput: not a ZLIB stream, corrupt, truncated, or followed by extra bytes.
    """
    if not isinstance(compressed, bytes | bytearray | memoryview):
        raise MalformedInput("compressed status list must be bytes")
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    inflater = zlib.decompressobj()  # wbits=15: ZLIB header and Adler-32 required
    try:
        # One byte of slack tells "exactly max_bytes" apart from "more than that".
        out = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise MalformedInput(f"status list is not valid DEFLATE/ZLIB data: {exc}") from exc
    if len(out) > max_bytes:
        raise InputTooLarge(
            f"status list inflates beyond {max_bytes} bytes", detail={"max_bytes": max_bytes}
        )
    # Below the limit zlib consumed all input, so anything unfinished is truncation.
    if not inflater.eof:
        raise MalformedInput("status list ZLIB stream is truncated")
    if inflater.unused_data:
        raise MalformedInput("unexpected bytes after the status list ZLIB stream")
    return out
