"""Inventory that knows what it already knows: boda's commit tags resolve from the ledger (and so
does what each build's manifest is: only indexes are read, for their children), other tags with one
HEAD each, manifests from the on-disk cache. The requests a plan sends are counted by a proxy in
front of the real registry and must match the formula exactly, cold and warm; and the fast path
must see what the plain one (a HEAD per tag) sees. Builds recorded before the ledger kept their
media type (schema 4) are read once, as before."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_gc_e2e import RETENTION, RUTHLESS

from boda.config import load_config
from boda.registry import open_registry
from boda.services.build import record_build
from boda.services.context import Context
from boda.services.expiry.inventory import read_inventory
from boda.services.imagegen import make_image, make_index, make_referrer, push
from boda.types import Digest
from conftest import Project, make_project, sha
from fixtures.faultproxy import FaultProxy
from fixtures.ledger import forget_build_facts

pytestmark = pytest.mark.registry

BUILDS = 80
FOREIGN = 7  # tags CI pushed itself (mutable, unknown to the ledger)


def kinds(proxy: FaultProxy) -> Counter[str]:
    """Requests the proxy saw, by method and kind of path."""
    out: Counter[str] = Counter()
    for seen in proxy.seen:
        path = seen.path.split("?")[0]
        kind = (
            "tags"
            if path.endswith("/tags/list")
            else "referrers"
            if "/referrers/" in path
            else "manifest"
            if "/manifests/" in path
            else "other"
        )
        out[f"{seen.method} {kind}"] += 1
    return out


@pytest.fixture
def crowded(tmp_path: Path, fault_proxy: FaultProxy, sqlite_url: str, boda: Any) -> tuple[Project, str, dict]:
    """An app with BUILDS recorded builds (one a multi-arch index, one signed), two promotions and
    FOREIGN tags CI pushed on its own."""
    p = make_project(tmp_path / "project", fault_proxy.url, sqlite_url, "tags", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("crowded")
    facts: dict[str, Any] = {}
    with Context(load_config(p.config), create_ledger=True) as ctx:  # as `boda build` does
        for n in range(BUILDS):
            image = make_index(f"{app}/{n}") if n == 3 else make_image(f"{app}/{n}", layers=1, layer_size=64)
            digest = push(ctx.registry, app, image, tag=f"ci-{n}" if n < FOREIGN else None)
            record_build(ctx, app, commit=sha(f"{app}-{n}"), digest=str(digest), by="ci")
            if n == 3:
                facts["index"] = str(digest)
            if n == 5:
                signature = make_referrer(image.manifest)
                push(ctx.registry, app, signature)
                facts["signature"] = str(signature.manifest.digest)
                facts["signed"] = str(digest)
    for n, env in ((BUILDS - 1, "dev"), (BUILDS - 2, "stg")):
        run = p.boda("promote", app, "--to", env, "--commit", sha(f"{app}-{n}"), "--force", "--reason", "t")
        assert run.code == 0, run.err
    return p, app, facts


def manifest_gets(proxy: FaultProxy) -> list[str]:
    """What each manifest GET the proxy saw asked for (a digest or a tag)."""
    return [
        s.path.split("?")[0].rsplit("/", 1)[1]
        for s in proxy.seen
        if s.method == "GET" and "/manifests/" in s.path
    ]


@pytest.mark.parametrize("recorded", ["schema 4", "before schema 4"])
def test_a_plan_asks_only_what_the_ledger_and_the_cache_cannot_answer(
    crowded: tuple[Project, str, dict], fault_proxy: FaultProxy, recorded: str
) -> None:
    p, app, facts = crowded
    if recorded == "before schema 4":
        forget_build_facts(p.ledger_url)  # no media type recorded: every build's manifest is read
    registry = open_registry(fault_proxy.url)
    try:
        tags = registry.tag_list(app)
    finally:
        registry.close()
    fallback = Digest.parse(facts["signed"]).tag_form
    assert fallback in tags  # distribution 2.8 has no referrers API: the signature hangs off a tag
    unknown = [t for t in tags if t.startswith("ci-")] + ["dev", "stg", fallback]
    assert len(tags) == BUILDS + len(unknown)

    fault_proxy.clear()
    cold = p.boda("gc", "plan", app, "--json")
    assert cold.code == 0, cold.err
    seen = kinds(fault_proxy)
    # The fallback index is read by digest (it is an index: its children are followed) and by tag
    # (the referrers of the signed image). Of the builds, the ledger says what each manifest is:
    # only the multi-arch index is read, for its children; a build recorded before it said so is
    # read once (the cache is empty).
    builds_read = 1 if recorded == "schema 4" else BUILDS
    assert seen == {
        "GET tags": 1,
        "GET referrers": 1,  # the probe that finds the registry has no referrers API
        "HEAD manifest": len(unknown),  # every tag boda did not write, and only those
        "GET manifest": builds_read + 2,
    }
    if recorded == "schema 4":
        fallback_digest = next(e["digest"] for e in cold.json["images"] if fallback in e["tags"])
        assert sorted(manifest_gets(fault_proxy)) == sorted([facts["index"], fallback_digest, fallback])
    assert cold.json["requests"] == len(fault_proxy.seen)

    fault_proxy.clear()
    warm = p.boda("gc", "plan", app, "--json")
    assert warm.code == 0, warm.err
    assert kinds(fault_proxy) == {
        "GET tags": 1,
        "GET referrers": 1,
        "HEAD manifest": len(unknown),
        "GET manifest": 1,  # the referrers of the signed image: the fallback tag may move, so it is read
    }
    assert warm.json["requests"] == 1 + 1 + len(unknown) + 1
    assert warm.json["images"] == cold.json["images"]
    planned = {e["digest"] for e in warm.json["images"]}
    assert {facts["index"], facts["signature"]} <= planned
    # every build, the index's two children, the signature and the fallback index that lists it
    assert len(planned) == BUILDS + 2 + 1 + 1


def test_what_the_ledger_says_a_manifest_is_is_what_the_registry_says(
    crowded: tuple[Project, str, dict],
) -> None:
    p, app, _facts = crowded
    with Context(load_config(p.config)) as ctx:
        builds = ctx.ledger.list_builds(app)
        assert len(builds) == BUILDS
        for build in builds:
            head = ctx.registry.manifest_head(app, str(build.digest))
            assert head is not None
            assert (build.media_type, build.size, build.tag) == (
                head.media_type,
                head.size,
                ctx.config.commit_tag_for(build.commit),
            )


def test_the_fast_inventory_sees_what_a_head_per_tag_sees(crowded: tuple[Project, str, dict]) -> None:
    p, app, facts = crowded
    with Context(load_config(p.config)) as ctx:
        fast = read_inventory(ctx, app, app)  # cold
        again = read_inventory(ctx, app, app)  # warm
        plain = {str(r.digest): r for r in ctx.registry.image_list(app)}  # type: ignore[attr-defined]
    for inventory in (fast, again):
        tagged = {i.digest: i for i in inventory.images if i.tags}
        assert set(tagged) == set(plain)
        for digest, image in tagged.items():
            assert image.tags == plain[digest].tags
            assert image.media_type == plain[digest].media_type
    index = next(i for i in fast.images if i.digest == facts["index"])
    assert len(index.children) == 2
    signature = next(i for i in fast.images if i.digest == facts["signature"])
    assert signature.subject == facts["signed"]


def test_a_commit_tag_someone_else_moved_onto_a_new_image_is_read_from_the_registry(
    crowded: tuple[Project, str, dict],
) -> None:
    """When boda has to read a recorded build's manifest (recorded before schema 4, nothing cached)
    and the image it wrote is gone while the tag names another one, the registry's answer wins."""
    p, app, _facts = crowded
    forget_build_facts(p.ledger_url)
    config = load_config(p.config)
    tag = config.commit_tag_for(sha(f"{app}-10"))
    with Context(config) as ctx:
        old = ctx.ledger.get_build(app, sha(f"{app}-10"))
        assert old is not None
        intruder = push(ctx.registry, app, make_image(f"{p.prefix}/intruder"), tag=tag)
        ctx.registry.manifest_delete(app, old.digest)
        inventory = read_inventory(ctx, app, app)
    found = {i.digest: i for i in inventory.images}
    assert str(old.digest) not in found
    assert tag in found[str(intruder)].tags


def test_a_commit_tag_moved_behind_boda_s_back_never_gets_an_image_deleted(
    crowded: tuple[Project, str, dict],
) -> None:
    """A commit tag answers from the ledger without a request (as it does from the cache): an
    image put under one by hand, after its build's image was deleted by hand, is not in the plan,
    so `gc apply` never deletes it; `verify` reports the moved tag."""
    p, app, _facts = crowded
    config = load_config(p.config)
    tag = config.commit_tag_for(sha(f"{app}-10"))
    with Context(config) as ctx:
        old = ctx.ledger.get_build(app, sha(f"{app}-10"))
        assert old is not None and old.media_type is not None
        intruder = push(ctx.registry, app, make_image(f"{p.prefix}/intruder"), tag=tag)
        ctx.registry.manifest_delete(app, old.digest)
    drift = p.boda("verify", app, "--json")
    assert drift.code == 5
    assert {"kind": "commit-tag", "where": f"{app}:{tag}", "expected": str(old.digest)} in [
        {k: d[k] for k in ("kind", "where", "expected")} for d in drift.json["drifts"]
    ]
    applied = p.boda("gc", "apply", app, "--yes", "--json")
    assert applied.code == 0, applied.err
    assert len(applied.json["deleted"]) > BUILDS // 2
    assert str(intruder) not in {d["digest"] for d in applied.json["deleted"]}
    assert p.tags(app)[tag] == str(intruder)


def test_expired_builds_are_not_looked_for_again(
    crowded: tuple[Project, str, dict], fault_proxy: FaultProxy
) -> None:
    p, app, _facts = crowded
    applied = p.boda("gc", "apply", app, "--yes", "--json")
    assert applied.code == 0, applied.err
    assert len(applied.json["deleted"]) > BUILDS // 2
    fault_proxy.clear()
    again = p.boda("gc", "plan", app, "--json")
    assert again.code == 0, again.err
    heads_by_digest = [s for s in fault_proxy.seen if s.method == "HEAD" and "/manifests/sha256:" in s.path]
    assert heads_by_digest == []
