"""policy eval (offline) and policy check (live)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from boda.cli.render import emit, printable, short, table
from boda.cli.root import json_option, open_context, policy_option, skip_runtime_option
from boda.errors import EXIT_REFUSED

if TYPE_CHECKING:
    from boda.services.policy_eval import PolicyEvaluation


@click.group()
def policy() -> None:
    """Evaluate ECR lifecycle policies before AWS runs them."""


def _preview_text(data: PolicyEvaluation) -> str:
    rows = [
        [
            r.applied_rule_priority,
            r.action.type,
            short(r.image_digest),
            ",".join(r.image_tags) or "-",
            r.image_pushed_at.strftime("%Y-%m-%dT%H:%M"),
        ]
        for r in data.preview_results
    ]
    text = table(["RULE", "ACTION", "DIGEST", "TAGS", "PUSHED"], rows)
    text += f"\n{data.summary.expiring_image_total_count} images would expire"
    for v in data.violations:
        digest, rule = printable(v.image_digest), v.applied_rule_priority
        text += f"\nVIOLATION: in-use {digest} would be expired by rule {rule}"
    return text


# Rows encoded per piece of output: the whole document is never one buffer in memory.
_ROWS_PER_WRITE = 50_000


def _write_json(data: PolicyEvaluation, pretty: bool) -> None:
    """The evaluation as JSON on stdout: indented when asked, compact and streamed otherwise."""
    import msgspec

    sys.stdout.flush()
    out = sys.stdout.buffer
    encoder = msgspec.json.Encoder()
    if pretty:
        out.write(msgspec.json.format(encoder.encode(data), indent=2) + b"\n")
        return
    rows = data.preview_results
    out.write(b'{"previewResults":[')
    for start in range(0, len(rows), _ROWS_PER_WRITE):
        if start:
            out.write(b",")
        out.write(encoder.encode(rows[start : start + _ROWS_PER_WRITE])[1:-1])
    out.write(b'],"summary":' + encoder.encode(data.summary))
    out.write(b',"violations":' + encoder.encode(data.violations) + b"}\n")
    out.flush()


@policy.command("eval")
@policy_option("The lifecycle policy JSON.", required=True)
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
@click.option(
    "--pretty/--compact",
    default=None,
    help="Indented JSON (the default on a terminal) or compact JSON (the default otherwise).",
)
def policy_eval(
    policy_path: Path,
    images_path: Path,
    now: str | None,
    in_use: Path | None,
    as_json: bool,
    pretty: bool | None,
) -> None:
    """Evaluate a policy offline on describe-images output, answering like ECR's preview."""
    from boda.services.policy_eval import evaluate_offline, parse_now

    data = evaluate_offline(policy_path, images_path, parse_now(now) if now else None, in_use)
    if as_json or pretty is not None:
        _write_json(data, sys.stdout.isatty() if pretty is None else pretty)
    else:
        click.echo(_preview_text(data))
    if data.violations:
        raise SystemExit(EXIT_REFUSED)


def _check_text(d: dict[str, Any]) -> str:
    lines = []
    for v in d["violations"]:
        tags = printable(",".join(v["tags"])) or "untagged"
        why = "; ".join(printable(p["detail"]) for p in v["protections"])
        verb = "archived" if v.get("action") == "transition" else "expired"
        by = " (ECR's preview)" if v.get("source") == "ecr-preview" else ""
        lines.append(
            f"AT RISK: {v['repository']}@{v['digest']} ({tags}) would be {verb} by rule "
            f"{v['appliedRulePriority']}{by} but is {why}"
        )
    for p in d.get("ecr_preview", []):
        if not p["available"]:
            lines.append(f"ECR preview of {p['repository']}: unavailable ({printable(p['reason'])})")
            continue
        for diff in p["differences"]:
            ecr, boda = diff["ecr"], diff["boda"]
            lines.append(
                f"DIFFERENCE: {p['repository']}@{diff['digest']}: ECR "
                f"{_side(ecr)}, boda {_side(boda)} (ECR is the judge)"
            )
    lines += [f"note: {printable(n)}" for n in d.get("notes", [])]
    if not d["violations"]:
        lines.append(f"{d['app']}: the policy expires no protected image")
    return "\n".join(lines)


def _side(side: dict[str, Any] | None) -> str:
    if side is None:
        return "keeps it"
    verb = "archives" if side["action"] == "transition" else "expires"
    return f"{verb} it (rule {side['appliedRulePriority']})"


@policy.command("check")
@click.argument("app")
@policy_option("The policy (default: retention.policy, else the repository's own on ECR).")
@click.option(
    "--ecr-preview/--no-ecr-preview",
    default=True,
    help="On ECR, also ask ECR's own lifecycle preview and report where it differs (default: on).",
)
@skip_runtime_option
@json_option
def policy_check(
    app: str, policy_path: Path | None, ecr_preview: bool, skip_runtimes: tuple[str, ...], as_json: bool
) -> None:
    """List every protected image of APP that the policy, run as ECR runs it, would expire."""
    from boda.services.expiry.policy_check import policy_check as run

    with open_context() as ctx:
        result = run(ctx, app, policy=policy_path, skip_runtimes=skip_runtimes, ecr_preview=ecr_preview)
    emit(result.to_json(), as_json, _check_text)
    if result.violations:
        raise SystemExit(EXIT_REFUSED)


COMMANDS = [policy]
