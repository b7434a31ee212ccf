"""Tag mutability in native retention, on moto in server mode through real boto3: `policy put --render`
makes exactly the tags that move mutable (ECR's IMMUTABLE_WITH_EXCLUSION filters), and says in one
line (exit 3) when the repository's settings forbid it.

moto stores exclusion filters and enforces them, with one gap (MOTO-FILTER-REGEX): it matches a filter
as a regular expression from the tag's start (`re.match`), where ECR matches a whole-tag wildcard. The
filters boda writes (`keep-*` and exact environment names) select the same tags either way for the
tags these tests use; the pure coverage rules are tested in tests/policy/test_protection_tags.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.registry.base import LifecyclePolicyStore
from boda.services.context import Context
from fixtures.config import DEV_STG_PRD
from fixtures.native import APP, KEEP, commit, make_project, write_config

pytestmark = pytest.mark.ecr


def mutability(client: Any, repo: str = APP) -> tuple[str, list[str]]:
    found = client.describe_repositories(repositoryNames=[repo])["repositories"][0]
    filters = [f["filter"] for f in found.get("imageTagMutabilityExclusionFilters", [])]
    return found["imageTagMutability"], filters


def test_immutable_repository_gets_exclusion_filters_for_the_tags_that_move(
    tmp_path: Path, boda: Any, ecr_like_client: Any
) -> None:
    project = make_project(
        tmp_path, boda, ecr_like_client, mutability="IMMUTABLE", promotion={"untag_replaced": True}
    )
    d1, d2, d3 = (project.build(n) for n in range(1, 4))

    put = project.ok("ecr", "policy", "put", APP, "--render")
    assert put["mutability"]["from"] == {"mutability": "IMMUTABLE", "filters": []}
    assert mutability(ecr_like_client) == ("IMMUTABLE_WITH_EXCLUSION", ["keep-*", "dev", "stg", "prd"])
    assert project.ok("ecr", "policy", "put", APP, "--render")["mutability"] is None  # idempotent

    # Environment tags and protection tags move; commit tags stay immutable.
    project.promote(1, "dev")
    project.promote(2, "dev")
    project.promote(3, "dev")  # d1 leaves dev's window: untagged, its immutable commit tag included
    images = project.images()
    assert images[d1] == set() and set(images) == {d1, d2, d3}
    assert images[d3] >= {"dev", KEEP.tag("dev", d3), commit(3)[:8]}
    again = project.boda("build", APP, "--commit", commit(3), "--digest", d2)
    assert again.code == 5  # a commit tag still never moves


def test_immutable_with_exclusion_keeps_its_filters_and_adds_the_missing(
    tmp_path: Path, boda: Any, ecr_client: Any
) -> None:
    project = make_project(tmp_path, boda, ecr_client, environments=DEV_STG_PRD[:2])
    ecr_client.put_image_tag_mutability(
        repositoryName=APP,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev"}],
    )
    project.build(1)
    put = project.ok("ecr", "policy", "put", APP, "--render")
    after = {"mutability": "IMMUTABLE_WITH_EXCLUSION", "filters": ["dev", "keep-*", "stg"]}
    assert put["mutability"]["to"] == after


def test_settings_that_forbid_it_are_one_line_exit_3_and_change_nothing(
    tmp_path: Path, boda: Any, ecr_client: Any
) -> None:
    project = make_project(tmp_path, boda, ecr_client)
    ecr_client.put_image_tag_mutability(
        repositoryName=APP,
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "k*"}],
    )
    project.build(1)
    refused = project.boda("ecr", "policy", "put", APP, "--render")
    assert refused.code == 3 and refused.out == ""
    assert "'k*'" in refused.err and "immutable" in refused.err
    assert len(refused.err.strip().splitlines()) == 1 or refused.err.count("error:") == 1
    assert mutability(ecr_client) == ("MUTABLE_WITH_EXCLUSION", ["k*"])
    with pytest.raises(ecr_client.exceptions.LifecyclePolicyNotFoundException):
        ecr_client.get_lifecycle_policy(repositoryName=APP)


def test_more_filters_than_ecr_allows_is_refused(tmp_path: Path, boda: Any, ecr_client: Any) -> None:
    envs = [("dev", None, ()), ("qa", "dev", ()), ("stg", "qa", ())]
    envs += [("prd-eu", "stg", ()), ("prd-us", "stg", ())]
    project = make_project(tmp_path, boda, ecr_client, mutability="IMMUTABLE", environments=envs)
    project.build(1)
    refused = project.boda("ecr", "policy", "put", APP, "--render")
    assert refused.code == 3 and "6 exclusion filters; ECR allows 5" in refused.err
    assert mutability(ecr_client) == ("IMMUTABLE", [])


def test_repositories_boda_creates_in_native_mode_get_the_protection_filter(
    tmp_path: Path, ecr_client: Any
) -> None:
    """Strategy `repos` creates an environment's repository on its first promotion; in native mode
    with ecr.tag_mutability IMMUTABLE_WITH_EXCLUSION it gets the protection tags' filter (MOTO-NO-V2:
    a promotion's blob copy cannot run on moto, so the repository is created as the copy does)."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, strategy="repos", ecr={"tag_mutability": "IMMUTABLE_WITH_EXCLUSION"})
    with Context(load_config(root / "boda.toml")) as ctx:
        assert isinstance(ctx.registry, LifecyclePolicyStore)
        assert ctx.registry.ensure_repository(f"{APP}-dev") is True
    assert mutability(ecr_client, f"{APP}-dev") == ("IMMUTABLE_WITH_EXCLUSION", ["keep-*"])


def test_untagging_in_an_immutable_repository_without_filters_stops_safely(
    tmp_path: Path, boda: Any, ecr_like_client: Any
) -> None:
    """The untag flow must move a last tag, which an IMMUTABLE repository refuses: the sync stops
    with one line (exit 5), the image keeps a protection tag (still shielded), nothing is deleted,
    and once `put --render` set the exclusion filters its sync completes the untag."""
    project = make_project(tmp_path, boda, ecr_like_client)
    d1, d2, d3 = (project.build(n) for n in range(1, 4))
    for n in (1, 2, 3):
        project.promote(n, "dev")  # d1 leaves dev's window (depth 1); no untag_replaced yet
    ecr_like_client.put_image_tag_mutability(repositoryName=APP, imageTagMutability="IMMUTABLE")
    write_config(project.root, promotion={"untag_replaced": True})

    failed = project.boda("ecr", "sync", APP)
    assert failed.code == 5 and "immutable" in failed.err and "exclusion" in failed.err, failed.err
    images = project.images()
    assert set(images) == {d1, d2, d3}
    assert [t for t in images[d1] if KEEP.parse(t)], images[d1]  # still shielded
    with project.ledger() as ledger:
        assert [i.action for i in ledger.open_intents(APP)] == ["protection-tags"]

    put = project.ok("ecr", "policy", "put", APP, "--render")
    assert put["mutability"]["to"]["mutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert project.images()[d1] == set() and set(project.images()) == {d1, d2, d3}
    with project.ledger() as ledger:
        assert ledger.open_intents(APP) == []
