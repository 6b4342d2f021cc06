"""Wallet store and DCQL matching at 10,000 credentials, against a plain-SQLite peer.

One run, same machine:

* insert  - N real SD-JWT VCs (~2 KB each, P-256, ~15 disclosures), each with its
  own holder key, one committed transaction per write (WAL, synchronous=FULL);
* open    - reopen and unlock the wallet (scrypt at the strong default, n=2**17);
* decrypt - list and decrypt every credential;
* parse   - turn every stored SD-JWT into a HeldCredential for matching;
* match   - p50/p95 of Q DCQL queries (mixed: nested claims, array wildcards,
  values, claim_sets, credential_sets) against all N held credentials;
* memory  - tracemalloc peak while decrypting and parsing everything, and the
  process's maximum resident set size.

The peer is the same rows in a plain, unencrypted SQLite table read the same
way: the difference is what encryption at rest costs. Run:
``python bench/wallet.py [--count 10000] [--queries 100] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

# This file is named like the ``wallet`` package; drop its own directory from the
# import path so that ``import wallet`` finds the package, not this script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from onceonly.jose import generate_private_key  # noqa: E402
from onceonly.query import DcqlQuery, HeldCredential, find_candidates, parse_query  # noqa: E402
from onceonly.sdjwt import issue_sd_jwt_vc  # noqa: E402
from onceonly.sdjwt.serialization import compact_without_kb  # noqa: E402
from wallet.crypto_box import ScryptParams  # noqa: E402
from wallet.holdings import held_credential  # noqa: E402
from wallet.records import StatusReference, StoredCredential  # noqa: E402
from wallet.store import WalletStore  # noqa: E402

PASSPHRASE = "bench passphrase with several words"
VCTS = [f"https://credentials.gov.example/{name}" for name in ("pid", "residence", "vehicle")]
VCTS += [f"https://credentials.gov.example/{name}" for name in ("income", "birth")]
CITIES = ["Berlin", "Hamburg", "Köln", "München", "Leipzig", "Bremen", "Dresden", "Kiel"]


def person_claims(rng: random.Random, index: int) -> dict[str, Any]:
    city = rng.choice(CITIES)
    return {
        "given_name": rng.choice(["Erika", "Max", "Leila", "Jonas", "Mia", "Aylin"]),
        "family_name": f"Mustermann-{index}",
        "birthdate": f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "birth_place": {"locality": rng.choice(CITIES), "country": "DE"},
        "address": {
            "street_address": f"Heidestraße {rng.randint(1, 200)}",
            "locality": city,
            "postal_code": f"{rng.randint(10000, 99999)}",
            "country": "DE",
        },
        "nationalities": rng.sample(["DE", "FR", "IT", "PL", "TR", "NL"], k=rng.randint(1, 3)),
        "age_over_18": True,
        "age_over_65": rng.random() < 0.2,
        "document_number": f"T{rng.randint(10**8, 10**9 - 1)}",
    }


DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("birth_place",),
    ("address",),
    ("address", "street_address"),
    ("address", "locality"),
    ("address", "postal_code"),
    ("nationalities", None),
    ("age_over_18",),
    ("age_over_65",),
    ("document_number",),
]


def fill_wallet(store: WalletStore, count: int, rng: random.Random) -> dict[str, float]:
    issuer_key = generate_private_key(kid="issuer-1")
    spent = {"holder_key": 0.0, "issue": 0.0, "insert": 0.0}
    sizes = []
    for index in range(count):
        started = time.perf_counter()
        key_id = store.new_holder_key()
        holder_public = store.holder_public_key(key_id)
        issued_at = time.perf_counter()
        vct = VCTS[index % len(VCTS)]
        issued = issue_sd_jwt_vc(
            issuer="https://register.gov.example",
            vct=vct,
            claims=person_claims(rng, index),
            disclosable=DISCLOSABLE,
            holder_key=holder_public,
            signing_key=issuer_key,
            now=1_760_000_000,
            expires_at=1_860_000_000,
            status={"status_list": {"idx": index, "uri": "https://status.gov.example/1"}},
            random_bytes=os.urandom,
        )
        text = compact_without_kb(
            issued.issuer_jwt, [item.disclosure.encoded for item in issued.disclosures]
        )
        sizes.append(len(text))
        inserted_at = time.perf_counter()
        store.add_credential(
            sd_jwt=text,
            vct=vct,
            issuer="https://register.gov.example",
            holder_key_id=key_id,
            status=StatusReference(idx=index, uri="https://status.gov.example/1"),
            label=f"credential {index}",
        )
        done = time.perf_counter()
        spent["holder_key"] += issued_at - started
        spent["issue"] += inserted_at - issued_at
        spent["insert"] += done - inserted_at
    spent["mean_sd_jwt_bytes"] = statistics.fmean(sizes)
    return spent


def make_queries(rng: random.Random, count: int) -> list[DcqlQuery]:
    def cq(qid: str, vct: str, claims: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        base = {"id": qid, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]}, "claims": claims}
        return base | extra

    templates = [
        lambda: {"credentials": [cq("pid", rng.choice(VCTS), [{"path": ["family_name"]}])]},
        lambda: {
            "credentials": [
                cq(
                    "home",
                    rng.choice(VCTS),
                    [
                        {"path": ["address", "locality"], "values": [rng.choice(CITIES)]},
                        {"path": ["address", "postal_code"]},
                    ],
                )
            ]
        },
        lambda: {
            "credentials": [
                cq("nat", rng.choice(VCTS), [{"path": ["nationalities", None], "values": ["FR"]}])
            ]
        },
        lambda: {
            "credentials": [
                cq(
                    "age",
                    rng.choice(VCTS),
                    [
                        {"id": "o65", "path": ["age_over_65"], "values": [True]},
                        {"id": "bd", "path": ["birthdate"]},
                    ],
                    claim_sets=[["o65"], ["bd"]],
                )
            ]
        },
        lambda: {
            "credentials": [
                cq("a", VCTS[0], [{"path": ["given_name"]}, {"path": ["birth_place"]}]),
                cq("b", VCTS[1], [{"path": ["address"]}]),
                cq("c", VCTS[3], [{"path": ["document_number"]}]),
            ],
            "credential_sets": [{"options": [["a"], ["b", "c"]]}],
        },
    ]
    return [parse_query(rng.choice(templates)()) for _ in range(count)]


def time_matching(queries: list[DcqlQuery], held: list[HeldCredential]) -> dict[str, float]:
    timings, candidates = [], 0
    for query in queries:
        started = time.perf_counter()
        match = find_candidates(query, held)
        timings.append(time.perf_counter() - started)
        candidates += sum(len(result.candidates) for result in match.results)
    timings.sort()
    return {
        "p50_ms": 1000 * statistics.median(timings),
        "p95_ms": 1000 * timings[int(0.95 * (len(timings) - 1))],
        "max_ms": 1000 * timings[-1],
        "mean_candidates": candidates / len(queries),
    }


REPEATS = 3


def _timed(func: Any) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def plain_sqlite_peer(directory: Path, rows: list[tuple[str, str]]) -> float:
    """Read-all time of the same records stored unencrypted (same journal and decoding)."""
    db = sqlite3.connect(directory / "plain.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE credentials (credential_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO credentials VALUES (?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    db = sqlite3.connect(directory / "plain.db")
    query = "SELECT credential_id, body FROM credentials ORDER BY rowid"
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        loaded = [StoredCredential.model_validate_json(body) for _, body in db.execute(query)]
        best = min(best, time.perf_counter() - started)
    db.close()
    assert len(loaded) == len(rows)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--scrypt-log2-n", type=int, default=17)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rng = random.Random(7)
    scrypt = ScryptParams(n=2**args.scrypt_log2_n)
    figures: dict[str, Any] = {"count": args.count, "scrypt_n": scrypt.n}
    with tempfile.TemporaryDirectory(prefix="wallet-bench-") as tmp:
        path = Path(tmp) / "wallet.db"
        started = time.perf_counter()
        with WalletStore.create(path, passphrase=PASSPHRASE, scrypt=scrypt) as store:
            figures["create_s"] = time.perf_counter() - started
            fill = fill_wallet(store, args.count, rng)
        figures["fill_mean_sd_jwt_bytes"] = fill.pop("mean_sd_jwt_bytes")
        figures.update({f"fill_{name}_s": value for name, value in fill.items()})
        figures["file_mib"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20

        started = time.perf_counter()
        store = WalletStore.open(path, passphrase=PASSPHRASE)  # the peer has no unlock step
        figures["open_unlock_s"] = time.perf_counter() - started
        started = time.perf_counter()
        credentials = store.credentials()
        figures["decrypt_all_first_s"] = time.perf_counter() - started
        figures["decrypt_all_best_s"] = min(_timed(store.credentials) for _ in range(REPEATS))
        started = time.perf_counter()
        held = [held_credential(credential) for credential in credentials]
        figures["parse_all_s"] = time.perf_counter() - started
        figures["match"] = time_matching(make_queries(rng, args.queries), held)

        rows = [(c.credential_id, c.model_dump_json()) for c in credentials]
        figures["peer_plain_sqlite_read_all_best_s"] = plain_sqlite_peer(Path(tmp), rows)
        del credentials, held, rows

        tracemalloc.start()
        again = [held_credential(credential) for credential in store.credentials()]
        figures["tracemalloc_peak_mib_decrypt_and_parse"] = (
            tracemalloc.get_traced_memory()[1] / 2**20
        )
        tracemalloc.stop()
        store.close()
        assert len(again) == args.count
    figures["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    match = figures.pop("match")
    for name, value in figures.items():
        print(f"{name:42s} {value:12.3f}" if isinstance(value, float) else f"{name:42s} {value}")
    for name, value in match.items():
        print(f"{'match_' + name:42s} {value:12.3f}")


if __name__ == "__main__":
    main()
