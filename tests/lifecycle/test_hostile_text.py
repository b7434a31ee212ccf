"""Free text a person gives (`--reason`, `--by`, `--url`, a pin's reason): too long, or not text at
all (bytes in another encoding than UTF-8), it gets one line, exit 2, and nothing changes anywhere;
up to the limit it is accepted as given."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boda.errors import UsageError
from boda.types import MAX_TEXT, MAX_URL
from conftest import Project, make_project, sha
from fixtures.attest import SignedProject, make_signed_project

LONG = "x" * (MAX_TEXT + 1)
LONG_URL = "https://ci.example/" + "r" * (MAX_URL - len("https://ci.example/") + 1)


@pytest.fixture
def seeded(tmp_path: Path, sqlite_url: str, boda: Any) -> tuple[Project, str, list[str], list[str]]:
    """An app with two builds, both once current in dev (the second now), tests passed for both."""
    p = make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'r'}", sqlite_url, "tags", boda)
    app = p.app("web")
    commits, digests = zip(*(p.build(app, n) for n in range(2)), strict=True)
    for commit in commits:
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    return p, app, list(commits), list(digests)


FORCE = ["promote", "{app}", "--to", "stg", "--commit", "{c1}", "--force"]
EVIDENCE = ["evidence", "{app}", "--env", "dev", "--commit", "{c1}", "--kind", "tests", "--result", "pass"]
CASES: list[tuple[str, list[str]]] = [
    ("promote --reason", [*FORCE, "--reason", LONG]),
    ("promote --by", [*FORCE, "--reason", "x", "--by", LONG]),
    ("rollback --reason", ["rollback", "{app}", "--env", "dev", "--reason", LONG]),
    ("rollback --by", ["rollback", "{app}", "--env", "dev", "--by", LONG]),
    ("evidence --url", [*EVIDENCE, "--url", LONG_URL]),
    ("evidence --by", [*EVIDENCE, "--by", LONG]),
    ("pin --reason", ["pin", "{app}", "{d0}", "--reason", LONG]),
    ("pin --by", ["pin", "{app}", "{d0}", "--reason", "audit", "--by", LONG]),
    ("unpin --by", ["unpin", "{app}", "{d0}", "--by", LONG]),
    ("build --by", ["build", "{app}", "--commit", "{new}", "--image", ":ci-0", "--by", LONG]),
    ("repair --reason", ["repair", "{app}", "--reason", LONG]),
    ("gc apply --by", ["gc", "apply", "{app}", "--yes", "--by", LONG]),
]


@pytest.mark.parametrize(("name", "args"), CASES, ids=[c[0] for c in CASES])
def test_too_long_free_text_is_one_line_and_changes_nothing(
    seeded: tuple[Project, str, list[str], list[str]], name: str, args: list[str]
) -> None:
    p, app, commits, digests = seeded
    values = {"app": app, "c1": commits[1], "d0": digests[0], "new": sha("never-built")}
    before = p.snapshot([app])
    run = p.boda(*[a.format(**values) if "{" in a else a for a in args])
    assert run.code == 2, (run.code, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("boda: error: "), run.err
    flag = name.split()[-1]
    assert f"{flag} is {len(LONG_URL if flag == '--url' else LONG):,} characters long" in run.err
    assert run.out == ""
    assert p.snapshot([app]) == before


def test_free_text_up_to_the_limit_is_kept_as_given(
    seeded: tuple[Project, str, list[str], list[str]],
) -> None:
    p, app, commits, digests = seeded
    reason, url = "y" * MAX_TEXT, LONG_URL[:-1]
    pinned = p.boda("pin", app, digests[0], "--reason", reason, "--by", "z" * MAX_TEXT, "--json")
    assert pinned.code == 0 and pinned.json["reason"] == reason, pinned.err
    evidence = [a.format(app=app, c1=commits[1]) for a in EVIDENCE]
    done = p.boda(*evidence, "--url", url, "--json")
    assert done.code == 0 and done.json["url"] == url, done.err


def test_the_services_refuse_it_too(seeded: tuple[Project, str, list[str], list[str]]) -> None:
    """A library caller meets the same rule before anything is written."""
    from boda.config import load_config
    from boda.services.context import Context
    from boda.services.evidence import record_evidence
    from boda.services.expiry.pins import pin
    from boda.services.promote import rollback

    p, app, commits, digests = seeded
    before = p.snapshot([app])
    with Context(load_config(p.config)) as ctx:
        with pytest.raises(UsageError, match="characters long"):
            pin(ctx, app, digests[0], reason=LONG)
        with pytest.raises(UsageError, match="characters long"):
            rollback(ctx, app, env="dev", reason=LONG)
        with pytest.raises(UsageError, match="not text"):
            rollback(ctx, app, env="dev", by="ci \udcff")
        with pytest.raises(UsageError, match="characters long"):
            record_evidence(ctx, app, env="dev", kind="tests", result="pass", commit=commits[1], url=LONG_URL)
    assert p.snapshot([app]) == before


def test_a_ci_identity_that_is_not_text_is_refused(
    seeded: tuple[Project, str, list[str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, app, _commits, digests = seeded
    monkeypatch.setenv("BODA_ACTOR", "ci \udcff")  # what a Latin-1 environment variable decodes to
    before = p.snapshot([app])
    run = p.boda("pin", app, digests[0], "--reason", "audit")
    assert run.code == 2 and "$BODA_ACTOR" in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert p.snapshot([app]) == before


# -- bytes that are not UTF-8, as a shell passes them ----------------------------------------------------


@pytest.fixture
def signed(tmp_path: Path, sqlite_url: str, boda: Any) -> SignedProject:
    """A project that signs every evidence: a bad URL must not reach the registry as a statement."""
    return make_signed_project(
        tmp_path / "s",
        f"oci-layout:{tmp_path / 'sr'}",
        sqlite_url,
        "tags",
        boda,
        extra='\n[evidence]\nsign = "ci.key.pem"\n',
    )


def _raw(p: SignedProject, *args: bytes) -> subprocess.CompletedProcess[bytes]:
    head = [sys.executable, "-m", "boda", "--config", str(p.config)]
    return subprocess.run([*map(os.fsencode, head), *args], capture_output=True, check=False, cwd=p.root)


@pytest.mark.parametrize(
    "extra",
    [
        [b"--url", b"https://ci.example/run/\xff\xfe"],
        [b"--url", b"https://ci.example/\xe9t\xe9"],  # Latin-1 "été"
        [b"--by", b"r\xe9mi"],
    ],
    ids=["url-invalid-utf8", "url-latin1", "by-latin1"],
)
def test_non_utf8_bytes_are_refused_before_anything_is_written(
    signed: SignedProject, extra: list[bytes]
) -> None:
    p = signed
    app = p.app("web")
    commit, _digest = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    before = p.snapshot(app)
    args = [b"evidence", app.encode(), b"--env", b"dev", b"--commit", commit.encode(), b"--kind", b"tests"]
    done = _raw(p, *args, b"--result", b"pass", *extra)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and b"Traceback" not in done.stderr
    assert b"not text" in done.stderr and extra[0] in done.stderr
    assert done.stdout == b""
    assert p.snapshot(app) == before
    # The same evidence with a URL in UTF-8 is signed and recorded.
    url = "https://ci.example/\u00e9t\u00e9"
    assert p.ok(*[a.decode() for a in args], "--result", "pass", "--url", url, "--json").json["url"] == url


def test_a_non_utf8_pin_reason_is_refused(signed: SignedProject) -> None:
    p = signed
    app = p.app("web")
    _commit, digest = p.build(app, 1)
    before = p.snapshot(app)
    done = _raw(p, b"pin", app.encode(), digest.encode(), b"--reason", b"keep \xff")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert p.snapshot(app) == before


# -- text output: shown escaped in every column, raw in JSON --------------------------------------------

FORGED = "hotfix\n2026-01-01 00:00Z  prd  sha256:000000000000  forged\x1b[2J\u202e"
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def test_reasons_and_names_are_escaped_in_text_output_and_raw_in_json(
    seeded: tuple[Project, str, list[str], list[str]],
) -> None:
    p, app, _commits, digests = seeded
    assert p.boda("rollback", app, "--env", "dev", "--reason", FORGED, "--by", f"mallory{FORGED}").code == 0
    assert p.boda("pin", app, digests[1], "--reason", FORGED, "--by", FORGED).code == 0
    policy = p.root / "policy.json"
    rule = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
    policy.write_text(
        json.dumps({"rules": [{"rulePriority": 1, "selection": rule, "action": {"type": "expire"}}]})
    )
    plan = ["gc", "plan", app, "--policy", str(policy)]
    for args in (["status", app], ["history", app, "--no-pager"], ["events", app], plan):
        run = p.boda(*args)
        assert run.code == 0, (args, run.err)
        assert not RAW.search(run.out), (args, run.out)
        assert "forged\\x1b[2J\\u202e" in run.out, (args, run.out)
        assert not any(line.startswith("2026-01-01") for line in run.out.splitlines()), (args, run.out)
    assert p.boda("history", app, "--json").json["entries"][0]["reason"] == FORGED
    assert p.boda("events", app, "--json").json["events"][0]["reason"] == FORGED
