"""The lifecycle policy an expiry command plans with: the file given, else `retention.policy`."""

from __future__ import annotations

from pathlib import Path

from boda.errors import PolicyError, UsageError
from boda.policy.document import LifecyclePolicy, parse_policy
from boda.services.context import Context


def load_policy(path: Path) -> LifecyclePolicy:
    """Read and validate a lifecycle policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the policy: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        return parse_policy(text)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc.message}", hint=exc.hint) from exc


def policy_for(ctx: Context, policy: Path | None) -> LifecyclePolicy:
    """The policy file given, else `retention.policy` from the config."""
    path = policy or ctx.config.retention.policy
    if path is None:
        raise UsageError("no lifecycle policy: give a policy file or set retention.policy in boda.toml")
    return load_policy(path)
