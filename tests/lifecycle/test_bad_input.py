"""Every bad input: one clear line, the documented exit code, nothing changed anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boda.services.imagegen import make_image
from conftest import Project, make_project, sha


@pytest.fixture
def seeded(project: Project) -> tuple[Project, str, list[str], list[str]]:
    """An app with two builds, the first in dev with passing tests."""
    app = project.app("shop")
    commits, digests = zip(*(project.build(app, n) for n in range(2)), strict=True)
    assert project.boda("promote", app, "--to", "dev", "--commit", commits[0]).code == 0
    project.boda(
        "evidence", app, "--env", "dev", "--commit", commits[0], "--kind", "tests", "--result", "pass"
    )
    return project, app, list(commits), list(digests)


def repos_of(p: Project, app: str) -> list[str]:
    return [app] + [f"{app}-{env}" for env in ("dev", "stg", "prd")]


def two_builds_sharing_prefix(p: Project, app: str) -> str:
    """Record two builds whose commits share a 7-digit prefix; return that prefix."""
    for n, suffix in enumerate(("a" * 33, "b" * 33)):
        commit = "abcdef1" + suffix
        p.push(app, make_image(f"{p.prefix}-amb-{n}"), f"amb-{n}")
        assert p.boda("build", app, "--commit", commit, "--image", f":amb-{n}").code == 0
    return "abcdef1"


CASES: list[tuple[str, list[str], int]] = [
    ("unknown app", ["status", "{prefix}/nope"], 4),
    ("unknown app promote", ["promote", "{prefix}/nope", "--to", "dev", "--commit", "{c0}"], 4),
    ("unknown environment", ["promote", "{app}", "--to", "qa", "--commit", "{c0}"], 4),
    ("unknown commit", ["promote", "{app}", "--to", "dev", "--commit", "1234567"], 4),
    ("short prefix", ["promote", "{app}", "--to", "dev", "--commit", "123456"], 2),
    ("not hex", ["promote", "{app}", "--to", "dev", "--commit", "xyz1234"], 2),
    ("skips an environment", ["promote", "{app}", "--to", "prd", "--commit", "{c0}"], 3),
    ("not yet upstream", ["promote", "{app}", "--to", "stg", "--commit", "{c1}"], 3),
    ("force without reason", ["promote", "{app}", "--to", "prd", "--commit", "{c0}", "--force"], 2),
    (
        "invalid result",
        ["evidence", "{app}", "--env", "dev", "--commit", "{c0}", "--kind", "tests", "--result", "ok"],
        2,
    ),
    (
        "evidence bad env",
        ["evidence", "{app}", "--env", "qa", "--commit", "{c0}", "--kind", "tests", "--result", "pass"],
        4,
    ),
    (
        "mistyped evidence kind",
        ["evidence", "{app}", "--env", "dev", "--commit", "{c0}", "--kind", "signof", "--result", "pass"],
        2,
    ),
    (
        "malformed evidence kind",
        ["evidence", "{app}", "--env", "dev", "--commit", "{c0}", "--kind", "-x", "--result", "pass"],
        2,
    ),
    (
        "evidence where it never ran",
        ["evidence", "{app}", "--env", "stg", "--commit", "{c0}", "--kind", "tests", "--result", "pass"],
        3,
    ),
    (
        "evidence url with control characters",
        [
            "evidence",
            "{app}",
            "--env",
            "dev",
            "--commit",
            "{c0}",
            "--kind",
            "tests",
            "--url",
            "http://c/\x1b[2J",
        ],
        2,
    ),
    ("bad digest", ["promote", "{app}", "--to", "dev", "--digest", "sha256:1234"], 2),
    (
        "both commit and digest",
        ["promote", "{app}", "--to", "dev", "--commit", "{c0}", "--digest", "{d0}"],
        2,
    ),
    ("bad app name", ["status", "Shop/Web"], 2),
    ("build moves commit tag", ["build", "{app}", "--commit", "{c0}", "--digest", "{d1}"], 5),
    ("build unknown image", ["build", "{app}", "--commit", "{new}", "--image", ":no-such-tag"], 4),
    ("build bad reference", ["build", "{app}", "--commit", "{new}", "--image", "Bad Ref"], 2),
    # A build records the full SHA: a prefix is refused before the commit tag is written.
    ("build with a commit prefix", ["build", "{app}", "--commit", "{new7}", "--image", ":ci-0"], 2),
    ("rollback unknown digest", ["rollback", "{app}", "--env", "dev", "--to", "sha256:" + "e" * 64], 3),
    ("unknown option", ["promote", "{app}", "--to", "dev", "--colour"], 2),
    ("missing option", ["promote", "{app}", "--commit", "{c0}"], 2),
]


@pytest.mark.parametrize(("name", "args", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_changes_nothing(
    seeded: tuple[Project, str, list[str], list[str]], name: str, args: list[str], code: int
) -> None:
    p, app, commits, digests = seeded
    values = {
        "app": app,
        "prefix": p.prefix,
        "c0": commits[0],
        "c1": commits[1],
        "d0": digests[0],
        "d1": digests[1],
        "new": sha("never-built"),
        "new7": sha("never-built")[:7],
    }
    before = p.snapshot(repos_of(p, app))
    run = p.boda(*[a.format(**values) for a in args])
    assert run.code == code, (run.code, run.err)
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("boda: error: "), run.err
    assert "Traceback" not in run.err
    assert p.snapshot(repos_of(p, app)) == before


def test_ambiguous_prefix_is_exit_2(seeded: tuple[Project, str, list[str], list[str]]) -> None:
    p, app, _commits, _digests = seeded
    prefix = two_builds_sharing_prefix(p, app)
    before = p.snapshot(repos_of(p, app))
    run = p.boda("promote", app, "--to", "dev", "--commit", prefix)
    assert run.code == 2 and "ambiguous" in run.err
    assert p.snapshot(repos_of(p, app)) == before
    assert p.boda("promote", app, "--to", "dev", "--commit", prefix + "a").code == 0


CYCLIC = 'registry = "oci-layout:r"\n' + "".join(
    f'[[environments]]\nname = "{a}"\nafter = "{b}"\n' for a, b in (("a", "b"), ("b", "a"))
)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (CYCLIC, "cycle"),
        ('registry = "oci-layout:r"\nstrategy = "tags"\n', "unknown key"),
        ('registry = "oci-layout:r"\n[[environments]]\nname = "b"\nafter = "zz"\n', "upstream"),
        ("registry = \n", "invalid TOML"),
        # Hostile nesting: the TOML reader recurses per level; boda answers one line, never a traceback.
        ("a = " + "[" * 10_000 + "]" * 10_000 + "\n", "nested more than 32 levels"),
        ("a = " + "{b = " * 10_000 + "1" + "}" * 10_000 + "\n", "nested more than 32 levels"),
        ("[" + ".".join(["a"] * 10_000) + "]\nb = 1\n", "nested more than 32 levels"),
        ('registry = "oci-layout:r"\n[retention]\npolicy = ' + "[" * 40 + "]" * 40 + "\n", "nested more"),
    ],
    ids=[
        "cyclic",
        "misplaced-key",
        "missing-upstream",
        "malformed",
        "arrays-10000-deep",
        "inline-tables-10000-deep",
        "dotted-table-10000-deep",
        "arrays-40-deep",
    ],
)
def test_bad_config(tmp_path: Path, boda: Any, config: str, needle: str) -> None:
    (tmp_path / "boda.toml").write_text(config)
    run = boda("--config", str(tmp_path / "boda.toml"), "status", "foo/bar")
    assert run.code == 2 and needle in run.err and str(tmp_path / "boda.toml") in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / ".boda").exists() and not (tmp_path / "r").exists()


def test_unreachable_registry_is_exit_6(tmp_path: Path, boda: Any, sqlite_url: str) -> None:
    from fixtures.registry import free_port

    p = make_project(tmp_path, f"http://127.0.0.1:{free_port()}", sqlite_url, "tags", boda)
    run = p.boda("build", "foo/bar", "--commit", sha(1), "--image", ":v1")
    assert run.code == 6 and len(run.err.strip().splitlines()) == 1, run.err
    assert "127.0.0.1" in run.err


def test_a_mistyped_kind_gets_a_suggestion(seeded: tuple[Project, str, list[str], list[str]]) -> None:
    p, app, commits, _digests = seeded
    run = p.boda(
        "evidence", app, "--env", "dev", "--commit", commits[0], "--kind", "signof", "--result", "pass"
    )
    assert run.code == 2 and "did you mean 'signoff'?" in run.err and "known: tests, signoff" in run.err


def test_extra_evidence_kinds_come_from_the_config(tmp_path: Path, sqlite_url: str, boda: Any) -> None:
    p = make_project(
        tmp_path / "p",
        f"oci-layout:{tmp_path / 'r'}",
        sqlite_url,
        "tags",
        boda,
        extra='\n[evidence]\nkinds = ["perf"]\n',
    )
    app = p.app("web")
    commit, _digest = p.build(app, 0)
    assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    run = p.boda(
        "evidence", app, "--env", "dev", "--commit", commit, "--kind", "perf", "--result", "fail", "--json"
    )
    assert run.code == 0, run.err
    assert run.json["kind"] == "perf" and run.json["result"] == "fail"
