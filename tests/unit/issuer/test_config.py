"""Agency configuration: creation, loading, key permissions, rotation, bad files."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from issuer.config import (
    CONFIG_FILE,
    DEFAULT_VALIDITY_DAYS,
    AgencyConfig,
    init_agency,
    load_config,
    load_signing_key,
    public_jwks,
    render_config,
    rotate_signing_key,
    save_config,
)
from issuer.signing_keys import new_signing_key, read_private_key, write_private_key
from onceonly.errors import ConfigError
from onceonly.jose import EDDSA, ES256, generate_private_key, public_key_from_jwk

RESIDENCE = "urn:onceonly:credential:residence:1"
PID = "urn:onceonly:credential:pid:1"
AGENCY = "https://meldebehoerde.berlin.example"


def make(directory: Path, **overrides: object) -> AgencyConfig:
    settings: dict[str, object] = {
        "agency_id": AGENCY,
        "name_de": "Landesamt für Bürger- und Ordnungsangelegenheiten",
        "name_en": "Berlin Registration Office",
        "matrix_user_id": "@meldebehoerde:localhost",
        "credentials": {RESIDENCE: 365},
    }
    settings.update(overrides)
    return init_agency(directory, **settings)  # type: ignore[arg-type]


def test_init_creates_config_and_private_key(tmp_path: Path) -> None:
    config = make(tmp_path / "agency")
    assert config.path == (tmp_path / "agency" / CONFIG_FILE).resolve()
    assert config.agency_id == AGENCY
    assert config.name_de.startswith("Landesamt für Bürger")
    assert config.status_base_uri == f"{AGENCY}/status"
    assert config.issued_type(RESIDENCE).validity_seconds == 365 * 86_400
    assert config.register_database == str(tmp_path / "agency" / "register.sqlite3")
    assert config.matrix_data_dir == tmp_path / "agency" / "matrix"
    (ref,) = config.signing_keys
    assert ref.kid == config.active_kid and ref.alg == ES256
    assert oct(config.keys_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(ref.file.stat().st_mode & 0o777) == "0o600"
    key = load_signing_key(config)
    # The kid is the key's own RFC 7638 thumbprint.
    assert key.kid == key.public().thumbprint() == ref.kid
    assert oct(config.path.stat().st_mode & 0o777) == "0o600"


def test_init_with_eddsa_and_default_validities(tmp_path: Path) -> None:
    config = make(tmp_path / "a", alg=EDDSA, credentials=[PID, RESIDENCE])
    assert load_signing_key(config).alg == EDDSA
    assert config.issued_type(PID).validity_days == DEFAULT_VALIDITY_DAYS[PID] == 3650
    assert config.issues() == (PID, RESIDENCE)
    with pytest.raises(ConfigError, match="does not issue"):
        config.issued_type("urn:onceonly:credential:birth-certificate:1")


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    make(tmp_path / "a")
    with pytest.raises(ConfigError, match="already exists"):
        make(tmp_path / "a")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"agency_id": "meldebehoerde"}, "agency_id"),
        ({"agency_id": "http://meldebehoerde.example"}, "agency_id"),
        ({"matrix_user_id": "meldebehoerde"}, "matrix_user_id"),
        ({"credentials": {"urn:example:unknown": 30}}, "unknown credential type"),
        ({"credentials": {RESIDENCE: 0}}, "validity_days"),
        ({"alg": "RS256"}, "cannot create a signing key"),
    ],
)
def test_init_refuses_invalid_settings_before_writing(
    tmp_path: Path, overrides: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make(tmp_path / "a", **overrides)
    assert not (tmp_path / "a").exists()


def test_loopback_http_agency_is_allowed_for_local_runs(tmp_path: Path) -> None:
    assert make(tmp_path / "a", agency_id="http://127.0.0.1:8080").agency_id.startswith("http:")


def test_round_trip_through_the_writer(tmp_path: Path) -> None:
    config = make(tmp_path / "a", name_de='Bürgeramt "Mitte"\t\x7f\\ ß')
    again = load_config(config.path)
    assert again == config
    assert tomllib.loads(render_config(config))["agency"]["name_de"] == config.name_de


def test_dsn_is_kept_verbatim(tmp_path: Path) -> None:
    dsn = "postgresql://issuer@127.0.0.1:5432/agency"
    config = make(tmp_path / "a", register_database=dsn)
    assert config.register_database == dsn
    assert load_config(config.path).register_database == dsn


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    os.chmod(config.active_key.file, 0o644)
    with pytest.raises(ConfigError, match=r"has mode 0644.*chmod 600"):
        load_config(config.path)
    with pytest.raises(ConfigError, match="0644"):
        load_signing_key(config)
    os.chmod(config.active_key.file, 0o400)  # stricter than 0600 is fine
    assert load_signing_key(load_config(config.path)).kid == config.active_kid


def test_group_writable_key_file_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    os.chmod(config.active_key.file, 0o620)
    with pytest.raises(ConfigError, match="0620"):
        load_config(config.path)


def test_open_keys_directory_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    os.chmod(config.keys_dir, 0o755)
    with pytest.raises(ConfigError, match=r"keys directory .* has mode 0755"):
        load_config(config.path)


def test_missing_or_odd_key_files(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    config.active_key.file.unlink()
    with pytest.raises(ConfigError, match="missing"):
        load_config(config.path)
    config.active_key.file.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(config.path)


def write_key(path: Path, content: str) -> None:
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def test_key_file_with_wrong_content(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    path = config.active_key.file
    write_key(path, "not json")
    with pytest.raises(ConfigError, match="not a private JWK"):
        load_signing_key(config)
    other = generate_private_key(ES256, kid="someone-else")
    write_key(path, json.dumps(other.to_jwk()))
    with pytest.raises(ConfigError, match="holds kid 'someone-else'"):
        load_signing_key(config)
    public_only = other.public().to_jwk()
    write_key(path, json.dumps(public_only))
    with pytest.raises(ConfigError, match="not a private JWK"):
        load_signing_key(config)


def test_rotation_keeps_old_keys_and_switches_the_active_one(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    old_kid = config.active_kid
    rotated = rotate_signing_key(config, alg=EDDSA)
    assert rotated.active_kid != old_kid
    assert [ref.kid for ref in rotated.signing_keys] == [old_kid, rotated.active_kid]
    assert load_signing_key(rotated).alg == EDDSA
    assert load_signing_key(rotated, old_kid).alg == ES256
    jwks = public_jwks(rotated)
    assert [jwk["kid"] for jwk in jwks] == [rotated.active_kid, old_kid]
    assert all("d" not in jwk for jwk in jwks)
    assert public_key_from_jwk(jwks[0]).alg == EDDSA
    assert load_config(rotated.path) == rotated
    with pytest.raises(ConfigError, match="no signing key"):
        load_signing_key(rotated, "retired-long-ago")


def rewrite(config: AgencyConfig, old: str, new: str) -> None:
    text = config.path.read_text(encoding="utf-8")
    assert old in text
    config.path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('format = "onceonly-agency/1"', 'format = "v0"', "format"),
        ("[agency]", "[agency", "not valid TOML"),
        ("bits = 2", "bits = 3", "status_bits"),
        ("list_size = 131072", "list_size = 100", "status_list_size"),
        ("validity_days = 365", "validity_days = -1", "validity_days"),
        ('active_kid = "', 'active_kid = "x', "no signing key with kid"),
        ('alg = "ES256"', 'alg = "HS256"', "alg"),
        ("[status_list]", "[status_lists]", "unknown setting"),
        ('name_en = "', 'name_en = 5\nx = "', "name_en"),
    ],
)
def test_bad_configuration_files(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    config = make(tmp_path / "a")
    rewrite(config, old, new)
    with pytest.raises(ConfigError, match=fragment):
        load_config(config.path)


def test_duplicate_kids_and_types_are_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    doubled = config.model_copy(
        update={"signing_keys": (*config.signing_keys, config.signing_keys[0])}
    )
    save_config(doubled)
    with pytest.raises(ConfigError, match="share a kid"):
        load_config(config.path)
    twice = config.model_copy(update={"credentials": config.credentials * 2})
    save_config(twice)
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(config.path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nowhere.toml")


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    reloaded = load_config(moved / CONFIG_FILE)
    assert reloaded.keys_dir == moved / "keys"
    assert load_signing_key(reloaded).kid == config.active_kid


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    os.chown(config.active_key.file, 65534, -1)
    with pytest.raises(ConfigError, match="belongs to another user"):
        load_config(config.path)


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700)
    key = new_signing_key(ES256)
    path = write_private_key(keys_dir, key)
    with pytest.raises(ConfigError, match="already exists"):
        write_private_key(keys_dir, key)
    assert read_private_key(path, kid=str(key.kid), alg=ES256).to_jwk() == key.to_jwk()
    with pytest.raises(ConfigError, match="expects"):
        read_private_key(path, kid=str(key.kid), alg=EDDSA)


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path / "a")
    write_key(config.active_key.file, " " * 20_000)
    with pytest.raises(ConfigError, match="too large"):
        load_signing_key(config)
