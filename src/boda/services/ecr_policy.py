"""Read and write an app's native ECR lifecycle policy, validated by boda's own validator first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from boda.errors import PolicyError, UsageError
from boda.policy.document import parse_policy
from boda.registry.base import LifecyclePolicyStore
from boda.services.context import Context, check_app


def _ecr(ctx: Context) -> LifecyclePolicyStore:
    """The configured registry when it stores lifecycle policies (ECR); UsageError otherwise."""
    registry = ctx.registry
    if not isinstance(registry, LifecyclePolicyStore):
        raise UsageError(
            f"boda ecr needs an ECR registry; {ctx.config.path or 'the config'} has"
            f" {str(ctx.config.registry)!r}",
            hint='set registry = "ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com" in boda.toml',
        )
    return registry


def _repository(ctx: Context, app: str, env: str | None) -> str:
    check_app(app)
    if env is not None:
        ctx.config.environment(env)
    return ctx.config.repository_for(app, env)


def get_policy(ctx: Context, app: str, *, env: str | None = None) -> dict[str, Any]:
    """The lifecycle policy of the app's repository (or of its repository for `env`, strategy
    `repos`) with boda's reading of each rule; `policy` is None when the repository has none."""
    registry = _ecr(ctx)
    repo = _repository(ctx, app, env)
    text = registry.lifecycle_policy(repo)
    out: dict[str, Any] = {"registry": ctx.registry.name, "repository": repo, "policy": None, "rules": []}
    if text is None:
        return out
    out["policy"] = json.loads(text)
    try:
        out["rules"] = [rule.reason for rule in parse_policy(text).rules]
    except PolicyError as exc:
        out["invalid"] = exc.message  # stored by someone else; boda cannot evaluate it
    return out


def put_policy(ctx: Context, app: str, policy: Path, *, env: str | None = None) -> dict[str, Any]:
    """Validate `policy` with boda's validator, then store it on the app's repository.

    Invalid text raises PolicyError (exit 2) and nothing is written. A missing repository is
    created first, with the configured settings.
    """
    repo = _repository(ctx, app, env)
    try:
        text = policy.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{policy}: cannot read the policy: {exc.strerror}") from exc
    try:
        parsed = parse_policy(text)
    except PolicyError as exc:
        raise PolicyError(f"{policy}: {exc.message}", hint="nothing was written to ECR") from exc
    registry = _ecr(ctx)
    registry.ensure_repository(repo)
    registry.put_lifecycle_policy(repo, text)
    return {
        "registry": ctx.registry.name,
        "repository": repo,
        "policy": json.loads(text),
        "rules": [rule.reason for rule in parsed.rules],
    }
