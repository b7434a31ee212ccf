"""Outputs say exactly what the registry and the ledger can prove (issue: every output tells the
truth). On the embedded default: an OCI layout and SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Project, make_project, sha


@pytest.fixture
def p(tmp_path: Path, sqlite_url: str, boda: Any) -> Project:
    return make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "tags", boda)


def test_whereis_names_every_commit_that_built_a_digest(p: Project) -> None:
    app = p.app("web")
    first, digest = p.build(app, 0)
    second = sha("docs-only change")
    assert p.boda("build", app, "--commit", second, "--digest", digest).code == 0
    for args in (["whereis", app, "--digest", digest], ["whereis", "--digest", digest]):
        run = p.boda(*args, "--json")
        assert run.code == 0, run.err
        assert {m["commit"] for m in run.json["matches"]} == {first, second}
    text = p.boda("whereis", app, "--digest", digest).out
    assert text.count("current nowhere") == 2 and "running in none" not in text


def test_status_text_shows_every_previous_digest_asked_for(p: Project) -> None:
    app = p.app("web")
    digests = []
    for n in range(6):
        commit, digest = p.build(app, n)
        digests.append(digest)
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    text = p.boda("status", app).out
    assert all(d.split(":")[1][:12] in text for d in digests)
    limited = p.boda("status", app, "--previous", "2").out
    assert digests[1].split(":")[1][:12] not in limited and digests[3].split(":")[1][:12] in limited


def test_verify_counts_in_words(p: Project) -> None:
    app = p.app("web")
    p.build(app, 0)
    assert p.boda("verify", app).out.strip().endswith("(1 check)")


def test_a_mistyped_app_gets_a_suggestion(p: Project) -> None:
    app = p.app("web")
    p.build(app, 0)
    run = p.boda("status", app + "b")
    assert run.code == 4 and f"did you mean {app!r}?" in run.err
