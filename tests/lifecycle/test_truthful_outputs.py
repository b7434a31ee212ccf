"""Outputs say exactly what the registry and the ledger can prove (issue: every output tells the
truth). On the embedded default: an OCI layout and SQLite."""

from __future__ import annotations

import re
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
    from boda.cli.render import plural

    assert (plural(1, "check"), plural(2, "check"), plural(0, "check")) == ("1 check", "2 checks", "0 checks")
    app = p.app("web")
    p.build(app, 0)
    run = p.boda("verify", app, "--json")
    assert p.boda("verify", app).out.strip().endswith(f"({plural(run.json['checked'], 'check')})")


def test_a_mistyped_app_gets_a_suggestion(p: Project) -> None:
    app = p.app("web")
    p.build(app, 0)
    run = p.boda("status", app + "b")
    assert run.code == 4 and f"did you mean {app!r}?" in run.err


def _promote_all(p: Project, app: str, count: int) -> tuple[list[str], list[str]]:
    commits, digests = [], []
    for n in range(count):
        commit, digest = p.build(app, n)
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
        commits.append(commit)
        digests.append(digest)
    return commits, digests


def _current(p: Project, app: str) -> str:
    env = next(e for e in p.boda("status", app, "--json").json["environments"] if e["name"] == "dev")
    return str(env["current"]["digest"])


def test_consecutive_rollbacks_walk_further_back(p: Project) -> None:
    app = p.app("web")
    _commits, d = _promote_all(p, app, 4)
    assert p.boda("rollback", app, "--env", "dev").code == 0
    assert _current(p, app) == d[2]
    assert p.boda("rollback", app, "--env", "dev").code == 0
    assert _current(p, app) == d[1]  # not back to d[3], the release just rolled back from
    assert p.boda("rollback", app, "--env", "dev").code == 0
    assert _current(p, app) == d[0]
    run = p.boda("rollback", app, "--env", "dev")
    assert run.code == 4 and "rolled back from" in run.err
    assert p.boda("rollback", app, "--env", "dev", "--to", d[3]).code == 0  # named: allowed
    assert _current(p, app) == d[3]
    assert p.tags(app)["dev"] == d[3]


def test_a_digest_promoted_again_is_a_rollback_target_again(p: Project) -> None:
    app = p.app("web")
    commits, d = _promote_all(p, app, 3)
    assert p.boda("rollback", app, "--env", "dev").code == 0  # to d1, d2 marked
    assert p.boda("promote", app, "--to", "dev", "--commit", commits[2]).code == 0  # d2 again
    assert p.boda("promote", app, "--to", "dev", "--commit", commits[0]).code == 0  # d0
    assert p.boda("rollback", app, "--env", "dev").code == 0
    assert _current(p, app) == d[2]


def test_rollback_to_an_expired_digest_is_refused_clearly(p: Project) -> None:
    app = p.app("web")
    _commits, d = _promote_all(p, app, 2)
    # Expire the first image the way gc apply does (a deletion recorded in the event log).
    from boda.config import load_config
    from boda.services.context import Context
    from boda.types import Digest

    with Context(load_config(p.config)) as ctx:
        ctx.registry.manifest_delete(app, Digest.parse(d[0]))
        ctx.ledger.record_event(
            "expire", app=app, by="test", digest=Digest.parse(d[0]), detail={"repository": app}
        )
    before = p.snapshot([app])
    run = p.boda("rollback", app, "--env", "dev")
    assert run.code == 3 and "expiry deleted it" in run.err
    assert not re.search(r"\b404\b|manifest unknown", run.err)  # no raw registry answer
    assert len(run.err.strip().splitlines()) == 1
    assert p.snapshot([app]) == before
    dev = next(e for e in p.boda("status", app, "--json").json["environments"] if e["name"] == "dev")
    assert [x["expired"] for x in dev["previous"]] == [True] and dev["current"]["expired"] is False
    assert f"{d[0].split(':')[1][:12]} (expired)" in p.boda("status", app).out
    assert p.boda("whereis", app, "--digest", d[0], "--json").json["matches"][0]["expired"] is True
