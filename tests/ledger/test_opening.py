"""No accidental ledgers: a SQLite file is created only when asked (`boda init`, `boda build`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from boda.errors import EXIT_NOT_FOUND, NotFound
from boda.ledger import open_ledger
from boda.locations import LedgerLocation
from boda.types import Digest
from fixtures.config import boda_toml


def test_a_missing_sqlite_file_is_not_found_and_not_created(tmp_path: Path) -> None:
    url = "sqlite:///.boda/ledger.db"
    with pytest.raises(NotFound) as caught:
        open_ledger(url, base_dir=tmp_path)
    error = caught.value
    assert error.exit_code == EXIT_NOT_FOUND
    assert error.message == f"ledger {url}: there is no ledger file {tmp_path / '.boda' / 'ledger.db'}"
    assert error.hint is not None and "boda init" in error.hint
    assert not (tmp_path / ".boda").exists()


def test_create_makes_the_file_and_later_opens_find_it(tmp_path: Path) -> None:
    location = LedgerLocation.parse("sqlite:///deep/er/ledger.db", base_dir=tmp_path)
    with open_ledger(location, create=True) as ledger:
        ledger.pin("shop/web", Digest.of(b"x"), reason="keep", by="ci")
    assert (tmp_path / "deep" / "er" / "ledger.db").is_file()
    with open_ledger(location) as ledger:
        assert ledger.apps() == ["shop/web"]
    with open_ledger(location, create=True) as ledger:  # creating an existing ledger just opens it
        assert ledger.apps() == ["shop/web"]


def test_memory_ledgers_need_no_creating() -> None:
    with open_ledger("sqlite:///:memory:") as ledger:
        assert ledger.apps() == []


@pytest.mark.postgres
def test_postgres_needs_no_creating(postgres_url: str) -> None:
    with open_ledger(postgres_url) as ledger:
        assert ledger.apps() == []


KEEP_FIVE = {
    "rulePriority": 1,
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
    "action": {"type": "expire"},
}


def test_commands_other_than_init_and_build_never_create_a_ledger(
    boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    (tmp_path / "boda.toml").write_text(boda_toml(registry="oci-layout:registry", ledger="sqlite:///typo.db"))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"rules": [KEEP_FIVE]}))
    for args in (
        ["status", "shop/web"],
        ["history", "shop/web"],
        ["gc", "plan", "shop/web", "--policy", str(policy)],
    ):
        run = boda(*args)
        assert run.code == EXIT_NOT_FOUND, (args, run.err)
        assert f"there is no ledger file {tmp_path / 'typo.db'}" in run.err
        assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "typo.db").exists()


def test_init_creates_the_ledger_its_config_names(
    boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    run = boda("init")
    assert run.code == 0, run.err
    assert (tmp_path / ".boda" / "ledger.db").is_file()
    assert "ledger ready: sqlite:///.boda/ledger.db" in run.err
    assert boda("status", "shop/web").code == EXIT_NOT_FOUND  # an unknown app now, not a missing ledger
