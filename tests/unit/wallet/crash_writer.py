"""Child process for the crash test: write records forever, acknowledging each on stdout.

A line is printed only after the write method has returned, i.e. after its
transaction committed; the parent kills this process at a random moment and
then checks that every acknowledged record survived.
"""

from __future__ import annotations

import os
import sys

from wallet.store import WalletStore


def main() -> None:
    path, round_number = sys.argv[1], sys.argv[2]
    with WalletStore.open(path, passphrase=os.environ["CRASH_TEST_PASSPHRASE"]) as store:
        index = 0
        while True:
            key_id = store.new_holder_key()
            credential_id = store.add_credential(
                sd_jwt=f"eyJ.{round_number}.{index}." + "x" * 1500 + "~",
                vct="urn:crash",
                issuer="urn:issuer",
                holder_key_id=key_id,
                label=f"{round_number}-{index}",
            )
            entry_id = store.record_disclosure(
                verifier_id="v",
                verifier_user="@v:example",
                credential_id=credential_id,
                claim_paths=(("n",),),
                purpose="crash",
                outcome="disclosed",
            )
            sys.stdout.write(f"{key_id} {credential_id} {entry_id}\n")
            sys.stdout.flush()
            index += 1


if __name__ == "__main__":
    main()
