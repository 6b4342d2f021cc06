"""Two processes binding one new Matrix account at once get clean answers, not store errors."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from issuer.register import BindingMethod, Register, parse_person
from onceonly.errors import OnceOnlyError

NOW = 1_800_000_000
ROUNDS = 25


def person(person_id: str, given_name: str) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "given_name": given_name,
        "family_name": "Schmidt",
        "birthdate": "1975-08-08",
        "claims": {},
    }


def bind_in_rounds(target: str, person_id: str, start: Any, results: Any) -> None:
    """Child process: bind one new account per round, all processes released together."""
    with Register.open(target) as register:
        for round_no in range(ROUNDS):
            start.wait()
            try:
                register.bind_matrix_user(
                    person_id, f"@citizen{round_no}:localhost", BindingMethod.EID_CHECK, NOW
                )
            except OnceOnlyError as exc:
                results.put((round_no, person_id, exc.code))
            else:
                results.put((round_no, person_id, "bound"))


def race(target: str, person_ids: list[str]) -> list[tuple[int, str, str]]:
    """Run one binding process per entry of ``person_ids``; every outcome, sorted."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(person_ids))
    results = context.Queue()
    workers = [
        context.Process(target=bind_in_rounds, args=(target, person_id, start, results))
        for person_id in person_ids
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(ROUNDS * len(person_ids))]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return sorted(outcomes)


@pytest.mark.timeout(300)
def test_two_persons_racing_for_one_account_get_one_binding_and_one_conflict(
    target: str,
) -> None:
    with Register.open(target) as register:
        register.put_person(parse_person(person("MB-1", "Thomas")))
        register.put_person(parse_person(person("MB-2", "Anna")))
    outcomes = race(target, ["MB-1", "MB-2"])
    with Register.open(target) as register:
        for round_no in range(ROUNDS):
            got = sorted(code for r, _, code in outcomes if r == round_no)
            assert got == ["bound", "identity_binding_conflict"], (round_no, got)
            winner = next(p for r, p, code in outcomes if r == round_no and code == "bound")
            user = f"@citizen{round_no}:localhost"
            assert register.person_for_matrix_user(user) == winner


@pytest.mark.timeout(300)
def test_one_person_binding_the_same_account_twice_at_once_binds_it_once(target: str) -> None:
    with Register.open(target) as register:
        register.put_person(parse_person(person("MB-1", "Thomas")))
    outcomes = race(target, ["MB-1", "MB-1"])
    assert {code for _, _, code in outcomes} == {"bound"}
    with Register.open(target) as register:
        bound = register.matrix_users_of("MB-1")
    assert sorted(bound) == sorted(f"@citizen{round_no}:localhost" for round_no in range(ROUNDS))
