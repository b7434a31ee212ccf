"""Native retention through the CLI, in-process, on moto in server mode through real boto3: protection
tags move with every promotion, rollback, pin and unpin, the untag flow of `untag_replaced`, and a
rendered policy put and checked.

Two servers: the ECR-semantics server (tests/ecr/ecr_semantics_server.py: moto with MOTO-TAG-MOVE
closed, as real ECR keeps an image whose last tag moves away) for the flows that move a last tag,
and plain moto (`ecr_client`) where moto's own behaviour is the point. Other moto gaps are named
where they matter (tests/fixtures/moto.py): moto never evaluates a lifecycle policy and has no
lifecycle preview (`policy check` reports ECR's preview unavailable; tests/ecr/test_native_preview.py
stubs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from boda.types import Digest
from fixtures.moto import make_manifest, seed_image
from fixtures.native import APP, KEEP, SEED_POLICY, Native, commit, make_project

pytestmark = pytest.mark.ecr


@pytest.fixture
def native(tmp_path: Path, boda: Any, ecr_like_client: Any) -> Native:
    """Native retention on the ECR-semantics server, rollback depth 1."""
    return make_project(tmp_path, boda, ecr_like_client)


@pytest.fixture
def untagging(tmp_path: Path, boda: Any, ecr_like_client: Any) -> Native:
    """Native retention with untag_replaced on the ECR-semantics server, rollback depth 1."""
    return make_project(tmp_path, boda, ecr_like_client, promotion={"untag_replaced": True})


def test_protection_tags_follow_promotions_rollbacks_pins_and_unpins(native: Native) -> None:
    d1, d2, d3, d4 = (native.build(n) for n in range(1, 5))
    assert native.keep_tags() == {}  # built, never promoted: nothing to protect

    native.promote(1, "dev")
    assert native.keep_tags() == {d1: {KEEP.tag("dev", d1)}}

    native.promote(2, "dev")  # d1 is dev's rollback target (depth 1)
    native.promote(1, "stg")
    assert native.keep_tags() == {d1: {KEEP.tag("dev", d1), KEEP.tag("stg", d1)}, d2: {KEEP.tag("dev", d2)}}

    native.promote(3, "dev")  # d1 leaves dev's window, stays stg's current
    assert native.keep_tags() == {
        d1: {KEEP.tag("stg", d1)},
        d2: {KEEP.tag("dev", d2)},
        d3: {KEEP.tag("dev", d3)},
    }

    back = native.ok("rollback", APP, "--env", "dev")
    assert back["digest"] == d2
    assert native.keep_tags()[d2] == {KEEP.tag("dev", d2)}  # d2 current again, d3 its rollback target
    assert native.keep_tags()[d3] == {KEEP.tag("dev", d3)}

    native.ok("pin", APP, d4, "--reason", "audit")
    assert native.keep_tags()[d4] == {KEEP.tag("pin", d4)}
    native.ok("unpin", APP, d4)
    assert d4 not in native.keep_tags()

    # Nothing was ever deleted, and every image keeps its own tags; the commit tags never moved.
    images = native.images()
    assert set(images) == {d1, d2, d3, d4}
    for n, digest in enumerate((d1, d2, d3, d4), start=1):
        assert {f"ci-{n}", commit(n)[:8]} <= images[digest]
    # Every change is in the ledger, every intent closed.
    with native.ledger() as ledger:
        assert len([e for e in ledger.events(APP) if e.action == "protection-tags"]) >= 6
        assert ledger.open_intents(APP) == []
    assert native.ok("ecr", "sync", APP)["changed"] is False  # idempotent


def test_untag_replaced_untags_what_left_every_window_and_deletes_nothing(untagging: Native) -> None:
    d1, d2, d3 = (untagging.build(n) for n in range(1, 4))
    untagging.promote(1, "dev")
    untagging.promote(2, "dev")
    assert untagging.images()[d1] >= {commit(1)[:8], "ci-1", KEEP.tag("dev", d1)}

    untagging.promote(3, "dev")  # d1 leaves the only window it was in

    images = untagging.images()
    assert set(images) == {d1, d2, d3}  # nothing deleted by boda: only the policy will
    assert images[d1] == set()  # untagged, commit tag included
    assert images[d2] >= {commit(2)[:8], KEEP.tag("dev", d2)}
    assert images[d3] >= {commit(3)[:8], KEEP.tag("dev", d3)}
    # The ledger still knows d1's commit.
    with untagging.ledger() as ledger:
        assert [b.commit for b in ledger.builds_by_digest(Digest.parse(d1), APP)] == [commit(1)]
    # Pinned or protected digests are never untagged; d2 is protected, a build never promoted is kept.
    d4 = untagging.build(4)
    untagging.ok("pin", APP, d2, "--reason", "incident 42")
    untagging.promote(4, "dev")  # d2 leaves dev's window but is pinned
    images = untagging.images()
    assert images[d2] >= {commit(2)[:8], KEEP.tag("pin", d2)}
    assert images[d4] >= {commit(4)[:8], KEEP.tag("dev", d4)}
    untagging.ok("unpin", APP, d2)
    images = untagging.images()
    assert images[d2] == set() and set(images) == {d1, d2, d3, d4}
    # Untagged on purpose is not drift; neither is an image ECR's own policy expired since.
    untagging.client.batch_delete_image(repositoryName=APP, imageIds=[{"imageDigest": d1}])
    assert untagging.ok("verify", APP)["ok"] is True
    untagging.client.batch_delete_image(repositoryName=APP, imageIds=[{"imageTag": commit(4)[:8]}])
    drift = untagging.boda("verify", APP, "--json")  # a commit tag removed by hand still is
    assert drift.code == 5 and [d["where"] for d in drift.json["drifts"]] == [f"{APP}:{commit(4)[:8]}"]


def test_plain_moto_deletes_an_image_whose_last_tag_moves_and_boda_stops(
    tmp_path: Path, boda: Any, ecr_client: Any
) -> None:
    """MOTO-TAG-MOVE: what plain moto does to the untag flow. Real ECR keeps an image whose last tag
    moves away (untagged); moto deletes it. boda reads the image back after the move, says so in one
    line (exit 6, the promotion itself recorded) and changes nothing more."""
    project = make_project(tmp_path, boda, ecr_client, promotion={"untag_replaced": True})
    d1, d2, d3 = (project.build(n) for n in range(1, 4))
    project.promote(1, "dev")
    project.promote(2, "dev")
    result = project.boda("promote", APP, "--to", "dev", "--commit", commit(3))
    assert result.code == 6, result.err
    assert "disappeared when its last tag" in result.err and len(result.err.strip().splitlines()) <= 2
    assert project.ok("status", APP)["environments"][0]["current"]["digest"] == d3  # recorded
    assert d1 not in project.images()  # moto's behaviour, not ECR's
    assert {d2, d3} <= set(project.images())


def test_ecr_and_moto_delete_an_image_with_its_last_tag(ecr_client: Any, ecr_like_client: Any) -> None:
    """Both ECR (documented for BatchDeleteImage: "when you remove the last tag from an image, the
    image is deleted") and moto delete an image whose last tag is deleted: why boda never deletes a
    last tag, and strips it by moving it instead."""
    for client in (ecr_client, ecr_like_client):
        client.create_repository(repositoryName="last/tag")
        manifest = seed_image(client, "last/tag", make_manifest("last"), "only")
        client.batch_delete_image(repositoryName="last/tag", imageIds=[{"imageTag": "only"}])
        found = client.list_images(repositoryName="last/tag")["imageIds"]
        assert str(manifest.digest) not in {i["imageDigest"] for i in found}


def test_render_put_and_check(native: Native, tmp_path: Path) -> None:
    d1, d2, d3 = (native.build(n) for n in range(1, 4))
    native.promote(1, "dev")
    native.promote(2, "dev")
    native.promote(2, "stg")
    user = tmp_path / "seed.json"
    user.write_text(json.dumps(SEED_POLICY))

    printed = native.boda("ecr", "policy", "render", APP, "--policy", str(user))
    assert printed.code == 0, printed.err
    doc = json.loads(printed.out)  # stdout is the document itself
    rules = doc["rules"]
    assert rules[0]["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["keep-*"],
        "countType": "imageCountMoreThan",
        "countNumber": 999_999_999,
    }
    assert [r["selection"]["tagPatternList"] for r in rules[1:4]] == [["dev"], ["stg"], ["prd"]]
    assert rules[4]["rulePriority"] == 5 and rules[4]["selection"] == SEED_POLICY["rules"][0]["selection"]

    put = native.ok("ecr", "policy", "put", APP, "--render", "--policy", str(user))
    assert put["policy"] == doc and put["mutability"] is None  # MUTABLE: nothing to change
    stored = json.loads(native.client.get_lifecycle_policy(repositoryName=APP)["lifecyclePolicyText"])
    assert stored == doc

    # policy check reads the repository's own (rendered) policy; moto has no preview: a note.
    check = native.boda("policy", "check", APP, "--json")
    assert check.code == 0, check.err
    assert check.json["violations"] == []
    assert check.json["ecr_preview"][0]["available"] is False

    # A policy without boda's shields is refused in native mode; a rendered one, saved, is proved.
    raw = native.boda("ecr", "policy", "put", APP, "--policy", str(user))
    assert raw.code == 3 and "--render" in raw.err
    saved = tmp_path / "rendered.json"
    saved.write_text(printed.out)
    assert native.ok("ecr", "policy", "put", APP, "--policy", str(saved))["policy"] == doc
    # Rendering again from the stored policy gives the same document (shields recognised).
    again = native.boda("ecr", "policy", "render", APP)
    assert again.code == 0 and json.loads(again.out) == doc
    assert {d1, d2, d3} == set(native.images())


def test_render_refuses_when_a_protected_image_lacks_its_tag(native: Native, tmp_path: Path) -> None:
    d1 = native.build(1)
    native.build(2)
    native.promote(1, "dev")
    # Someone deletes the protection tag by hand (d1 keeps its commit tag, so it stays).
    native.client.batch_delete_image(repositoryName=APP, imageIds=[{"imageTag": KEEP.tag("dev", d1)}])
    ruthless = tmp_path / "ruthless.json"
    ruthless.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    # Without environment tags in the registry (promotion by hand undone) d1 would be expired.
    native.client.batch_delete_image(repositoryName=APP, imageIds=[{"imageTag": "dev"}])
    refused = native.boda("ecr", "policy", "render", APP, "--policy", str(ruthless))
    assert refused.code == 3 and refused.out == ""
    assert d1 in refused.err and "boda ecr sync" in refused.err
    put = native.boda("ecr", "policy", "put", APP, "--render", "--policy", str(ruthless))
    assert put.code == 0, put.err  # put --render syncs first: the tag is back, the proof holds
    assert KEEP.tag("dev", d1) in native.images()[d1]


def test_native_commands_refuse_outside_native_mode(tmp_path: Path, boda: Any, ecr_client: Any) -> None:
    project = make_project(tmp_path, boda, ecr_client, retention={"mode": "boda"})
    for args in (
        ("ecr", "sync", APP),
        ("ecr", "policy", "render", APP),
        ("ecr", "policy", "put", APP, "--render"),
    ):
        result = project.boda(*args)
        assert result.code == 2 and "native" in result.err, args


def test_gc_apply_refuses_in_native_mode(native: Native, tmp_path: Path) -> None:
    """ECR's policy is the only thing that deletes: boda's own expiry refuses, plans still show."""
    for n in range(1, 4):
        native.build(n)
    native.promote(1, "dev")
    before = native.images()
    policy = tmp_path / "keep-one.json"
    policy.write_text(json.dumps(SEED_POLICY))
    run = native.boda("gc", "apply", APP, "--yes", "--policy", str(policy))
    assert run.code == 3 and "native" in run.err and len(run.err.strip().splitlines()) == 1
    assert native.images() == before
    assert native.boda("gc", "plan", APP, "--policy", str(policy)).code == 0
