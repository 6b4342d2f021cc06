"""Synapse configuration, settings and secrets of the local homeserver (no Synapse started)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from onceonly.errors import ConfigError
from onceonly.matrix import homeserver_config as cfg
from onceonly.matrix.homeserver import Homeserver, default_data_dir


def settings(**kwargs: object) -> cfg.HomeserverSettings:
    return cfg.HomeserverSettings.model_validate(kwargs)


def test_listener_is_loopback_client_only(tmp_path: Path) -> None:
    config = cfg.synapse_config(settings(port=18008), tmp_path)
    assert config["listeners"] == [
        {
            "port": 18008,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": False,
            "x_forwarded": False,
            "resources": [{"names": ["client"], "compress": False}],
        }
    ]
    assert config["public_baseurl"] == "http://127.0.0.1:18008/"


def test_security_relevant_defaults(tmp_path: Path) -> None:
    config = cfg.synapse_config(settings(), tmp_path)
    assert config["server_name"] == "localhost"
    assert config["enable_registration"] is False
    assert config["registration_shared_secret_path"] == str(tmp_path / "registration_shared_secret")
    assert "registration_shared_secret" not in config  # the secret itself is not in the config
    assert "macaroon_secret_key" not in config
    assert config["report_stats"] is False
    assert config["suppress_key_server_warning"] is True
    assert config["trusted_key_servers"] == []
    assert config["federation_domain_whitelist"] == []
    assert config["url_preview_enabled"] is False
    assert config["max_upload_size"] == "50M"
    assert config["media_store_path"] == str(tmp_path / "media_store")
    assert config["signing_key_path"] == str(tmp_path / "signing.key")
    assert config["database"] == {
        "name": "sqlite3",
        "args": {"database": str(tmp_path / "homeserver.db")},
    }


def test_rate_limits_keep_synapse_defaults_unless_relaxed_explicitly(tmp_path: Path) -> None:
    # The default (what `onceonly homeserver start` writes) keeps every Synapse limit,
    # failed logins included; agencies are exempted per account, not for everyone.
    assert cfg.HomeserverSettings().relaxed_rate_limits is False
    default = cfg.synapse_config(settings(), tmp_path)
    assert not [key for key in default if key.startswith("rc_")]
    merged = cfg.merge_settings(
        None, port=None, server_name=None, postgres_dsn=None, relaxed_rate_limits=None
    )
    assert merged.relaxed_rate_limits is False
    relaxed = cfg.synapse_config(settings(relaxed_rate_limits=True), tmp_path)
    for key in ("rc_message", "rc_registration", "rc_key_requests", "rc_joins_per_room"):
        assert relaxed[key]["per_second"] >= 1000, key
    assert relaxed["rc_login"]["failed_attempts"]["burst_count"] >= 1000
    assert relaxed["rc_invites"]["per_user"]["per_second"] >= 1000


def test_onceonly_aliases_are_reserved_by_a_module(tmp_path: Path) -> None:
    config = cfg.synapse_config(settings(), tmp_path)
    assert config["modules"] == [{"module": cfg.ALIAS_GUARD_MODULE, "config": {}}]
    module_name, class_name = cfg.ALIAS_GUARD_MODULE.rsplit(".", 1)
    module = __import__(module_name, fromlist=[class_name])
    assert callable(getattr(module, class_name))  # Synapse imports exactly this path


def test_postgres_dsn_becomes_psycopg2_arguments(tmp_path: Path) -> None:
    dsn = "postgresql://synapse:secret@127.0.0.1:5433/hs?connect_timeout=3"
    config = cfg.synapse_config(settings(database={"kind": "postgresql", "dsn": dsn}), tmp_path)
    database = config["database"]
    assert database["name"] == "psycopg2"
    assert database["allow_unsafe_locale"] is True
    assert database["args"] == {
        "user": "synapse",
        "password": "secret",
        "host": "127.0.0.1",
        "port": "5433",
        "dbname": "hs",
        "connect_timeout": "3",
        "cp_min": 2,
        "cp_max": 10,
    }


def test_malformed_dsn_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DSN"):
        cfg.synapse_config(settings(database={"kind": "postgresql", "dsn": "host='x"}), tmp_path)


def test_log_config_writes_warnings_to_a_file(tmp_path: Path) -> None:
    log = cfg.log_config(tmp_path)
    assert log["root"] == {"level": "WARNING", "handlers": ["file"]}
    assert log["handlers"]["file"]["filename"] == str(tmp_path / "homeserver.log")


def test_merge_keeps_stored_values_and_allows_port_change() -> None:
    stored = settings(server_name="agency.test", port=9000, relaxed_rate_limits=False)
    same = cfg.merge_settings(
        stored, port=None, server_name=None, postgres_dsn=None, relaxed_rate_limits=None
    )
    assert same == stored
    moved = cfg.merge_settings(
        stored, port=9001, server_name="agency.test", postgres_dsn=None, relaxed_rate_limits=True
    )
    assert (moved.port, moved.server_name, moved.relaxed_rate_limits) == (
        9001,
        "agency.test",
        True,
    )


def test_merge_refuses_to_change_identity_or_database() -> None:
    stored = settings(server_name="agency.test")
    with pytest.raises(ConfigError, match="server name"):
        cfg.merge_settings(
            stored, port=None, server_name="other.test", postgres_dsn=None, relaxed_rate_limits=None
        )
    with pytest.raises(ConfigError, match="sqlite"):
        cfg.merge_settings(
            stored,
            port=None,
            server_name=None,
            postgres_dsn="postgresql://127.0.0.1/x",
            relaxed_rate_limits=None,
        )


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_invalid_port_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError):
        cfg.merge_settings(
            None, port=port, server_name=None, postgres_dsn=None, relaxed_rate_limits=None
        )


def test_invalid_settings_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / cfg.SETTINGS_FILE).write_text('{"version": 1, "port": "many"}')
    with pytest.raises(ConfigError, match="not a valid"):
        cfg.load_settings(tmp_path)
    assert cfg.load_settings(tmp_path / "nowhere") is None


def test_secrets_are_private_generated_once_and_well_formed(tmp_path: Path) -> None:
    cfg.ensure_secrets(tmp_path)
    names = ["signing.key", "registration_shared_secret", "macaroon_secret_key", "form_secret"]
    first = {name: (tmp_path / name).read_text() for name in names}
    for name in names:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    cfg.ensure_secrets(tmp_path)
    assert {name: (tmp_path / name).read_text() for name in names} == first

    alg, version, seed = first["signing.key"].split()
    assert alg == "ed25519"
    assert version.startswith("a_")
    assert len(base64.b64decode(seed + "=" * (-len(seed) % 4))) == 32
    assert len(cfg.read_shared_secret(tmp_path / "registration_shared_secret")) >= 32

    other = tmp_path / "other"
    other.mkdir()
    cfg.ensure_secrets(other)
    assert (other / "registration_shared_secret").read_text() != first["registration_shared_secret"]


def test_missing_or_empty_shared_secret_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        cfg.read_shared_secret(tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        cfg.read_shared_secret(tmp_path / "empty")


def test_write_private_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        cfg.write_private(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_ensure_config_writes_yaml_synapse_can_read(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    server = Homeserver.from_data_dir(tmp_path / "hs", port=18123, server_name="agency.test")
    server.ensure_config()
    loaded = yaml.safe_load((tmp_path / "hs" / "homeserver.yaml").read_text())
    assert loaded == cfg.synapse_config(server.settings, (tmp_path / "hs").absolute())
    assert yaml.safe_load((tmp_path / "hs" / "log_config.yaml").read_text())["version"] == 1
    stored = json.loads((tmp_path / "hs" / cfg.SETTINGS_FILE).read_text())
    assert stored["port"] == 18123
    assert stat.S_IMODE((tmp_path / "hs").stat().st_mode) == 0o700
    # Reopening without options keeps what was stored.
    again = Homeserver.from_data_dir(tmp_path / "hs")
    assert (again.port, again.server_name, again.base_url) == (
        18123,
        "agency.test",
        "http://127.0.0.1:18123",
    )
    assert again.user_id("tax") == "@tax:agency.test"


def test_default_data_dir_follows_onceonly_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONCEONLY_HOME", raising=False)
    assert default_data_dir() == Path("var/homeserver")
    monkeypatch.chdir(tmp_path)
    assert Homeserver.from_data_dir().data_dir == tmp_path / "var" / "homeserver"
    monkeypatch.setenv("ONCEONLY_HOME", str(tmp_path / "home"))
    assert Homeserver.from_data_dir().data_dir == tmp_path / "home" / "homeserver"
