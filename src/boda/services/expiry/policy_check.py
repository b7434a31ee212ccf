"""Would a lifecycle policy, run as ECR runs it, expire anything in use? The outage predictor."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import UsageError
from boda.policy.columnar import evaluate
from boda.policy.document import parse_policy
from boda.policy.plan import EXPIRE, plan_repository
from boda.registry.base import LifecyclePolicyStore
from boda.services.context import Context
from boda.services.expiry.inventory import read_inventory, repositories
from boda.services.expiry.plan import require_known_app
from boda.services.expiry.policy_file import policy_for
from boda.services.expiry.protections import (
    apps_sharing,
    combine,
    merged_facts,
    registry_holds,
    runtime_holds,
)
from boda.services.runtime_scan import scan


def policy_check(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    now: datetime | None = None,
    skip_runtimes: Collection[str] = (),
) -> dict[str, Any]:
    """Evaluate the policy as ECR would (ignoring boda's protections) and list every protected
    image it would expire: the outage predictor."""
    require_known_app(ctx, app)
    if policy is None and ctx.config.retention.policy is None:
        store = ctx.registry if isinstance(ctx.registry, LifecyclePolicyStore) else None
        text = store.lifecycle_policy(ctx.config.repository_for(app, None)) if store else None
        if not text:
            raise UsageError(
                "no lifecycle policy: give a policy file, set retention.policy in boda.toml,"
                " or put one on ECR"
            )
        rules = parse_policy(text)
    else:
        rules = policy_for(ctx, policy)
    now = now or datetime.now(UTC)
    running = scan(ctx, None, skip=skip_runtimes)
    at_risk = []
    for repo in repositories(ctx, app):
        inventory = read_inventory(ctx, app, repo)
        facts = merged_facts(ctx, apps_sharing(ctx, repo, app))
        tagged, _drift = registry_holds(ctx, app, repo, inventory.images, facts)
        held = combine(tagged, runtime_holds(running, repo))
        decisions = {d.digest: d for d in evaluate(rules, inventory.images, now) if d.action == "expire"}
        entries = plan_repository(
            repo, inventory.images, list(decisions.values()), replace(facts, held=held), now
        )
        for entry in entries:
            if entry.digest in decisions and entry.action != EXPIRE:
                at_risk.append(
                    {
                        "repository": repo,
                        "digest": entry.digest,
                        "tags": list(entry.tags),
                        "appliedRulePriority": decisions[entry.digest].rule_priority,
                        "protections": [r for r in entry.reasons if r["type"] == "protection"],
                    }
                )
    return {"app": app, "violations": at_risk}
