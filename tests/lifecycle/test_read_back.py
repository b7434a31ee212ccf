"""A promotion whose registry reports another digest is an error, and the ledger records nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.errors import DigestMismatch
from boda.registry import open_registry
from boda.services.context import Context
from boda.services.promote import promote
from boda.types import Digest, Manifest
from conftest import make_project


class Lying:
    """A real backend whose manifest PUT reports a digest other than the one it was given."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def manifest_put(self, repo: str, ref: str, manifest: Manifest) -> Digest:
        self._real.manifest_put(repo, ref, manifest)
        return Digest.of(b"something else")


@pytest.mark.parametrize("strategy", ["tags", "repos"])
def test_mismatching_read_back_records_nothing(
    tmp_path: Path, sqlite_url: str, boda: Any, strategy: str
) -> None:
    p = make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, strategy, boda)
    app = p.app("liar")
    commit, _digest = p.build(app, 0)
    config = load_config(p.config)
    ctx = Context(config, _registry=Lying(open_registry(config.registry, base_dir=config.base_dir)))  # type: ignore[arg-type]
    try:
        with pytest.raises(DigestMismatch):
            promote(ctx, [app], to="dev", commit=commit)
        assert ctx.ledger.promotions(app) == []
        actions = [e.action for e in ctx.ledger.events(app)]
        assert "promote" not in actions and "build" in actions
        assert ctx.ledger.open_intents(app) == []  # the write was put back and its intent resolved
    finally:
        ctx.close()
    run = p.boda("status", app, "--json")
    assert run.json["environments"][0]["current"] is None
    assert "dev" not in p.tags(app)  # the tag that moved was put back (there was none before)
