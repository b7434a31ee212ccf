"""policy eval (offline) and policy check (live)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from boda.cli.render import emit, short, table
from boda.cli.root import json_option, open_context, skip_runtime_option
from boda.errors import EXIT_REFUSED


@click.group()
def policy() -> None:
    """Evaluate ECR lifecycle policies before AWS runs them."""


def _preview_text(data: dict[str, Any]) -> str:
    rows = [
        [
            r["appliedRulePriority"],
            r["action"]["type"],
            short(r["imageDigest"]),
            ",".join(r["imageTags"]) or "-",
            r["imagePushedAt"][:16],
        ]
        for r in data["previewResults"]
    ]
    text = table(["RULE", "ACTION", "DIGEST", "TAGS", "PUSHED"], rows)
    text += f"\n{data['summary']['expiringImageTotalCount']} images would expire"
    for v in data.get("violations", []):
        text += f"\nVIOLATION: in-use {v['imageDigest']} would be expired by rule {v['appliedRulePriority']}"
    return text


@policy.command("eval")
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The lifecycle policy JSON.",
)
@click.option(
    "--images",
    "images_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The output of `aws ecr describe-images`.",
)
@click.option("--now", help="Evaluate as of this ISO 8601 time (default: now).")
@click.option(
    "--in-use",
    "in_use",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Digests in use, one per line: any that would expire is a violation (exit 3).",
)
@json_option
def policy_eval(
    policy_path: Path, images_path: Path, now: str | None, in_use: Path | None, as_json: bool
) -> None:
    """Evaluate a policy offline on describe-images output, answering like ECR's preview."""
    from boda.services.policy_eval import evaluate_offline, parse_now

    data = evaluate_offline(policy_path, images_path, parse_now(now) if now else None, in_use)
    emit(data, as_json, _preview_text)
    if data.get("violations"):
        raise SystemExit(EXIT_REFUSED)


def _check_text(d: dict[str, Any]) -> str:
    lines = []
    for v in d["violations"]:
        tags = ",".join(v["tags"]) or "untagged"
        why = "; ".join(p["detail"] for p in v["protections"])
        lines.append(
            f"AT RISK: {v['repository']}@{v['digest']} ({tags}) would be expired by rule "
            f"{v['appliedRulePriority']} but is {why}"
        )
    return "\n".join(lines) or f"{d['app']}: the policy expires no protected image"


@policy.command("check")
@click.argument("app")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The policy (default: retention.policy, else the repository's own on ECR).",
)
@skip_runtime_option
@json_option
def policy_check(app: str, policy_path: Path | None, skip_runtimes: tuple[str, ...], as_json: bool) -> None:
    """List every protected image of APP that the policy, run as ECR runs it, would expire."""
    from boda.services.expiry.policy_check import policy_check as run

    with open_context() as ctx:
        data = run(ctx, app, policy=policy_path, skip_runtimes=skip_runtimes)
    emit(data, as_json, _check_text)
    if data["violations"]:
        raise SystemExit(EXIT_REFUSED)


COMMANDS = [policy]
