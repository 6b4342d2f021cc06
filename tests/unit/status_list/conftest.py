"""Keys and a sample list shared by the status list tests."""

from __future__ import annotations

import pytest

from onceonly.jose import EDDSA, ES256, PrivateKey, generate_private_key
from onceonly.status_list import INVALID, SUSPENDED, StatusList

URI = "https://issuer.example/status/1"
NOW = 1_800_000_000


@pytest.fixture(params=[ES256, EDDSA])
def issuer_key(request: pytest.FixtureRequest) -> PrivateKey:
    return generate_private_key(request.param, kid="status-1")


@pytest.fixture
def other_key(issuer_key: PrivateKey) -> PrivateKey:
    return generate_private_key(issuer_key.alg, kid="status-1")


@pytest.fixture
def sample_list() -> StatusList:
    status_list = StatusList(1024, 2)
    status_list.set(3, INVALID)
    status_list.set(4, SUSPENDED)
    status_list.set(5, 3)  # application-specific
    return status_list
