"""ecr policy get / put: the native lifecycle policy of an app's ECR repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from boda.cli.render import emit
from boda.cli.root import json_option, open_context, policy_option
from boda.errors import NotFound

_ENV_HELP = "With strategy 'repos': the environment whose repository to use (default: the app's own)."


@click.group()
def ecr() -> None:
    """Amazon ECR specifics (registry = "ecr://...")."""


@ecr.group("policy")
def ecr_policy() -> None:
    """The native lifecycle policy of an app's ECR repository."""


def _text(data: dict[str, Any]) -> str:
    lines = [f"# {data['registry']}/{data['repository']}"]
    lines += [f"# {rule}" for rule in data["rules"]]
    if "invalid" in data:
        lines.append(f"# boda cannot evaluate this policy: {data['invalid']}")
    lines.append(json.dumps(data["policy"], indent=2))
    return "\n".join(lines)


@ecr_policy.command("get")
@click.argument("app")
@click.option("--env", help=_ENV_HELP)
@json_option
def policy_get(app: str, env: str | None, as_json: bool) -> None:
    """Print the lifecycle policy of APP's repository (exit 4 when it has none)."""
    from boda.services.ecr_policy import get_policy

    with open_context() as ctx:
        data = get_policy(ctx, app, env=env)
    if data["policy"] is None and not as_json:
        raise NotFound(
            f"{data['registry']}/{data['repository']} has no lifecycle policy",
            hint="put one with `boda ecr policy put APP --policy FILE`",
        )
    emit(data, as_json, _text)


@ecr_policy.command("put")
@click.argument("app")
@policy_option("The lifecycle policy JSON, validated by boda before anything is written.", required=True)
@click.option("--env", help=_ENV_HELP)
@json_option
def policy_put(app: str, policy_path: Path, env: str | None, as_json: bool) -> None:
    """Validate a lifecycle policy and store it on APP's repository."""
    from boda.services.ecr_policy import put_policy

    with open_context() as ctx:
        data = put_policy(ctx, app, policy_path, env=env)
    emit(
        data,
        as_json,
        lambda d: f"lifecycle policy of {d['registry']}/{d['repository']} set: {len(d['rules'])} rule(s)",
    )


COMMANDS = [ecr]
