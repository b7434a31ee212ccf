"""repair: make the registry and the ledger agree again, recording how."""

from __future__ import annotations

from typing import Any

import click

from boda.cli.render import emit, printable, short
from boda.cli.root import by_option, free_text, json_option, open_context
from boda.errors import EXIT_CONFLICT


def repair_text(data: dict[str, Any]) -> str:
    """One line per repair, then what is left."""
    lines = [
        f"{r['app']}: {r['action']}: {printable(r['where'])} ({printable(r['detail'])})"
        for r in data["repairs"]
    ]
    lines += [
        f"{d['app']}: still drift: {d['kind']} {printable(d['where'])}:"
        f" expected {short(d['expected'])}, found {short(d['found'])}"
        for d in data["remaining"]
    ]
    if data["ok"]:
        lines.append("registry and ledger agree" + ("" if data["repairs"] else "; nothing to repair"))
    return "\n".join(lines)


@click.command()
@click.argument("app", required=False)
@click.option(
    "--keep-registry",
    is_flag=True,
    help="Record what the registry shows (a tag moved, a write that landed) instead of putting back "
    "what the ledger says.",
)
@click.option("--reason", callback=free_text, help="Why, recorded with every repair.")
@by_option
@json_option
def repair(app: str | None, keep_registry: bool, reason: str | None, by: str | None, as_json: bool) -> None:
    """Reconcile open intents and drift of APP (or of every app) and record each repair; exit 5
    when drift remains."""
    from boda.services.repair import repair as run

    with open_context() as ctx:
        result = run(ctx, app, keep_registry=keep_registry, by=by, reason=reason)
    emit(result.to_json(), as_json, repair_text)
    if not result.ok:
        raise SystemExit(EXIT_CONFLICT)


COMMANDS = [repair]
