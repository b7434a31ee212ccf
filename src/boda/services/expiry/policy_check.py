"""Would a lifecycle policy, run as ECR runs it, expire anything in use? The outage predictor.

On ECR it also asks ECR itself (StartLifecyclePolicyPreview) and reports every image where ECR's
answer differs from boda's evaluation; ECR is the judge of its own semantics, so a protected image
ECR's preview would expire is a violation whatever boda's evaluator says.

In native retention (`[retention] mode = "native"`) each repository is checked against the policy it
holds (what ECR runs), and the age protections (`min_age`) are left out: a lifecycle rule cannot
select by age, so no policy ECR runs can honour them (they are reported as a note).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import NotFound, UsageError
from boda.policy.columnar import evaluate
from boda.policy.decision import Decision
from boda.policy.document import LifecyclePolicy, parse_policy
from boda.policy.image import EcrImage
from boda.policy.plan import EXPIRE, Protection, plan_repository
from boda.registry.base import LifecyclePolicyStore, LifecyclePreviewer, RegistryPreview
from boda.services.context import Context
from boda.services.expiry.inventory import read_inventory, repositories
from boda.services.expiry.plan import require_known_app
from boda.services.expiry.policy_file import load_policy
from boda.services.expiry.protections import (
    apps_sharing,
    combine,
    merged_facts,
    registry_holds,
    runtime_holds,
)
from boda.services.runtime_scan import scan

#: Seconds to wait for ECR's own preview of one repository before reporting it unavailable.
PREVIEW_TIMEOUT = 120.0


@dataclass(frozen=True)
class RuleAction:
    """What a rule does to an image: expire or transition (archive), by the rule of that priority."""

    action: str | None
    rule_priority: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"action": self.action, "appliedRulePriority": self.rule_priority}


@dataclass(frozen=True)
class AtRisk:
    """A protected image the policy, run as ECR runs it, would expire (or archive)."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    by: RuleAction
    protections: tuple[Protection, ...]
    #: "ecr-preview" when ECR's own preview says so and boda's evaluation does not; else None.
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out = {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            **self.by.to_json(),
            "protections": [p.to_json() for p in self.protections],
        }
        return out if self.source is None else {**out, "source": self.source}


@dataclass(frozen=True)
class Difference:
    """One image where ECR's preview and boda's evaluation disagree (None: leaves it alone)."""

    digest: str
    ecr: RuleAction | None
    boda: RuleAction | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "digest": self.digest,
            "ecr": None if self.ecr is None else self.ecr.to_json(),
            "boda": None if self.boda is None else self.boda.to_json(),
        }


@dataclass(frozen=True)
class PreviewComparison:
    """ECR's own preview of one repository beside boda's evaluation (or why there is none)."""

    repository: str
    available: bool
    reason: str
    ecr_acts_on: int = 0
    boda_acts_on: int = 0
    differences: tuple[Difference, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form (the counts and differences only when the preview was available)."""
        out: dict[str, Any] = {
            "repository": self.repository,
            "available": self.available,
            "reason": self.reason,
        }
        if self.available:
            out |= {
                "ecr_acts_on": self.ecr_acts_on,
                "boda_acts_on": self.boda_acts_on,
                "differences": [d.to_json() for d in self.differences],
            }
        return out


@dataclass(frozen=True)
class PolicyCheck:
    """`boda policy check`: every protected image at risk, ECR's previews compared, and notes."""

    app: str
    violations: tuple[AtRisk, ...]
    ecr_preview: tuple[PreviewComparison, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "violations": [v.to_json() for v in self.violations],
            "ecr_preview": [p.to_json() for p in self.ecr_preview],
            "notes": list(self.notes),
        }


def policy_check(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    now: datetime | None = None,
    skip_runtimes: Collection[str] = (),
    ecr_preview: bool = True,
    preview_timeout: float = PREVIEW_TIMEOUT,
) -> PolicyCheck:
    """Evaluate the policy as ECR would (ignoring boda's protections) and list every protected
    image it would expire: the outage predictor. With `ecr_preview` and an ECR registry, ECR's own
    preview is asked too and compared."""
    from boda.services.native_retention import is_native, read_state

    require_known_app(ctx, app)
    native = is_native(ctx)
    texts = _policies(ctx, app, policy, native)
    now = now or datetime.now(UTC)
    running = scan(ctx, None, skip=skip_runtimes)
    at_risk: list[AtRisk] = []
    previews: list[PreviewComparison] = []
    notes: list[str] = []
    for repo in repositories(ctx, app):
        rules, text = texts.get(repo, (None, None))
        if rules is None:
            notes.append(f"{repo} has no lifecycle policy: ECR expires nothing there")
            continue
        if native:
            state = read_state(ctx, app, repo, running, now=now)
            images, protected = state.images, state.protected
            decisions = [d for d in evaluate(rules, images, now) if d.action is not None]
        else:
            images, protected, decisions = _boda_mode(ctx, app, repo, rules, running, now)
        flagged = {d.digest for d in decisions if d.digest in protected}
        at_risk += [
            _violation(repo, images, d, protected[d.digest]) for d in decisions if d.digest in flagged
        ]
        if ecr_preview and text is not None and isinstance(ctx.registry, LifecyclePreviewer):
            answer = ctx.registry.lifecycle_preview(repo, text, timeout=preview_timeout)
            previews.append(_compare(repo, answer, evaluate(rules, images, now)))
            for row in answer.rows:
                if row.digest in protected and row.digest not in flagged:
                    by = RuleAction(row.action, row.rule_priority)
                    found = tuple(protected[row.digest])
                    at_risk.append(AtRisk(repo, row.digest, row.tags, by, found, "ecr-preview"))
    if native and ctx.config.retention.min_age:
        notes.append("retention.min_age is not checked: ECR's lifecycle policy cannot honour it")
    return PolicyCheck(app, tuple(at_risk), tuple(previews), tuple(notes))


def _policies(
    ctx: Context, app: str, policy: Path | None, native: bool
) -> dict[str, tuple[LifecyclePolicy | None, str | None]]:
    """The policy to check per repository, with its text when ECR may preview it.

    A file given (or, outside native retention, retention.policy) applies to every repository;
    otherwise the policy stored on ECR: in native retention each repository's own, else the app's
    repository's for all of them.
    """
    repos = repositories(ctx, app)
    path = policy if native else policy or ctx.config.retention.policy
    if path is not None:
        rules = load_policy(path)
        return {repo: (rules, path.read_text(encoding="utf-8")) for repo in repos}
    store = ctx.registry if isinstance(ctx.registry, LifecyclePolicyStore) else None
    if store is None:
        raise UsageError("no lifecycle policy: give a policy file or set retention.policy in boda.toml")
    if native:
        found = {repo: _stored(store, repo) for repo in repos}
        if all(text is None for text in found.values()):
            raise UsageError(
                "no lifecycle policy on any repository of the app: put one with"
                " `boda ecr policy put APP --render`"
            )
        return {repo: (parse_policy(text) if text else None, text) for repo, text in found.items()}
    text = store.lifecycle_policy(ctx.config.repository_for(app, None))
    if not text:
        raise UsageError(
            "no lifecycle policy: give a policy file, set retention.policy in boda.toml, or put one on ECR"
        )
    return {repo: (parse_policy(text), text) for repo in repos}


def _stored(store: LifecyclePolicyStore, repo: str) -> str | None:
    try:
        return store.lifecycle_policy(repo)
    except NotFound:
        return None


def _boda_mode(
    ctx: Context, app: str, repo: str, rules: LifecyclePolicy, running: Any, now: datetime
) -> tuple[list[EcrImage], dict[str, list[Protection]], list[Decision]]:
    """Images, protected images and expiring decisions as boda's own expiry plan sees them."""
    inventory = read_inventory(ctx, app, repo)
    facts = merged_facts(ctx, apps_sharing(ctx, repo, app))
    tagged, _drift = registry_holds(ctx, app, repo, inventory.images, facts)
    held = combine(tagged, runtime_holds(running, repo))
    decisions = [d for d in evaluate(rules, inventory.images, now) if d.action == "expire"]
    entries = plan_repository(repo, inventory.images, decisions, replace(facts, held=held), now)
    protected: dict[str, list[Protection]] = {}
    for entry in entries:
        if entry.action != EXPIRE:
            found = [
                Protection(str(r["protection"]), str(r["detail"]))
                for r in entry.reasons
                if r["type"] == "protection"
            ]
            if found:
                protected[entry.digest] = found
    return inventory.images, protected, decisions


def _violation(
    repo: str, images: Sequence[EcrImage], decision: Decision, protections: Sequence[Protection]
) -> AtRisk:
    tags = next((image.tags for image in images if image.digest == decision.digest), ())
    by = RuleAction(decision.action, decision.rule_priority)
    return AtRisk(repo, decision.digest, tuple(tags), by, tuple(protections))


def _compare(repo: str, answer: RegistryPreview, decisions: Sequence[Decision]) -> PreviewComparison:
    """ECR's preview beside boda's evaluation: every image where they disagree."""
    if not answer.available:
        return PreviewComparison(repo, False, answer.reason)
    ecr: Mapping[str, RuleAction] = {r.digest: RuleAction(r.action, r.rule_priority) for r in answer.rows}
    boda = {d.digest: RuleAction(d.action, d.rule_priority) for d in decisions if d.action is not None}
    differences = tuple(
        Difference(digest, ecr.get(digest), boda.get(digest))
        for digest in sorted(set(ecr) | set(boda))
        if ecr.get(digest) != boda.get(digest)
    )
    return PreviewComparison(repo, True, answer.reason, len(ecr), len(boda), differences)
