"""build, evidence, promote, rollback, status, history, whereis, verify."""

from __future__ import annotations

from typing import Any

import click

from boda.cli.render import emit, note, plural, printable, short, table, when
from boda.cli.root import (
    by_option,
    free_text,
    json_option,
    open_context,
    sign_option,
    skip_runtime_option,
    url_text,
)
from boda.errors import EXIT_CONFLICT


def _build_text(d: dict[str, Any]) -> str:
    verb = "recorded" if d["created"] else "already recorded"
    text = f"{verb}: {d['app']} {d['commit'][:12]} -> {d['digest']} (commit tag {d['tag']})\n{d['reference']}"
    if d.get("copied_from"):
        text += f"\n(copied from {d['copied_from']} into the app's repository)"
    return text


@click.command()
@click.argument("app")
@click.option("--commit", required=True, help="The commit SHA the image was built from.")
@click.option("--image", help="The built image: a reference, or :TAG / @DIGEST in the app's repository.")
@click.option("--digest", help="The built image's digest in the app's repository.")
@by_option
@json_option
def build(
    app: str, commit: str, image: str | None, digest: str | None, by: str | None, as_json: bool
) -> None:
    """Record that COMMIT built an image of APP and write its immutable commit tag."""
    from boda.services.build import record_build

    with open_context(create_ledger=True) as ctx:
        result = record_build(ctx, app, commit=commit, image=image, digest=digest, by=by)
    emit(result.to_json(), as_json, _build_text)
    if result.note:
        note(f"boda: {result.note}")


@click.command()
@click.argument("app")
@click.option("--env", required=True, help="The environment the evidence was gathered in.")
@click.option("--commit", help="The build's commit SHA (or a unique prefix of 7+ digits).")
@click.option("--digest", help="The build's digest.")
@click.option("--kind", required=True, help="What was checked, e.g. tests, signoff, scan.")
@click.option("--result", required=True, help="pass or fail.")
@click.option("--url", callback=url_text, help="Where the details are (a CI run, a ticket).")
@sign_option
@by_option
@json_option
def evidence(
    app: str,
    env: str,
    commit: str | None,
    digest: str | None,
    kind: str,
    result: str,
    url: str | None,
    sign: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Record a test result or sign-off for a build of APP in ENV."""
    from boda.services.evidence import record_evidence

    with open_context() as ctx:
        out = record_evidence(
            ctx,
            app,
            env=env,
            kind=kind,
            result=result,
            commit=commit,
            digest=digest,
            url=url,
            by=by,
            sign=sign,
        )
    emit(
        out.to_json(),
        as_json,
        lambda d: (
            f"{d['kind']} {d['result']} for {d['app']} {short(d['digest'])} in {d['env']}"
            f" (by {printable(d['by'])})"
            + (f", signed (statement {short(d['statement'])})" if d["signed"] else "")
        ),
    )


@click.command()
@click.argument("apps", nargs=-1, required=True)
@click.option("--to", "to", required=True, help="The environment to promote to.")
@click.option("--commit", help="The commit whose build to promote (a unique prefix of 7+ digits works).")
@click.option("--digest", help="The digest to promote (one app only).")
@click.option("--reason", callback=free_text, help="Why; required with --force.")
@click.option("--force", is_flag=True, help="Bypass the gate (needs --reason; recorded as forced).")
@sign_option
@by_option
@json_option
def promote(
    apps: tuple[str, ...],
    to: str,
    commit: str | None,
    digest: str | None,
    reason: str | None,
    force: bool,
    sign: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Promote the same digest of one or more APPS to an environment, behind its gate."""
    from boda.services.promote import promote as run

    with open_context() as ctx:
        result = run(
            ctx, list(apps), to=to, commit=commit, digest=digest, by=by, reason=reason, force=force, sign=sign
        )
    emit(result.to_json(), as_json, lambda d: "\n".join(p["reference"] for p in d["promotions"]))


@click.command()
@click.argument("app")
@click.option("--env", required=True, help="The environment to roll back.")
@click.option("--to", "to", help="A digest or commit that was current there before (default: the previous).")
@click.option("--reason", callback=free_text, help="Why.")
@sign_option
@by_option
@json_option
def rollback(
    app: str, env: str, to: str | None, reason: str | None, sign: str | None, by: str | None, as_json: bool
) -> None:
    """Put the previous digest of ENV back (or the one named with --to)."""
    from boda.services.promote import rollback as run

    with open_context() as ctx:
        placement = run(ctx, app, env=env, to=to, by=by, reason=reason, sign=sign)
    emit(placement.to_json(), as_json, lambda d: d["reference"])


def status_text(data: dict[str, Any]) -> str:
    rows = []
    for env in data["environments"]:
        cur = env["current"]
        ev = (
            ", ".join(
                f"{e['kind']}:{e['result']}" + ("[signed]" if e.get("signed") else "")
                for e in env["evidence"]
            )
            or "-"
        )
        prev = (
            " ".join(short(p["digest"]) + (" (expired)" if p["expired"] else "") for p in env["previous"])
            or "-"
        )
        state, running = _live_cells(env)
        if cur:
            rows.append(
                [
                    env["name"],
                    short(cur["digest"]),
                    (cur["commit"] or "-")[:8],
                    when(cur["promoted_at"]),
                    cur["promoted_by"],
                    cur["kind"],
                    state,
                    running,
                    ev,
                    prev,
                ]
            )
        else:
            rows.append([env["name"], "-", "-", "-", "-", "-", state, running, "-", prev])
    header = f"{data['app']}\n"
    columns = ["ENV", "DIGEST", "COMMIT", "SINCE", "BY", "KIND", "STATE", "RUNNING", "EVIDENCE", "PREVIOUS"]
    notes = [
        f"{e['name']}: the registry's tag names {short(e['registry'])}, the ledger says"
        f" {short(e['current']['digest']) if e['current'] else 'nothing'} (drift; boda repair)"
        for e in data["environments"]
        if e.get("drift")
    ]
    notes += [
        f"{e['name']}: {printable(e['live_error'])}" for e in data["environments"] if e.get("live_error")
    ]
    return "\n".join([header + table(columns, rows), *notes])


def _live_cells(env: dict[str, Any]) -> tuple[str, str]:
    """STATE and RUNNING of one environment ("-" where no runtime is configured)."""
    if "state" not in env:
        return "-", "-"
    state = env["state"] or ("-" if not env["runtimes"] else "nothing runs")
    if env.get("drift"):
        state += " (registry drift)"
    running = ", ".join(sorted({short(r["digest"]) for r in env["running"] if r.get("digest")})) or "-"
    return state, running


@click.command()
@click.argument("app")
@click.option(
    "--previous",
    default=10,
    show_default=True,
    type=click.IntRange(0, 100000),
    help="How many earlier digests to show per environment.",
)
@click.option(
    "--ledger-only",
    is_flag=True,
    help="Only what the ledger recorded: read neither the registry's tags nor the runtimes.",
)
@skip_runtime_option
@json_option
def status(app: str, previous: int, ledger_only: bool, skip_runtimes: tuple[str, ...], as_json: bool) -> None:
    """What runs in each environment of APP now, since when, by whom, and what ran before: what
    was promoted beside what the registry's tags name and the runtimes run."""
    from boda.services.status import status as run

    with open_context() as ctx:
        data = run(ctx, app, previous=previous, live=not ledger_only, skip_runtimes=skip_runtimes).to_json()
    emit(data, as_json, status_text)


HISTORY_COLUMNS = ["AT", "ENV", "DIGEST", "COMMIT", "KIND", "BY", "REASON"]


def history_row(e: dict[str, Any]) -> list[Any]:
    """One history entry as a row of the text table."""
    return [
        when(e["at"]),
        e["env"],
        short(e["digest"]),
        (e["commit"] or "-")[:8],
        e["kind"],
        e["by"],
        e["reason"] or "",
    ]


def history_text(data: dict[str, Any]) -> str:
    """History as a table."""
    return table(HISTORY_COLUMNS, [history_row(e) for e in data["entries"]])


@click.command()
@click.argument("app")
@click.option("--env", help="Only this environment.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N entries (default: all).")
@json_option
@click.option("--jsonl", is_flag=True, help="Print one JSON object per entry and line (JSON Lines).")
@click.option(
    "--pager/--no-pager",
    default=None,
    help="Page the table through $PAGER (default: when stdout is a terminal).",
)
def history(
    app: str, env: str | None, limit: int | None, as_json: bool, jsonl: bool, pager: bool | None
) -> None:
    """Every promotion and rollback of APP, newest first, printed as it is read."""
    from boda.cli import stream
    from boda.services.history import entry_json, stream_history

    if as_json and jsonl:
        raise click.UsageError("--json and --jsonl are two forms of one output: choose one")
    with open_context() as ctx:
        found = stream_history(ctx, app, env, limit=limit)
        entries = (entry_json(p) for p in found.entries)
        if as_json:
            stream.write(stream.json_document({"app": found.app}, "entries", entries), pager=False)
        elif jsonl:
            lines = ({"app": found.app, **e} for e in entries)
            stream.write(stream.json_lines(lines), pager=False)
        else:
            stream.write(stream.text_table(HISTORY_COLUMNS, (history_row(e) for e in entries)), pager=pager)


@click.command()
@click.argument("app", required=False)
@click.option("--commit", help="A commit SHA or unique prefix.")
@click.option("--digest", help="An image digest.")
@json_option
def whereis(app: str | None, commit: str | None, digest: str | None, as_json: bool) -> None:
    """Which environments run a build now and which ran it before."""
    from boda.services.status import whereis as run

    with open_context() as ctx:
        data = run(ctx, app, commit=commit, digest=digest).to_json()
    emit(data, as_json, whereis_text)


def whereis_text(data: dict[str, Any]) -> str:
    """One line per build: where it is current, and where it was before."""
    lines = []
    for m in data["matches"]:
        now = ", ".join(printable(r["env"]) for r in m["running_in"])
        before = ", ".join(printable(r["env"]) for r in m["ran_in"])
        where = f"current in {now}" if now else "current nowhere"
        if before:
            where += f"; earlier in {before}"
        if m.get("runtime"):
            where += "; runs in " + ", ".join(f"{r['place']} ({r['env']})" for r in m["runtime"])
        gone = " (expired: no longer in the registry)" if m["expired"] else ""
        lines.append(f"{printable(m['app'])} {m['commit'][:8]} {short(m['digest'])}{gone}: {where}")
    return "\n".join(lines)


@click.command()
@click.argument("app")
@click.option(
    "--deep", is_flag=True, help="Also check that every image in use pulls whole: each child and blob."
)
@click.option(
    "--runtime",
    "runtimes",
    is_flag=True,
    help="Also check that every image the configured runtimes run pulls whole (the next scale-out).",
)
@skip_runtime_option
@json_option
def verify(app: str, deep: bool, runtimes: bool, skip_runtimes: tuple[str, ...], as_json: bool) -> None:
    """Compare the registry with the ledger; exit 5 with the list of drifts when they differ."""
    from boda.services.verify import verify as run

    with open_context() as ctx:
        result = run(ctx, app, deep=deep, runtime=runtimes, skip_runtimes=skip_runtimes)
    emit(
        result.to_json(),
        as_json,
        lambda d: (
            f"{d['app']}: registry and ledger agree ({plural(d['checked'], 'check')})"
            if d["ok"]
            else "\n".join(
                f"drift: {x['kind']} {printable(x['where'])}: expected {short(x['expected'])},"
                f" found {short(x['found'])}" + (f" ({printable(x['why'])})" if x.get("why") else "")
                for x in d["drifts"]
            )
        ),
    )
    if not result.ok:
        raise SystemExit(EXIT_CONFLICT)


COMMANDS = [build, evidence, promote, rollback, status, history, whereis, verify]


def events_text(data: dict[str, Any]) -> str:
    """The event log as a table."""
    return table(
        ["AT", "ACTION", "APP", "ENV", "DIGEST", "BY", "REASON"],
        [
            [
                when(e["at"]),
                e["action"],
                e["app"],
                e["env"] or "-",
                short(e["digest"]),
                e["by"],
                e["reason"] or "",
            ]
            for e in data["events"]
        ],
    )


@click.command()
@click.argument("app", required=False)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N events (default: all).")
@click.option(
    "--action", "actions", multiple=True, help="Only events of this kind (repeatable): expire, pin, ..."
)
@json_option
def events(app: str | None, limit: int | None, actions: tuple[str, ...], as_json: bool) -> None:
    """The event log of APP (or of every app), newest first: builds, promotions, evidence, pins,
    expiries, repairs."""
    from boda.services.events import events as run

    with open_context() as ctx:
        data = run(ctx, app, limit=limit, actions=actions).to_json()
    emit(data, as_json, events_text)


COMMANDS.append(events)
