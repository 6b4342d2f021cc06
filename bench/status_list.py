"""Benchmark: a 1,000,000-entry 1-bit Token Status List, ours vs a naive baseline.

Both sides do the same work in the same run on the same data (1 % of entries
revoked at seeded random positions): encode to the base64url ``lst``, decode it
back, and look up statuses. The baseline is what one writes without thinking
about packing: one Python int per entry, bit-by-bit packing and unpacking,
unbounded ``zlib.decompress``. We also time the whole verifier path
(verify an ES256 Status List JWT, then ``check_status``).

The last row feeds both sides a 64 MiB zip bomb (64 KiB compressed): ours stops
at its bound (16 MiB by default), the baseline inflates all of it (inflate only,
without unpacking, which would need gigabytes).

Run: ``.venv/bin/python bench/status_list.py`` (about a second).
"""

from __future__ import annotations

import base64
import random
import time
import zlib
from collections.abc import Callable
from typing import TypeVar

from onceonly.errors import InputTooLarge, Revoked
from onceonly.jose import b64url_encode, generate_private_key
from onceonly.status_list import (
    INVALID,
    StatusList,
    StatusReference,
    check_status,
    sign_status_list_jwt,
    verify_status_list_jwt,
)

ENTRIES = 1_000_000
REVOKED_FRACTION = 0.01
LOOKUPS = 10_000
REPEATS = 3
URI = "https://issuer.example/status/1"
NOW = 1_800_000_000

T = TypeVar("T")


def best_of(function: Callable[[], T]) -> tuple[float, T]:
    """Best wall time of REPEATS runs (seconds) and the last result."""
    best = float("inf")
    result: T
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


# --- the naive baseline ------------------------------------------------------------


def naive_encode(bits: list[int]) -> str:
    packed = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            packed[index // 8] |= 1 << (index % 8)
    return base64.urlsafe_b64encode(zlib.compress(bytes(packed), 9)).rstrip(b"=").decode()


def naive_decode(lst: str) -> list[int]:
    packed = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    return [(byte >> shift) & 1 for byte in packed for shift in range(8)]


def zip_bomb(mebibytes: int) -> bytes:
    """ZLIB stream of ``mebibytes`` MiB of zeros, built without holding them in memory."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(mebibytes)) + compressor.flush()


def main() -> None:
    rng = random.Random(20261128)
    revoked = rng.sample(range(ENTRIES), int(ENTRIES * REVOKED_FRACTION))
    probes = [rng.randrange(ENTRIES) for _ in range(LOOKUPS)]

    naive_bits = [0] * ENTRIES
    for index in revoked:
        naive_bits[index] = 1
    ours = StatusList(ENTRIES, 1)
    ours.set_many((index, INVALID) for index in revoked)

    rows: list[tuple[str, float, float]] = []
    t_ours, lst = best_of(ours.encode_lst)
    t_naive, naive_lst = best_of(lambda: naive_encode(naive_bits))
    assert lst == naive_lst, "both sides must produce the same lst"
    rows.append(("encode to lst", t_ours, t_naive))

    t_ours, decoded = best_of(lambda: StatusList.from_json({"bits": 1, "lst": lst}))
    t_naive, naive_decoded = best_of(lambda: naive_decode(naive_lst))
    rows.append(("decode lst", t_ours, t_naive))

    t_ours, found = best_of(lambda: sum(decoded.get(i) for i in probes))
    t_naive, naive_found = best_of(lambda: sum(naive_decoded[i] for i in probes))
    assert found == naive_found
    rows.append((f"{LOOKUPS:,} lookups", t_ours, t_naive))

    key = generate_private_key("ES256", kid="bench")
    token = sign_status_list_jwt(ours, key, uri=URI, issued_at=NOW, expires_at=NOW + 86400)
    public = key.public()
    reference = StatusReference(idx=probes[0], uri=URI)

    def verifier_path() -> int:
        verified = verify_status_list_jwt(token, public, uri=URI, now=NOW)
        try:
            return check_status(reference, verified, issuer_key=public, now=NOW)
        except Revoked:
            return INVALID

    t_check, _ = best_of(verifier_path)

    bomb_lst = b64url_encode(zip_bomb(64))

    def ours_rejects_bomb() -> bool:
        try:
            StatusList.from_json({"bits": 1, "lst": bomb_lst})
        except InputTooLarge:
            return True
        return False

    t_ours, rejected = best_of(ours_rejects_bomb)
    assert rejected
    # The baseline only inflates here (unpacking 2**29 bits would need gigabytes).
    bomb = base64.urlsafe_b64decode(bomb_lst + "=" * (-len(bomb_lst) % 4))
    t_naive, _ = best_of(lambda: len(zlib.decompress(bomb)) > 0)
    rows.append(("64 MiB zip bomb", t_ours, t_naive))

    print(f"Token Status List, {ENTRIES:,} entries x 1 bit, {len(revoked):,} revoked")
    print(
        f"compressed lst: {len(zlib.compress(ours.to_bytes(), 9)):,} bytes,"
        f" base64url {len(lst):,} chars, ES256 JWT {len(token):,} chars"
    )
    print(f"{'operation':<20}{'onceonly':>12}{'naive':>12}{'speed-up':>10}")
    for name, ours_s, naive_s in rows:
        print(f"{name:<20}{ours_s * 1e3:>10.1f}ms{naive_s * 1e3:>10.1f}ms{naive_s / ours_s:>9.1f}x")
    print(f"verify JWT + check_status (ours only): {t_check * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
