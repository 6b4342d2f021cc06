"""Verifier throughput: presentations verified per second, with trust and status checks.

Same machine, same inputs (residence SD-JWT VCs presented with 2 of 10 claims and a
KB-JWT, ES256 throughout), one run:

* ``sd-jwt core``      - onceonly's RFC 9901 verification of one presentation
  (issuer signature with the key given, disclosures, KB-JWT, aud, nonce);
* ``reference core``   - the IETF reference implementation's verifier
  (``sd-jwt`` 0.10.4, ``SDJWTVerifier``) on the very same presentation strings;
* ``+ trust + query + status`` - onceonly's verifier checks on top of the core:
  issuer key chosen from the trust list (key window at ``iat``, allowed ``vct``),
  the DCQL query satisfied, the status list entry checked (token from the warm cache);
* ``full verifier``    - :meth:`verifier.verification.Verifier.verify_response`
  end to end: nonce consumed in the store, everything above, audit entry appended
  (SQLite with ``synchronous=FULL`` by default, or ``--store postgresql://...``).

The reference verifier has no trust list, query or status check, so only the first
two rows compare like with like; the others show what the extra checks and the
durable bookkeeping cost. Operations are measured in interleaved rounds and each
one's best round is reported. Run: ``python bench/verification.py [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from onceonly.sdjwt import VerificationPolicy, verify_presentation
from onceonly.status_cache import StatusCache, verify_status_token
from onceonly.status_list import check_status, status_reference_from_claims
from onceonly.types import ExchangeId
from verifier.audit_log import AuditLog
from verifier.evidence import EvidenceArchive
from verifier.nonce_store import NonceStore
from verifier.requests import PendingRequest
from verifier.verification import (
    Verifier,
    VerifierOptions,
    check_presentations,
    status_key_resolver,
)

# The test world (trust list, issuer, holder, status list) is shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.unit.verifier.verification_world import (
    CITIZEN,
    ISSUER_ID,
    PURPOSE,
    VERIFIER_ID,
    World,
    address_query,
)

NONCE = "bench-nonce-0123456789abcdef"


def rate(func: Callable[[], Any], seconds: float) -> float:
    """Operations per second of ``func`` over roughly ``seconds`` of wall time."""
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            func()
        count += 10
        now = time.perf_counter()
        if now - start >= seconds:
            return count / (now - start)


def best_rates(ops: dict[str, Callable[[], Any]], seconds: float, rounds: int) -> dict[str, float]:
    """Interleave short runs of every operation and keep each one's best rate."""
    for func in ops.values():
        func()
    best = dict.fromkeys(ops, 0.0)
    for _ in range(rounds):
        for name, func in ops.items():
            best[name] = max(best[name], rate(func, seconds / rounds))
    return best


def full_rate(world: World, store: str, evidence: Path, count: int) -> float:
    """Presentations per second through ``Verifier.verify_response`` with real stores."""
    trust = world.verified_trust()
    credential = world.credential()
    nonces = NonceStore.open(store)
    audit = AuditLog.open(store, signing_key=world.verifier, head_every=100)
    verifier = Verifier(
        verifier_id=VERIFIER_ID,
        trust=lambda _now: trust,
        nonces=nonces,
        audit=audit,
        status=StatusCache(world.fetch),
        evidence=EvidenceArchive(evidence),
    )
    work = []
    for n in range(count):  # requests and presentations are prepared outside the timing
        exchange = ExchangeId(f"bench-exchange-{n:08d}")
        issued = nonces.issue(exchange_id=exchange, audience=VERIFIER_ID, now=world.now, ttl=600)
        pending = PendingRequest(
            exchange_id=exchange,
            citizen=CITIZEN,
            verifier_id=VERIFIER_ID,
            nonce=issued.nonce,
            query=address_query(),
            purpose=PURPOSE,
            created_at=world.now,
            expires_at=issued.expires_at,
        )
        work.append((pending, {"residence": [world.present(credential, nonce=issued.nonce)]}))

    async def run() -> float:
        await verifier.verify_response(*work[0], now=world.now + 1)  # warm the status cache
        start = time.perf_counter()
        for pending, vp_token in work[1:]:
            result = await verifier.verify_response(pending, vp_token, now=world.now + 1)
            assert result.verified, result.error_code
        return (len(work) - 1) / (time.perf_counter() - start)

    try:
        return asyncio.run(run())
    finally:
        nonces.close()
        audit.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per operation")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--full", type=int, default=400, help="presentations for the full run")
    parser.add_argument("--store", help="postgresql:// DSN for the full run (default: SQLite)")
    args = parser.parse_args()

    world = World(now=int(time.time()))
    trust = world.verified_trust().trust_list
    presentation = world.present(world.credential(), nonce=NONCE)
    issuer_public = world.issuer.public()
    policy = VerificationPolicy(expected_audience=VERIFIER_ID, expected_nonce=NONCE)
    status_token, status_key = verify_status_token(
        world.status_token(),
        status_key_resolver(trust, ISSUER_ID),
        uri="https://buergeramt.example/status/1",
        now=world.now,
    )
    query, options = address_query(), VerifierOptions()

    def core() -> Any:
        return verify_presentation(
            presentation, issuer_key=issuer_public, policy=policy, now=world.now
        )

    ref_issuer = JWK(**issuer_public.to_jwk())

    def reference() -> Any:
        return SDJWTVerifier(
            presentation,
            lambda _iss, _header: ref_issuer,
            expected_aud=VERIFIER_ID,
            expected_nonce=NONCE,
        ).get_verified_payload()

    def checked() -> Any:
        parts = check_presentations(
            {"residence": [presentation]},
            query=query,
            trust_list=trust,
            audience=VERIFIER_ID,
            nonce=NONCE,
            now=world.now,
            options=options,
        )
        for _, credential in parts:
            entry = status_reference_from_claims(credential.claims)
            check_status(entry, status_token, issuer_key=status_key, now=world.now)
        return parts

    assert core().claims["address"] == {"locality": "Köln"}
    assert reference()["address"] == {"locality": "Köln"}
    assert checked()[0][1].claims["address"] == {"locality": "Köln"}

    measured = best_rates(
        {"sd-jwt core": core, "reference core": reference, "+ trust + query + status": checked},
        args.seconds,
        args.rounds,
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "verifier.sqlite3")
        measured["full verifier"] = full_rate(world, store, Path(tmp) / "evidence", args.full)
    backend = "PostgreSQL" if args.store else "SQLite, synchronous=FULL"

    ref = measured["reference core"]
    print(f"{'check':<26} {'per second':>11} {'x reference core':>17}")
    for name, value in measured.items():
        print(f"{name:<26} {value:>11,.0f} {value / ref:>16.1f}x")
    print(f"full verifier: nonce store + audit log on {backend}, {args.full} presentations")


if __name__ == "__main__":
    main()
