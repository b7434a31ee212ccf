"""Read and write an app's native ECR lifecycle policy, validated by boda's own validator first;
in native retention, render it with boda's shield rules and prove it on the live images first."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import PolicyError, Refused, RegistryError, UsageError
from boda.policy.document import parse_policy
from boda.policy.render import (
    SHIELD_COUNT,
    Rendered,
    Violation,
    prove,
    render_policy,
    shields_for,
    user_rules,
)
from boda.registry.base import LifecyclePolicyStore
from boda.services.context import Context, check_app, identity
from boda.services.native_retention import (
    MutabilityChange,
    SyncReport,
    is_native,
    prepare,
    protected,
    require_native,
    scheme,
    sync,
)


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


@dataclass(frozen=True)
class StoredPolicy:
    """The lifecycle policy a repository holds, with boda's reading of each rule."""

    registry: str
    repository: str
    #: The policy document; None when the repository has none.
    policy: Any
    rules: tuple[str, ...] = ()
    #: Why boda cannot evaluate the stored policy (put there by someone else), else None.
    invalid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (`invalid` only when boda cannot read the policy)."""
        out = {
            "registry": self.registry,
            "repository": self.repository,
            "policy": self.policy,
            "rules": list(self.rules),
        }
        return out if self.invalid is None else {**out, "invalid": self.invalid}


def get_policy(ctx: Context, app: str, *, env: str | None = None) -> StoredPolicy:
    """The lifecycle policy of the app's repository (or of its repository for `env`, strategy
    `repos`) with boda's reading of each rule; `policy` is None when the repository has none."""
    registry = _ecr(ctx)
    repo = _repository(ctx, app, env)
    text = registry.lifecycle_policy(repo)
    if text is None:
        return StoredPolicy(ctx.registry.name, repo, None)
    try:
        rules = tuple(rule.reason for rule in parse_policy(text).rules)
    except PolicyError as exc:  # stored by someone else; boda cannot evaluate it
        return StoredPolicy(ctx.registry.name, repo, json.loads(text), invalid=exc.message)
    return StoredPolicy(ctx.registry.name, repo, json.loads(text), rules)


def put_policy(ctx: Context, app: str, policy: Path, *, env: str | None = None) -> StoredPolicy:
    """Validate `policy` with boda's validator, then store it on the app's repository.

    Invalid text raises PolicyError (exit 2) and nothing is written. In native retention the policy
    is also proved on the live images (Refused, exit 3, when it would expire a protected image). A
    missing repository is created first, with the configured settings.
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
    if is_native(ctx):
        # Native retention: the policy deletes on its own. It must shield the protection tags first
        # (a rendered policy, saved from `render`), and it is proved before it is stored.
        first = parsed.rules[0]
        if first.tag_pattern_list != (scheme(ctx).pattern,) or first.count_number < SHIELD_COUNT:
            raise Refused(
                f"{policy}: in native retention a policy must start with boda's shield of the"
                f" protection tags ({scheme(ctx).pattern}); nothing was written",
                hint=f"put it with `boda ecr policy put {app} --render --policy {policy}`",
            )
        state = protected(ctx, app, repo)
        violations = prove(parsed, state.images, state.protected, datetime.now(UTC))
        if violations:
            raise _unproved(app, repo, violations, scheme(ctx).pattern, rendered=False)
    registry = _ecr(ctx)
    registry.ensure_repository(repo)
    registry.put_lifecycle_policy(repo, text)
    rules = tuple(rule.reason for rule in parsed.rules)
    return StoredPolicy(ctx.registry.name, repo, json.loads(text), rules)


@dataclass
class RenderResult:
    """A rendered policy for one repository, proved on its live images."""

    registry: str
    repository: str
    rendered: Rendered
    images: int
    protected: int
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The policy document, as `aws ecr put-lifecycle-policy --lifecycle-policy-text` takes it."""
        return self.rendered.text

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "registry": self.registry,
            "repository": self.repository,
            "policy": self.rendered.document,
            "shields": self.rendered.shields,
            "rules": [rule.reason for rule in self.rendered.policy.rules],
            "source": self.source,
            "proof": {"images": self.images, "protected": self.protected, "violations": []},
            "notes": self.notes,
        }


def _user_policy(ctx: Context, repo: str, policy: Path | None) -> tuple[str | None, str]:
    """The user's rules: the file given, else retention.policy, else the repository's own policy
    (boda's shields left out when it was rendered before)."""
    path = policy or ctx.config.retention.policy
    if path is not None:
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"{path}: cannot read the policy: {getattr(exc, 'strerror', None) or exc}"
            ) from exc
    return _ecr(ctx).lifecycle_policy(repo), f"the lifecycle policy of {repo}"


def render(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    env: str | None = None,
    skip_runtimes: Collection[str] = (),
    now: datetime | None = None,
) -> RenderResult:
    """The lifecycle policy document for the app's repository: boda's shield rules first (they select
    the protection tags and what the registry's environment tags name, and never act), then the
    user's rules renumbered after them; validated, and proved with boda's evaluator on the
    repository's live images: Refused (exit 3, naming them) when it would expire or archive anything
    that must stay."""
    require_native(ctx, "boda ecr policy render")
    repo = _repository(ctx, app, env)
    text, source = _user_policy(ctx, repo, policy)
    own = repo == ctx.config.repository_for(app, None)
    try:
        archive = any(r["selection"].get("storageClass") == "archive" for r in user_rules(text))
        shields = shields_for(
            scheme(ctx).pattern,
            env_tags=[e.name for e in ctx.config.environments]
            if ctx.config.strategy == "tags" and own
            else [],
            every_tag=ctx.config.strategy == "repos" and not own,
            archive=archive,
        )
        rendered = render_policy(text, shields)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc.message}", hint="nothing was written to ECR") from exc
    state = protected(ctx, app, repo, skip_runtimes=skip_runtimes, now=now)
    violations = prove(rendered.policy, state.images, state.protected, now or datetime.now(UTC))
    if violations:
        raise _unproved(app, repo, violations, scheme(ctx).pattern)
    notes = list(rendered.notes) + state.notes
    if ctx.config.retention.min_age:
        notes.append(
            "retention.min_age is not enforced by ECR's policy: a lifecycle rule cannot select by age"
        )
    return RenderResult(
        ctx.registry.name, repo, rendered, len(state.images), len(state.protected), source, notes
    )


def _unproved(
    app: str, repo: str, violations: list[Violation], pattern: str, *, rendered: bool = True
) -> Refused:
    untagged = [v for v in violations if not any(t.startswith(pattern[:-1]) for t in v.tags)]
    shown = "; ".join(v.text for v in violations[:3])
    more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
    if not rendered:
        hint = f"render it with boda's shields: `boda ecr policy put {app} --render --policy FILE`"
    elif untagged:
        hint = f"run `boda ecr sync {app}`: those images lack their protection tags"
    else:
        hint = "report this: a shielded image would still be expired"
    what = "the rendered policy" if rendered else "the policy"
    return Refused(
        f"{repo}: {what} would expire {len(violations)} protected image(s): {shown}{more};"
        " nothing was written",
        hint=hint,
        reasons=tuple(v.text for v in violations),
    )


@dataclass(frozen=True)
class RenderedPut:
    """`boda ecr policy put --render`: the policy stored, the tag mutability changed, the sync made."""

    rendered: RenderResult
    mutability: MutabilityChange | None
    sync: SyncReport

    def to_json(self) -> dict[str, Any]:
        """JSON form: the rendered policy's, with `mutability` (None: unchanged) and `sync`."""
        mutability = None if self.mutability is None else self.mutability.to_json()
        return {**self.rendered.to_json(), "mutability": mutability, "sync": self.sync.to_json()}


def put_rendered(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    env: str | None = None,
    skip_runtimes: Collection[str] = (),
    by: str | None = None,
) -> RenderedPut:
    """Apply native retention to the app's repository: let the protection tags move (exclusion
    filters), sync the tags, render and prove the policy on the live images, store it, read it back."""
    require_native(ctx, "boda ecr policy put --render")
    actor = identity(by)
    repo = _repository(ctx, app, env)
    registry = _ecr(ctx)
    registry.ensure_repository(repo)
    mutability = prepare(ctx, app, repo)
    synced = sync(ctx, app, by=actor, skip_runtimes=skip_runtimes)
    result = render(ctx, app, policy=policy, env=env, skip_runtimes=skip_runtimes)
    registry.put_lifecycle_policy(repo, result.text)
    stored = registry.lifecycle_policy(repo)
    if stored is None or json.loads(stored) != result.rendered.document:
        raise RegistryError(f"{repo}: read back, the lifecycle policy is not the one boda put")
    ctx.ledger.record_event(
        "lifecycle-policy",
        app=app,
        env=env,
        by=actor,
        reason="rendered for native retention",
        detail={
            "repository": repo,
            "rules": len(result.rendered.policy.rules),
            "shields": result.rendered.shields,
        },
    )
    return RenderedPut(result, mutability, synced)
