"""Native retention end to end on the ECR-semantics server (moto with MOTO-TAG-MOVE closed, see
ecr_semantics_server.py) through real boto3 and the CLI: the seed's scenario, multi-arch images and
their signatures, what the runtimes run, and failures in the middle of a sync.

moto never evaluates a lifecycle policy: what ECR would expire is computed by `boda policy eval` on
`describe-images` output, with the policy `boda ecr policy render` printed (moto's push times have a
one-second resolution, so images pushed within a second tie; the tie rule is boda's, see reference.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from boda.errors import RegistryError
from boda.registry.ecr import EcrRegistry
from boda.types import OCI_INDEX, Digest, Manifest
from fixtures.moto import HOST, make_manifest, seed_image
from fixtures.native import APP, KEEP, SEED_POLICY, Native, commit, make_project, write_config

pytestmark = pytest.mark.ecr


def expiring(project: Native, policy_text: str, tmp_path: Path) -> set[str]:
    """What ECR would expire now under `policy_text`, by boda's evaluator on describe-images."""
    policy = tmp_path / "rendered.json"
    policy.write_text(policy_text)
    images = tmp_path / "images.json"
    details = project.client.describe_images(repositoryName=APP)["imageDetails"]
    images.write_text(json.dumps({"imageDetails": details}, default=lambda t: t.isoformat()))
    data = project.ok("policy", "eval", "--policy", str(policy), "--images", str(images))
    return {r["imageDigest"] for r in data["previewResults"] if r["action"]["type"] == "EXPIRE"}


def test_the_seed_scenario_on_ecr(tmp_path: Path, boda: Any, ecr_like_client: Any) -> None:
    """12 builds; each goes to dev, every 2nd to stg, every 3rd to prd, each replacing the one before
    (rollback depth 3, untag_replaced). After every promotion to prd the seed's rule is rendered
    (proved by boda before it prints) and evaluated: only digests outside every window expire, and
    the previous prd digest is always still there for a rollback."""
    project = make_project(
        tmp_path, boda, ecr_like_client, retention={"rollback_depth": 3}, promotion={"untag_replaced": True}
    )
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED_POLICY))
    history: dict[str, list[str]] = {"dev": [], "stg": [], "prd": []}

    def window(env: str) -> list[str]:
        return list(dict.fromkeys(reversed(history[env])))[:4]

    digests = []
    for n in range(1, 13):
        digests.append(project.build(n))
        for env, every in (("dev", 1), ("stg", 2), ("prd", 3)):
            if n % every:
                continue
            project.promote(n, env)
            history[env].append(digests[-1])
            if env != "prd":
                continue
            rendered = project.boda("ecr", "policy", "render", APP, "--policy", str(seed))
            assert rendered.code == 0, rendered.err
            windows = {d for e in history for d in window(e)}
            gone = expiring(project, rendered.out, tmp_path)
            assert not gone & windows
            images = project.images()
            previous = window("prd")[1:2]
            assert all(d in images and d not in gone for d in previous)
            untagged = {d for d, tags in images.items() if not tags}
            assert untagged == set(digests) - windows  # untag_replaced: exactly what left every window
    assert len(set(project.images())) == 12  # boda deleted nothing: only ECR's policy will


def index_of(client: Any, n: int, *, signed: bool = False) -> tuple[str, list[str], str | None]:
    """An image index with two platform manifests pushed by digest, untagged (as buildx pushes them),
    and optionally a cosign-style signature tagged `sha256-<hex>.sig` (an ordinary image to ECR)."""
    children = [seed_image(client, APP, make_manifest(f"{arch} {n}")) for arch in ("amd64", "arm64")]
    listed = [c.descriptor().to_json() for c in children]
    index = Manifest.from_bytes(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}, indent=2).encode()
    )
    seed_image(client, APP, index, f"ci-{n}")
    signature = None
    if signed:
        sig = seed_image(client, APP, make_manifest(f"signature {n}"), index.digest.tag_form + ".sig")
        signature = str(sig.digest)
    return str(index.digest), [str(c.digest) for c in children], signature


def test_children_and_signatures_of_protected_indexes(
    tmp_path: Path, boda: Any, ecr_like_client: Any
) -> None:
    """AWS documents that an image a manifest list references is not expired before the list, and
    that referrers go with their subject; boda tags the children and the (tag-based) signature of a
    protected index anyway, and the untag flow takes their tags away with the index's."""
    project = make_project(tmp_path, boda, ecr_like_client, promotion={"untag_replaced": True})
    built = []
    for n in range(1, 4):
        index, children, signature = index_of(ecr_like_client, n, signed=n == 1)
        project.ok("build", APP, "--commit", commit(n), "--digest", index)
        built.append((index, children, signature))
    (i1, c1, s1), (i2, c2, _), (i3, c3, _) = built

    project.promote(1, "dev")
    keep = project.keep_tags()
    for digest in (i1, *c1, s1):
        assert keep[digest] == {KEEP.tag("dev", digest)}, digest

    project.promote(2, "dev")
    project.promote(3, "dev")  # i1 leaves dev's window: it, its children and its signature go untagged
    images = project.images()
    assert all(images[d] == set() for d in (i1, *c1, s1))
    assert all(KEEP.tag("dev", d) in images[d] for d in (i2, *c2, i3, *c3))
    assert len(images) == 3 * 3 + 1  # nothing deleted

    # A ruthless rule on untagged images: the rendered policy keeps every child of a protected index.
    ruthless = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
                "action": {"type": "expire"},
            }
        ]
    }
    policy = tmp_path / "ruthless.json"
    policy.write_text(json.dumps(ruthless))
    rendered = project.boda("ecr", "policy", "render", APP, "--policy", str(policy))
    assert rendered.code == 0, rendered.err
    gone = expiring(project, rendered.out, tmp_path)
    assert gone and gone <= {i1, *c1, s1}


def with_runtime(project: Native, deployed: Path) -> None:
    config = project.root / "boda.toml"
    text = config.read_text().replace('name = "prd"\n', f'name = "prd"\nruntimes = ["file:{deployed}"]\n')
    config.write_text(text)


def test_what_a_runtime_runs_is_tagged_and_an_unreadable_runtime_removes_nothing(
    tmp_path: Path, boda: Any, ecr_like_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(tmp_path, boda, ecr_like_client, promotion={"untag_replaced": True})
    deployed = tmp_path / "deployed.txt"
    with_runtime(project, deployed)
    d1, d2, _, d4 = (project.build(n) for n in range(1, 5))
    deployed.write_text(f"{HOST}/{APP}@{d1}\n")  # deployed by hand, never promoted by boda
    project.promote(2, "dev")
    assert project.keep_tags()[d1] == {KEEP.tag("run", d1)}

    deployed.unlink()  # the runtime cannot be read now
    project.promote(3, "dev")
    project.promote(4, "dev")  # d2 leaves dev's window, but nothing may be removed
    assert "stale ones kept" in caplog.text
    keep = project.keep_tags()
    assert keep[d1] == {KEEP.tag("run", d1)} and keep[d2] == {KEEP.tag("dev", d2)}
    assert keep[d4] == {KEEP.tag("dev", d4)}  # the new digest is tagged all the same
    refused = project.boda("ecr", "sync", APP)
    assert refused.code == 6 and "deployed.txt" in refused.err

    # Skipped by name: what it runs is unknown, so its tags stay and nothing is untagged.
    skipped = project.ok("ecr", "sync", APP, "--skip-runtime", f"file:{deployed}")
    assert skipped["incomplete"] and KEEP.tag("run", d1) in project.images()[d1]
    assert project.images()[d2] == {commit(2)[:8], "ci-2"}  # its dev tag gone, not untagged

    deployed.write_text("")  # nothing runs now
    project.ok("ecr", "sync", APP)
    assert project.images()[d1] == {commit(1)[:8], "ci-1"}  # never promoted: not untagged
    assert project.images()[d2] == set()  # left every window: untagged


class Flaky:
    """Fails the first registry call of a kind that touches a protection tag, once: before it
    reaches ECR, or after it did (the answer lost)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, method: str, *, after: bool) -> None:
        self.failed = False
        original = getattr(EcrRegistry, method)

        def flaky(registry: EcrRegistry, *args: Any, **kwargs: Any) -> Any:
            if self.failed or not str(args[1]).startswith("keep-"):
                return original(registry, *args, **kwargs)
            self.failed = True
            if after:
                original(registry, *args, **kwargs)
            raise RegistryError(f"ECR {method}: connection reset (injected)")

        monkeypatch.setattr(EcrRegistry, method, flaky)


@pytest.mark.parametrize(("method", "after"), [("tag_delete", False), ("manifest_put", True)])
def test_a_sync_failing_midway_leaves_only_extra_tags_and_a_second_sync_completes_it(
    tmp_path: Path, boda: Any, ecr_like_client: Any, monkeypatch: pytest.MonkeyPatch, method: str, after: bool
) -> None:
    project = make_project(tmp_path, boda, ecr_like_client, promotion={"untag_replaced": True})
    d1, d2, d3 = (project.build(n) for n in range(1, 4))
    project.promote(1, "dev")
    project.promote(2, "dev")

    flaky = Flaky(monkeypatch, method, after=after)
    failed = project.boda("promote", APP, "--to", "dev", "--commit", commit(3))
    assert flaky.failed and failed.code == 6, failed.err
    assert "recorded, but its protection tags" in failed.err and "boda ecr sync" in failed.err
    assert project.ok("status", APP)["environments"][0]["current"]["digest"] == d3
    images = project.images()
    assert set(images) == {d1, d2, d3}  # nothing deleted
    assert KEEP.tag("dev", d2) in images[d2]  # every digest still in the window keeps its tag
    with project.ledger() as ledger:
        assert [i.action for i in ledger.open_intents(APP)] == ["protection-tags"]

    done = project.ok("ecr", "sync", APP)
    assert done["incomplete"] is None
    images = project.images()
    assert images[d1] == set() and KEEP.tag("dev", d3) in images[d3] and KEEP.tag("dev", d2) in images[d2]
    with project.ledger() as ledger:
        assert ledger.open_intents(APP) == []  # the later complete sync closed the interrupted one
    assert project.ok("ecr", "sync", APP)["changed"] is False


def test_a_ledger_that_lost_an_environments_history_removes_none_of_its_tags(
    tmp_path: Path, boda: Any, ecr_like_client: Any
) -> None:
    """A CI runner with a ledger of its own: it knows the builds but no promotion to prd. Its sync
    must not take the prd tags away (the registry's history is not its to forget)."""
    project = make_project(tmp_path, boda, ecr_like_client, promotion={"untag_replaced": True})
    d1, d2 = project.build(1), project.build(2)
    project.promote(1, "prd")
    ecr_like_client.batch_delete_image(repositoryName=APP, imageIds=[{"imageTag": "prd"}])  # and its env tag
    project.promote(2, "dev")
    (project.root / "ledger.db").rename(project.root / "old.db")
    for n, digest in ((1, d1), (2, d2)):
        project.ok("build", APP, "--commit", commit(n), "--digest", digest)
    project.promote(2, "dev")
    assert KEEP.tag("prd", d1) in project.images()[d1]
    assert Digest.parse(d1)  # still there, still tagged


def test_strategy_repos_environment_repositories(tmp_path: Path, boda: Any, ecr_like_client: Any) -> None:
    """Strategy `repos`: an environment's repository holds what was promoted there, each under its
    commit tag, and every tagged image there is deployed (issue "In use means in use"). Its rendered
    policy shields every tag (`*`), so only untag_replaced lets the policy take what left every window.

    MOTO-NO-V2: a promotion's copy into the environment's repository needs the registry API, which
    moto lacks; the copies are seeded with put_image (what the copy writes) and the promotions
    recorded in the ledger as boda records them."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, strategy="repos", promotion={"untag_replaced": True})
    ecr_like_client.create_repository(repositoryName=APP)
    ecr_like_client.create_repository(repositoryName=f"{APP}-dev")
    project = Native(root, boda, ecr_like_client)
    manifests = [seed_image(ecr_like_client, APP, make_manifest(f"repos {n}"), f"ci-{n}") for n in (1, 2, 3)]
    for n, manifest in enumerate(manifests, start=1):
        project.ok("build", APP, "--commit", commit(n), "--digest", str(manifest.digest))
    d1, d2, d3 = (str(m.digest) for m in manifests)
    previous = None
    for n, manifest in enumerate(manifests[:2], start=1):
        seed_image(ecr_like_client, f"{APP}-dev", manifest, commit(n)[:8])
        with project.ledger() as ledger, ledger.promotion_lock(APP, "dev") as tx:
            tx.record_promotion(
                digest=manifest.digest,
                commit=commit(n),
                reference=f"{HOST}/{APP}-dev@{manifest.digest}",
                by="ci",
                kind="promote",
                reason=None,
                expected_previous=previous,
            )
        previous = manifest.digest
    project.ok("ecr", "sync", APP)
    dev = project.images(f"{APP}-dev")
    assert dev == {d1: {commit(1)[:8], KEEP.tag("dev", d1)}, d2: {commit(2)[:8], KEEP.tag("dev", d2)}}
    assert KEEP.tag("dev", d1) in project.images()[d1]  # the build repository too

    rendered = project.boda("ecr", "policy", "render", APP, "--env", "dev")
    assert rendered.code == 0, rendered.err
    patterns = [r["selection"].get("tagPatternList") for r in json.loads(rendered.out)["rules"]]
    assert patterns[:2] == [["keep-*"], ["*"]]

    seed_image(ecr_like_client, f"{APP}-dev", manifests[2], commit(3)[:8])
    with project.ledger() as ledger, ledger.promotion_lock(APP, "dev") as tx:
        tx.record_promotion(
            digest=manifests[2].digest,
            commit=commit(3),
            reference=f"{HOST}/{APP}-dev@{d3}",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=previous,
        )
    project.ok("ecr", "sync", APP)  # d1 left dev's window: untagged in both repositories
    assert project.images(f"{APP}-dev")[d1] == set() and project.images()[d1] == set()
    assert project.images(f"{APP}-dev")[d2] == {commit(2)[:8], KEEP.tag("dev", d2)}
    assert len(project.images(f"{APP}-dev")) == 3 and len(project.images()) == 3
