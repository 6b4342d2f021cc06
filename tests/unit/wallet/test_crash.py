"""Kill a writer with SIGKILL at random moments; every acknowledged write must survive."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.unit.wallet.conftest import PASSPHRASE
from wallet.crypto_box import FAST_SCRYPT_FOR_TESTS
from wallet.store import WalletStore

REPO_ROOT = Path(__file__).resolve().parents[3]
ROUNDS = 8


def _run_and_kill(path: Path, round_number: int, delay: float) -> list[list[str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.wallet.crash_writer", str(path), str(round_number)],
        cwd=REPO_ROOT,
        env={**os.environ, "CRASH_TEST_PASSPHRASE": PASSPHRASE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(child.stdout or ()), daemon=True)
    reader.start()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    # Only complete lines are acknowledgements; a torn last line was never acknowledged.
    return [line.split() for line in lines if line.endswith("\n")]


def test_sigkill_loses_no_acknowledged_write(wallet_path: Path) -> None:
    WalletStore.create(wallet_path, passphrase=PASSPHRASE, scrypt=FAST_SCRYPT_FOR_TESTS).close()
    rng = random.Random(20261128)
    acknowledged: list[list[str]] = []
    for round_number in range(ROUNDS):
        # Short delays kill during start-up and unlock, longer ones mid-stream.
        delay = rng.choice([0.05, 0.2]) if round_number < 2 else rng.uniform(0.4, 1.2)
        acknowledged.extend(_run_and_kill(wallet_path, round_number, delay))

        probe = sqlite3.connect(wallet_path)
        assert probe.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        probe.close()
        with WalletStore.open(wallet_path, passphrase=PASSPHRASE) as store:
            credentials = {c.credential_id: c for c in store.credentials()}
            keys = set(store.holder_key_ids())
            history = {h.entry_id for h in store.disclosure_history()}
            for key_id, credential_id, entry_id in acknowledged:
                assert key_id in keys
                assert credentials[credential_id].holder_key_id == key_id
                assert entry_id in history
            # Consistency beyond the acknowledged ones: no credential without its key.
            assert all(c.holder_key_id in keys for c in credentials.values())
    print(f"acknowledged writes: {len(acknowledged)}")
    assert len(acknowledged) > 50, "the writer hardly wrote anything; the test proves little"
