"""PartyClient outside a running homeserver: construction does nothing, misuse is typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from onceonly.errors import AccountError, ConfigError, MalformedInput, TransportError
from onceonly.matrix.client import PartyClient
from onceonly.matrix.devices import AllDevicesOf
from onceonly.matrix.inbox import Inbound


async def _ignore(_item: Inbound) -> None:
    return None


def _client(data_dir: Path) -> PartyClient:
    return PartyClient(data_dir, device_policy=AllDevicesOf(()), handler=_ignore)


async def test_constructor_touches_nothing_and_unstarted_use_is_a_transport_error(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "party"
    client = _client(data_dir)
    assert not data_dir.exists()
    with pytest.raises(TransportError):
        await client.send("!r:hs", "t", {})
    with pytest.raises(TransportError):
        await client.ensure_direct_room("@p:hs")
    with pytest.raises(TransportError):
        _ = client.store


async def test_start_without_an_account_file_is_an_account_error(tmp_path: Path) -> None:
    with pytest.raises(AccountError):
        await _client(tmp_path).start()


async def test_start_with_a_broken_account_file_is_malformed_input(tmp_path: Path) -> None:
    (tmp_path / "account.json").write_text('{"homeserver": 1}')
    with pytest.raises(MalformedInput):
        await _client(tmp_path).start()


async def test_fewer_than_one_parallel_room_is_a_config_error_before_anything_opens(
    tmp_path: Path,
) -> None:
    client = PartyClient(
        tmp_path, device_policy=AllDevicesOf(()), handler=_ignore, max_parallel_rooms=0
    )
    with pytest.raises(ConfigError):
        await client.start()
    assert list(tmp_path.iterdir()) == []
