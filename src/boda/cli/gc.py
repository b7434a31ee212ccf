"""gc plan, gc apply, pin, unpin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from boda.cli.render import emit, note, printable, short, table, when
from boda.cli.root import by_option, free_text, json_option, open_context, policy_option, skip_runtime_option
from boda.errors import EXIT_UNAVAILABLE


def _reason_text(reason: dict[str, Any]) -> str:
    if reason["type"] != "rule":
        return str(reason["detail"])
    if reason["action"] is None:  # a rule selects it, but a graph constraint of the policy keeps it
        return f"rule {reason['rulePriority']}: {reason['detail']}"
    return f"rule {reason['rulePriority']} would {reason['action']}"


def plan_text(data: dict[str, Any]) -> str:
    """The plan as a table, one row per image and repository."""
    rows = []
    for e in data["images"]:
        why = "; ".join(_reason_text(r) for r in e["reasons"])
        rows.append(
            [
                e["action"].upper(),
                e["repository"],
                short(e["digest"]),
                ",".join(e["tags"]) or "-",
                when(e["pushedAt"]),
                why,
            ]
        )
    s = data["summary"]
    text = table(["ACTION", "REPOSITORY", "DIGEST", "TAGS", "PUSHED", "WHY"], rows)
    text += f"\n{s['expire']} to expire, {s['keep']} kept, {s['images']} images"
    return "\n".join([text, *(f"note: {printable(n)}" for n in data.get("notes", []))])


def _one_or_all(app: str | None, all_apps: bool) -> str | None:
    """The app named, or None for --all."""
    if all_apps == (app is not None):
        raise click.UsageError("name one APP or pass --all")
    return app


@click.group()
def gc() -> None:
    """Expire old images safely: plan first, apply only on request."""


@gc.command("plan")
@click.argument("app", required=False)
@click.option("--all", "all_apps", is_flag=True, help="Plan for every app in the ledger.")
@policy_option()
@click.option("--now", help="Plan as of this ISO 8601 time (what would expire next week?).")
@skip_runtime_option
@json_option
def gc_plan(
    app: str | None,
    all_apps: bool,
    policy_path: Path | None,
    now: str | None,
    skip_runtimes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Every image of APP with keep or expire and every reason. Deletes nothing."""
    from boda.services.expiry.plan import plans
    from boda.services.policy_eval import parse_now

    name = _one_or_all(app, all_apps)
    when = parse_now(now) if now else None
    progress = note if sys.stderr.isatty() else None
    with open_context() as ctx:
        made = [
            p.to_json()
            for p in plans(
                ctx, name, policy=policy_path, now=when, progress=progress, skip_runtimes=skip_runtimes
            )
        ]
        requests = ctx.registry.stats.requests if made else 0
    data: Any = made[0] if name is not None else {"plans": made}
    data["requests"] = requests  # what reading the registry took (requests sent, retries included)
    emit(data, as_json, lambda d: "\n\n".join(f"{p['app']}\n{plan_text(p)}" for p in d.get("plans", [d])))


def apply_text(data: dict[str, Any]) -> str:
    """What one app's apply did (or, dry run, its plan)."""
    if not data["applied"]:
        return plan_text(data["plan"])
    gone = " (already gone: an answer was lost, or it was removed meanwhile)"
    lines = [
        f"deleted {x['repository']}@{x['digest']}" + (gone if x["already_gone"] else "")
        for x in data["deleted"]
    ]
    lines += [f"skipped {x['repository']}@{x['digest']}: {printable(x['reason'])}" for x in data["skipped"]]
    lines += [
        f"NOT DELETED {x['repository']}@{x['digest']}: {printable(x['reason'])}" for x in data["failed"]
    ]
    lines += [f"freed {n} unreferenced blobs of {repo}" for repo, n in data["collected_blobs"].items()]
    counts = f"{len(data['deleted'])} deleted, {len(data['skipped'])} skipped, {len(data['failed'])} refused"
    return "\n".join([*lines, counts])


@gc.command("apply")
@click.argument("app", required=False)
@click.option("--all", "all_apps", is_flag=True, help="Apply for every app in the ledger, one after another.")
@click.option("--yes", is_flag=True, help="Really delete; without it the plan is only printed.")
@policy_option()
@skip_runtime_option
@by_option
@json_option
def gc_apply(
    app: str | None,
    all_apps: bool,
    yes: bool,
    policy_path: Path | None,
    skip_runtimes: tuple[str, ...],
    by: str | None,
    as_json: bool,
) -> None:
    """Delete what the plan expires, re-checking every image just before its deletion."""
    from boda.services.expiry.apply import apply_each

    name = _one_or_all(app, all_apps)
    progress = note if sys.stderr.isatty() else None
    with open_context() as ctx:
        done = apply_each(
            ctx, name, yes=yes, policy=policy_path, by=by, progress=progress, skip_runtimes=skip_runtimes
        )
        results = [r.to_json() for r in done]
    if not yes:
        note("dry run: nothing deleted; pass --yes to apply this plan")
    data: Any = results[0] if name is not None else {"results": results}
    refused = any(r["failed"] for r in results)
    emit(
        data,
        as_json,
        lambda d: "\n\n".join(f"{r['plan']['app']}\n{apply_text(r)}" for r in d.get("results", [d])),
    )
    if refused:
        raise SystemExit(EXIT_UNAVAILABLE)  # the registry refused some deletions: each is listed


@click.command()
@click.argument("app")
@click.argument("digest")
@click.option("--reason", required=True, callback=free_text, help="Why the image must stay.")
@by_option
@json_option
def pin(app: str, digest: str, reason: str, by: str | None, as_json: bool) -> None:
    """Protect DIGEST of APP from expiry until unpinned."""
    from boda.services.expiry.pins import pin as run

    with open_context() as ctx:
        result = run(ctx, app, digest, reason=reason, by=by)
    emit(result.to_json(), as_json, lambda d: f"pinned {d['app']}@{d['digest']}")


@click.command()
@click.argument("app")
@click.argument("digest")
@by_option
@json_option
def unpin(app: str, digest: str, by: str | None, as_json: bool) -> None:
    """Remove the pin of DIGEST of APP."""
    from boda.services.expiry.pins import unpin as run

    with open_context() as ctx:
        result = run(ctx, app, digest, by=by)
    emit(result.to_json(), as_json, lambda d: f"unpinned {d['app']}@{d['digest']}")


COMMANDS = [gc, pin, unpin]
