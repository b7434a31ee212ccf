"""retention.age_from: a build promoted yesterday is not old because it was built a month ago."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.ledger import open_ledger
from boda.services.context import Context
from boda.services.expiry.plan import plan
from boda.services.promote import promote
from conftest import make_project

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 10,
            },
            "action": {"type": "expire"},
        }
    ]
}


@pytest.mark.parametrize(("age_from", "expected"), [("push", "expire"), ("promotion", "keep")])
def test_age_counts_from_the_last_promotion(
    tmp_path: Path, sqlite_url: str, boda: Any, age_from: str, expected: str
) -> None:
    extra = '\n[retention]\nrollback_depth = 0\nmin_age = "0s"\npolicy = "policy.json"\n'
    extra += f'age_from = "{age_from}"\n'
    p = make_project(
        tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "tags", boda, extra=extra
    )
    (p.root / "policy.json").write_text(json.dumps(POLICY))
    app = p.app("aged")
    commits = [p.build(app, n)[0] for n in range(2)]
    pushed = datetime.now(UTC)
    # Commit 0 reaches dev 20 days after it was built, then commit 1 replaces it the same day.
    config = load_config(p.config)
    for n, commit in enumerate(commits):
        at = pushed + timedelta(days=20, minutes=n)
        ctx = Context(
            config, _ledger=open_ledger(config.ledger, base_dir=config.base_dir, clock=lambda at=at: at)
        )
        try:
            promote(ctx, [app], to="dev", commit=commit)
        finally:
            ctx.close()
    ctx = Context(config)
    try:
        entries = plan(ctx, app, now=pushed + timedelta(days=25)).entries
    finally:
        ctx.close()
    first = next(e for e in entries if commits[0][:8] in e.tags)
    assert first.action == expected
