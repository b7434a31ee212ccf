"""ecr policy get / put: the native lifecycle policy of an app's ECR repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from boda.cli.render import emit, note, printable
from boda.cli.root import by_option, json_option, open_context, policy_option, skip_runtime_option
from boda.errors import NotFound, UsageError

_ENV_HELP = "With strategy 'repos': the environment whose repository to use (default: the app's own)."


@click.group()
def ecr() -> None:
    """Amazon ECR specifics (registry = "ecr://...")."""


@ecr.group("policy")
def ecr_policy() -> None:
    """The native lifecycle policy of an app's ECR repository."""


def _text(data: dict[str, Any]) -> str:
    lines = [f"# {data['registry']}/{data['repository']}"]
    lines += [f"# {printable(rule)}" for rule in data["rules"]]
    if "invalid" in data:
        lines.append(f"# boda cannot evaluate this policy: {printable(data['invalid'])}")
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
        data = get_policy(ctx, app, env=env).to_json()
    if data["policy"] is None and not as_json:
        raise NotFound(
            f"{data['registry']}/{data['repository']} has no lifecycle policy",
            hint="put one with `boda ecr policy put APP --policy FILE`",
        )
    emit(data, as_json, _text)


@ecr_policy.command("put")
@click.argument("app")
@policy_option(
    "The lifecycle policy JSON, validated by boda before anything is written (with --render: your"
    " rules, default retention.policy, else the repository's own)."
)
@click.option(
    "--render",
    is_flag=True,
    help="Native retention: let the protection tags move, sync them, and store the rendered policy,"
    " proved first on the repository's live images.",
)
@click.option("--env", help=_ENV_HELP)
@skip_runtime_option
@by_option
@json_option
def policy_put(
    app: str,
    policy_path: Path | None,
    render: bool,
    env: str | None,
    skip_runtimes: tuple[str, ...],
    by: str | None,
    as_json: bool,
) -> None:
    """Validate a lifecycle policy and store it on APP's repository (or, with --render, the policy
    rendered for native retention; exit 3 when it would expire a protected image)."""
    from boda.services.ecr_policy import put_policy, put_rendered

    if not render and policy_path is None:
        raise UsageError("give the policy with --policy FILE, or --render it for native retention")
    with open_context() as ctx:
        if render:
            put = put_rendered(ctx, app, policy=policy_path, env=env, skip_runtimes=skip_runtimes, by=by)
            data = put.to_json()
        else:
            assert policy_path is not None
            data = put_policy(ctx, app, policy_path, env=env).to_json()
    _notes(data)
    emit(
        data,
        as_json,
        lambda d: f"lifecycle policy of {d['registry']}/{d['repository']} set: {len(d['rules'])} rule(s)",
    )


@ecr_policy.command("render")
@click.argument("app")
@policy_option("Your lifecycle rules (default: retention.policy, else the repository's own policy).")
@click.option("--env", help=_ENV_HELP)
@skip_runtime_option
@json_option
def policy_render(
    app: str, policy_path: Path | None, env: str | None, skip_runtimes: tuple[str, ...], as_json: bool
) -> None:
    """Print the lifecycle policy document for APP's repository in native retention: boda's shield
    rules, then your rules, proved on the live images (exit 3, naming them, when it would expire a
    protected image). Stdout is what `aws ecr put-lifecycle-policy --lifecycle-policy-text` takes."""
    from boda.services.ecr_policy import render

    with open_context() as ctx:
        result = render(ctx, app, policy=policy_path, env=env, skip_runtimes=skip_runtimes)
    _notes(result.to_json())
    if as_json:
        emit(result.to_json(), True)
    else:
        click.echo(result.text)


def _notes(data: dict[str, Any]) -> None:
    for text in data.get("notes") or []:
        note(f"boda: note: {printable(text)}")


@ecr.command("sync")
@click.argument("app")
@skip_runtime_option
@by_option
@json_option
def sync(app: str, skip_runtimes: tuple[str, ...], by: str | None, as_json: bool) -> None:
    """Native retention: bring APP's protection tags in line with what must stay (and, with
    [promotion] untag_replaced, untag what left every window). Promotions, rollbacks, pins and
    unpins do this themselves; run it after deploying outside boda or after a failure."""
    from boda.services.native_retention import sync_app

    with open_context() as ctx:
        report = sync_app(ctx, app, by=by, skip_runtimes=skip_runtimes)
    data = report.to_json()
    _notes(data)
    emit(data, as_json, _sync_text)


def _sync_text(data: dict[str, Any]) -> str:
    lines = []
    for repo in data["repositories"]:
        for item in repo["add"]:
            lines.append(f"tagged   {repo['repository']}@{item['digest']} {printable(item['tag'])}")
        for item in repo["remove"]:
            lines.append(f"untagged {repo['repository']}@{item['digest']} {printable(item['tag'])}")
        for item in repo["untag"]:
            was = printable(",".join(item["tags"]))
            lines.append(f"retired  {repo['repository']}@{item['digest']} (was {was})")
    return "\n".join(lines) or f"{data['app']}: protection tags already in line"


COMMANDS = [ecr]
