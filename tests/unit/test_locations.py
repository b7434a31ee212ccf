"""Registry and ledger locations: parsed once, the same way for the config and for references."""

from __future__ import annotations

from pathlib import Path

import pytest

from boda.config import parse_config
from boda.errors import ConfigError, UsageError
from boda.locations import LedgerLocation, RegistryLocation, redact_url
from boda.registry import open_registry


@pytest.mark.parametrize(
    ("text", "kind", "name", "url"),
    [
        ("http://127.0.0.1:5000", "oci", "127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.0.0.1:5000", "oci", "127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000/", "oci", "localhost:5000", "http://localhost:5000"),
        ("[::1]:5000", "oci", "[::1]:5000", "http://[::1]:5000"),
        ("registry.example.com", "oci", "registry.example.com", "https://registry.example.com"),
        ("https://ghcr.io", "oci", "ghcr.io", "https://ghcr.io"),
        (
            "ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ecr",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ecr",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
    ],
)
def test_registry_urls_parse_to_one_value(text: str, kind: str, name: str, url: str) -> None:
    location = RegistryLocation.parse(text)
    assert (location.kind, location.name, str(location)) == (kind, name, url)
    assert RegistryLocation.parse(str(location)) == location


def test_ecr_location_knows_account_and_region() -> None:
    location = RegistryLocation.parse("ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert (location.ecr_account, location.ecr_region) == ("123456789012", "eu-west-1")


def test_layout_paths_are_anchored_and_absolute(tmp_path: Path) -> None:
    location = RegistryLocation.parse("oci-layout:reg", base_dir=tmp_path)
    assert location.kind == "layout" and location.path == (tmp_path / "reg").resolve()
    assert location.reference_prefix("shop/web") == f"oci-layout:{(tmp_path / 'reg').resolve()}:shop/web"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        (" http://127.0.0.1:5000", "spaces"),
        ("ftp://host", "scheme"),
        ("http://registry.example.com", "plain http"),
        ("https://host/path", "without a path"),
        ("https://host:port", "not a host"),
        ("ecr://example.com", "ACCOUNT.dkr.ecr.REGION"),
        ("oci-layout:", "needs a folder"),
    ],
)
def test_malformed_registry_urls_are_refused(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as caught:
        RegistryLocation.parse(text)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("text", ["https://alice:s3cret@registry.example.com", "alice:s3cret@127.0.0.1:5000"])
def test_credentials_in_a_registry_url_are_refused_and_never_shown(text: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        RegistryLocation.parse(text)
    assert "s3cret" not in caught.value.diagnostics() and "config.json" in caught.value.diagnostics()
    with pytest.raises(ConfigError) as in_config:
        parse_config(f'registry = "{text}"\n', tmp_path / "boda.toml")
    assert "s3cret" not in in_config.value.diagnostics() and in_config.value.exit_code == 2
    with pytest.raises(UsageError) as opening:
        open_registry(text)
    assert "s3cret" not in opening.value.diagnostics()


def test_insecure_hosts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BODA_INSECURE_REGISTRIES", "registry.lan:5000, other.lan")
    assert RegistryLocation.parse("registry.lan:5000").scheme == "http"
    assert RegistryLocation.parse("http://other.lan").scheme == "http"
    assert RegistryLocation.parse("third.lan").scheme == "https"
    assert RegistryLocation.parse("http://third.lan", insecure=True).scheme == "http"


def test_the_config_and_open_registry_agree_on_a_bare_host(tmp_path: Path) -> None:
    config = parse_config(
        'registry = "127.0.0.1:5000"\n[[environments]]\nname = "dev"\n', tmp_path / "boda.toml"
    )
    assert config.registry == RegistryLocation.parse("127.0.0.1:5000")
    registry = open_registry("127.0.0.1:5000")
    try:
        assert registry.name == config.registry.name
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("text", "kind", "shown"),
    [
        ("sqlite:///:memory:", "sqlite", "sqlite:///:memory:"),
        ("postgresql://boda@127.0.0.1:5432/boda", "postgres", "postgresql://boda@127.0.0.1:5432/boda"),
        ("postgres://u:pw@db/boda?sslmode=require", "postgres", "postgres://u:***@db/boda?sslmode=require"),
    ],
)
def test_ledger_urls(text: str, kind: str, shown: str) -> None:
    location = LedgerLocation.parse(text)
    assert (location.kind, str(location)) == (kind, shown)
    assert "pw" not in repr(location)


def test_sqlite_paths_are_anchored(tmp_path: Path) -> None:
    assert LedgerLocation.parse("sqlite:///x/l.db", base_dir=tmp_path).path == tmp_path / "x" / "l.db"
    assert LedgerLocation.parse("sqlite:////abs/l.db").path == Path("/abs/l.db")


@pytest.mark.parametrize(
    "text",
    [
        "mysql://x/y",
        "sqlite:///",
        "sqlite:///x.db?mode=ro",
        "postgresql://u:secret@h",
        "postgresql://u:secret@[::1/boda",
        "postgresql://u:secret@h:99999999/boda",
        "postgresql://u:secret@h:port/boda",
    ],
)
def test_malformed_ledger_urls_give_one_line_without_the_password(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        LedgerLocation.parse(text)
    assert caught.value.exit_code == 2 and "secret" not in caught.value.diagnostics()
    assert "\n" not in caught.value.diagnostics()


def test_redact_url_hides_passwords_only() -> None:
    assert redact_url("postgresql://u:p@h/db?password=x&sslmode=require") == (
        "postgresql://u:***@h/db?password=***&sslmode=require"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
