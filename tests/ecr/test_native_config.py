"""The native retention keys of boda.toml: `[retention] mode`, `[retention] protection_prefix` and
`[promotion] untag_replaced`, and what they refuse (one line naming file, line and key; exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from boda.config import parse_config
from boda.errors import ConfigError
from fixtures.config import DEV_STG_PRD, boda_toml

ECR = "ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
NATIVE = {"mode": "native"}
PREFIX = "retention.protection_prefix"


def config(tmp_path: Path, **kwargs: object) -> str:
    settings: dict[str, object] = {"registry": ECR, "ledger": "sqlite:///l.db", **kwargs}
    return boda_toml(**settings)  # type: ignore[arg-type]


def test_defaults_are_todays_behaviour(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path), tmp_path / "boda.toml")
    assert cfg.retention.mode == "boda" and cfg.retention.protection_prefix == "keep-"
    assert cfg.untag_replaced is False


def test_native_with_untag_replaced(tmp_path: Path) -> None:
    text = config(
        tmp_path,
        retention={"mode": "native", "protection_prefix": "boda.keep-"},
        promotion={"untag_replaced": True},
    )
    cfg = parse_config(text, tmp_path / "boda.toml")
    assert cfg.retention.mode == "native" and cfg.untag_replaced is True
    assert cfg.retention.protection_prefix == "boda.keep-"


@pytest.mark.parametrize(
    ("kwargs", "where", "says"),
    [
        ({"retention": {"mode": "ecr"}}, "retention.mode", "must be one of 'boda', 'native'"),
        ({"registry": "http://127.0.0.1:5000", "retention": NATIVE}, "retention.mode", "needs an ECR"),
        ({"promotion": {"untag_replaced": True}}, "promotion.untag_replaced", "needs [retention] mode"),
        ({"promotion": {"untag_replaced": "yes"}}, "promotion.untag_replaced", "must be true or false"),
        ({"retention": {**NATIVE, "protection_prefix": "-keep"}}, PREFIX, "1 to 32"),
        ({"retention": {**NATIVE, "protection_prefix": "K"}}, PREFIX, "lower-case"),
        (
            {"retention": {**NATIVE, "protection_prefix": "c"}, "promotion": {"commit_tag": "c{commit:.8}"}},
            PREFIX,
            "commit tags would start with",
        ),
        (
            {"retention": {"mode": "native"}, "environments": [("dev", None, ()), ("pin", "dev", ())]},
            "environments[1].name",
            "'pin' is reserved",
        ),
        (
            {"retention": {"mode": "native", "protection_prefix": "p"}, "environments": DEV_STG_PRD},
            "environments[2].name",
            "would start with the protection prefix",
        ),
    ],
)
def test_bad_native_settings(tmp_path: Path, kwargs: dict[str, object], where: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(tmp_path, **kwargs), tmp_path / "boda.toml")
    message = caught.value.message
    assert "boda.toml:" in message and f"{where}:" in message and says in message
    assert "\n" not in message
