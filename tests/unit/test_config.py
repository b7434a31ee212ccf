"""boda.toml: defaults, validation with file/key/line, discovery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from boda.config import SAMPLE_CONFIG, find_config, load_config, parse_config
from boda.errors import ConfigError

BASE = """\
registry = "http://127.0.0.1:5000"
ledger = "sqlite:///.boda/ledger.db"

[promotion]
strategy = "repos"

[[environments]]
name = "dev"

[[environments]]
name = "stg"
after = "dev"
requires = ["tests"]
"""


def parse(text: str, tmp_path: Path) -> object:
    return parse_config(text, tmp_path / "boda.toml")


def test_sample_config_is_valid(tmp_path: Path) -> None:
    cfg = parse_config(SAMPLE_CONFIG, tmp_path / "boda.toml")
    assert [e.name for e in cfg.environments] == ["dev", "stg", "prd"]
    assert cfg.environment("prd").requires == ("tests", "signoff")
    assert cfg.commit_tag_for("daf46a8f0123456789") == "daf46a8f"
    assert cfg.retention.min_age == timedelta(days=1)
    assert cfg.strategy == "tags" and cfg.repository_for("foo/bar", "prd") == "foo/bar"


SHA1 = "daf46a8f0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("template", "commit", "expected"),
    [
        (
            "{commit:.8}",
            SHA1,
            [SHA1[:n] for n in (8, 12, 16, 20, 24, 28, 32, 36, 40)],
        ),
        ("v.{commit:.8}_x", SHA1, None),  # literal text around it: checked below
        ("{commit:.10}", SHA1, [SHA1[:n] for n in (10, 12, 16, 20, 24, 28, 32, 36, 40)]),
        ("{commit:.38}", SHA1, [SHA1[:38], SHA1]),
        ("{commit}", SHA1, [SHA1]),  # the whole SHA: nothing longer, nothing to collide
        ("git-{commit}", SHA1, ["git-" + SHA1]),
        ("{commit:.8}", SHA1 + SHA1[:24], [(SHA1 + SHA1[:24])[:n] for n in range(8, 65, 4)]),
        ("{commit:.8}-{commit:.12}", SHA1, None),
    ],
)
def test_longer_commit_tags_after_a_collision(template: str, commit: str, expected: list[str] | None) -> None:
    from boda.config import Config

    config = Config(commit_tag=template)
    tags = config.commit_tags_for(commit)
    assert tags[0] == config.commit_tag_for(commit)
    assert len(set(tags)) == len(tags)
    if expected is not None:
        assert tags == expected
    if template.startswith("v"):
        assert tags[:2] == [f"v.{SHA1[:8]}_x", f"v.{SHA1[:12]}_x"] and tags[-1] == f"v.{SHA1}_x"
    if "-{commit:.12}" in template:  # every precision grows, the longest form shows the whole SHA
        assert tags[:3] == [f"{SHA1[:8]}-{SHA1[:12]}", f"{SHA1[:12]}-{SHA1[:12]}", f"{SHA1[:16]}-{SHA1[:16]}"]
        assert tags[-1] == f"{SHA1}-{SHA1}"


def test_longer_commit_tags_stop_at_the_longest_valid_tag() -> None:
    from boda.config import Config

    sha256 = "ab" * 32
    config = Config(commit_tag="x" * 60 + "{commit:.8}")
    tags = config.commit_tags_for(sha256)
    assert tags[-1] == "x" * 60 + sha256[: 68 - 4]  # 128 characters at most: .64 is one step too long
    assert all(len(t) <= 128 for t in tags)


def test_repos_strategy_and_tree(tmp_path: Path) -> None:
    extra = "".join(f'[[environments]]\nname = "{n}"\nafter = "stg"\n\n' for n in ("prd-eu", "prd-us"))
    text = BASE + "\n" + extra
    cfg = parse_config(text, tmp_path / "boda.toml")
    assert cfg.repository_for("foo/bar", "prd-eu") == "foo/bar-prd-eu"
    assert cfg.base_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour = 1\n" + BASE, ":1: colour: unknown key"),
        (BASE + "colour = 1\n", ":14: environments[1].colour: unknown key"),
        (BASE.replace('strategy = "repos"', 'strategy = "copy"'), ":5: promotion.strategy: must be one of"),
        (BASE.replace('after = "dev"', 'after = "qa"'), ":12: environments[1].after: upstream 'qa'"),
        (BASE.replace('name = "dev"', 'name = "dev"\nafter = "stg"'), "cycle"),
        (BASE.replace("http://127.0.0.1:5000", "ftp://x"), ":1: registry:"),
        (BASE.replace("http://127.0.0.1:5000", "http://registry.example.com"), "plain http is only used"),
        (BASE.replace("sqlite:///.boda/ledger.db", "mysql://x/y"), ":2: ledger:"),
        (BASE.replace("sqlite:///.boda/ledger.db", "postgresql://u:secret@h"), ":2: ledger:"),
        (BASE + '\n[[environments]]\nname = "dev"\n', "defined twice"),
        (BASE + '\n[[environments]]\nname = "Prod!"\n', "environments[2].name"),
        (BASE + '\n[retention]\nmin_age = "soon"\n', "retention.min_age"),
        (BASE + "\n[retention]\nrollback_depth = -1\n", "retention.rollback_depth"),
        (BASE.replace('requires = ["tests"]', 'requires = "tests"'), "environments[1].requires"),
        (
            BASE.replace('strategy = "repos"', 'strategy = "repos"\ncommit_tag = "{sha}"'),
            "promotion.commit_tag",
        ),
        (
            BASE.replace('strategy = "repos"', 'strategy = "repos"\nrepo_template = "{app}"'),
            "must contain {app} and {env}",
        ),
        (
            BASE.replace('strategy = "repos"', 'strategy = "repos"\nrepo_template = "{env}"'),
            "must contain {app} and {env}",
        ),
        (BASE + "\n[retention]\nrollback_depth = 18446744073709551617\n", "retention.rollback_depth"),
        (BASE + '\n[retention]\nmin_age = "999999999999d"\n', "retention.min_age"),
        (BASE.split("[[environments]]")[0], "define at least one environment"),
        (BASE + '\n[evidence]\nkinds = ["ok", "-bad"]\n', "evidence.kinds"),
        ("registry = [\n", "invalid TOML"),
    ],
)
def test_bad_config_names_file_key_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text, tmp_path)
    message = err.value.message
    assert str(tmp_path / "boda.toml") in message and needle in message
    assert "\n" not in message and "secret" not in message
    assert err.value.exit_code == 2


def test_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "boda.toml").write_text(BASE)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    assert find_config() == tmp_path / "boda.toml"
    assert load_config().strategy == "repos"
    other = tmp_path / "other.toml"
    other.write_text(SAMPLE_CONFIG)
    monkeypatch.setenv("BODA_CONFIG", str(other))
    assert load_config().strategy == "tags"
    monkeypatch.setenv("BODA_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config()


def test_no_config_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"no boda\.toml"):
        load_config()
