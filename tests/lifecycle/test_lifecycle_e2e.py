"""The whole lifecycle through the CLI, on both backends and both strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.registry import open_registry
from boda.services.imagegen import make_image, push
from boda.types import Digest, Reference
from conftest import Project, make_project
from fixtures.registry import skopeo_inspect_digest


def promote_through(p: Project, app: str, commit: str, *, until: str = "prd") -> None:
    """dev -> stg -> prd with the evidence each gate needs."""
    assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    assert (
        p.boda(
            "evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass"
        ).code
        == 0
    )
    if until == "dev":
        return
    run = p.boda("promote", app, "--to", "stg", "--commit", commit, "--json")
    assert run.code == 0, run.err
    for kind in ("tests", "signoff"):
        assert (
            p.boda(
                "evidence", app, "--env", "stg", "--commit", commit, "--kind", kind, "--result", "pass"
            ).code
            == 0
        )
    if until == "stg":
        return
    run = p.boda("promote", app, "--to", "prd", "--commit", commit, "--by", "carol", "--reason", "release")
    assert run.code == 0, run.err


def pulled_digest(p: Project, reference: str) -> str:
    """The digest a deploy tool pulls for `reference`, read with skopeo where it is a registry."""
    ref = Reference.parse(reference)
    if ref.is_layout:
        registry = p.registry()
        try:
            head = registry.manifest_head(ref.repository, ref.identifier)
            assert head is not None
            return str(head.digest)
        finally:
            registry.close()
    return skopeo_inspect_digest(reference)


@pytest.mark.parametrize("index", [False, True], ids=["image", "multiarch"])
def test_build_promote_rollback_status(project: Project, index: bool) -> None:
    p = project
    app = p.app("web")
    builds = [p.build(app, n, index=index) for n in range(3)]
    (c0, d0), (c1, d1), (c2, d2) = builds

    # Re-running a build is a no-op; the commit tag names the digest.
    again = p.boda("build", app, "--commit", c0, "--digest", d0, "--json")
    assert again.code == 0 and again.json["created"] is False
    assert p.tags(app)[c0[:8]] == d0

    for commit in (c0, c1):
        promote_through(p, app, commit)
    run = p.boda("promote", app, "--to", "dev", "--commit", c2, "--json")
    assert run.code == 0
    assert run.json["promotions"][0]["copy"]["bytes_uploaded"] == 0  # mounts (repos) or a tag PUT (tags)
    reference = run.json["promotions"][0]["reference"]
    assert reference.endswith("@" + d2)
    assert pulled_digest(p, reference) == d2  # invariant 1, read back by an independent client

    status = p.boda("status", app, "--json")
    assert status.code == 0, status.err
    envs = {e["name"]: e for e in status.json["environments"]}
    assert status.json["app"] == app and list(envs) == ["dev", "stg", "prd"]
    assert envs["prd"]["after"] == "stg"
    assert envs["prd"]["current"]["digest"] == d1
    assert envs["prd"]["current"]["commit"] == c1
    assert envs["prd"]["current"]["promoted_by"] == "carol" and envs["prd"]["current"]["kind"] == "promote"
    assert set(envs["prd"]["current"]) == {
        "digest",
        "commit",
        "reference",
        "promoted_at",
        "promoted_by",
        "kind",
        "expired",
        "signed",
        "signer",
        "statement",
    }
    assert [x["digest"] for x in envs["prd"]["previous"]] == [d0]
    assert [x["digest"] for x in envs["dev"]["previous"]] == [d1, d0]
    assert {e["kind"] for e in envs["stg"]["evidence"]} == {"tests", "signoff"}
    assert set(envs["stg"]["evidence"][0]) == {
        "kind",
        "result",
        "by",
        "at",
        "url",
        "signed",
        "signer",
        "statement",
    }
    assert envs["prd"]["current"]["signed"] is False and envs["stg"]["evidence"][0]["signed"] is False

    # Strategy-specific registry state.
    if p.strategy == "tags":
        assert p.tags(app)["prd"] == d1 and p.tags(app)["dev"] == d2
    else:
        assert p.tags(f"{app}-prd") == {c0[:8]: d0, c1[:8]: d1}
        assert pulled_digest(p, envs["prd"]["current"]["reference"]) == d1

    # Rollback: back to the previous distinct digest, recorded as a rollback.
    back = p.boda("rollback", app, "--env", "prd", "--reason", "bad release", "--json")
    assert back.code == 0, back.err
    assert back.json["digest"] == d0 and back.json["kind"] == "rollback"
    assert pulled_digest(p, back.json["reference"]) == d0
    hist = p.boda("history", app, "--env", "prd", "--json").json
    assert [(e["digest"], e["kind"]) for e in hist["entries"]] == [
        (d0, "rollback"),
        (d1, "promote"),
        (d0, "promote"),
    ]
    assert hist["entries"][0]["reason"] == "bad release"
    limited = p.boda("history", app, "--env", "prd", "--limit", "1", "--json").json["entries"]
    assert limited == hist["entries"][:1]
    assert set(hist["entries"][0]) == {"env", "digest", "commit", "at", "by", "kind", "reason"}

    where = p.boda("whereis", app, "--commit", c1[:7], "--json")
    assert where.code == 0
    match = where.json["matches"][0]
    assert {r["env"] for r in match["running_in"]} == {"stg"}
    assert {r["env"] for r in match["ran_in"]} == {"dev", "prd"}

    verify = p.boda("verify", app, "--json")
    assert verify.code == 0, verify.out
    assert verify.json["ok"] is True


def test_rollback_to_named_and_refusals(project: Project) -> None:
    p = project
    app = p.app("api")
    (c0, d0), (c1, d1), (c2, _d2) = [p.build(app, n) for n in range(3)]
    for commit in (c0, c1):
        promote_through(p, app, commit, until="dev")
    assert p.boda("rollback", app, "--env", "dev", "--to", c2).code == 3  # never current in dev
    assert p.boda("rollback", app, "--env", "stg").code == 4  # never promoted there
    run = p.boda("rollback", app, "--env", "dev", "--to", d0, "--json")
    assert run.code == 0 and run.json["digest"] == d0
    run = p.boda("rollback", app, "--env", "dev", "--to", c1[:9], "--json")
    assert run.code == 0 and run.json["digest"] == d1


def test_verify_reports_drift(project: Project) -> None:
    p = project
    app = p.app("drift")
    (c0, d0), (_c1, d1) = [p.build(app, n) for n in range(2)]
    promote_through(p, app, c0, until="dev")
    registry = p.registry()
    try:
        if p.strategy == "tags":
            # Someone moves the environment tag by hand.
            manifest = registry.manifest_get(app, d1)
            registry.manifest_put(app, "dev", manifest)
        else:
            registry.manifest_delete(f"{app}-dev", Digest.parse(d0))
    finally:
        registry.close()
    run = p.boda("verify", app, "--json")
    assert run.code == 5
    assert run.json["ok"] is False and run.json["drifts"]


def test_release_of_several_apps_is_all_or_nothing(project: Project) -> None:
    p = project
    web, api = p.app("web"), p.app("api")
    commit = "0" * 40
    for app in (web, api):
        p.push(app, make_image(f"{p.prefix}{app}"), "ci")
        assert p.boda("build", app, "--commit", commit, "--image", ":ci").code == 0
    run = p.boda("promote", web, api, "--to", "dev", "--commit", commit[:7], "--json")
    assert run.code == 0, run.err
    assert {x["app"] for x in run.json["promotions"]} == {web, api}
    p.boda("evidence", web, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
    p.boda("evidence", api, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "fail")
    repos = [web, api, f"{web}-stg", f"{api}-stg"]
    before = p.snapshot(repos)
    run = p.boda("promote", web, api, "--to", "stg", "--commit", commit)
    assert run.code == 3 and api in run.err and "\n" not in run.err.strip()
    assert p.snapshot(repos) == before
    p.boda("evidence", api, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
    run = p.boda("promote", web, api, "--to", "stg", "--commit", commit, "--json")
    assert run.code == 0 and len(run.json["promotions"]) == 2


@pytest.mark.registry
@pytest.mark.postgres
def test_postgres_ledger_end_to_end(tmp_path, registry, postgres_url, boda) -> None:  # type: ignore[no-untyped-def]
    p = make_project(tmp_path / "pg", registry.url, postgres_url, "repos", boda)
    app = p.app("svc")
    commit, digest = p.build(app, 0, index=True)
    promote_through(p, app, commit)
    status = p.boda("status", app, "--json").json
    prd = next(e for e in status["environments"] if e["name"] == "prd")
    assert prd["current"]["digest"] == digest
    assert skopeo_inspect_digest(prd["current"]["reference"]) == digest
    assert p.boda("verify", app).code == 0


def test_forced_promotion_is_recorded_as_forced(project: Project) -> None:
    p = project
    app = p.app("hotfix")
    commit, digest = p.build(app, 0)
    assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    assert p.boda("promote", app, "--to", "prd", "--commit", commit).code == 3
    run = p.boda(
        "promote", app, "--to", "prd", "--commit", commit, "--force", "--reason", "CVE hotfix", "--json"
    )
    assert run.code == 0, run.err
    entry = p.boda("history", app, "--env", "prd", "--json").json["entries"][0]
    assert (entry["digest"], entry["kind"], entry["reason"]) == (digest, "force", "CVE hotfix")


def test_commit_tag_never_moves(project: Project) -> None:
    p = project
    app = p.app("immutable")
    registry = p.registry()
    try:
        first = str(push(registry, app, make_image(f"{p.prefix}-a"), tag="ci-a"))
        second = str(push(registry, app, make_image(f"{p.prefix}-b"), tag="ci-b"))
        commit = "c" * 40
        # Someone already pushed the commit tag by hand, naming another image.
        registry.manifest_put(app, commit[:8], registry.manifest_get(app, first))
    finally:
        registry.close()
    before = p.snapshot([app])
    run = p.boda("build", app, "--commit", commit, "--image", ":ci-b")
    assert run.code == 5 and "immutable" in run.err
    assert p.snapshot([app]) == before
    assert p.boda("build", app, "--commit", commit, "--digest", first).code == 0
    assert p.tags(app)[commit[:8]] == first != second


def test_environments_may_form_a_tree(tmp_path: Path, backend_url: str, sqlite_url: str, boda: Any) -> None:
    tree = "".join(
        f'\n[[environments]]\nname = "{name}"\nafter = "stg"\nrequires = ["signoff"]\n'
        for name in ("prd-eu", "prd-us")
    )
    p = make_project(tmp_path / "tree", backend_url, sqlite_url, "repos", boda, extra=tree)
    app = p.app("tree")
    commit, digest = p.build(app, 0)
    promote_through(p, app, commit, until="stg")
    for region in ("prd-eu", "prd-us"):
        run = p.boda("promote", app, "--to", region, "--commit", commit, "--json")
        assert run.code == 0, run.err
        assert pulled_digest(p, run.json["promotions"][0]["reference"]) == digest
    envs = {e["name"]: e for e in p.boda("status", app, "--json").json["environments"]}
    assert envs["prd-eu"]["after"] == envs["prd-us"]["after"] == "stg"
    assert envs["prd-eu"]["current"]["digest"] == envs["prd-us"]["current"]["digest"] == digest


@pytest.mark.registry
def test_build_from_another_registry_copies_into_the_app_repository(
    tmp_path: Path, registry: Any, registry2: Any, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "ext", registry.url, sqlite_url, "tags", boda)
    app = p.app("ext")
    other = open_registry(registry2.url)
    try:
        digest = str(push(other, f"ci/{p.prefix}", make_image(f"{p.prefix}-ext"), tag="ci-7"))
    finally:
        other.close()
    commit = "e" * 40
    run = p.boda(
        "build", app, "--commit", commit, "--image", f"{registry2.host}/ci/{p.prefix}:ci-7", "--json"
    )
    assert run.code == 0, run.err
    assert run.json["digest"] == digest and run.json["reference"] == f"{registry.host}/{app}@{digest}"
    assert skopeo_inspect_digest(f"{registry.host}/{app}:{commit[:8]}") == digest
    again = p.boda(
        "build", app, "--commit", commit, "--image", f"{registry2.host}/ci/{p.prefix}:ci-7", "--json"
    )
    assert again.code == 0 and again.json["created"] is False
