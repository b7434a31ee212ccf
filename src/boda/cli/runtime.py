"""runtime scan: what runs where now."""

from __future__ import annotations

from typing import Any

import click

from boda.cli.render import emit, printable, short, table
from boda.cli.root import json_option, open_context


def _digest(image: dict[str, Any]) -> str:
    if not image["digest"]:
        return "? (tag not in the registry)" if image["repository"] else "-"
    return short(image["digest"]) + (" (tag)" if image["resolved_by"] == "registry" else "")


def scan_text(data: dict[str, Any]) -> str:
    """One row per image and place; then what was skipped or empty."""
    rows = []
    notes = []
    for env in data["environments"]:
        if not env["runtimes"]:
            notes.append(f"{env['name']}: no runtimes configured")
        for runtime in env["runtimes"]:
            if runtime["skipped"]:
                notes.append(f"{env['name']}: {runtime['runtime']} skipped")
                continue
            if not runtime["images"]:
                notes.append(
                    f"{env['name']}: {runtime['runtime']}: nothing"
                    + (f" of {data['app']}" if data["app"] else "")
                )
            for image in runtime["images"]:
                rows.append(
                    [
                        env["name"],
                        image["place"],
                        image["role"],
                        "-" if image["tasks"] is None else image["tasks"],
                        image["app"] or "not boda's",
                        _digest(image),
                        (image["commit"] or "-")[:12],
                        image["image"],
                    ]
                )
    out = table(["ENV", "PLACE", "ROLE", "TASKS", "APP", "DIGEST", "COMMIT", "IMAGE"], rows) if rows else ""
    return "\n".join([out, *map(printable, notes)]).strip("\n")


@click.group()
def runtime() -> None:
    """What actually runs: ECS, Lambda, Kubernetes and listed images, per environment."""


@runtime.command("scan")
@click.argument("app", required=False)
@click.option("--env", help="Only this environment's runtimes.")
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="RUNTIME",
    help="Do not read this runtime (as configured, e.g. ecs:prod-cluster) in this run; repeatable.",
)
@json_option
def scan(app: str | None, env: str | None, skip: tuple[str, ...], as_json: bool) -> None:
    """What runs where now (of APP, or of every app): per environment and runtime, the place, task
    counts, the digest and the commit it was built from. A runtime that cannot be read completely
    fails the command (exit 6)."""
    from boda.services.runtime_scan import scan as run

    with open_context() as ctx:
        result = run(ctx, app, env=env, skip=skip)
    emit(result.to_json(), as_json, scan_text)


COMMANDS = [runtime]
