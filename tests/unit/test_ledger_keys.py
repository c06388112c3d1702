"""The ledger's keys from configuration: the keyring file, rotation in development, and
production's refusal of a malformed keyring."""

import base64

import pytest
from typer.testing import CliRunner

import app.settings as settings_mod
from app.cli import cli
from app.settings import Settings, get_settings, read_keyring
from grid.cases.ledger import Signer, public_key_b64

A = Signer.from_seed(base64.b64encode(b"a" * 32).decode())


def test_the_keyring_file_names_each_key_by_its_id_and_refuses_a_bad_line(tmp_path):
    keyring = tmp_path / "keyring"
    keyring.write_text(f"# retired keys\n\n{public_key_b64(A.public_key)}  # {A.key_id} retired 2026-12-04\n")
    assert set(read_keyring(keyring)) == {A.key_id}
    keyring.write_text("bm90IGEga2V5\n")
    with pytest.raises(ValueError, match="line 1"):
        read_keyring(keyring)


def test_production_refuses_to_start_with_a_malformed_keyring(tmp_path):
    keyring = tmp_path / "keyring"
    keyring.write_text("not base64 at all\n")
    settings = Settings(WUZHANG_ENV="production", WUZHANG_JWT_SECRET="s" * 40,  # type: ignore[call-arg]
                        WUZHANG_LEDGER_KEY=base64.b64encode(b"b" * 32).decode(), WUZHANG_LEDGER_KEYRING=str(keyring))  # fmt: skip
    with pytest.raises(ValueError, match="not a ledger public key"):
        settings.refuse_unsafe_production()


def test_rotating_the_development_key_replaces_it_and_keeps_the_old_public_key(tmp_path, monkeypatch):
    key_file, keyring = tmp_path / "ledger.key", tmp_path / "keyring"
    key_file.write_text(base64.b64encode(b"a" * 32).decode())
    monkeypatch.setattr(settings_mod, "DEV_LEDGER_KEY_FILE", key_file)
    monkeypatch.setenv("WUZHANG_LEDGER_KEY", "")
    monkeypatch.setenv("WUZHANG_LEDGER_KEYRING", str(keyring))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["ledger", "rotate-key"])
        assert result.exit_code == 0, result.output
        new = Signer.from_seed(key_file.read_text().strip())
        assert new.key_id != A.key_id and key_file.stat().st_mode & 0o777 == 0o600
        assert set(get_settings().ledger_keys()) == {A.key_id, new.key_id}
        listed = CliRunner().invoke(cli, ["ledger", "keys"]).output
        assert f"{A.key_id}  {public_key_b64(A.public_key)}  keyring" in listed
        assert f"{new.key_id}  {public_key_b64(new.public_key)}  signing" in listed
    finally:
        get_settings.cache_clear()
