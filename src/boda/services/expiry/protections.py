"""What must not expire, by digest, and where the registry disagrees with the ledger.

The ledger says what boda promoted (current digests, rollback windows, pins). The registry says what
its environment tags name, and the configured runtimes what they run; both are in use whatever the
ledger says (a ledger that lost its history, a promotion made by hand, a task started by hand). All
of them protect, and every difference between the registry and the ledger is drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boda.policy.image import EcrImage
from boda.policy.plan import Facts, Protection
from boda.services.context import Context
from boda.services.runtime_scan import RuntimeScan


def ledger_facts(ctx: Context, app: str) -> Facts:
    """Deployments, rollback targets and pins of `app`, by digest (a complete read or an error)."""
    if app not in ctx.ledger.apps():
        return Facts(min_age=ctx.config.retention.min_age)
    depth = ctx.config.retention.rollback_depth
    current = {env: str(p.digest) for env, p in ctx.ledger.current_all(app).items()}
    rollback = {
        env.name: [str(d) for d in ctx.ledger.previous_digests(app, env.name, depth)]
        for env in ctx.config.environments
    }
    pins = {str(p.digest): f"pinned by {p.by}: {p.reason}" for p in ctx.ledger.pins(app)}
    return Facts(current, rollback, pins, ctx.config.retention.min_age)


def apps_sharing(ctx: Context, repo: str, app: str) -> list[str]:
    """Every app whose images the configured layout puts in `repo`, `app` first.

    A repository belongs to one app, but a template can make two apps meet (`{app}-{env}` maps
    app `web`, environment `dev` onto the build repository of an app named `web-dev`): such a
    repository is planned with the protections of all of them.
    """
    config = ctx.config
    found = [app]
    for other in ctx.ledger.apps():
        if other == app:
            continue
        names = {config.repository_for(other, None)}
        if config.strategy == "repos":
            names |= {config.repository_for(other, env.name) for env in config.environments}
        if repo in names:
            found.append(other)
    return found


def merged_facts(ctx: Context, apps: Sequence[str]) -> Facts:
    """The ledger facts of several apps as one (environment keys become `app/env`)."""
    if len(apps) == 1:
        return ledger_facts(ctx, apps[0])
    current: dict[str, str] = {}
    rollback: dict[str, list[str]] = {}
    pins: dict[str, str] = {}
    for name in apps:
        facts = ledger_facts(ctx, name)
        prefix = "" if name == apps[0] else f"{name} "
        current |= {f"{prefix}{env}": digest for env, digest in facts.current.items()}
        rollback |= {f"{prefix}{env}": list(digests) for env, digests in facts.rollback.items()}
        pins |= {digest: f"{prefix}{why}" for digest, why in facts.pins.items()}
    return Facts(current, rollback, pins, ctx.config.retention.min_age)


@dataclass(frozen=True)
class Drift:
    """A place where the registry and the ledger disagree about an environment."""

    kind: str  # "environment-tag": the tag names another digest than the ledger's current one
    repository: str
    env: str
    registry: str | None
    ledger: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "repository": self.repository,
            "env": self.env,
            "registry": self.registry,
            "ledger": self.ledger,
        }

    @property
    def text(self) -> str:
        """One line for people."""
        found, recorded = self.registry or "nothing", self.ledger or "nothing"
        return f"{self.repository}: {self.env} names {found} in the registry, the ledger says {recorded}"


def registry_holds(
    ctx: Context, app: str, repo: str, images: Sequence[EcrImage], facts: Facts
) -> tuple[dict[str, list[Protection]], list[Drift]]:
    """What the registry's environment tags keep in `repo`, and how they differ from the ledger.

    Strategy `tags`: the digest each environment's tag names in the app's repository. Strategy
    `repos`: every digest that carries a tag in an environment's repository.
    """
    config = ctx.config
    held: dict[str, list[Protection]] = {}
    drift: list[Drift] = []
    if config.strategy == "tags":
        if repo != config.repository_for(app, None):
            return held, drift
        named = {tag: image.digest for image in images for tag in image.tags}
        for env in config.environments:
            digest, recorded = named.get(env.name), facts.current.get(env.name)
            if digest is not None:
                detail = f"tagged {env.name} in the registry"
                if recorded != digest:
                    detail += f", the ledger says {recorded or 'nothing is current there'}"
                held.setdefault(digest, []).append(Protection("env-tag", detail))
            if digest != recorded:
                drift.append(Drift("environment-tag", repo, env.name, digest, recorded))
        return held, drift
    for env in config.environments:
        if repo != config.repository_for(app, env.name):
            continue
        tagged = {image.digest: image.tags for image in images if image.tags and image.subject is None}
        for digest, tags in tagged.items():
            detail = f"tagged {', '.join(tags)} in {repo}, the repository of {env.name}"
            held.setdefault(digest, []).append(Protection("env-tag", detail))
        recorded = facts.current.get(env.name)
        if recorded is not None and recorded not in tagged:
            drift.append(Drift("environment-tag", repo, env.name, None, recorded))
    return held, drift


def runtime_holds(scan: RuntimeScan, repo: str) -> dict[str, list[Protection]]:
    """What the configured runtimes run, deploy or keep for a rollback in `repo`, by digest."""
    held: dict[str, list[Protection]] = {}
    for digest, sightings in scan.in_use(repo).items():
        for sighting in sightings:
            held.setdefault(str(digest), []).append(
                Protection("running", f"{sighting.env}: {sighting.reason}")
            )
    return held


def combine(*holds: dict[str, list[Protection]]) -> dict[str, list[Protection]]:
    """Several digest -> protections maps as one."""
    out: dict[str, list[Protection]] = {}
    for held in holds:
        for digest, protections in held.items():
            out.setdefault(digest, []).extend(protections)
    return out
